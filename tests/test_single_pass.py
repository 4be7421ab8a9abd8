"""One cross entropy per step: once checked on the first batch, the loss the Trainer back-propagates is rebuilt from
the per-instance terms, with the plain Trainer's value and gradients (classification, seq2seq, causal LM; label
smoothing, `-100` padding, `num_items_in_batch`), and a model whose loss is its own keeps it."""

import copy

import pytest
import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel, MarianConfig, MarianMTModel, Trainer, TrainingArguments

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer

from conftest import tiny_resnet


def marian():
    config = MarianConfig(
        vocab_size=50, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, pad_token_id=0,
        decoder_start_token_id=0, max_position_embeddings=32, dropout=0.0,
    )  # fmt: skip
    return MarianMTModel(config)


def batch_for(kind: str):
    g = torch.Generator().manual_seed(0)
    if kind == "classification":
        return tiny_resnet(num_labels=4), {"pixel_values": torch.randn(6, 1, 28, 28, generator=g),
                                           "labels": torch.tensor([0, 1, 2, 3, 1, 2])}  # fmt: skip
    if kind == "seq2seq":
        labels = torch.randint(3, 50, (3, 5), generator=g)
        labels[0, 3:], labels[2, 1:] = -100, -100
        return marian(), {"input_ids": torch.randint(3, 50, (3, 6), generator=g), "labels": labels}
    input_ids = torch.randint(0, 40, (3, 7), generator=g)
    labels = input_ids.clone()
    labels[1, 4:] = -100
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2, n_positions=16, resid_pdrop=0.0,
                                      embd_pdrop=0.0, attn_pdrop=0.0))  # fmt: skip
    return gpt2, {"input_ids": input_ids, "labels": labels}


def loss_and_grads(trainer, model, batch, num_items_in_batch, read_losses=None):
    """The loss and gradients of one training batch: the plain Trainer's `compute_loss`, or an AutoAssist trainer's
    loss reader, whose per-instance losses go to `read_losses`."""
    model.train()
    model.zero_grad()
    if read_losses is None:
        loss = trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items_in_batch)
    else:
        read = trainer.loss_reader(model, dict(batch), num_items_in_batch)
        loss = read.loss
        read_losses.append(read.per_instance)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def count_cross_entropies(monkeypatch) -> list:
    calls = []
    original = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


@pytest.mark.parametrize("kind", ["classification", "seq2seq", "causal"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("with_num_items", [False, True])
def test_the_rebuilt_loss_has_the_plain_trainers_value_and_gradients(tmp_path, monkeypatch, kind, label_smoothing, with_num_items):
    torch.manual_seed(0)
    model, batch = batch_for(kind)
    if kind == "seq2seq" and label_smoothing:  # the Trainer's label smoother needs them in the batch (as
        # `DataCollatorForSeq2Seq(model=...)` puts them); without, the single pass builds them as the model would
        batch["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=batch["labels"])
    options = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, label_smoothing_factor=label_smoothing)
    plain = Trainer(model=copy.deepcopy(model), args=TrainingArguments(**options))
    trainer = AutoAssistTrainer(model=model, args=AutoAssistConfig(**options))
    # the Trainer counts the items of the whole accumulated batch only for models that take it
    num_items = None
    if with_num_items:
        if not plain.model_accepts_loss_kwargs:
            pytest.skip(f"{type(model).__name__} takes no `num_items_in_batch`: the Trainer never passes it")
        shifted = batch["labels"][:, 1:] if kind == "causal" else batch["labels"]
        num_items = 2 * int(shifted.ne(-100).sum())  # as if accumulated over two such batches
    read_losses = []
    expected_loss, expected_grads = loss_and_grads(plain, plain.model, batch, num_items)

    first = loss_and_grads(trainer, model, batch, num_items, read_losses)  # computed both ways, and compared
    assert trainer.loss_reader.single_pass.verified is True
    calls = count_cross_entropies(monkeypatch)
    second = loss_and_grads(trainer, model, batch, num_items, read_losses)  # rebuilt from the terms
    if label_smoothing == 0.0:  # the label smoother computes no `cross_entropy`; the model's loss does
        assert len(calls) == 1, "one cross entropy per step: the per-instance one"
    for loss, grads in (first, second):
        torch.testing.assert_close(loss, expected_loss, rtol=1e-5, atol=1e-6)
        assert grads.keys() == expected_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, expected_grads[name], rtol=1e-4, atol=1e-6)
    # and the per-instance losses handed to the Assistant are the same both ways
    torch.testing.assert_close(read_losses[0], read_losses[1])


class RegressionWithOwnLoss(nn.Module):
    """A model whose loss is not a cross entropy of its logits: the logits are read for the per-instance losses,
    the model's loss is what trains it."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x, labels=None):
        logits = self.linear(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels) + 0.1 * logits.pow(2).mean()
        return out


def test_a_model_with_its_own_loss_keeps_it(tmp_path, caplog):
    torch.manual_seed(0)
    model = RegressionWithOwnLoss()
    batch = {"x": torch.randn(5, 4), "labels": torch.tensor([0, 1, 2, 0, 1])}
    trainer = AutoAssistTrainer(model=model, args=AutoAssistConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True))
    read_losses = []
    losses = [loss_and_grads(trainer, model, batch, None, read_losses)[0] for _ in range(2)]
    assert trainer.loss_reader.single_pass.verified is False
    with torch.no_grad():
        own = model(**batch)["loss"]
    for loss in losses:
        torch.testing.assert_close(loss, own)
    torch.testing.assert_close(read_losses[1], nn.functional.cross_entropy(model(batch["x"])["logits"], batch["labels"], reduction="none").detach())


def test_a_compute_loss_func_keeps_its_loss_and_the_terms_are_computed_beside_it(tmp_path):
    model, batch = batch_for("classification")
    trainer = AutoAssistTrainer(
        model=model, args=AutoAssistConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True),
        compute_loss_func=lambda outputs, labels, num_items_in_batch=None: 3.0 * outputs["logits"].pow(2).mean(),
    )  # fmt: skip
    read_losses = []
    for _ in range(2):
        loss, _ = loss_and_grads(trainer, model, batch, None, read_losses)
    assert trainer.loss_reader.single_pass.verified is None  # never checked: the user's function is the loss
    with torch.no_grad():
        torch.testing.assert_close(loss, 3.0 * model(pixel_values=batch["pixel_values"]).logits.pow(2).mean())
    assert read_losses[1].shape == (6,)


def test_the_reduction_is_checked_again_on_the_first_batch_that_tells_them_apart(tmp_path, monkeypatch):
    # a classifier takes `num_items_in_batch` and divides by its own batch's count: batches whose count is the
    # Trainer's number cannot tell which; rebuilt either way they have the model's loss, and the first batch whose
    # count differs (as under gradient accumulation) is compared again and settles it
    torch.manual_seed(0)
    model, batch = batch_for("classification")
    options = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    plain = Trainer(model=copy.deepcopy(model), args=TrainingArguments(**options))
    trainer = AutoAssistTrainer(model=model, args=AutoAssistConfig(**options))
    calls = count_cross_entropies(monkeypatch)
    for num_items, cross_entropies, reduction in [(6, 2, None), (6, 1, None), (12, 2, "mean"), (12, 1, "mean")]:
        expected_loss, expected_grads = loss_and_grads(plain, plain.model, batch, num_items)
        calls.clear()
        loss, grads = loss_and_grads(trainer, model, batch, num_items, [])
        torch.testing.assert_close(loss, expected_loss)
        for name, grad in expected_grads.items():
            torch.testing.assert_close(grads[name], grad)
        assert len(calls) == cross_entropies and trainer.loss_reader.single_pass.verified is True
        assert trainer.loss_reader.single_pass.reduction == reduction


@pytest.mark.parametrize("accumulation", [1, 2])
def test_a_training_run_computes_one_cross_entropy_per_batch(
    tmp_path, monkeypatch, vision_example, fashion_mnist, accumulation
):
    train = fashion_mnist["train"].select(range(96)).with_format("numpy")
    args = AutoAssistConfig(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=16, num_train_epochs=1,
        gradient_accumulation_steps=accumulation, save_strategy="no", disable_tqdm=True, autoassist_synchronous=True,
        autoassist_strategy="autoassist",
    )  # fmt: skip
    trainer = AutoAssistTrainer(model=tiny_resnet(), args=args, train_dataset=train, data_collator=vision_example.collate_images)
    calls = count_cross_entropies(monkeypatch)
    trainer.train()
    # 6 batches; the first also computes the model's own loss, to check it against the rebuilt one
    assert len(calls) == 6 + 1
    # without accumulation every batch's count is its `num_items_in_batch`: either reduction is its loss
    assert trainer.loss_reader.single_pass.verified is True
    assert trainer.loss_reader.single_pass.reduction == (None if accumulation == 1 else "mean")
    assert trainer.selection_run.strategy.worker.seen == 96


class NeedsLabelsInForward(nn.Module):
    """A hand-written classifier whose forward computes its loss from `labels` unconditionally, as many do."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 32), nn.ReLU())
        self.classifier = nn.Linear(32, 10)

    def forward(self, pixel_values, labels):
        from transformers.modeling_outputs import SequenceClassifierOutput

        logits = self.classifier(self.body(pixel_values))
        return SequenceClassifierOutput(loss=nn.functional.cross_entropy(logits, labels), logits=logits)


@pytest.mark.parametrize(
    "options",
    [dict(autoassist_strategy=s) for s in ("auto", "autoassist", "random", "infobatch", "none")]
    + [dict(autoassist_strategy="none", autoassist_plausibility="labels")],
    ids=lambda o: "-".join(str(v) for v in o.values()),
)
def test_a_model_that_needs_its_labels_in_forward_trains_under_every_strategy(tmp_path, fashion_mnist, vision_example,
                                                                               options):  # fmt: skip
    images = fashion_mnist["train"].select(range(256)).with_format("numpy")
    torch.manual_seed(0)
    model = NeedsLabelsInForward()
    args = AutoAssistConfig(output_dir=str(tmp_path), num_train_epochs=3, per_device_train_batch_size=32,
                            report_to="none", use_cpu=True, save_strategy="no", **options)  # fmt: skip
    trainer = AutoAssistTrainer(model=model, args=args, train_dataset=images, data_collator=vision_example.collate_images)
    trainer.train()
    assert trainer.state.global_step == trainer.state.max_steps > 0
    if trainer.loss_reader.single_pass.verified is not None:  # a strategy that reads per-instance losses
        assert trainer.loss_reader.single_pass.verified is False  # the model keeps computing its own loss
    assert model.training  # the one try without labels left it as the Trainer had it


class LabelsWithADefaultButNeeded(NeedsLabelsInForward):
    """The same, with `labels=None` in its signature: only running it without them tells."""

    def forward(self, pixel_values, labels=None):
        return super().forward(pixel_values, labels)


def test_a_model_needing_labels_despite_its_signature_falls_back_once_and_adds_no_forward_otherwise(
    tmp_path, fashion_mnist, vision_example
):  # fmt: skip
    images = fashion_mnist["train"].select(range(64)).with_format("numpy")
    calls = []
    for model_class in (LabelsWithADefaultButNeeded, NeedsLabelsInForward):
        torch.manual_seed(0)
        model = model_class()
        model.register_forward_pre_hook(lambda module, args: calls.append(module.training))
        args = AutoAssistConfig(output_dir=str(tmp_path), num_train_epochs=2, per_device_train_batch_size=16,
                                report_to="none", use_cpu=True, save_strategy="no")  # fmt: skip
        trainer = AutoAssistTrainer(model=model, args=args, train_dataset=images,
                                    data_collator=vision_example.collate_images)  # fmt: skip
        trainer.train()
        assert trainer.loss_reader.single_pass.verified is False and trainer.state.global_step == 8
    # one forward per step, and one failed try without labels for the model whose signature does not tell
    assert len(calls) == 8 + 1 + 8 and all(calls)
