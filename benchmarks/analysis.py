"""Plain functions over the benchmark's run records: time-to-target, medians and paired differences.

A run record is a dict with at least `seed`, `strategy`, `final_validation`, `train_seconds`, `boss_instances`
and `curve`, a list of evaluations `{"instances", "train_seconds", "metric"}` in training order.
"""

import math
import statistics

# the runs of one seed that every other run is compared with
PLAIN, BUDGET_MATCHED, RANDOM, AUTOASSIST = "plain", "budget_matched", "random", "autoassist"


def first_reaching(curve: list[dict], target: float) -> dict | None:
    """The first evaluation of `curve` whose metric reaches `target` (higher is better), or None.

    Example:
        >>> curve = [{"metric": 0.5, "train_seconds": 1}, {"metric": 0.8, "train_seconds": 2}, {"metric": 0.9, "train_seconds": 3}]
        >>> first_reaching(curve, 0.8)["train_seconds"], first_reaching(curve, 0.95)
        (2, None)
    """
    return next((point for point in curve if point["metric"] >= target), None)


def add_time_to_target(runs: list[dict]) -> None:
    """Sets, on every run, the target (its seed's plain final validation metric), the training seconds and Boss
    instances of its first evaluation that reaches it (None: never), and both as ratios to plain's full run."""
    plain = {run["seed"]: run for run in runs if run["strategy"] == PLAIN}
    for run in runs:
        reference = plain.get(run["seed"])
        if reference is None:
            continue
        run["target"] = reference["final_validation"]
        point = first_reaching(run["curve"], run["target"])
        run["seconds_to_target"] = None if point is None else point["train_seconds"]
        run["instances_to_target"] = None if point is None else point["instances"]
        run["time_to_target_ratio"] = None if point is None else point["train_seconds"] / reference["train_seconds"]
        run["instances_to_target_ratio"] = (
            None if point is None else point["instances"] / reference["boss_instances"]
        )


def spread(values: list[float | None]) -> dict:
    """Median, minimum and maximum of per-seed values; a None (never reached) counts as +infinity in the median and
    is reported as None.

    Example:
        >>> spread([0.2, None, 0.1])
        {'median': 0.2, 'min': 0.1, 'max': None, 'values': [0.2, None, 0.1]}
    """
    numbers = [math.inf if v is None else v for v in values]
    if not numbers:
        return {"median": None, "min": None, "max": None, "values": []}

    def finite(x):
        return None if math.isinf(x) else x

    return {
        "median": finite(statistics.median(numbers)),
        "min": finite(min(numbers)),
        "max": finite(max(numbers)),
        "values": list(values),
    }


SUMMARY_KEYS = (
    "final_validation",
    "test_metric",
    "boss_instances",
    "optimizer_steps",
    "train_seconds",
    "eval_seconds",
    "assistant_seconds",
    "time_to_target_ratio",
    "instances_to_target_ratio",
    "throughput",
)


def summarize(runs: list[dict]) -> dict:
    """Per strategy, the spread over seeds of each number in `SUMMARY_KEYS`."""
    strategies = list(dict.fromkeys(run["strategy"] for run in runs))
    return {
        strategy: {
            key: spread([run.get(key) for run in runs if run["strategy"] == strategy])
            for key in SUMMARY_KEYS
        }
        for strategy in strategies
    }


def paired_differences(runs: list[dict], strategy: str, baseline: str, key: str = "final_validation") -> dict:
    """`strategy - baseline` of `key`, seed by seed (only seeds with both runs), with its spread.

    Example:
        >>> runs = [{"seed": 0, "strategy": "a", "x": 0.9}, {"seed": 0, "strategy": "b", "x": 0.8},
        ...         {"seed": 1, "strategy": "a", "x": 0.7}, {"seed": 1, "strategy": "b", "x": 0.75}]
        >>> [round(v, 2) for v in paired_differences(runs, "a", "b", "x")["values"]]
        [0.1, -0.05]
    """
    by_seed = {}
    for run in runs:
        by_seed.setdefault(run["seed"], {})[run["strategy"]] = run
    seeds = sorted(seed for seed, group in by_seed.items() if strategy in group and baseline in group)
    differences = [by_seed[s][strategy][key] - by_seed[s][baseline][key] for s in seeds]
    return {"seeds": seeds, **spread(differences)}


def throughput_ratio(runs: list[dict], strategy: str = "none", baseline: str = PLAIN) -> dict:
    """Training throughput (Boss instances per training second) of `strategy` over `baseline`, seed by seed."""
    for run in runs:
        run["throughput"] = run["boss_instances"] / run["train_seconds"] if run["train_seconds"] else None
    by_seed = {}
    for run in runs:
        by_seed.setdefault(run["seed"], {})[run["strategy"]] = run
    ratios = [
        group[strategy]["throughput"] / group[baseline]["throughput"]
        for group in by_seed.values()
        if strategy in group and baseline in group
    ]
    return spread(ratios)


# the pairs whose difference means something: `random` and `budget_matched` are matched to `autoassist`'s budget
COMPARISONS = (
    (AUTOASSIST, RANDOM),
    (AUTOASSIST, BUDGET_MATCHED),
    (AUTOASSIST, PLAIN),
    (RANDOM, BUDGET_MATCHED),
    ("infobatch", PLAIN),
    ("none", PLAIN),
)


def last_quarter_gain(curve: list[dict]) -> float:
    """How much the metric still rose over the last quarter of a run's evaluations: near 0 on a plateau.

    Example:
        >>> round(last_quarter_gain([{"metric": m} for m in (0.5, 0.8, 0.88, 0.89, 0.9)]), 4)
        0.01
    """
    return curve[-1]["metric"] - curve[(3 * (len(curve) - 1)) // 4]["metric"]


def analyse(runs: list[dict]) -> dict:
    """Everything the JSON reports beside the runs themselves."""
    add_time_to_target(runs)
    throughput = throughput_ratio(runs)
    comparisons = {}
    for strategy, baseline in COMPARISONS:
        for key in ("final_validation", "test_metric"):
            result = paired_differences(runs, strategy, baseline, key)
            if result["seeds"]:
                comparisons[f"{strategy} - {baseline}: {key}"] = result
    plateau = spread([last_quarter_gain(run["curve"]) for run in runs if run["strategy"] == PLAIN])
    return {
        "summary": summarize(runs),
        "paired_differences": comparisons,
        "none_over_plain_throughput": throughput,
        "plain_last_quarter_gain": plateau,
    }
