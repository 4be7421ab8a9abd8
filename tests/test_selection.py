import torch

from hf_autoassist.selection import acceptance_probability, sample_keep_mask


def test_untrained_assistant_keeps_everything():
    probs = acceptance_probability(torch.zeros(100), confidence=0.0, base_prob=0.3)
    assert torch.all(probs == 1.0)


def test_confident_assistant_keeps_base_prob_of_zero_scores():
    probs = acceptance_probability(torch.tensor([0.0, 1.0]), confidence=1.0, base_prob=0.3)
    torch.testing.assert_close(probs, torch.tensor([0.3, 1.0]))


def test_floor_is_the_larger_of_base_prob_and_doubt():
    # confidence 0.6 -> accept outright with 0.4 > base 0.3
    probs = acceptance_probability(torch.tensor([0.0, 0.5]), confidence=0.6, base_prob=0.3)
    torch.testing.assert_close(probs, torch.tensor([0.4, 0.7]))


def test_keep_mask_is_deterministic_and_follows_probabilities():
    probs = torch.full((20000,), 0.25)
    a = sample_keep_mask(probs, torch.Generator().manual_seed(1))
    b = sample_keep_mask(probs, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert abs(a.float().mean().item() - 0.25) < 0.02
