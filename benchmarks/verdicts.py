"""The suite's verdicts, read two ways side by side: against the run the user would have made (the plain run of the
same recipe length: the quality difference with its paired 95% interval, and the seconds ratio) and against the best
schedule in hindsight (iso-quality against the plain front). Beside them, the default against random skipping of as
many instances, paired by seed.

Every interval is over seeds (a t-interval on the per-seed paired differences), not a bootstrap over test items: it
holds both the seed's training noise and the test set's sampling noise. Words follow the interval: a side "gains" or
"loses" only where its interval excludes 0, and "ties" otherwise.
"""

import math
import statistics

from scipy import stats

from benchmarks.analysis import (
    BOUND, CLEAN, DEFAULT, FILTERED, INFOBATCH, PLAIN, RANDOM, back_to_back_cost, convergence, disturbed, front_needs,
    front_of, front_seeds, step_cost, summarize_front,
)  # fmt: skip
from benchmarks.names import STEP_COST_PROBE, probe_records

# the metric each comparison reads: the one decided on and the one reported
METRICS = {"validation": "final_validation", "test": "test_metric"}


def paired_interval(values: list[float], confidence: float = 0.95) -> dict:
    """Mean of per-seed paired values with its t-interval (None with fewer than two seeds).

    Example:
        >>> interval = paired_interval([1.0, 2.0, 3.0])
        >>> interval["mean"], round(interval["low"], 3), round(interval["high"], 3), interval["n"]
        (2.0, -0.484, 4.484, 3)
    """
    n = len(values)
    mean = statistics.fmean(values) if values else None
    low = high = None
    if n >= 2:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
        low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": n, "values": list(values)}


def verdict_word(interval: dict, higher: str = "gains", lower: str = "loses") -> str | None:
    """`higher` / `lower` where the interval excludes 0 on that side, "ties" where it holds 0.

    Example:
        >>> verdict_word({"low": 0.1, "high": 0.9}), verdict_word({"low": -0.1, "high": 0.9}), verdict_word({"low": None})
        ('gains', 'ties', None)
    """
    if interval.get("low") is None:
        return None
    if interval["low"] > 0:
        return higher
    if interval["high"] < 0:
        return lower
    return "ties"


def _by_seed(runs: list[dict], strategy: str, field: str, value: float) -> dict[int, dict]:
    return {r["seed"]: r for r in runs if r["strategy"] == strategy and r.get(field) == value}


def iso_quality(runs: list[dict], arm: dict[int, dict], key: str) -> dict:
    """Per seed with a plain front of more than one budget: the front's seconds to reach the arm's `key` metric over
    the arm's seconds, with its bound (`analysis.BOUND`); their median. A seed whose arm or plain runs were timed
    beside other work (`disturbed`) is left out: their seconds say nothing."""
    values, bounds = {}, {}
    for seed, run in sorted(arm.items()):
        front = front_of(runs, seed, key)
        plain = [r for r in runs if r["strategy"] == PLAIN and r["seed"] == seed]
        if len(front) < 2 or run.get(key) is None or disturbed(run) or any(disturbed(r) for r in plain):
            continue
        needs = front_needs(front, run[key])
        values[seed], bounds[seed] = needs["seconds"] / run["train_seconds"], BOUND[needs["status"]]
    return {
        "median": statistics.median(values.values()) if values else None,
        "seeds": list(values),
        "values": list(values.values()),
        "bounds": list(bounds.values()),
    }


def compare(arm: dict[int, dict], baseline: dict[int, dict]) -> dict:
    """`arm - baseline` on each metric, the seconds and instances ratios, paired over the seeds both have."""
    seeds = sorted(set(arm) & set(baseline))
    result = {"seeds": seeds}
    for name, key in METRICS.items():
        result[name] = paired_interval([arm[s][key] - baseline[s][key] for s in seeds])
    result["instances_ratio"] = paired_interval([arm[s]["boss_instances"] / baseline[s]["boss_instances"] for s in seeds])
    result["disturbed_seeds"] = [s for s in seeds if disturbed(arm[s]) or disturbed(baseline[s])]
    # seconds from the seeds whose two runs were timed with nothing else running only
    timed = [s for s in seeds if s not in result["disturbed_seeds"]]
    result["seconds_ratio"] = paired_interval([arm[s]["train_seconds"] / baseline[s]["train_seconds"] for s in timed])
    return result


def pricing_step_cost(task: str, runs: list[dict]) -> dict | None:
    """The step cost that prices `task`'s counts: timed back to back (`step_cost.py`) where it was, else fitted over
    the suite's `runs` timed alone (which reads as a fixed part any drift between rows timed apart)."""
    return back_to_back_cost(probe_records(STEP_COST_PROBE, task=task)) or step_cost(runs)


def priced_seconds(cost: dict, record: dict) -> float:
    """A run's seconds as the task's step cost ([`step_cost`]) prices its counts (optimizer steps, Boss instances):
    what it costs, read from what this VM's drift cannot change (it can move a run's seconds by a third between
    hours)."""
    return cost["fixed"] * record["optimizer_steps"] + cost["per_instance"] * record["boss_instances"]


def priced_runs(runs: list[dict], cost: dict | None) -> list[dict] | None:
    """`runs` with their seconds priced from their counts ([`priced_seconds`]), so that none is disturbed; runs
    recorded without their steps left out. None where the cost does not split (text)."""
    if cost is None or not cost["separable"]:
        return None
    return [{**r, "train_seconds": priced_seconds(cost, r), "foreign_cpu_seconds": 0.0}
            for r in runs if r.get("optimizer_steps")]  # fmt: skip


def counted_seconds_ratio(arm: dict[int, dict], baseline: dict[int, dict], cost: dict | None) -> dict | None:
    """`arm / baseline` seconds priced from their counts ([`priced_seconds`]), paired over the seeds both have; None
    where the cost does not split (text).

    Example:
        >>> cost = {"fixed": 0.01, "per_instance": 0.001, "separable": True}
        >>> run = lambda steps, n: {"optimizer_steps": steps, "boss_instances": n}
        >>> round(counted_seconds_ratio({0: run(10, 640)}, {0: run(10, 1280)}, cost)["mean"], 3)  # 0.74 / 1.38
        0.536
    """
    if cost is None or not cost["separable"]:
        return None
    counted = [s for s in set(arm) & set(baseline) if arm[s].get("optimizer_steps") and baseline[s].get("optimizer_steps")]
    return paired_interval([priced_seconds(cost, arm[s]) / priced_seconds(cost, baseline[s]) for s in sorted(counted)])


def length_verdict(runs: list[dict], length: float, cost: dict | None = None) -> dict:
    """The default at one recipe length: against the plain run of that length, against random at its kept fractions
    (the plain run itself where the default kept every instance: random is then not trained), and against the front;
    the seconds against the plain run and the front also priced from counts, at `cost` (else at the step cost fitted
    over `runs`)."""
    default = _by_seed(runs, DEFAULT, "length", length)
    plain = _by_seed(runs, PLAIN, "budget", length)
    random = _by_seed(runs, RANDOM, "length", length)
    random_is_plain = [s for s in default if s not in random and s in plain and kept_everything(default[s])]
    random.update({s: plain[s] for s in random_is_plain})
    cost = cost or step_cost(runs)
    priced = priced_runs(runs, cost)
    verdict = {
        "length": length,
        "seeds": sorted(default),
        "vs_plain": {**compare(default, plain), "counted_seconds_ratio": counted_seconds_ratio(default, plain, cost)},
        "vs_random": compare(default, random),
        "random_is_plain": random_is_plain,
        "iso_quality": {name: iso_quality(runs, default, key) for name, key in METRICS.items()},
        "plain_iso_quality": {name: iso_quality(runs, plain, key) for name, key in METRICS.items()},
        "counted_iso_quality": None if priced is None else {
            name: iso_quality(priced, _by_seed(priced, DEFAULT, "length", length), key) for name, key in METRICS.items()},
    }
    noisy = [r for r in default.values() if r.get("kept_noisy_fraction") is not None]
    if noisy:
        verdict["kept_noisy_fraction"] = statistics.fmean(r["kept_noisy_fraction"] for r in noisy)
        verdict["kept_clean_fraction"] = statistics.fmean(r["kept_clean_fraction"] for r in noisy)
    return verdict


def kept_everything(record: dict) -> bool:
    """Whether a default run trained on every instance in every epoch (nothing skipped, nothing flagged): random at
    its fractions is then the plain run of its length.

    Example:
        >>> kept_everything({"kept_fraction_per_epoch": [1.0, 1.0]}), kept_everything({"kept_fraction_per_epoch": [1.0, 0.8]})
        (True, False)
    """
    return all(kept >= 1.0 for kept in record.get("kept_fraction_per_epoch") or [1.0])


def analyse(runs: list[dict], cost: dict | None = None) -> dict:
    """Everything the suite's JSON reports beside its runs: the front, the convergence check, the verdict at each
    recipe length (seconds from counts priced at `cost`, the step cost timed back to back, where there is one), and
    the other arms (perfect filter, the opt-in check, InfoBatch's points) against the converged plain run."""
    seeds = front_seeds(runs)
    plain = _by_seed(runs, PLAIN, "budget", 1.0)
    lengths = sorted({r["length"] for r in runs if r["strategy"] == DEFAULT})
    others = {}
    for strategy in (CLEAN, FILTERED):
        arm = _by_seed(runs, strategy, "point", 1.0)
        if arm:
            others[strategy] = {**compare(arm, plain), "iso_quality": iso_quality(runs, arm, "test_metric")}
    for point in sorted({r["point"] for r in runs if r["strategy"] == INFOBATCH}):
        arm = _by_seed(runs, INFOBATCH, "point", point)
        others[f"{INFOBATCH} {point}"] = {**compare(arm, plain), "iso_quality": iso_quality(runs, arm, "test_metric")}
    return {
        "front": {"plain": summarize_front(runs, seeds or sorted(plain))},
        "convergence": convergence(runs, seeds),
        "verdicts": {str(length): length_verdict(runs, length, cost) for length in lengths},
        "against_plain": others,
    }
