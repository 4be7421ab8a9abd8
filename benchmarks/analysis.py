"""Plain functions over the benchmark's run records: the plain front, iso-quality speedups, medians, paired differences.

A run record is a dict with at least `seed`, `strategy`, `final_validation`, `train_seconds` and `boss_instances`;
plain runs also carry `budget` (their fraction of the recipe's instances), strategy runs `point` (the value of their
operating knob). The **plain front** of a seed is its plain runs, each a complete run with its own LR schedule, as
points (Boss instances, seconds, final validation). The **iso-quality speedup** of a run is what the front needs to
reach the run's final validation metric, piecewise-linear between the front's budgets, divided by what the run used.
"""

import math
import statistics

PLAIN, RANDOM, AUTOASSIST, INFOBATCH = "plain", "random", "autoassist", "infobatch"
# the perfect filter of a noisy task: the plain Trainer on its clean instances only (the planted ones removed)
CLEAN = "plain_clean"
# the plausibility check alone: every instance it does not flag, every epoch (the library's strategy `none` with
# `autoassist_plausibility`), at the recipe's epochs times its point
FILTERED = "filtered"
# the library as a user gets it: AutoAssistTrainer with no option set (`autoassist_strategy="auto"`)
DEFAULT = "default"
# a run whose foreign CPU seconds exceed this share of its training seconds was disturbed: its seconds do not compare
DISTURBED_SHARE = 0.10


def disturbed(record: dict, share: float = DISTURBED_SHARE) -> bool:
    """Whether other processes took more than `share` of the run's training seconds in CPU; a run recorded before
    this was measured counts as disturbed (its seconds cannot be vouched for)."""
    foreign = record.get("foreign_cpu_seconds")
    return foreign is None or foreign > share * record["train_seconds"]


def front_seeds(runs: list[dict]) -> list[int]:
    """The seeds whose plain front has budgets besides the converged recipe (the others hold verdict rows only).

    Example:
        >>> front_seeds([{"seed": 0, "strategy": "plain", "budget": 0.5}, {"seed": 3, "strategy": "plain", "budget": 1.0}])
        [0]
    """
    return sorted({r["seed"] for r in runs if r["strategy"] == PLAIN and r["budget"] != 1.0})


def thinned_seconds(fixed_share: float, kept: float) -> float:
    """The share of a run's seconds a run in as many steps with `kept` of its instances takes, when `fixed_share` of
    a full batch's step does not depend on its instances: `fixed_share + (1 - fixed_share) * kept`.

    Example:
        >>> round(thinned_seconds(0.25, 0.6), 2)
        0.7
    """
    return fixed_share + (1 - fixed_share) * kept


def step_cost(runs: list[dict]) -> dict | None:
    """A training step's seconds as a fixed part plus a part per instance, by least squares over the runs timed alone
    (full batches and thinned ones; a check's seconds taken out):
    `{fixed, per_instance, full_batch, fixed_share, runs, separable}`, `fixed_share` of a full batch's step (the
    plain runs' batch). Thinning a batch saves only the per-instance part: a run that keeps the plain run's steps with
    `x` times its instances takes about `fixed_share + (1 - fixed_share) * x` of its seconds. None when the runs timed
    alone cannot tell the two parts apart; `separable` False when the fit gives a part below 0 (steps that vary in
    tokens rather than instances), whose split then means nothing.

    Example:
        >>> runs = [{"strategy": strategy, "optimizer_steps": 10, "boss_instances": n, "train_seconds": 0.1 + n / 1000,
        ...          "foreign_cpu_seconds": 0.0} for strategy, n in (("plain", 1280), ("default", 640), ("random", 320))]
        >>> cost = step_cost(runs)
        >>> {k: round(v, 3) for k, v in cost.items() if k != "separable"}, cost["separable"]
        ({'fixed': 0.01, 'per_instance': 0.001, 'full_batch': 128.0, 'fixed_share': 0.072, 'runs': 3}, True)
    """
    alone = [r for r in runs if not disturbed(r) and r.get("optimizer_steps")]
    full = [r["boss_instances"] / r["optimizer_steps"] for r in alone if r["strategy"] == PLAIN]
    if len(alone) < 3 or not full or all(r["boss_instances"] / r["optimizer_steps"] in full for r in alone):
        return None  # full batches alone cannot tell the fixed part from the part per instance
    steps = [r["optimizer_steps"] for r in alone]
    instances = [r["boss_instances"] for r in alone]
    seconds = [r["train_seconds"] - (r.get("plausibility_seconds") or 0.0) for r in alone]
    # the normal equations of seconds ~ fixed * steps + per_instance * instances
    ss, si, ii = sum(s * s for s in steps), sum(s * i for s, i in zip(steps, instances)), sum(i * i for i in instances)
    sy, iy = sum(s * y for s, y in zip(steps, seconds)), sum(i * y for i, y in zip(instances, seconds))
    determinant = ss * ii - si * si
    fixed, per_instance = (sy * ii - iy * si) / determinant, (iy * ss - sy * si) / determinant
    full_batch = statistics.median(full)
    return {"fixed": fixed, "per_instance": per_instance, "full_batch": full_batch,
            "fixed_share": fixed / (fixed + per_instance * full_batch), "runs": len(alone),
            "separable": fixed >= 0 and per_instance > 0}  # fmt: skip


def step_cost_per_repeat(runs: list[dict]) -> list[dict]:
    """[`step_cost`] of each repeat of `step_cost.py`'s runs (one task's: the recipe's batch, `fraction` 1, against
    thinner ones timed back to back), `repeat` added; a repeat with a disturbed run, too few runs or no separable
    split gives none."""
    fits = []
    for repeat in sorted({r["repeat"] for r in runs}):
        same = [{**r, "strategy": PLAIN if r["fraction"] == 1.0 else "thinned"} for r in runs if r["repeat"] == repeat]
        fit = None if any(disturbed(r) for r in same) else step_cost(same)
        if fit is not None and fit["separable"]:
            fits.append({"repeat": repeat, **fit})
    return fits


def back_to_back_cost(runs: list[dict]) -> dict | None:
    """The step cost that prices a run's counts, from `step_cost.py`'s runs of one task (its batch sizes timed back to
    back, so that the VM's drift between hours cannot pass for a fixed part): a full batch's step is 1, of which the
    median fixed share over the repeats is fixed. As [`step_cost`], with `fixed_shares` (each repeat's) and
    `repeats`; None when no repeat could be fitted.

    Example:
        >>> runs = [{"repeat": repeat, "fraction": n / 128, "optimizer_steps": 500, "boss_instances": 500 * n,
        ...          "train_seconds": 500 * (share * 0.01 + (1 - share) * 0.01 * n / 128), "foreign_cpu_seconds": 0.0}
        ...         for repeat, share in ((0, 0.2), (1, 0.3), (2, 0.6)) for n in (128, 64, 32)]
        >>> cost = back_to_back_cost(runs)
        >>> round(cost["fixed_share"], 3), [round(s, 3) for s in cost["fixed_shares"]], cost["repeats"]
        (0.3, [0.2, 0.3, 0.6], 3)
    """
    fits = step_cost_per_repeat(runs)
    if not fits:
        return None
    shares = [fit["fixed_share"] for fit in fits]
    share, full_batch = statistics.median(shares), statistics.median(fit["full_batch"] for fit in fits)
    return {"fixed": share, "per_instance": (1 - share) / full_batch, "full_batch": full_batch, "fixed_share": share,
            "fixed_shares": shares, "repeats": len(fits), "runs": sum(fit["runs"] for fit in fits), "separable": True}


def spread(values: list[float | None]) -> dict:
    """Median, minimum and maximum of per-seed values; a None counts as +infinity in the median and is reported as
    None.

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


def front_of(runs: list[dict], seed: int, key: str = "final_validation") -> list[dict]:
    """The seed's plain runs as `{budget, instances, seconds, metric}`, by increasing instances, the metric read from
    `key` (runs without it left out)."""
    points = [
        {"budget": r["budget"], "instances": r["boss_instances"], "seconds": r["train_seconds"], "metric": r[key]}
        for r in runs
        if r["strategy"] == PLAIN and r["seed"] == seed and r.get(key) is not None
    ]
    return sorted(points, key=lambda p: p["instances"])


def front_needs(front: list[dict], target: float) -> dict:
    """Instances and seconds the plain front needs to reach `target` (higher is better).

    The front is followed from its smallest budget, piecewise-linearly, to the first place where it reaches
    `target`; a front that dips and recovers (overtraining, noise) is read the same way, so a later, higher budget
    never hides an earlier one that already reached the target. `status` says how far to trust the numbers:
    `"interpolated"` between two budgets; `"below"` when the smallest budget already reaches it (the front needs
    at most that budget); `"beyond"` when no budget reaches it: the numbers are then those of the budget with the
    best metric (the smallest among ties), the plain run that comes closest, so that a speedup against them is a
    lower bound; nothing is extrapolated, and a front that peaked early is not credited with its full budget.

    Example:
        >>> front = [{"instances": 100, "seconds": 10, "metric": 0.5}, {"instances": 200, "seconds": 20, "metric": 0.7}]
        >>> front_needs(front, 0.6)
        {'instances': 150.0, 'seconds': 15.0, 'status': 'interpolated'}
    """
    if not front:
        raise ValueError("The plain front is empty: run the plain budgets of this seed first.")
    first = front[0]
    if first["metric"] >= target:
        return {"instances": float(first["instances"]), "seconds": float(first["seconds"]), "status": "below"}
    for low, high in zip(front, front[1:]):
        if high["metric"] >= target:
            t = (target - low["metric"]) / (high["metric"] - low["metric"])  # low < target <= high
            return {
                "instances": low["instances"] + t * (high["instances"] - low["instances"]),
                "seconds": low["seconds"] + t * (high["seconds"] - low["seconds"]),
                "status": "interpolated",
            }
    best = max(front, key=lambda p: (p["metric"], -p["instances"]))
    return {"instances": float(best["instances"]), "seconds": float(best["seconds"]), "status": "beyond"}


# what a speedup computed from each status is: exact, an upper bound, or a lower bound
BOUND = {"interpolated": "exact", "below": "at_most", "beyond": "at_least"}


def iso_quality(run: dict, front: list[dict]) -> dict:
    """The run's iso-quality speedup in instances and in seconds (above 1: no shorter plain schedule matches it), with
    its bound, and its gain over the full plain run (the front's largest budget)."""
    needs = front_needs(front, run["final_validation"])
    return {
        "instances": needs["instances"] / run["boss_instances"],
        "seconds": needs["seconds"] / run["train_seconds"] if run["train_seconds"] else None,
        "bound": BOUND[needs["status"]],
        "gain_over_full_plain": run["final_validation"] - front[-1]["metric"],
    }


def _median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _points(runs: list[dict], strategy: str) -> list[float]:
    return sorted({r["point"] for r in runs if r["strategy"] == strategy})


def summarize_front(runs: list[dict], seeds: list[int]) -> list[dict]:
    """`front.plain` of the JSON: per budget, the values of each seed in seed order (None where not run yet)."""
    budgets = sorted({r["budget"] for r in runs if r["strategy"] == PLAIN})
    rows = []
    for budget in budgets:
        by_seed = {r["seed"]: r for r in runs if r["strategy"] == PLAIN and r["budget"] == budget}
        row = {"budget": budget}
        for key, field in (("instances", "boss_instances"), ("final_validation", "final_validation"),
                           ("train_seconds", "train_seconds"), ("test_metric", "test_metric")):  # fmt: skip
            values = [by_seed[s][field] if s in by_seed else None for s in seeds]
            row[key] = {"median": _median(values), "values": values}
        rows.append(row)
    return rows


def curve_point(runs: list[dict], strategy: str, point: float, seeds: list[int], full_front: dict) -> dict:
    """One operating point of a strategy: per seed (seed order, None where missing) its speedups, final metric, kept
    share of the full plain run's instances and, on noisy tasks, the kept fractions of noisy and clean instances."""
    by_seed = {r["seed"]: r for r in runs if r["strategy"] == strategy and r["point"] == point}
    entry = {"point": point}
    iso = {s: iso_quality(by_seed[s], full_front[s]) for s in seeds if s in by_seed and full_front.get(s)}
    for key in ("instances", "seconds"):
        values = [iso[s][key] if s in iso else None for s in seeds]
        entry[key] = {"median": _median(values), "values": values, "bounds": [iso[s]["bound"] if s in iso else None for s in seeds]}
    entry["gain_over_full_plain"] = _values(seeds, {s: v["gain_over_full_plain"] for s, v in iso.items()})
    for key in ("final_validation", "test_metric", "train_seconds", "kept_noisy_fraction", "kept_clean_fraction"):
        entry[key] = _values(seeds, {s: r.get(key) for s, r in by_seed.items()})
    entry["instances_over_full_plain"] = _values(
        seeds, {s: r["boss_instances"] / full_front[s][-1]["instances"] for s, r in by_seed.items() if full_front.get(s)}
    )
    return entry


def _values(seeds: list[int], by_seed: dict) -> dict:
    values = [by_seed.get(s) for s in seeds]
    return {"median": _median(values), "values": values}


def pair_by_seed(runs: list[dict], strategies: tuple[str, ...] = (AUTOASSIST, RANDOM), **match) -> dict[int, dict]:
    """Seed -> {strategy: run} over the runs whose fields equal `match` (a point, a signal, a variant), for the seeds
    that have a run of every one of `strategies`, in seed order: the pairing every comparison with random uses.

    Example:
        >>> runs = [{"seed": 1, "strategy": "autoassist", "point": 1}, {"seed": 1, "strategy": "random", "point": 1},
        ...         {"seed": 0, "strategy": "autoassist", "point": 1}, {"seed": 1, "strategy": "random", "point": 2}]
        >>> list(pair_by_seed(runs, point=1))
        [1]
    """
    by_seed = {}
    for run in runs:
        if run["strategy"] in strategies and all(run.get(k) == v for k, v in match.items()):
            by_seed.setdefault(run["seed"], {})[run["strategy"]] = run
    return {seed: by_seed[seed] for seed in sorted(by_seed) if len(by_seed[seed]) == len(strategies)}


def paired_differences(runs: list[dict], strategy: str, baseline: str, point: float) -> dict:
    """`strategy - baseline` final validation at the same operating `point`, seed by seed (seeds with both runs).

    Example:
        >>> runs = [{"seed": 0, "strategy": "a", "point": 1, "final_validation": 0.9},
        ...         {"seed": 0, "strategy": "b", "point": 1, "final_validation": 0.8},
        ...         {"seed": 1, "strategy": "a", "point": 1, "final_validation": 0.7}]
        >>> paired_differences(runs, "a", "b", 1)["seeds"]
        [0]
    """
    pairs = pair_by_seed(runs, (strategy, baseline), point=point)
    differences = [pair[strategy]["final_validation"] - pair[baseline]["final_validation"] for pair in pairs.values()]
    return {"seeds": list(pairs), **spread(differences)}


def convergence(runs: list[dict], seeds: list[int]) -> dict:
    """Whether the recipe is trained to convergence: the full plain run (budget 1.0) gains at most one seed spread
    (max - min of the seeds' full runs) over the budget before it (0.7 in the full plan), in the median of the
    seeds. `passes` is None until every seed has both runs. A task that fails is not used for a speedup claim: a
    skipped instance always costs quality on a recipe still far from its plateau.

    Example:
        >>> runs = [{"seed": s, "strategy": "plain", "budget": b, "final_validation": m}
        ...         for s, b, m in [(0, 0.7, 0.80), (0, 1.0, 0.81), (1, 0.7, 0.82), (1, 1.0, 0.80)]]
        >>> convergence(runs, [0, 1])["passes"]
        True
    """
    metric = {(r["seed"], r["budget"]): r["final_validation"] for r in runs if r["strategy"] == PLAIN}
    previous = max((budget for _, budget in metric if budget < 1.0), default=None)
    gains = [metric[(s, 1.0)] - metric[(s, previous)] if (s, 1.0) in metric and (s, previous) in metric else None
             for s in seeds]  # fmt: skip
    full = [metric[(s, 1.0)] for s in seeds if (s, 1.0) in metric]
    seed_spread = max(full) - min(full) if len(full) > 1 else None
    complete = None not in gains and seed_spread is not None
    return {
        "previous_budget": previous,
        "gain": _values(seeds, dict(zip(seeds, gains))),
        "seed_spread": seed_spread,
        "passes": statistics.median(gains) <= seed_spread if complete else None,
    }


def clean_ceiling(runs: list[dict], seeds: list[int]) -> dict:
    """The perfect filter of a noisy task (`CLEAN` runs, plain on the clean instances at the full run's epochs and
    at its instances): per seed, the best of them, the ceiling of any filter."""
    best = {}
    for run in runs:
        if run["strategy"] == CLEAN and run.get("final_validation") is not None:
            best[run["seed"]] = max(best.get(run["seed"], -math.inf), run["final_validation"])
    return _values(seeds, best)


def gap_won(metric: float, full_plain: float, ceiling: float) -> float | None:
    """Share of the gap between the full plain run and the perfect filter that a run closes (1: the ceiling; 0: no
    better than training on everything; negative: worse).

    Example:
        >>> gap_won(8.0, full_plain=6.0, ceiling=10.0)
        0.5
    """
    return None if ceiling == full_plain else (metric - full_plain) / (ceiling - full_plain)


def analyse(runs: list[dict], seeds: list[int], default_points: dict[str, float]) -> dict:
    """Everything the JSON reports beside the runs: the front, every strategy's curve of iso-quality speedups, the
    speedups at the default operating points, kept noisy / clean fractions, and autoassist - random per point."""
    fronts = {s: front_of(runs, s) for s in seeds}
    strategies = [s for s in dict.fromkeys(r["strategy"] for r in runs) if s != PLAIN]
    curves = {
        strategy: [curve_point(runs, strategy, point, seeds, fronts) for point in _points(runs, strategy)]
        for strategy in strategies
    }
    at_default = {
        strategy: next((entry for entry in curve if entry["point"] == default_points.get(strategy)), None)
        for strategy, curve in curves.items()
    }
    result = {
        "front": {"plain": summarize_front(runs, seeds)},
        "convergence": convergence(runs, seeds),
        "iso_quality": {
            s: {"instances": e["instances"], "seconds": e["seconds"]} for s, e in at_default.items() if e is not None
        },
        "iso_quality_curves": curves,
        "autoassist_minus_random": {
            str(point): paired_differences(runs, AUTOASSIST, RANDOM, point) for point in _points(runs, AUTOASSIST)
        },
    }
    ceiling = clean_ceiling(runs, seeds)
    if any(v is not None for v in ceiling["values"]):
        result["clean_ceiling"] = ceiling
        for curve in curves.values():
            for entry in curve:
                entry["gap_won"] = _values(seeds, {
                    s: gap_won(metric, fronts[s][-1]["metric"], top)
                    for s, metric, top in zip(seeds, entry["final_validation"]["values"], ceiling["values"])
                    if metric is not None and top is not None and fronts[s]
                })  # fmt: skip
    if any(r.get("kept_noisy_fraction") is not None for r in runs):
        for key in ("kept_noisy_fraction", "kept_clean_fraction"):
            result[key] = {s: e[key] for s, e in at_default.items() if e is not None}
    return result
