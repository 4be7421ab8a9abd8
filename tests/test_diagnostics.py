"""The selection report never breaks training and follows the save policy: regression targets are not class ids, a
failing report warns once, and `output_dir` holds the report only when the Trainer saves (or when asked)."""

import logging

import datasets
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer, diagnostics
from hf_autoassist.columns import class_ids


class ScalarRegression(Dataset):
    """The issue's repro: items `{"input_x": x, "labels": y}` with float targets."""

    def __init__(self, targets):
        self.targets = targets

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return {"input_x": torch.tensor(float(i)), "labels": torch.tensor(self.targets[i])}


class OneWeight(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, input_x, labels=None):
        prediction = self.weight * input_x
        return {"loss": nn.functional.mse_loss(prediction, labels.float()), "prediction": prediction}


def regression_trainer(tmp_path, targets, **kwargs):
    defaults = dict(output_dir=str(tmp_path), report_to="none", use_cpu=True, per_device_train_batch_size=4,
                    num_train_epochs=1, save_strategy="no", disable_tqdm=True, autoassist_strategy="none",
                    learning_rate=1e-3)  # fmt: skip
    args = AutoAssistConfig(**{**defaults, **kwargs})
    return AutoAssistTrainer(model=OneWeight(), args=args, train_dataset=ScalarRegression(targets))


def test_float_regression_targets_train_without_a_per_label_report(tmp_path):
    trainer = regression_trainer(tmp_path, [i - 8.5 for i in range(16)])
    trainer.train()  # crashed in torch.bincount at the end of the first epoch
    assert trainer.state.global_step == 4
    assert trainer.autoassist_history[0]["kept_fraction"] == 1.0
    assert "kept_by_group" not in trainer.autoassist_history[0]


def test_large_non_negative_targets_are_not_read_as_labels(tmp_path):
    # 32 items with targets up to 3.1e7 took 24 GB as "label k" groups; they are no class ids at all
    targets = [float(i) * 1e6 for i in range(32)]
    assert class_ids(ScalarRegression(targets)) is None
    integer_targets = datasets.Dataset.from_dict({"x": [0.0] * 32, "labels": [i * 1_000_000 for i in range(32)]})
    assert class_ids(integer_targets) is None
    trainer = regression_trainer(tmp_path, targets)
    trainer.train()
    assert "kept_by_group" not in trainer.autoassist_history[0]


@pytest.mark.parametrize(
    "labels,expected",
    [
        ([0, 2, 1, 2], [0, 2, 1, 2]),
        (np.array([3, 1], dtype=np.int64), [3, 1]),
        ([0.0, 1.0], None),  # floats are targets, even when whole
        ([True, False], None),
        ([-1, 0], None),
    ],
)
def test_class_ids_only_for_integral_non_negative_labels(labels, expected):
    dataset = datasets.Dataset.from_dict({"x": [0] * len(labels), "labels": labels})
    ids = class_ids(dataset)
    assert (ids is None) if expected is None else ids.tolist() == expected
    # the same from a torch dataset of 0-d tensors
    items = [{"labels": torch.tensor(v)} for v in labels]
    ids = class_ids(items)
    assert (ids is None) if expected is None else ids.tolist() == expected


def test_a_failing_report_warns_once_and_training_goes_on(tmp_path, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(diagnostics, "kept_by_group", broken)
    trainer = regression_trainer(tmp_path, list(range(16)), num_train_epochs=3)  # integer targets: grouped by label
    with caplog.at_level(logging.WARNING, logger="hf_autoassist"):
        trainer.train()
    assert trainer.state.global_step == 12 and len(trainer.autoassist_history) == 3
    warnings = [r for r in caplog.records if "could not count the kept instances" in r.getMessage()]
    assert len(warnings) == 1 and "training goes on" in warnings[0].getMessage()


@pytest.mark.parametrize(
    "options,written",
    [
        (dict(save_strategy="no"), False),
        (dict(save_strategy="epoch"), True),
        (dict(save_strategy="epoch", autoassist_strategy="none"), False),  # output_dir as the plain Trainer's
        (dict(save_strategy="no", autoassist_write_report=True), True),
        (dict(save_strategy="epoch", autoassist_write_report=False), False),
    ],
)
def test_the_report_file_follows_the_save_policy(tmp_path, options, written):
    trainer = regression_trainer(tmp_path, list(range(16)), **{"autoassist_strategy": "random", **options})
    trainer.train()
    files = {p.name for p in tmp_path.iterdir()}
    assert ("autoassist_diagnostics.json" in files) == written
    if not written:
        assert not [name for name in files if name.startswith("autoassist")]
    assert trainer.autoassist_history[0]["kept_by_group"]["label 3"] == 1.0  # in memory either way


def test_only_the_largest_groups_are_reported_to_integrations():
    report = diagnostics.SelectionReport()
    labels = torch.cat([torch.arange(30), torch.zeros(50, dtype=torch.long)])  # label 0 is by far the largest
    report.start(datasets.Dataset.from_dict({"x": [0] * len(labels), "labels": labels.tolist()}))
    report.record(0, kept=torch.arange(40), kept_fraction=0.5)
    metrics = report.group_metrics()
    assert len(metrics) == diagnostics.MAX_REPORTED_GROUPS
    assert "autoassist/kept_fraction/label_0" in metrics and len(report.history[0]["kept_by_group"]) == 30


def test_the_plot_shows_the_largest_groups(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    plotted = []
    original = Axes.plot
    monkeypatch.setattr(Axes, "plot", lambda self, *a, **k: plotted.append(k.get("label")) or original(self, *a, **k))
    report = diagnostics.SelectionReport()
    labels = torch.cat([torch.arange(30), torch.full((50,), 29)])  # the last label is by far the largest
    report.start(datasets.Dataset.from_dict({"x": [0] * len(labels), "labels": labels.tolist()}))
    report.record(0, kept=torch.arange(40), kept_fraction=0.5)
    report.write(str(tmp_path))
    groups = [label for label in plotted if label and label.startswith("label")]
    assert len(groups) == diagnostics.MAX_REPORTED_GROUPS and "label 29" in groups
    assert (tmp_path / f"{diagnostics.DIAGNOSTICS_NAME}.png").is_file()


@pytest.mark.parametrize("strategy", ["auto", "autoassist"])
def test_train_start_reads_the_label_column_once(tmp_path, monkeypatch, strategy):
    # the check's resolution and the labels check (the default), the pixel Assistant (a bias per label) and the
    # per-label report all need the labels
    from hf_autoassist import columns

    reads = []
    read = columns._read_column_now
    monkeypatch.setattr(columns, "_read_column_now", lambda dataset, column: reads.append(column) or read(dataset, column))
    rng = np.random.default_rng(0)
    train = datasets.Dataset.from_dict(
        {"pixel_values": rng.normal(size=(64, 1, 28, 28)).astype("float32"), "labels": rng.integers(0, 10, 64)}
    ).with_format("torch")
    args = AutoAssistConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, save_strategy="no",
                            autoassist_strategy=strategy)
    from conftest import tiny_resnet

    trainer = AutoAssistTrainer(model=tiny_resnet(), args=args, train_dataset=train)
    trainer.get_train_dataloader()
    run = trainer.selection_run
    assert reads.count("labels") == 1
    assert (run.assistant is not None) if strategy == "autoassist" else (run.label_check is not None)
    assert columns._column_cache is None  # the cache lives only for train start
    trainer.selection_run.close()
