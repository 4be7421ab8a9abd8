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


def test_a_target_keep_is_met_on_average_and_keeps_the_rule_s_order():
    from hf_autoassist.selection import scaled_to_target

    probs = acceptance_probability(torch.rand(5000, generator=torch.Generator().manual_seed(0)), 0.8, base_prob=0.3)
    for target in (0.35, 0.5, 0.9):
        scaled = scaled_to_target(probs, target, floor=0.3)
        assert abs(scaled.mean().item() - target) < 1e-4
        assert scaled.min() >= 0.3 - 1e-6 and scaled.max() <= 1.0
        order = torch.argsort(probs)
        assert torch.all(scaled[order][1:] >= scaled[order][:-1])  # the Assistant still decides which
    # an Assistant that knows nothing: random skipping at the budget
    torch.testing.assert_close(scaled_to_target(torch.ones(10), 0.4, floor=0.3), torch.full((10,), 0.4))
    # a target under the floor lowers the floor to it
    assert abs(scaled_to_target(probs, 0.1, floor=0.3).mean().item() - 0.1) < 1e-4


def test_autoassist_with_a_target_keeps_that_fraction_of_each_epoch(tmp_path):
    import datasets
    import numpy as np

    from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
    from conftest import tiny_resnet

    rng = np.random.default_rng(0)
    train = datasets.Dataset.from_dict(
        {"pixel_values": rng.normal(size=(512, 1, 28, 28)).astype("float32"), "labels": rng.integers(0, 10, 512)}
    ).with_format("torch")
    args = AutoAssistConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=32,
                            num_train_epochs=4, save_strategy="no", disable_tqdm=True, seed=0,
                            autoassist_synchronous=True, autoassist_target_keep=0.5, autoassist_strategy="autoassist")  # fmt: skip
    trainer = AutoAssistTrainer(model=tiny_resnet(), args=args, train_dataset=train)
    trainer.train()
    fractions = list(trainer.kept_fractions.values())
    assert fractions[0] == 1.0  # the warmup
    assert all(abs(f - 0.5) < 0.07 for f in fractions[1:]), fractions  # Bernoulli draws around the budget
    assert trainer.state.global_step == trainer.state.max_steps
