import math

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel, MarianConfig, MarianMTModel

from hf_autoassist.losses import per_instance_loss, smoothed_target_entropy


def test_classification_loss_is_cross_entropy_per_row():
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([0, 1])
    expected = torch.tensor([math.log(1 + math.exp(-2.0)), math.log(2.0)])
    torch.testing.assert_close(per_instance_loss(logits, labels), expected)


def test_sequence_loss_averages_only_counted_tokens():
    # row 0: two counted tokens, uniform logits -> log(V) each; row 1: one counted token with a confident logit
    vocab = 4
    logits = torch.zeros(2, 3, vocab)
    logits[1, 0, 2] = 10.0
    labels = torch.tensor([[1, 3, -100], [2, -100, -100]])
    hand_row1 = -F.log_softmax(logits[1, 0], -1)[2]
    torch.testing.assert_close(per_instance_loss(logits, labels), torch.stack([torch.tensor(math.log(vocab)), hand_row1]))


def test_row_without_targets_gets_zero():
    logits = torch.randn(1, 3, 5)
    assert per_instance_loss(logits, torch.full((1, 3), -100)).item() == 0.0


def test_label_smoothing_matches_hand_formula():
    torch.manual_seed(0)
    logits, labels, eps = torch.randn(3, 5), torch.tensor([0, 4, 2]), 0.1
    log_probs = F.log_softmax(logits, -1)
    nll = -log_probs.gather(1, labels[:, None]).squeeze(1)
    hand = (1 - eps) * nll + eps * (-log_probs.mean(-1))
    torch.testing.assert_close(per_instance_loss(logits, labels, label_smoothing=eps), hand)


def test_the_smoothing_floor_is_the_loss_of_a_model_that_predicts_the_smoothed_target_and_no_model_goes_below():
    eps, classes = 0.1, 7
    smoothed = torch.full((classes,), eps / classes)
    smoothed[3] += 1 - eps
    floor = smoothed_target_entropy(eps, classes)
    at_target = per_instance_loss(smoothed.log()[None], torch.tensor([3]), label_smoothing=eps)
    assert at_target.item() == pytest.approx(floor, abs=1e-5)
    torch.manual_seed(0)
    others = per_instance_loss(torch.randn(500, classes) * 5, torch.full((500,), 3), label_smoothing=eps)
    assert others.min().item() > floor


def test_token_weighted_mean_equals_marian_loss():
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, pad_token_id=0,
        decoder_start_token_id=0, max_position_embeddings=32,
    )  # fmt: skip
    model = MarianMTModel(config).eval()
    input_ids = torch.randint(3, 50, (3, 6))
    labels = torch.randint(3, 50, (3, 5))
    labels[0, 3:] = -100
    labels[2, 1:] = -100
    out = model(input_ids=input_ids, labels=labels)
    rows = per_instance_loss(out.logits, labels)
    counts = labels.ne(-100).sum(-1)
    torch.testing.assert_close((rows * counts).sum() / counts.sum(), out.loss, rtol=1e-5, atol=1e-5)


def test_causal_lm_shift_matches_gpt2_loss():
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2, n_positions=16)).eval()
    input_ids = torch.randint(0, 40, (2, 7))
    labels = input_ids.clone()
    labels[1, 4:] = -100
    out = model(input_ids=input_ids, labels=labels)
    rows = per_instance_loss(out.logits, labels, shift_labels=True)
    counts = labels[:, 1:].ne(-100).sum(-1)
    torch.testing.assert_close((rows * counts).sum() / counts.sum(), out.loss, rtol=1e-5, atol=1e-5)


def test_wrong_shapes_say_what_is_expected():
    with pytest.raises(ValueError, match=r"\(B, T, V\) logits"):
        per_instance_loss(torch.zeros(2, 3, 4), torch.zeros(2, dtype=torch.long))
