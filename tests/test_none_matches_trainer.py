"""`autoassist_strategy="none"` must behave exactly like the plain `Trainer`: a slice of the Trainer's own behaviour
(resume, gradient accumulation, frozen parameters, automatic batch size, best-checkpoint saving), run both ways on
the same tiny model and data, must end with the same weights, steps, files and best checkpoint."""

import datasets
import numpy as np
import pytest
import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer


class TinyClassifier(nn.Module):
    def __init__(self, freeze_first: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Linear(8, 16)
        self.head = nn.Linear(16, 3)
        if freeze_first:
            self.hidden.requires_grad_(False)

    def forward(self, input_x, labels=None):
        logits = self.head(torch.relu(self.hidden(input_x)))
        loss = None if labels is None else nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


def data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    return datasets.Dataset.from_dict({"input_x": x, "labels": (x[:, 0] > 0).astype("int64") + (x[:, 1] > 1)}).with_format("torch")


def accuracy(prediction):
    return {"accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())}


def train_both(tmp_path, model_kwargs=None, resume=None, **options):
    """The plain Trainer and AutoAssistTrainer under `none`, each in its own output folder; returns both."""
    trainers = {}
    for name, trainer_class, config_class, extra in (
        ("plain", Trainer, TrainingArguments, {}),
        ("none", AutoAssistTrainer, AutoAssistConfig, {"autoassist_strategy": "none"}),
    ):
        args = dict(output_dir=str(tmp_path / name), report_to="none", use_cpu=True, per_device_train_batch_size=8,
                    num_train_epochs=3, learning_rate=0.05, save_strategy="no", disable_tqdm=True, seed=0,
                    logging_steps=2)  # fmt: skip
        trainer = trainer_class(
            model=TinyClassifier(**(model_kwargs or {})),
            args=config_class(**{**args, **options, **extra}),
            train_dataset=data(),
            eval_dataset=data(24, seed=1),
            compute_metrics=accuracy,
        )
        checkpoint = None if resume is None else str(tmp_path / name / resume)
        if resume is not None:  # a first, full run writes the checkpoints to resume from
            trainer.train()
            trainer = trainer_class(model=TinyClassifier(), args=trainer.args, train_dataset=data(),
                                    eval_dataset=data(24, seed=1), compute_metrics=accuracy)  # fmt: skip
        trainer.train(resume_from_checkpoint=checkpoint)
        trainers[name] = trainer
    return trainers["plain"], trainers["none"]


def assert_same_run(plain, none):
    assert none.state.global_step == plain.state.global_step
    for (name, a), (_, b) in zip(plain.model.named_parameters(), none.model.named_parameters()):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6, msg=name)
    losses = [[log["loss"] for log in t.state.log_history if "loss" in log] for t in (plain, none)]
    assert losses[1] == pytest.approx(losses[0], abs=1e-6)


def test_gradient_accumulation(tmp_path):
    plain, none = train_both(tmp_path, gradient_accumulation_steps=2)
    assert plain.state.global_step == 9  # 6 batches per epoch, 2 per step, 3 epochs
    assert_same_run(plain, none)


def test_frozen_parameters_stay_frozen(tmp_path):
    plain, none = train_both(tmp_path, model_kwargs={"freeze_first": True})
    torch.testing.assert_close(none.model.hidden.weight, TinyClassifier().hidden.weight)
    assert_same_run(plain, none)


def test_auto_find_batch_size(tmp_path):
    plain, none = train_both(tmp_path, auto_find_batch_size=True)
    assert none._train_batch_size == plain._train_batch_size == 8
    assert_same_run(plain, none)


def test_resume_from_a_mid_run_checkpoint(tmp_path):
    plain, none = train_both(tmp_path, resume="checkpoint-8", save_strategy="steps", save_steps=4)
    assert_same_run(plain, none)


def test_best_checkpoint_is_saved_and_loaded_at_the_end(tmp_path):
    options = dict(eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
                   metric_for_best_model="accuracy", save_total_limit=1)  # fmt: skip
    plain, none = train_both(tmp_path, **options)
    assert plain.state.best_model_checkpoint is not None
    assert none.state.best_model_checkpoint.replace("/none/", "/plain/") == plain.state.best_model_checkpoint
    assert none.state.best_metric == plain.state.best_metric
    assert sorted(p.name for p in (tmp_path / "none").glob("checkpoint-*")) == sorted(
        p.name for p in (tmp_path / "plain").glob("checkpoint-*")
    )
    assert_same_run(plain, none)


@pytest.mark.parametrize("strategy", ["none", "auto", "autoassist"])
def test_the_callback_list_is_the_plain_trainers(tmp_path, strategy):
    # transformers' own test_trainer_callback.py compares `callback_handler.callbacks` with the plain Trainer's: the
    # selection takes what it needs from the loop through trainer hooks, never through a callback of its own
    args = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, disable_tqdm=True)
    plain = Trainer(model=TinyClassifier(), args=TrainingArguments(**args), train_dataset=data())
    swapped = AutoAssistTrainer(model=TinyClassifier(), args=AutoAssistConfig(**args, autoassist_strategy=strategy),
                                train_dataset=data())  # fmt: skip
    names = [[type(c).__name__ for c in t.callback_handler.callbacks] for t in (plain, swapped)]
    assert names[1] == names[0]
    swapped.train()
    assert [type(c).__name__ for c in swapped.callback_handler.callbacks] == names[0]
