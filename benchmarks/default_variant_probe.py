"""The default with some `autoassist_*` options changed, on a suite task at some recipe lengths, beside the plain run
of the same seed and length: how a candidate for the default is screened before the suite judges it (the suite's rows
need every seed and length; a probe shows which candidate is worth them). Screen on seeds the suite does not use.

    python benchmarks/default_variant_probe.py --task vision-resnet --lengths 0.5 1.0 2.0 --seeds 0 \\
        --options '{"autoassist_retained_visits": 2, "autoassist_base_prob": 0.1}' --output retention.jsonl

Each run is appended to `benchmarks/results/probes/<output>` with the command that made it; with `--strategy plain`
the plain run of the same seeds and lengths (timed in the same hour), and `--summarize` prints each candidate
against it, paired by seed:

    python benchmarks/default_variant_probe.py --output retention.jsonl --options '{}' --summarize

With `--curve_every N` each run also records its test metric every N epochs, and the summary says when each
candidate reached the plain run's final test metric of its seed (and stayed there): the seconds to a target, which a
run that ends above the plain one spends less of than its whole recipe.
"""

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import DEFAULT, PLAIN, disturbed  # noqa: E402
from benchmarks.names import RESULTS, SUITE_TASKS, probe_records  # noqa: E402
from benchmarks.runs import append_probe_run, run_one  # noqa: E402
from benchmarks.suite_tables import load_results  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402
from benchmarks.verdicts import (  # noqa: E402
    compare, counted_seconds_ratio, paired_interval, priced_seconds, pricing_step_cost,
)  # fmt: skip

RECORDED = ("seed", "final_validation", "test_metric", "boss_instances", "optimizer_steps", "train_seconds",
            "foreign_cpu_seconds", "kept_fraction_per_epoch", "kept_noisy_fraction", "kept_clean_fraction",
            "test_curve")  # fmt: skip


@dataclass
class DefaultVariantProbeArguments:
    options: str = field(metadata={"help": "The changed options, as a JSON object of `autoassist_*` fields ('{}' with "
                                       "--strategy plain)."})
    output: str = field(metadata={"help": "The file under benchmarks/results/probes/ the runs are appended to."})
    task: str = field(default="vision-resnet", metadata={"choices": list(SUITE_TASKS)})
    lengths: list[float] = field(default_factory=lambda: [1.0], metadata={"help": "Recipe lengths (× converged)."})
    seeds: list[int] = field(default_factory=lambda: [0])
    strategy: str = field(default=DEFAULT, metadata={"help": "The suite's run to make: the default with the options, "
                          "or the plain run beside it, timed in the same hour (this VM's speed drifts).",
                          "choices": [DEFAULT, PLAIN]})  # fmt: skip
    curve_every: int = field(default=0, metadata={"help": "Evaluate the test split every this many epochs (and at the "
                             "last) to record when the run reaches a metric; 0: at the end only."})
    data_dir: str = field(default="../shared/data")
    work_dir: str = field(default="outputs/default-variant-probe")
    summarize: bool = field(default=False, metadata={"help": "Train nothing: print the output's candidates against "
                                                     "its plain runs."})
    baseline: str = field(default="probe", metadata={"help": "With --summarize, the plain runs each candidate is "
                          "paired with: the output's own ('probe'), or the committed suite's of the same seed and "
                          "length ('suite', to judge a screened candidate on the suite's seeds; timed in another hour, "
                          "so only the counts price its seconds).", "choices": ["probe", "suite"]})


def probe_default_variant(probe: DefaultVariantProbeArguments, script: str, argv: list[str] | None) -> list[dict]:
    """Trains and evaluates the default with `probe.options` at each length and seed; one record each."""
    options = json.loads(probe.options)
    if probe.strategy == PLAIN and options:
        raise ValueError(f"The plain run takes no `autoassist_*` options; got {options}. Pass --options '{{}}'.")
    task = TASKS[probe.task]
    preset = task.presets["full"]
    data = task.load(probe.data_dir, preset, os.path.join(probe.work_dir, task.name), task.noise)
    records = []
    for length in probe.lengths:
        for seed in probe.seeds:
            epochs = preset.num_train_epochs * length
            run = run_one(task, data, preset, probe.strategy, seed, probe.work_dir, epochs, options,
                          curve_every=probe.curve_every)
            record = {"task": task.name, "strategy": probe.strategy, "length": length, "options": options,
                      **{k: run.get(k) for k in RECORDED}}  # fmt: skip
            records.append(append_probe_run(probe.output, script, argv, record))
    return records


def suite_step_costs(results: list[dict]) -> dict[str, dict | None]:
    """Each suite task's step cost ([`pricing_step_cost`]: timed back to back, else fitted on its committed runs
    timed alone in `results`, as `load_results` reads them): what prices a probe's counts, since the probe's own runs
    are too few and too alike to split a step's seconds."""
    return {result["task"]: pricing_step_cost(result["task"], result["runs"]) for result in results}


def suite_plain_runs(results: list[dict], tasks) -> list[dict]:
    """The committed suite's plain runs of `tasks`, as probe records (`length` is the plain run's budget)."""
    return [
        {"task": result["task"], "strategy": PLAIN, "length": run["budget"], "options": {},
         **{k: run.get(k) for k in RECORDED}, "timed_apart": True}
        for result in results if result["task"] in tasks for run in result["runs"] if run["strategy"] == PLAIN
    ]  # fmt: skip


def interval_cell(interval: dict | None, scale: float = 1.0, fmt: str = "+.2f") -> str:
    """`mean [low, high]` of a [`paired_interval`] times `scale` (the mean alone over one seed); None: its runs
    were timed in another hour.

    Example:
        >>> interval_cell(paired_interval([0.001, 0.003]), scale=100.0)
        '+0.20 [-1.07, +1.47]'
        >>> interval_cell(paired_interval([0.5]), fmt=".2f")
        '0.50'
    """
    if interval is None:
        return "– (timed in another hour)"
    mean, low, high = (None if v is None else v * scale for v in (interval[k] for k in ("mean", "low", "high")))
    if mean is None:
        return "– (no run timed alone)"
    return f"{mean:{fmt}}" if low is None else f"{mean:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def summary_rows(records: list[dict], costs: dict[str, dict | None] | None = None) -> list[str]:
    """A markdown row per candidate (task, length, options): its test metric, instances and seconds against the plain
    run of each seed it shares with it, mean and 95% interval over those seeds; and the seconds its counts cost at the
    task's step cost (`costs`, by task), which this VM's drift cannot move."""
    def key(record):
        return record["task"], record["length"], json.dumps(record["options"], sort_keys=True)

    plain, candidates = {}, {}
    for record in records:
        group = plain if record.get("strategy", DEFAULT) == PLAIN else candidates
        group.setdefault(key(record), {})[record["seed"]] = record
    costs = costs or {}
    rows = ["| task | length | options | test − plain (accuracy points, BLEU) | instances ÷ plain | "
            "seconds ÷ plain | from counts | seeds |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, length, options), runs in candidates.items():
        baseline = plain.get((task, length, "{}"), {})
        if not set(runs) & set(baseline):
            continue
        result = compare(runs, baseline)
        if any(baseline[seed].get("timed_apart") for seed in result["seeds"]):  # another hour: only counts compare
            result["seconds_ratio"] = None

        counted = counted_seconds_ratio(runs, baseline, costs.get(task))
        scale = 1.0 if task in TASKS and TASKS[task].token_targets else 100.0  # BLEU as it is, accuracy in points
        rows.append(f"| {task} | {length} | `{options}` | {interval_cell(result['test'], scale)} | "
                    f"{interval_cell(result['instances_ratio'], fmt='.2f')} | "
                    f"{interval_cell(result['seconds_ratio'], fmt='.2f')} | "
                    f"{'–' if counted is None else interval_cell(counted, fmt='.2f')} | "
                    f"{', '.join(map(str, result['seeds']))} |")  # fmt: skip
    return rows


def reached_at(curve: list[dict], target: float) -> dict | None:
    """The first point of `curve` from which its test metric stays at or above `target` to the end: reaching it and
    falling back does not count. None where the curve ends below it.

    Example:
        >>> curve = [{"epoch": e, "test_metric": m} for e, m in [(1, 0.5), (2, 0.8), (3, 0.7), (4, 0.8), (5, 0.9)]]
        >>> reached_at(curve, 0.75)["epoch"], reached_at(curve, 0.95)
        (4, None)
    """
    for i, point in enumerate(curve):
        if all(later["test_metric"] >= target for later in curve[i:]):
            return point
    return None


def reach_rows(records: list[dict], suite: list[dict], costs: dict[str, dict | None] | None = None) -> list[str]:
    """A markdown row per candidate (task, length, options) whose runs recorded a test curve: the epoch from which
    each seed's run stays at or above the plain run of the same seed and length ([`reached_at`]; the probe's own if
    it made one, else the committed suite's), and what it had spent by then over what that plain run spent in all:
    instances; seconds priced from the counts at the task's step cost (`costs`); and seconds as measured: against
    the probe's own plain run, timed in the same hour; against the suite's, the share of its own run's seconds times
    the suite's ratio of the same run to the plain one (both timed alone in the suite's hour; only where the probe's
    run ends at the suite's test metric, so that it is the same training)."""
    plain = {(r["task"], r["length"], r["seed"]): r for r in suite_plain_runs(suite, {r["task"] for r in records})}
    plain.update({(r["task"], r["length"], r["seed"]): r for r in records if r.get("strategy") == PLAIN})
    default = {(result["task"], run["length"], run["seed"]): run
               for result in suite for run in result["runs"] if run["strategy"] == DEFAULT}  # fmt: skip
    groups = {}
    for record in records:  # a seed run again supersedes its earlier record, as in `summary_rows`
        if record.get("test_curve") and record.get("strategy", DEFAULT) == DEFAULT:
            key = record["task"], record["length"], json.dumps(record["options"], sort_keys=True)
            groups.setdefault(key, {})[record["seed"]] = record
    costs = costs or {}
    rows = ["| task | length | options | epoch reached (of its epochs), by seed | instances ÷ plain | seconds ÷ plain, "
            "from counts | seconds ÷ plain, measured | seeds |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (task, length, options), runs in groups.items():
        epochs, instances, counted, measured, seeds = [], [], [], [], []
        for run in sorted(runs.values(), key=lambda r: r["seed"]):
            baseline = plain.get((task, length, run["seed"]))
            if baseline is None:
                continue
            seeds.append(run["seed"])
            point = reached_at(run["test_curve"], baseline["test_metric"])
            epochs.append(f"{'not reached' if point is None else point['epoch']} ({run['test_curve'][-1]['epoch']})")
            if point is None:
                continue
            instances.append(point["boss_instances"] / baseline["boss_instances"])
            cost = costs.get(task)
            if cost is not None and cost["separable"]:
                counted.append(priced_seconds(cost, point) / priced_seconds(cost, baseline))
            same = default.get((task, length, run["seed"]))  # the suite's run of this seed, timed beside its plain
            if baseline.get("timed_apart"):
                if same is not None and same["test_metric"] == run["test_metric"] and not disturbed(same) \
                        and not disturbed(baseline):  # fmt: skip
                    share = point["train_seconds"] / run["train_seconds"]
                    measured.append(share * same["train_seconds"] / baseline["train_seconds"])
            elif not disturbed(run) and not disturbed(baseline):  # the probe's own plain run, this hour
                measured.append(point["train_seconds"] / baseline["train_seconds"])
        if not seeds:
            continue

        def cell(values):  # no mean over a seed that did not reach it, or was not priced or timed
            return "–" if len(values) < len(seeds) else interval_cell(paired_interval(values), fmt=".2f")

        rows.append(f"| {task} | {length} | `{options}` | {', '.join(epochs)} | {cell(instances)} | {cell(counted)} | "
                    f"{cell(measured)} | {', '.join(map(str, seeds))} |")  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    (probe,) = HfArgumentParser(DefaultVariantProbeArguments).parse_args_into_dataclasses(args=argv)
    if probe.summarize:
        records = probe_records(probe.output)
        if not records:
            raise FileNotFoundError(
                f"No runs in {RESULTS / 'probes' / probe.output}: run the probe first (without --summarize), or name "
                "the file it wrote with --output."
            )
        suite, own = load_results(), records
        if probe.baseline == "suite":
            records = [r for r in records if r.get("strategy", DEFAULT) != PLAIN]
            records += suite_plain_runs(suite, {r["task"] for r in records})
        costs = suite_step_costs(suite)
        print("\n".join(summary_rows(records, costs)))
        if any(r.get("test_curve") for r in own):
            print("\nWhen each reached the plain run of its seed and length (and stayed there):\n")
            print("\n".join(reach_rows(own, suite, costs)))
        return []
    return probe_default_variant(probe, "default_variant_probe.py", argv)


if __name__ == "__main__":
    main()
