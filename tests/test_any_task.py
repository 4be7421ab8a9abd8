"""Every head the Trainer trains gives one loss per instance: regression (tuple and dict outputs, as transformers'
own Trainer tests use them), multi-label, token classification and multiple choice, with any set's Assistant.

For each, the per-instance terms must rebuild the model's own loss (the single-pass check verifies it on the first
batch), the losses must be what a hand computation gives, and `none` must train exactly as the plain Trainer."""

import datasets
import numpy as np
import pytest
import torch
from torch import nn
from transformers import (
    BertConfig, BertForMultipleChoice, BertForSequenceClassification, BertForTokenClassification, Trainer,
    TrainingArguments,
)  # fmt: skip

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.assistants import (
    BossFeatureAssistant, LabelBiasAssistant, WithLossMemory, build_assistant, resolve_assistant_name,
)  # fmt: skip
from hf_autoassist.head_features import HeadInputRecorder
from hf_autoassist.loss_reader import predictions_of
from hf_autoassist.losses import infer_problem_type, per_instance_loss


class RegressionSet:
    """`y = 2x + 3 + noise`, items of numpy scalars (a torch-style dataset, as transformers' Trainer tests use)."""

    def __init__(self, n=64, seed=0):
        rng = np.random.default_rng(seed)
        self.x = rng.normal(size=n).astype(np.float32)
        self.y = (2 * self.x + 3 + rng.normal(scale=0.1, size=n)).astype(np.float32)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_x": self.x[i], "labels": self.y[i]}


class Regression(nn.Module):
    """`(loss, y)` with labels, `(y,)` without, or the same as a dict `{"output", "loss"}`."""

    def __init__(self, as_dict=False):
        super().__init__()
        self.a, self.b, self.as_dict, self.config = nn.Parameter(torch.tensor(0.0)), nn.Parameter(torch.tensor(0.0)), as_dict, None

    def forward(self, input_x, labels=None, **kwargs):
        y = input_x * self.a + self.b
        loss = None if labels is None else nn.functional.mse_loss(y, labels)
        if self.as_dict:
            return {"output": y} if loss is None else {"output": y, "loss": loss}
        return (y,) if loss is None else (loss, y)


def args(tmp_path, cls=AutoAssistConfig, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=8,
                    num_train_epochs=4, learning_rate=0.1, save_strategy="no", disable_tqdm=True, seed=0, logging_steps=4)  # fmt: skip
    return cls(**{**defaults, **kwargs})


def test_problem_types_are_read_as_transformers_heads_read_them():
    assert infer_problem_type(torch.zeros(4, 3), torch.tensor([0, 2, 1, 1])) == "single_label_classification"
    assert infer_problem_type(torch.zeros(4, 1), torch.tensor([1, 2, 3, 4])) == "regression"  # num_labels=1, int targets
    assert infer_problem_type(torch.zeros(4, 3), torch.ones(4, 3), num_labels=3) == "multi_label_classification"
    assert infer_problem_type(torch.zeros(4, 3), torch.ones(4, 3)) == "regression"  # not a classification head
    # a PreTrainedConfig's default num_labels=2 does not make one output per instance a pair of labels
    assert infer_problem_type(torch.zeros(4), torch.ones(4), num_labels=2) == "regression"
    assert infer_problem_type(torch.zeros(2, 5, 7), torch.zeros(2, 5, dtype=torch.long)) == "single_label_classification"


def test_regression_and_multi_label_losses_are_the_heads_losses_per_instance():
    outputs, targets = torch.randn(6, 3), torch.randn(6, 3)
    losses = per_instance_loss(outputs, targets, problem_type="regression")
    torch.testing.assert_close(losses, ((outputs - targets) ** 2).mean(-1))
    torch.testing.assert_close(losses.mean(), nn.functional.mse_loss(outputs, targets))
    binary = torch.randint(0, 2, (6, 3)).float()
    losses = per_instance_loss(outputs, binary, problem_type="multi_label_classification")
    torch.testing.assert_close(losses.mean(), nn.functional.binary_cross_entropy_with_logits(outputs, binary))
    # a (B, 1) head on (B,) targets is one value per instance
    torch.testing.assert_close(per_instance_loss(outputs[:, :1], targets[:, 0]), (outputs[:, 0] - targets[:, 0]) ** 2)


def test_a_regression_head_of_the_wrong_shape_names_both_shapes():
    with pytest.raises(ValueError, match=r"outputs \(4, 3\) and labels \(4, 2\).*per_instance_loss_fn="):
        per_instance_loss(torch.zeros(4, 3), torch.zeros(4, 2), problem_type="regression")


def test_predictions_are_found_as_the_trainer_finds_them():
    loss, y = torch.tensor(0.3), torch.arange(3.0)
    assert predictions_of((loss, y, y + 1)) is y
    assert predictions_of((y,)) is y
    assert predictions_of({"loss": loss, "output": y}) is y
    assert predictions_of(y) is y
    assert predictions_of("text") is None


@pytest.mark.parametrize("as_dict", [False, True], ids=["tuple", "dict"])
def test_regression_none_trains_exactly_as_the_plain_trainer(tmp_path, as_dict):
    weights = []
    for trainer_class, config_class, extra in (
        (Trainer, TrainingArguments, {}),
        (AutoAssistTrainer, AutoAssistConfig, {"autoassist_strategy": "none"}),
    ):
        torch.manual_seed(0)
        trainer = trainer_class(model=Regression(as_dict), args=args(tmp_path / trainer_class.__name__, config_class, **extra),
                                train_dataset=RegressionSet())  # fmt: skip
        trainer.train()
        weights.append((trainer.model.a.item(), trainer.model.b.item(), trainer.state.global_step))
    assert weights[0] == weights[1]


@pytest.mark.parametrize("as_dict", [False, True], ids=["tuple", "dict"])
def test_regression_autoassist_reads_squared_errors_and_learns_which_to_skip(tmp_path, as_dict):
    trainer = AutoAssistTrainer(model=Regression(as_dict), args=args(tmp_path, autoassist_strategy="autoassist"),
                                train_dataset=RegressionSet())  # fmt: skip
    trainer.train()
    # no pixels, no token ids: the Boss's features, and this model has no linear head to record them from
    assert isinstance(trainer.selection_run.assistant.base, BossFeatureAssistant)
    assert trainer.selection_run.assistant.base.memory.recorded == 0
    assert trainer.loss_reader.single_pass.verified is True  # the MSE rebuilt from the per-instance terms
    assert min(trainer.kept_fractions.values()) < 1.0
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert np.mean(losses[-2:]) < np.mean(losses[:2]) / 2
    batch = {"input_x": torch.tensor(RegressionSet().x[:8]), "labels": torch.tensor(RegressionSet().y[:8])}
    read = trainer.loss_reader(trainer.model, batch)
    expected = (batch["input_x"] * trainer.model.a + trainer.model.b - batch["labels"]) ** 2
    torch.testing.assert_close(read.per_instance, expected.detach())


def bert(head, **config):
    torch.manual_seed(0)
    return head(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, **config))  # fmt: skip


def head_sets(n=48, length=6, seed=0):
    """Tiny sets with the labels each head reads: float targets, binary rows, tags with -100, choices."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 50, (n, length))
    tags = rng.integers(0, 4, (n, length))
    tags[:, -2:] = -100  # positions with no label, as tokenised words' continuations are
    return {
        "regression": (bert(BertForSequenceClassification, num_labels=1),
                       {"input_ids": ids, "labels": (ids.mean(1) / 50).astype(np.float32)}),
        "multi_label": (bert(BertForSequenceClassification, num_labels=3),
                        {"input_ids": ids, "labels": (rng.random((n, 3)) > 0.5).astype(np.float32)}),
        "token_classification": (bert(BertForTokenClassification, num_labels=4), {"input_ids": ids, "labels": tags}),
        "multiple_choice": (bert(BertForMultipleChoice),
                            {"input_ids": rng.integers(5, 50, (n, 3, length)), "labels": rng.integers(0, 3, n)}),
    }  # fmt: skip


@pytest.mark.parametrize("task", ["regression", "multi_label", "token_classification", "multiple_choice"])
def test_every_standard_head_trains_with_its_own_loss_rebuilt_per_instance(tmp_path, task):
    model, columns = head_sets()[task]
    dataset = datasets.Dataset.from_dict(columns).with_format("torch")
    assert resolve_assistant_name("auto", dataset) == "bag_of_tokens"
    trainer = AutoAssistTrainer(model=model, args=args(tmp_path, autoassist_strategy="autoassist", learning_rate=1e-3),
                                train_dataset=dataset)  # fmt: skip
    trainer.train()
    assert trainer.loss_reader.single_pass.verified is True, "the per-instance terms did not rebuild the model's loss"
    assert trainer.state.global_step == trainer.state.max_steps
    # read with the model's own loss beside it: the instances' terms average to it
    trainer.loss_reader.single_pass.enabled = False
    batch = {k: v[:8] for k, v in dataset[:8].items()}
    model.train()
    read = trainer.loss_reader(model, batch)
    torch.testing.assert_close((read.sums.sum() / read.counts.sum()).detach(), read.loss.detach())


def test_a_set_with_neither_images_nor_tokens_gets_the_boss_features():
    tabular = datasets.Dataset.from_dict({"features": [[0.1, 0.2]] * 16, "labels": [0, 1] * 8})
    assert resolve_assistant_name("auto", tabular) == "boss_features"
    assistant = build_assistant("loss_memory", tabular)
    assert isinstance(assistant, LabelBiasAssistant) and assistant.labels.tolist() == [0, 1] * 8
    # it learns its class bias in closed form, as the others do
    memory = WithLossMemory(assistant)
    memory.learn(torch.arange(16), torch.tensor([1.0, 0.0] * 8), lr=1.0)
    assert memory(torch.tensor([0]))[0] > memory(torch.tensor([1]))[0]


def test_float_features_called_input_ids_are_not_read_as_token_ids():
    # transformers' own Trainer tests feed float vectors as `input_ids` (test_resume_batch_order)
    features = datasets.Dataset.from_dict({"input_ids": [[0.5, -1.25]] * 16, "labels": [0, 1] * 8})
    assert resolve_assistant_name("auto", features) == "boss_features"
    assert resolve_assistant_name("auto", features.with_format("torch")) == "boss_features"
    with pytest.raises(ValueError, match="reads token ids.*float.*autoassist_assistant='boss_features'"):
        build_assistant("bag_of_tokens", features)


def test_the_loss_memory_assistant_without_the_memory_says_what_to_set(tmp_path):
    trainer = AutoAssistTrainer(model=Regression(), args=args(tmp_path, autoassist_strategy="autoassist",
                                autoassist_assistant="loss_memory", autoassist_assistant_memory=False),
                                train_dataset=RegressionSet())  # fmt: skip
    with pytest.raises(ValueError, match="neither images.*autoassist_assistant_memory=True"):
        trainer.train()


class TabularClassifier(nn.Module):
    """An MLP whose last layer is the head the features are read from; class 1 when x0 + x1 > 0."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head = nn.Sequential(nn.Linear(4, 16), nn.Tanh()), nn.Linear(16, 2)

    def forward(self, features, labels=None):
        logits = self.head(self.body(features))
        return {"logits": logits} if labels is None else {"loss": nn.functional.cross_entropy(logits, labels), "logits": logits}


def tabular(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return datasets.Dataset.from_dict({"features": x, "labels": (x[:, 0] + x[:, 1] > 0).astype(np.int64)}).with_format("torch")


def test_the_boss_features_are_its_head_input_recorded_in_the_training_forward(tmp_path):
    dataset = tabular()
    trainer = AutoAssistTrainer(model=TabularClassifier(), args=args(tmp_path, autoassist_strategy="autoassist"),
                                train_dataset=dataset)  # fmt: skip
    trainer.train()
    assistant = trainer.selection_run.assistant.base
    assert isinstance(assistant, BossFeatureAssistant)
    assert bool((assistant.memory.seen).all()), "every instance was trained on in the warmup epoch"
    assert assistant.linear.weight.abs().sum() > 0, "the Assistant learned from the features"
    model = trainer.model.train()
    assert not model.head._forward_pre_hooks and trainer.loss_reader.recorder is None  # no hook left behind
    # a read gives the head's input, projected as the recorder projects it
    reader = trainer.loss_reader
    reader.record_features(True)
    batch = dataset[:8]
    read = reader(model, batch)
    torch.testing.assert_close(read.features, model.body(batch["features"]).detach() @ reader.recorder._projection)
    # and the Assistant stored those of the last batches, one optimizer step older
    last = assistant.memory.clock.argsort()[-8:]
    now = reader(model, dataset[last.tolist()]).features
    assert torch.corrcoef(torch.stack([now.flatten(), assistant.memory.features[last].flatten()]))[0, 1] > 0.99
    reader.record_features(False)


def test_the_recorder_pools_tokens_and_choices_per_instance():
    recorder = HeadInputRecorder(dim=4)
    head = nn.Linear(6, 3)
    recorder.attach(nn.Sequential(nn.Identity(), head))
    hidden = torch.randn(2, 5, 6)  # (B, T, H) as a token head reads it
    head(hidden)
    features = recorder.pop(2)
    assert features.shape == (2, 4)
    torch.testing.assert_close(features, hidden.mean(1) @ recorder._projection)
    head(torch.randn(6, 6))  # (B * choices, H): 3 choices of 2 instances
    assert recorder.pop(2).shape == (2, 4) and recorder.pop(2) is None  # popped once
    head.eval()
    head(hidden)
    assert recorder.pop(2) is None  # evaluation forwards are not recorded


def test_tabular_example_trains_on_bundled_diabetes_with_none_equal_to_plain(tmp_path):
    """The tabular example (scikit-learn's diabetes set, no download): `none` ends exactly where the plain Trainer
    does; `autoassist` reads the MLP's head input, shrinks epochs and still fits the data; the default (`adaptive`)
    takes the plain run's steps with thinner batches."""
    from benchmarks.tasks import load_example

    example = load_example("examples/tabular/run_tabular_regression.py")
    common = ["--trainer", "both", "--num_train_epochs", "20", "--per_device_train_batch_size", "32",
              "--learning_rate", "3e-3", "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true",
              "--use_cpu", "true"]  # fmt: skip
    autoassist, plain = example.main(["--output_dir", str(tmp_path / "none"), "--autoassist_strategy", "none", *common])
    assert autoassist["test_mse"] == plain["test_mse"] and autoassist["optimizer_steps"] == plain["optimizer_steps"]
    autoassist, plain = example.main(["--output_dir", str(tmp_path / "aa"), "--autoassist_strategy", "autoassist", *common])
    assert autoassist["optimizer_steps"] < plain["optimizer_steps"] and autoassist["kept_fraction_last_epoch"] < 1.0
    assert autoassist["test_r2"] > 0.3 and plain["test_r2"] > 0.3  # both learned the task (a constant scores 0)
    default, _ = example.main(["--output_dir", str(tmp_path / "default"), *common])
    assert default["optimizer_steps"] == plain["optimizer_steps"] and default["kept_fraction_last_epoch"] < 1.0
    assert default["test_r2"] > 0.3
