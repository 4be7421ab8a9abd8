"""One figure per task: the test metric against Boss instances and against training seconds, the plain front as a
line with its seed spread, the default and random at each recipe length and any other strategy's points on it."""

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "plain": "black", "plain_clean": "tab:purple", "filtered": "tab:orange", "default": "tab:red", "random": "tab:blue",
    "infobatch": "tab:green",
}  # fmt: skip
LABELS = {
    "plain": "plain front (budgets)", "plain_clean": "perfect filter: plain on the clean instances",
    "filtered": "the plausibility check alone (opt-in)", "default": "default (recipe lengths)",
    "random": "random at the default's kept fractions", "infobatch": "InfoBatch (operating points)",
}  # fmt: skip
METRIC = "test_metric"
AXES = (("boss_instances", "Boss instances (forward + backward)"), ("train_seconds", "training seconds"))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _groups(runs: list[dict], strategy: str) -> dict[float, list[dict]]:
    """The strategy's runs by budget (plain) or operating point."""
    groups = {}
    for run in runs:
        if run["strategy"] == strategy:
            groups.setdefault(run.get("budget", run.get("length", run.get("point"))), []).append(run)
    return dict(sorted(groups.items()))


def plot_task(result: dict, path: str) -> None:
    """Each seed's run a small dot, the median over seeds of each budget / operating point a marker on a line; the
    plain front's seed range shaded."""
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    runs = result["runs"]
    for strategy in [s for s in COLORS if any(r["strategy"] == s for r in runs)]:
        groups, color = _groups(runs, strategy), COLORS[strategy]
        for axis, (key, _) in zip(axes, AXES):
            axis.scatter([r[key] for g in groups.values() for r in g],
                         [r[METRIC] for g in groups.values() for r in g], s=8, color=color, alpha=0.4)  # fmt: skip
            xs = [_median([r[key] for r in g]) for g in groups.values()]
            ys = [_median([r[METRIC] for r in g]) for g in groups.values()]
            order = sorted(range(len(xs)), key=xs.__getitem__)
            style = dict(lw=2.5, marker="o") if strategy == "plain" else dict(lw=1.2, marker="s", ls="--")
            axis.plot([xs[i] for i in order], [ys[i] for i in order], color=color, label=LABELS[strategy], **style)
            if strategy == "plain":
                low = [min(r[METRIC] for r in g) for g in groups.values()]
                high = [max(r[METRIC] for r in g) for g in groups.values()]
                axis.fill_between([xs[i] for i in order], [low[i] for i in order], [high[i] for i in order],
                                  color=color, alpha=0.12, label="plain: range over seeds")  # fmt: skip
    for axis, (_, label) in zip(axes, AXES):
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"test {result['metric']} ({result['data']['test']:,} test items)")
    axes[0].legend(loc="lower right", fontsize=8)
    title = textwrap.fill(f"{result['task']} ({result['preset']}): {result['description']}", width=160)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
