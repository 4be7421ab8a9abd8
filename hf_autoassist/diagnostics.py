"""What a user reads to judge the selection: per epoch, the kept fraction overall and per label (classification)
or per length quartile (text), and the Assistant's accuracy, skill and positive-label rate. Written as JSON and a
plot into `output_dir` when training ends."""

import json
import os

import torch

from .assistants.factory import LABEL_COLUMNS, _column_names, _is_sequence_column, _labels, _read_column

DIAGNOSTICS_NAME = "autoassist_diagnostics"


def instance_groups(dataset) -> tuple[torch.Tensor, list[str]] | None:
    """`(N,)` group ids and their names: the class label when there is one, else the quartile of the token count
    (source plus target). None when the dataset has neither."""
    columns = _column_names(dataset)
    has_class_labels = any(name in columns for name in LABEL_COLUMNS) and not (
        "labels" in columns and _is_sequence_column(dataset)
    )
    if has_class_labels:
        labels = _labels(dataset)
        return labels, [f"label {i}" for i in range(int(labels.max()) + 1)]
    if "input_ids" not in columns:
        return None
    lengths = torch.tensor([len(row) for row in _read_column(dataset, "input_ids")], dtype=torch.float)
    if "labels" in columns:
        lengths += torch.tensor([sum(1 for t in row if t != -100) for row in _read_column(dataset, "labels")])
    edges = torch.quantile(lengths, torch.tensor([0.25, 0.5, 0.75]))
    groups = torch.bucketize(lengths, edges, right=True)
    bounds = [int(lengths.min())] + [int(e) for e in edges] + [int(lengths.max())]
    return groups, [f"{bounds[i]}-{bounds[i + 1]} tokens" for i in range(4)]


def kept_by_group(kept: torch.Tensor, groups: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Fraction of each group's instances among the `kept` indices.

    Example:
        >>> kept_by_group(torch.tensor([0, 1, 3]), torch.tensor([0, 0, 1, 1]), ["a", "b"])
        {'a': 1.0, 'b': 0.5}
    """
    totals = torch.bincount(groups, minlength=len(names)).clamp(min=1)
    counts = torch.bincount(groups[kept], minlength=len(names))
    return {name: round(float(c) / float(t), 4) for name, c, t in zip(names, counts, totals)}


def write_diagnostics(history: list[dict], output_dir: str) -> str:
    """`autoassist_diagnostics.json` and, if matplotlib is installed, `autoassist_diagnostics.png`. Returns the JSON
    path."""
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
    for group in history[0].get("kept_by_group", {}):
        kept_axis.plot(epochs, [r["kept_by_group"][group] for r in history], lw=0.8, label=group)
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
