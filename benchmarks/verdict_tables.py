"""The suite's tables, from its verdicts (`benchmarks/verdicts.py`). README's first screen: per task and recipe
length, the default against the plain run the user would have made (test quality difference with its 95% interval,
the seconds ratio) beside iso-quality against the plain front, in words a reader takes in at once, and one plot of
the same. The benchmarks page: the plain front at every budget, the other arms against the converged plain run, and
what the earlier suite (small sets) said beside what this one says."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from benchmarks.analysis import PLAIN, back_to_back_cost, disturbed, front_seeds, step_cost, thinned_seconds  # noqa: E402
from benchmarks.names import RESOLVED_STRATEGY, STEP_COST_PROBE, SUITE_TASKS, probe_records  # noqa: E402
from benchmarks.number_format import BOUND_MARK  # noqa: E402
from benchmarks.verdicts import verdict_word  # noqa: E402

LENGTH_NAMES = {0.5: "half length", 1.0: "converged", 2.0: "double length"}
LENGTH_MARKERS = {0.5: "v", 1.0: "o", 2.0: "^"}
PLOT = "first-screen.png"


def scale_of(result: dict) -> tuple[float, str]:
    """Accuracy in points (x100), BLEU as it is."""
    return (100.0, "points") if result["metric"] == "accuracy" else (1.0, "BLEU")


def default_name(result: dict, length: str) -> str:
    """What the default made of this task: `adaptive` (with the check it resolved), or, in runs recorded before it
    (which did not record their resolved strategy), the pairs check alone or the Assistant."""
    runs = [r for r in result["runs"] if r["strategy"] == "default" and str(r.get("length")) == length]
    if not runs:
        return "Assistant"
    config = runs[0]["autoassist_config"]
    check = config.get("autoassist_plausibility")
    if config.get(RESOLVED_STRATEGY) == "adaptive":
        return f"adaptive + {check} check" if check else "adaptive"
    return "pairs check alone" if check == "pairs" else "Assistant"


def interval_text(interval: dict, scale: float, unit: str) -> str:
    """`+0.42 [−0.10, +0.94] points` (no interval with one seed)."""
    if interval["mean"] is None:
        return "–"
    mean = f"{interval['mean'] * scale:+.2f}"
    if interval["low"] is None:
        return f"{mean} {unit}"
    return f"{mean} [{interval['low'] * scale:+.2f}, {interval['high'] * scale:+.2f}] {unit}"


def ratio_text(comparison: dict) -> str:
    """`0.71× (0.68× instances; 0.70× from counts)`; the seconds from the seeds timed with nothing else running only,
    said when not all; the seconds the task's step cost gives the runs' counts, where it splits."""
    seconds, instances = comparison["seconds_ratio"]["mean"], comparison["instances_ratio"]["mean"]
    if instances is None:
        return "–"
    counted = (comparison.get("counted_seconds_ratio") or {}).get("mean")
    counts = "" if counted is None else f"; {counted:.2f}× from counts"
    if seconds is None:
        return f"not timed cleanly ({instances:.2f}× instances{counts})"
    seeds, timed = len(comparison["seeds"]), comparison["seconds_ratio"]["n"]
    note = "" if timed == seeds else f"; seconds from {timed} of {seeds} seeds timed alone"
    return f"{seconds:.2f}× ({instances:.2f}× instances{counts}{note})"


def in_words(result: dict, comparison: dict) -> str:
    """`same accuracy, 0.71× the time` / `+2.0 BLEU, 0.82× the time` / `−0.8 points, ...`: the word from the interval,
    the time from counts where the task's step cost prices them (drift between hours cannot move it), else measured."""
    scale, unit = scale_of(result)
    test = comparison["test"]
    word = verdict_word(test)
    seconds, instances = comparison["seconds_ratio"]["mean"], comparison["instances_ratio"]["mean"]
    counted = (comparison.get("counted_seconds_ratio") or {}).get("mean")
    if counted is not None:
        time = f", {counted:.2f}× the time from counts"
    else:
        time = f", {seconds:.2f}× the time" if seconds is not None else f", {instances:.2f}× the instances"
    if word is None:
        return f"{test['mean'] * scale:+.2f} {unit} (one seed){time}"
    if word == "ties":
        return f"same {result['metric'] if unit == 'points' else 'BLEU'}{time}"
    return f"{test['mean'] * scale:+.1f} {unit}{time}"


def iso_text(entry: dict) -> str:
    if entry["median"] is None:
        return "–"
    values = ", ".join(f"{BOUND_MARK[b]}{v:.2f}" for v, b in zip(entry["values"], entry["bounds"]))
    return f"{entry['median']:.2f} ({values})"


def by_length(result: dict) -> list[tuple[str, dict]]:
    """The task's verdicts, from the shortest recipe to the longest."""
    return sorted(result.get("verdicts", {}).items(), key=lambda item: float(item[0]))


def render_first_screen(results: list[dict], with_plot: bool = True) -> str:
    """The verdict rows of `results`, the words under them, and (`with_plot`) the link to the plot of the current
    default's (an archived default's table must not show today's plot)."""
    lines = [
        "| task | recipe | default | in words (test) | − the plain run, test (95% interval) | seconds ÷ the plain run "
        "| − random at its kept fractions, test | iso-quality vs the plain front, seconds | seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        scale, unit = scale_of(result)
        for length, verdict in by_length(result):
            vs_plain, vs_random, iso = verdict["vs_plain"], verdict["vs_random"], verdict["iso_quality"]
            if not vs_plain["seeds"]:
                continue
            random = "= the plain run (nothing skipped)" if verdict["random_is_plain"] else interval_text(
                vs_random["test"], scale, unit)  # fmt: skip
            lines.append(
                f"| {result['task']} | {LENGTH_NAMES.get(float(length), length)} | {default_name(result, length)} "
                f"| {in_words(result, vs_plain)} | {interval_text(vs_plain['test'], scale, unit)} "
                f"| {ratio_text(vs_plain)} | {random} | {iso_text((verdict.get('counted_iso_quality') or iso)['test'])} "
                f"| {len(vs_plain['seeds'])} |"
            )
    sizes = ", ".join(f"{r['task']} {r['data']['validation']:,} / {r['data']['test']:,}" for r in results)
    runs = [run for result in results for run in result["runs"]]
    hours = sum(run["train_seconds"] + run.get("eval_seconds", 0.0) for run in runs) / 3600
    lines += [
        "",
        "Each difference is the mean over seeds of the default minus the other run of the same seed, with the 95% "
        "t-interval of that mean; the words say *same* where the interval holds 0. The plain run is the plain `Trainer` "
        "(`Seq2SeqTrainer`) on the same recipe (half, converged or double its epochs); random keeps, epoch by epoch, "
        "as many instances as the default kept; iso-quality is the plain front's seconds to reach the default's test "
        "metric over the default's (from counts where they are priced; ≥: the default ends above every plain run; ≤: "
        "below the shortest). The seconds "
        "are measured, paired by seed, on a VM whose speed drifts by up to a third between hours; *from counts*, "
        "where given, prices each run's optimizer steps and instances at the task's step cost (a fixed part per step "
        "and a part per instance, timed back to back at the full batch and thinner ones by `benchmarks/step_cost.py` "
        "where it was, else fitted over the task's runs timed alone: the Benchmarks page's *What a thinned batch "
        "saves*), which drift cannot move (not on text, whose steps vary in tokens). "
        f"Validation / test items per task: {sizes}. The runs recorded so far: {len(runs)}, {hours:.1f} hours of "
        "this 2-core machine (training and evaluation). Generated from `benchmarks/results/` by `benchmarks/report.py`.",
    ]
    if with_plot:
        lines += ["", f"![The default against the plain run: test quality difference against seconds ratio]"
                      f"(benchmarks/results/{PLOT})"]  # fmt: skip
    return "\n".join(lines)


def plot_first_screen(results: list[dict], path: str) -> None:
    """The first screen's plot ([`first_screen_figure`]) written to `path`."""
    figure = first_screen_figure(results)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def first_screen_figure(results: list[dict]):
    """Quality difference (test) against the seconds ratio (from counts where the task's step cost prices them), each
    with its interval as a bar: one marker per task and recipe length, the task by colour and the length by shape (one
    legend entry each, not one per point)."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    tasks, shapes = ({}, {}), (set(), set())  # each axis's legend: task -> its colour's handle; (length, hollow) drawn
    for color, result in zip(colors, results):
        scale, unit = scale_of(result)
        side = 0 if unit == "points" else 1
        plotted = set()
        for length, verdict in by_length(result):
            # the seconds from counts where the step cost prices them (as the words say), else as measured
            test, seconds = verdict["vs_plain"]["test"], verdict["vs_plain"].get("counted_seconds_ratio")
            seconds = seconds if seconds and seconds["mean"] is not None else verdict["vs_plain"]["seconds_ratio"]
            if test["mean"] is None:
                continue
            hollow = seconds["mean"] is None  # no seed timed alone: placed at its instances ratio, drawn hollow
            if hollow:
                seconds = verdict["vs_plain"]["instances_ratio"]
            y, x = test["mean"] * scale, seconds["mean"]
            yerr = None if test["low"] is None else [[y - test["low"] * scale], [test["high"] * scale - y]]
            xerr = None if seconds["low"] is None else [[x - seconds["low"]], [seconds["high"] - x]]
            marker = LENGTH_MARKERS.get(float(length), "s")
            axes[side].errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, color=color, capsize=3,
                                mfc="none" if hollow else color)  # fmt: skip
            plotted.add((float(length), hollow))
        if plotted:
            tasks[side][result["task"]] = Line2D([], [], color=color, lw=3)
        shapes[side].update(plotted)
    for axis, unit, colours, markers in zip(axes, ("accuracy points", "BLEU"), tasks, shapes):
        axis.axhline(0, color="black", lw=0.8)
        axis.axvline(1, color="black", lw=0.8, ls=":")
        axis.set_xlabel("seconds ÷ the plain run's (same recipe; from counts where priced)")
        axis.set_ylabel(f"test {unit}: default − plain run")
        axis.grid(alpha=0.3)
        if colours:
            entries = dict(colours)
            for length, hollow in sorted(markers):
                name = LENGTH_NAMES.get(length, str(length)) + (" (instances: not timed alone)" if hollow else "")
                entries[name] = Line2D([], [], marker=LENGTH_MARKERS.get(length, "s"), ls="none", color="gray",
                                       mfc="none" if hollow else "gray")  # fmt: skip
            axis.legend(list(entries.values()), list(entries), fontsize=8, loc="best")
    figure.suptitle("The default against the run the user would have made (mean over seeds, 95% intervals)",
                    fontsize=9)  # fmt: skip
    figure.tight_layout()
    return figure


def front_seconds(result: dict, budget: float) -> str:
    """The front's mean training seconds at `budget`, over its runs timed alone (how many, when not all were): a run
    timed beside other work says nothing of the recipe's time."""
    seeds = front_seeds(result["runs"])
    runs = [r for r in result["runs"] if r["strategy"] == PLAIN and r["budget"] == budget
            and (r["seed"] in seeds or not seeds)]  # fmt: skip
    alone = [r["train_seconds"] for r in runs if not disturbed(r)]
    if not alone:
        return "not timed alone"
    mean = f"{sum(alone) / len(alone):.0f}"
    return mean if len(alone) == len(runs) else f"{mean} ({len(alone)} of {len(runs)} timed alone)"


def render_front(results: list[dict]) -> str:
    """The plain front per task: the test metric at each budget (mean, then each seed), the seconds of the runs timed
    alone, and the convergence check."""
    lines = ["| task | budget (× converged epochs) | test (mean; seeds) | seconds (mean of the runs timed alone) "
             "| converged |", "|---|---|---|---|---|"]  # fmt: skip
    for result in results:
        scale, unit = scale_of(result)
        check = result.get("convergence", {})
        passes = {True: "yes", False: "no", None: "not yet"}[check.get("passes")]
        if not any(row["budget"] < 1.0 for row in result["front"]["plain"]):
            passes = "not checked (no shorter run)"  # a task kept to its converged rows
        for row in result["front"]["plain"]:
            values = [v for v in row["test_metric"]["values"] if v is not None]
            if not values:
                continue
            seeds = ", ".join(f"{v * scale:.2f}" for v in values)
            lines.append(
                f"| {result['task']} | {row['budget']:g} | {sum(values) / len(values) * scale:.2f} {unit}; {seeds} "
                f"| {front_seconds(result, row['budget'])} | {passes if row['budget'] == 1.0 else ''} |"
            )
    return "\n".join(lines)


def render_step_cost(results: list[dict]) -> str:
    """Per task, a step's fixed part and its part per instance ([`step_cost`]), which say how far the seconds of a run
    that thins its batches fall with its instances."""
    lines = ["| task | a step's fixed part | per instance | fixed share of a full batch's step | runs timed alone |",
             "|---|---|---|---|---|"]  # fmt: skip
    for result in results:
        cost = step_cost(result["runs"])
        if cost is None:
            continue
        if not cost["separable"]:
            lines.append(f"| {result['task']} | not separable: the fit gives {cost['fixed'] * 1e3:.1f} ms and "
                         f"{cost['per_instance'] * 1e3:.3f} ms (its batches vary in tokens, not only in instances) "
                         f"| – | – | {cost['runs']} |")  # fmt: skip
            continue
        lines.append(
            f"| {result['task']} | {cost['fixed'] * 1e3:.1f} ms | {cost['per_instance'] * 1e3:.3f} ms "
            f"| {cost['fixed_share']:.2f} (of {cost['full_batch']:.0f} instances) | {cost['runs']} |"
        )
    return "\n".join(lines)


def render_step_cost_back_to_back(records: list[dict] | None = None) -> str:
    """Per task, the fixed share of a full batch's step timed back to back against thinner batches (`step_cost.py`'s
    `records`, all of them when None): its median and range over the repeats, and what a run with 0.7 of the plain
    run's instances in as many steps then costs."""
    records = probe_records(STEP_COST_PROBE) if records is None else records
    lines = ["| task | batches timed (instances) | fixed share of a full batch's step, median (range) "
             "| 0.7 of the instances in as many steps, seconds | repeats |", "|---|---|---|---|---|"]  # fmt: skip
    for task in SUITE_TASKS:
        runs = [r for r in records if r["task"] == task]
        cost = back_to_back_cost(runs)
        if cost is None:
            continue
        shares = cost["fixed_shares"]
        batches = " / ".join(str(b) for b in sorted({r["batch_size"] for r in runs}, reverse=True))
        seconds = [thinned_seconds(share, 0.7) for share in (cost["fixed_share"], min(shares), max(shares))]
        lines.append(f"| {task} | {batches} | {cost['fixed_share']:.2f} ({min(shares):.2f} to {max(shares):.2f}) "
                     f"| {seconds[0]:.2f}× ({seconds[1]:.2f}× to {seconds[2]:.2f}×) | {cost['repeats']} |")  # fmt: skip
    return "\n".join(lines)


ARM_NAMES = {"plain_clean": "perfect filter (plain on the clean instances)", "filtered": "the labels check alone"}


def render_other_arms(results: list[dict]) -> str:
    """The arms beside the default, each against the converged plain run of its seed (test)."""
    lines = ["| task | arm | − the plain run, test (95% interval) | seconds ÷ the plain run | seeds |", "|---|---|---|---|---|"]
    for result in results:
        scale, unit = scale_of(result)
        for arm, comparison in result.get("against_plain", {}).items():
            if not comparison["seeds"]:
                continue
            lines.append(
                f"| {result['task']} | {ARM_NAMES.get(arm, arm)} | {interval_text(comparison['test'], scale, unit)} "
                f"| {ratio_text(comparison)} | {len(comparison['seeds'])} |"
            )
    return "\n".join(lines)


def earlier_verdict(archived: dict) -> tuple[list[float], list[float]]:
    """The earlier suite's default (its `autoassist` at the default point, or the check alone where that was the
    default) minus its full plain run and minus random, seed by seed, on its validation set."""
    runs = archived["runs"]
    plain = {r["seed"]: r for r in runs if r["strategy"] == "plain" and r["budget"] == 1.0}
    strategy, point = ("filtered", 1.0) if any(r["strategy"] == "filtered" and r.get("autoassist_config", {}).get(
        "autoassist_plausibility") == "pairs" for r in runs) else ("autoassist", archived["default_points"]["autoassist"])  # fmt: skip
    default = {r["seed"]: r for r in runs if r["strategy"] == strategy and r["point"] == point}
    random = {r["seed"]: r for r in runs if r["strategy"] == "random" and r["point"] == point}
    if strategy == "filtered":
        random = {}  # the check alone was not replayed by random in that suite
    versus = [default[s]["final_validation"] - plain[s]["final_validation"] for s in sorted(default) if s in plain]
    versus_random = [default[s]["final_validation"] - random[s]["final_validation"] for s in sorted(default) if s in random]
    return versus, versus_random


def direction(values: list[float]) -> str:
    """`above on every seed`, `below on every seed`, `equal on every seed` (a default that trained as the plain run)
    or `mixed`.

    Example:
        >>> direction([0.1, 0.2]), direction([-0.1, 0.2]), direction([0.0, 0.0]), direction([])
        ('above on every seed', 'mixed', 'equal on every seed', '–')
    """
    if not values:
        return "–"
    if all(v == 0 for v in values):
        return "equal on every seed"
    if all(v > 0 for v in values):
        return "above on every seed"
    if all(v < 0 for v in values):
        return "below on every seed"
    return "mixed"


# what the earlier suite's direction says in the words of an interval
AGREES = {"above on every seed": "gains", "below on every seed": "loses", "mixed": "ties",
          "equal on every seed": "ties"}  # fmt: skip


def render_flips(results: list[dict], archived: list[dict]) -> str:
    """The earlier suite's verdicts (validation, 3 seeds) beside this one's (test, paired intervals), converged recipe."""
    lines = [
        "| task | default − plain: earlier (validation) | now (test) | flipped | default − random: earlier | now | flipped |",
        "|---|---|---|---|---|---|---|",
    ]
    before = {result["task"]: result for result in archived}
    for result in results:
        verdict = result.get("verdicts", {}).get("1.0")
        if verdict is None or result["task"] not in before or not verdict["vs_plain"]["seeds"]:
            continue
        scale, unit = scale_of(result)
        old_plain, old_random = earlier_verdict(before[result["task"]])
        cells = []
        for old, comparison in ((old_plain, verdict["vs_plain"]), (old_random, verdict["vs_random"])):
            word = verdict_word(comparison["test"])
            then = direction(old)
            values = ", ".join(f"{v * scale:+.2f}" for v in old)
            flipped = "–" if word is None or then == "–" else ("no" if AGREES[then] == word else "yes")
            now = "–" if not comparison["seeds"] else f"{word or 'one seed'}: {interval_text(comparison['test'], scale, unit)}"
            cells += [f"{then} ({values})" if old else "–", now, flipped]
        lines.append(f"| {result['task']} | {' | '.join(cells)} |")
    return "\n".join(lines)
