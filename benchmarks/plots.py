"""One figure per task: validation metric against training seconds and against Boss instances."""

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {
    "plain": "black",
    "budget_matched": "tab:gray",
    "none": "tab:olive",
    "autoassist": "tab:red",
    "random": "tab:blue",
    "infobatch": "tab:green",
}


def plot_task(result: dict, path: str) -> None:
    """Each seed a thin line, the per-evaluation median over seeds a thick one, one colour per strategy."""
    figure, axes = plt.subplots(1, 2, figsize=(13, 4.8), sharey=True)
    strategies = list(dict.fromkeys(run["strategy"] for run in result["runs"]))
    for strategy in strategies:
        runs = [run for run in result["runs"] if run["strategy"] == strategy]
        color = COLORS.get(strategy)
        for axis, key in zip(axes, ("train_seconds", "instances")):
            for run in runs:
                axis.plot([p[key] for p in run["curve"]], [p["metric"] for p in run["curve"]], color=color, lw=0.6, alpha=0.5)
            length = min(len(run["curve"]) for run in runs)
            median = [
                sorted(run["curve"][i][field] for run in runs)[len(runs) // 2]
                for i in range(length)
                for field in (key, "metric")
            ]
            axis.plot(median[0::2], median[1::2], color=color, lw=2, label=f"{strategy} (median of {len(runs)})")
    target = sorted(run["final_validation"] for run in result["runs"] if run["strategy"] == "plain")
    for axis in axes:
        if target:
            axis.axhline(target[len(target) // 2], color="black", ls=":", lw=1, label="target: plain's final (median)")
        axis.grid(alpha=0.3)
    metric = result["metric"]
    axes[0].set_xlabel("training seconds (evaluation excluded)")
    axes[1].set_xlabel("Boss instances (forward + backward)")
    axes[0].set_ylabel(f"validation {metric}")
    # the interesting part is near the end: start the y axis at the plain runs' median after a quarter of training
    plain = [run for run in result["runs"] if run["strategy"] == "plain"]
    if plain:
        low = sorted(run["curve"][len(run["curve"]) // 4]["metric"] for run in plain)[len(plain) // 2]
        high = max(p["metric"] for run in result["runs"] for p in run["curve"])
        axes[0].set_ylim(low, high + 0.1 * (high - low) + 1e-9)
    axes[1].legend(loc="lower right", fontsize=8)
    title = textwrap.fill(f"{result['task']} ({result['preset']}): {result['description']}", width=160)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
