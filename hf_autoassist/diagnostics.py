"""What a user reads to judge the selection: per epoch, the kept fraction overall and per label (classification)
or per length quartile (text), and the Assistant's accuracy, skill and positive-label rate.

`SelectionReport` keeps it in memory (`trainer.autoassist_history`), writes it as JSON and a plot into `output_dir`
when the Trainer saves, and sends the per-group fractions of the largest groups to the reporting integrations
(TensorBoard, W&B, ...), not to the console. A report is a convenience: whatever goes wrong in it warns once and
never stops training.
"""

import json
import os

import torch
from transformers.utils import logging

from .columns import class_ids, column_names, labels_are_sequences, read_column

logger = logging.get_logger(__name__)

DIAGNOSTICS_NAME = "autoassist_diagnostics"
# per-group kept fractions sent to the reporting integrations: the largest groups only (ImageNet has 1,000 labels)
MAX_REPORTED_GROUPS = 20
def instance_groups(dataset) -> tuple[torch.Tensor, list[str]] | None:
    """`(N,)` group ids and their names: the class label when the labels are class ids, else the quartile of the
    token count (source plus target). None when the dataset has neither."""
    labels = class_ids(dataset)
    if labels is not None:
        return labels, [f"label {i}" for i in range(int(labels.max()) + 1)]
    columns = column_names(dataset)
    if "input_ids" not in columns:
        return None
    lengths = torch.tensor([len(row) for row in read_column(dataset, "input_ids")], dtype=torch.float)
    if "labels" in columns and labels_are_sequences(dataset):
        lengths += torch.tensor([sum(1 for t in row if t != -100) for row in read_column(dataset, "labels")])
    edges = torch.quantile(lengths, torch.tensor([0.25, 0.5, 0.75]))
    groups = torch.bucketize(lengths, edges, right=True)
    bounds = [int(lengths.min())] + [int(e) for e in edges] + [int(lengths.max())]
    return groups, [f"{bounds[i]}-{bounds[i + 1]} tokens" for i in range(4)]


def kept_by_group(kept: torch.Tensor, groups: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Fraction of each group's instances among the `kept` indices (groups with no instance left out).

    Example:
        >>> kept_by_group(torch.tensor([0, 1, 3]), torch.tensor([0, 0, 1, 1]), ["a", "b"])
        {'a': 1.0, 'b': 0.5}
    """
    totals = torch.bincount(groups, minlength=len(names))
    counts = torch.bincount(groups[kept], minlength=len(names))
    return {name: round(float(c) / float(t), 4) for name, c, t in zip(names, counts, totals) if t > 0}


class SelectionReport:
    """The per-epoch record of a run: reset at each `train()`, filled at each epoch's start, saved with checkpoints."""

    def __init__(self):
        self.history: list[dict] = []
        self._groups: tuple[torch.Tensor, list[str]] | None = None
        self._largest: list[str] = []
        self._warned = False

    def _safely(self, what: str, function, *args):
        try:
            return function(*args)
        except Exception as error:  # a report must never stop training
            if not self._warned:
                logger.warning(f"AutoAssist could not {what} ({type(error).__name__}: {error}); training goes on.")
                self._warned = True
            return None

    def start(self, dataset) -> None:
        """Finds the instance groups (read once per run from the stored columns)."""
        self.history, self._largest = [], []
        self._groups = self._safely("group the instances for the per-label report", instance_groups, dataset)
        if self._groups is not None:
            sizes = torch.bincount(self._groups[0], minlength=len(self._groups[1]))
            order = torch.argsort(sizes, descending=True, stable=True)[:MAX_REPORTED_GROUPS]
            self._largest = [self._groups[1][i] for i in order.tolist() if sizes[i] > 0]

    def record(self, epoch: int, kept: torch.Tensor, kept_fraction: float, assistant: dict | None = None) -> dict:
        record = {"epoch": epoch, "kept_fraction": kept_fraction}
        if self._groups is not None:
            by_group = self._safely("count the kept instances per group", kept_by_group, kept, *self._groups)
            if by_group is not None:
                record["kept_by_group"] = by_group
        record.update(assistant or {})
        self.history = [r for r in self.history if r["epoch"] != epoch] + [record]
        return record

    def group_metrics(self) -> dict[str, float]:
        """The last epoch's kept fraction of the largest groups, as `autoassist/kept_fraction/<group>` scalars."""
        if not self.history:
            return {}
        by_group = self.history[-1].get("kept_by_group", {})
        return {
            f"autoassist/kept_fraction/{name.replace(' ', '_')}": by_group[name]
            for name in self._largest
            if name in by_group
        }

    def write(self, output_dir: str) -> str | None:
        """`autoassist_diagnostics.json` (and `.png` with matplotlib) in `output_dir`; None if nothing was written."""
        if not self.history:
            return None
        return self._safely(
            f"write {DIAGNOSTICS_NAME}.json", write_diagnostics, self.history, output_dir, self._largest
        )


def split_timings(metrics: dict) -> tuple[dict, dict]:
    """`(reproducible, timings)`: the metrics that measure time (`*_seconds`, `*_share`) differ between two runs of
    the same seed, so they go to the reporting integrations only, and the log history in `trainer_state.json` of a
    resumed run equals an uninterrupted one's (as the Trainer keeps its own `train_runtime` out of per-step logs).

    >>> split_timings({"autoassist/kept_fraction": 0.5, "autoassist/assistant_seconds": 1.2})
    ({'autoassist/kept_fraction': 0.5}, {'autoassist/assistant_seconds': 1.2})
    """
    timings = {name: value for name, value in metrics.items() if name.endswith(("_seconds", "_share"))}
    return {name: value for name, value in metrics.items() if name not in timings}, timings


def log_to_integrations(callbacks: list, args, state, control, metrics: dict) -> None:
    """Sends `metrics` to the reporting integrations among a trainer's `callbacks` (TensorBoard, W&B, ...) only,
    not into the console's log lines: the Trainer has no other way to log to integrations only."""
    if not metrics:
        return
    for callback in callbacks:
        if type(callback).__module__.startswith("transformers.integrations"):
            callback.on_log(args, state, control, logs=dict(metrics))


def write_diagnostics(history: list[dict], output_dir: str, groups: list[str] | None = None) -> str:
    """`autoassist_diagnostics.json` and, if matplotlib is installed, `autoassist_diagnostics.png`, which plots the
    kept fraction of `groups` (default: the first `MAX_REPORTED_GROUPS` recorded). Returns the JSON path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, f"{DIAGNOSTICS_NAME}.json")
    with open(path, "w") as f:
        json.dump(history, f, indent=1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot is a convenience; the JSON has everything
        return path
    epochs = [record["epoch"] for record in history]
    figure, (kept_axis, assistant_axis) = plt.subplots(1, 2, figsize=(11, 4))
    kept_axis.plot(epochs, [r["kept_fraction"] for r in history], color="black", lw=2, label="all")
    if groups is None:
        groups = list(history[0].get("kept_by_group", {}))
    for group in groups[:MAX_REPORTED_GROUPS]:
        kept_axis.plot(epochs, [r.get("kept_by_group", {}).get(group) for r in history], lw=0.8, label=group)
    kept_axis.set(xlabel="epoch", ylabel="kept fraction", ylim=(0, 1.05), title="What each epoch kept")
    kept_axis.legend(fontsize=7, ncol=2)
    for key in ("assistant_accuracy", "assistant_skill", "positive_rate"):
        values = [r.get(key) for r in history]
        if any(v is not None for v in values):
            assistant_axis.plot(epochs, values, marker="o", label=key.replace("_", " "))
    assistant_axis.set(xlabel="epoch (at its start)", ylim=(0, 1.05), title="The Assistant when it decided")
    if assistant_axis.lines:
        assistant_axis.legend(fontsize=8)
    for axis in (kept_axis, assistant_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, f"{DIAGNOSTICS_NAME}.png"), dpi=100)
    plt.close(figure)
    return path
