"""The suite's tables, from `benchmarks/results/<task>.json`: README's results table and first screen (who gains
from the defaults today), and benchmarks/README's convergence check and curves."""

import json
from pathlib import Path

from benchmarks.analysis import CLEAN, disturbed, front_of, iso_quality
from benchmarks.names import RESULTS, SUITE_TASKS
from benchmarks.number_format import BOUND_MARK, digits_of, number, seed_values, signed, speedups

STRATEGY_ORDER = ("autoassist", "random", "infobatch", "filtered")


def load_results(folder: Path = RESULTS) -> list[dict]:
    results = {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}
    return [results[name] for name in SUITE_TASKS if name in results and results[name].get("runs")]


def beats_front(result: dict) -> list[str]:
    """The strategy operating points whose median iso-quality speedup in instances is above 1 on every seed run."""
    winners = []
    for strategy, curve in result["iso_quality_curves"].items():
        for entry in curve:
            values = [v for v in entry["instances"]["values"] if v is not None]
            bounds = [b for b in entry["instances"]["bounds"] if b is not None]
            if values and all(v > 1 and b != "at_most" for v, b in zip(values, bounds)):
                winners.append(f"{strategy} at {entry['point']}")
    return winners


def render(results: list[dict]) -> str:
    lines = [
        "Iso-quality speedup at each strategy's default operating point: the Boss instances (and training seconds) "
        "that the plain front of the same seed needs to reach the run's final validation metric, divided by the "
        "run's own. Above 1 beats every shorter plain schedule; ≥ marks a run better than the full plain run (the "
        "front is not extrapolated), ≤ a run worse than the front's smallest budget. Median (per seed, seeds 0, 1, 2).",
        "",
        "| task | strategy | instances ÷ full plain | final validation | − full plain | speedup in instances "
        "| speedup in seconds | noisy / clean kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        digits = digits_of(result)
        for strategy in STRATEGY_ORDER:
            point = result["default_points"].get(strategy)
            entry = next((e for e in result["iso_quality_curves"].get(strategy, []) if e["point"] == point), None)
            if entry is None:
                continue
            kept = "–"
            if entry["kept_noisy_fraction"]["median"] is not None:
                kept = f"{entry['kept_noisy_fraction']['median']:.2f} / {entry['kept_clean_fraction']['median']:.2f}"
            lines.append(
                f"| {result['task']} ({result['metric']}) | {strategy} | "
                f"{number(entry['instances_over_full_plain']['median'], 2)} "
                f"| {seed_values(entry['final_validation'], digits)} "
                f"| {signed([entry['gain_over_full_plain']['median']], digits)} "
                f"| {speedups(entry['instances'])} | {speedups(entry['seconds'])} | {kept} |"
            )
    lines += ["", "Does any strategy beat the plain front (speedup in instances above 1 on every seed run so far)?", ""]
    for result in results:
        winners = beats_front(result)
        seeds_run = sorted({r["seed"] for r in result["runs"]})
        lines.append(
            f"- {result['task']} (seeds {', '.join(map(str, seeds_run))}): "
            + (f"yes: {', '.join(winners)}" if winners else "no")
        )
    lines += [
        "",
        "The plain front (median final validation over seeds at each budget, as a fraction of the recipe's instances):",
        "",
        render_front(results),
    ]
    return "\n".join(lines)


def render_front(results: list[dict]) -> str:
    """The plain front per task: the median final validation over seeds at each budget."""
    budgets = sorted({b for result in results for b in result["plan"]["budgets"]})
    lines = ["| task | " + " | ".join(f"{b:g}" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
    for result in results:
        by_budget = {row["budget"]: row["final_validation"]["median"] for row in result["front"]["plain"]}
        cells = [number(by_budget[b], digits_of(result)) if b in by_budget else "–" for b in budgets]
        lines.append(f"| {result['task']} ({result['metric']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _threaded(result: dict) -> bool:
    """Whether the task's strategy runs were recorded with the Assistant pinned to a thread (the suites before
    2026-12-04), not with the library's default (inside the step on CPU)."""
    return any((r.get("autoassist_config") or {}).get("autoassist_synchronous") is False for r in result["runs"])


def _check_made(run: dict) -> str | None:
    """The plausibility check a run made (its recorded `autoassist_plausibility`, resolved since 2026-12-05)."""
    return (run.get("autoassist_config") or {}).get("autoassist_plausibility")


def _default_is_the_check(result: dict) -> bool:
    """Whether the pairs check reads the task, and so is its default alone (`autoassist_strategy="auto"` resolves to
    `"none"` on a seq2seq set of token-id pairs, 2026-12-05): the task's `filtered` runs made the pairs check."""
    return any(r["strategy"] == "filtered" and _check_made(r) == "pairs" for r in result["runs"])


def _without_pairs_check(result: dict) -> bool:
    """Whether some of the task's AutoAssist runs were recorded without the pairs check on a task it reads: before
    `autoassist_plausibility="auto"` made it on selecting runs (2026-12-05)."""
    return _default_is_the_check(result) and any(
        r["strategy"] == "autoassist" and _check_made(r) != "pairs" for r in result["runs"]
    )


def _full_plain_speedups(result: dict) -> str:
    """The full plain run's own iso-quality speedup in seconds per seed: below 1 where a shorter plain budget already
    reached its metric (a front that plateaus), the yardstick for a run that trains as the full plain run does."""
    values = []
    for seed in result["seeds"]:
        front = front_of(result["runs"], seed)
        full = next((r for r in result["runs"]
                     if r["strategy"] == "plain" and r["seed"] == seed and r["budget"] == 1.0), None)  # fmt: skip
        if full is not None and front:
            values.append(f"{iso_quality(full, front)['seconds']:.2f}")
    return ", ".join(values)


def _at_default(result: dict, strategy: str) -> dict | None:
    point = result["default_points"].get(strategy)
    return next((e for e in result.get("iso_quality_curves", {}).get(strategy, []) if e["point"] == point), None)


def _full_plain(result: dict) -> dict[int, float]:
    """Seed -> the full plain run's final validation metric."""
    full = next((row["final_validation"] for row in result["front"]["plain"] if row["budget"] == 1.0), None)
    values = [] if full is None else full["values"]
    return {seed: v for seed, v in zip(result["seeds"], values) if v is not None}


def _perfect_filter(result: dict) -> str:
    """On a noisy task: what dropping exactly the planted noise reaches on this recipe, per seed (the perfect
    filter: plain on the clean instances only, at the recipe's epochs), against the full plain run and placed on
    the plain front: the yardstick of what dropping the noise can win on it. "" where it was not run."""
    epochs = result.get("schedule", {}).get("num_train_epochs")
    runs = {r["seed"]: r for r in result["runs"]
            if r["strategy"] == CLEAN and r["num_train_epochs"] == epochs and r["final_validation"] is not None}  # fmt: skip
    if not runs:
        return ""
    full, digits = _full_plain(result), digits_of(result)
    values, over, seconds = [], [], []
    for seed, run in sorted(runs.items()):
        if seed not in full:
            continue
        speed = iso_quality(run, front_of(result["runs"], seed))
        values.append(f"{run['final_validation']:.{digits}f}")
        over.append(run["final_validation"] - full[seed])
        seconds.append(f"{BOUND_MARK[speed['bound']]}{speed['seconds']:.2f}")
    if not values:
        return ""
    return (f" The perfect filter (plain on the clean instances only, at the recipe's epochs): {', '.join(values)} "
            f"(− the full plain run {signed(over, digits)}), iso-quality speedup in seconds {', '.join(seconds)}.")


def _noise_cost_won(result: dict, results: list[dict], values: list) -> str:
    """On a noisy task whose clean task the suite also runs: the share of what the noise costs the full plain run
    (the clean task's full plain run minus the noisy one's, per seed) that `values` (per seed) win back; else ""."""
    clean = next((r for r in results if r["task"] == result["task"].removesuffix("-noisy")), None)
    if result.get("noise") is None or clean is None:
        return ""
    noisy_full, clean_full = _full_plain(result), _full_plain(clean)
    won = [
        (v - noisy_full[s]) / (clean_full[s] - noisy_full[s])
        for s, v in zip(result["seeds"], values)
        if v is not None and s in noisy_full and s in clean_full and clean_full[s] != noisy_full[s]
    ]
    if not won:
        return ""
    return (f", winning back {sorted(won)[len(won) // 2]:.2f} ({', '.join(f'{w:.2f}' for w in won)}) of what the "
            f"noise costs it ({clean['task']}'s full plain run − this one's)")


def render_verdict(results: list[dict]) -> str:
    """README's first screen: per task, whether AutoAssist's defaults gain today, from the suite's JSON. A task
    gains when its recipe passed the convergence check and, on every seed, the default beats the plain front in
    seconds and random skipping of the same instances."""
    lines = [
        "Who gains from the defaults today (`autoassist_strategy='auto'`: the pairs check alone on a seq2seq set of "
        "token-id pairs, the Assistant on everything else), measured by the suite against the plain Trainer's whole "
        "compute–quality front and against random skipping of the same instances, paired by seed (generated from "
        "`benchmarks/results/` by `benchmarks/report.py`; details under Benchmarks):",
        "",
    ]
    gains, rows = [], {task: "not measured yet at today's defaults and recipe (the suite resumes)." for task in SUITE_TASKS}
    for result in results:
        task, digits = result["task"], digits_of(result)
        check = result.get("convergence", {}).get("passes")
        recipe = {True: "converged recipe", False: "recipe NOT converged (no speedup claim)", None: "convergence not yet checked"}[check]  # fmt: skip
        entry = _at_default(result, "autoassist")
        if entry is None or not any(v is not None for v in entry["seconds"]["values"]):
            plain_seeds = sorted({r["seed"] for r in result["runs"] if r["strategy"] == "plain"})
            rows[task] = f"not measured at this recipe yet (plain front: seeds {plain_seeds}; {recipe})."
            continue
        seconds = [v for v, b in zip(entry["seconds"]["values"], entry["seconds"]["bounds"]) if v is not None]
        bounds = [b for b in entry["seconds"]["bounds"] if b is not None]
        versus = result["autoassist_minus_random"].get(str(entry["point"]), {"values": []})["values"]
        wins = (check is True and all(v > 1 and b != "at_most" for v, b in zip(seconds, bounds))
                and versus and all(d > 0 for d in versus))  # fmt: skip
        gains += [task] if wins else []
        how = "the Assistant in a thread, not today's default" if _threaded(result) else "the Assistant in the step"
        if _without_pairs_check(result):
            how += "; without the pairs check, recorded before `auto` made it on selecting runs: to be trained again"
        retime = [r for r in result["runs"]
                  if r["strategy"] in ("autoassist", "random") and r.get("point") == entry["point"] and disturbed(r)]  # fmt: skip
        if retime:
            how += f"; {len(retime)} of these runs' seconds disturbed by other work, to be re-timed"
        metric, its = "", "Its" if _default_is_the_check(result) else "The default's"
        if result.get("noise") is not None:  # what the default ends at on noisy data, against the full plain run
            full = _full_plain(result)
            metric = (
                f" {its} {result['metric']}: {seed_values(entry['final_validation'], digits)} against the full "
                "plain run's "
                f"{', '.join(f'{full[s]:.{digits}f}' for s in result['seeds'] if s in full)}"
                + _noise_cost_won(result, results, entry["final_validation"]["values"]) + "."
            )
        rows[task] = (
            ("With `autoassist_strategy='autoassist'` (the Assistant, with the check; not the default here): "
             if _default_is_the_check(result) else "")
            + f"{'**gains**' if wins else 'no gain'}: iso-quality speedup in seconds {speedups(entry['seconds'])}, "
            f"− random {signed(versus, digits) or 'n/a'} ({len(seconds)} seeds; {recipe}; {how}).{metric}"
        )
    checked = []  # tasks where the plausibility check alone beats the full plain run on every seed
    for result in results:  # the plausibility check alone, where the suite ran it
        entry = _at_default(result, "filtered")
        if entry is None or not any(v is not None for v in entry["final_validation"]["values"]):
            continue
        digits, task = digits_of(result), result["task"]
        full = next((row["final_validation"] for row in result["front"]["plain"] if row["budget"] == 1.0), None)
        row = rows[task] if not rows[task].startswith("not measured") else ""
        method = next(_check_made(r) for r in result["runs"] if r["strategy"] == "filtered")
        kept = "misaligned / aligned pairs" if method == "pairs" else "wrong / right labels"
        values = entry["final_validation"]["values"]
        plain = [None] * len(values) if full is None else full["values"]
        if len(plain) >= len(values) and all(v is not None and f is not None and v > f for v, f in zip(values, plain)):
            checked.append(f"the `{method}` check gains {result['metric']} on {task} (every seed)")
        retime = [r for r in result["runs"] if r["strategy"] == "filtered" and disturbed(r)]
        timed = [r for r in result["runs"] if r["strategy"] == "filtered" and r.get("plausibility_seconds") is not None
                 and not disturbed(r)]  # fmt: skip
        cost = ""
        if timed:  # recorded since 2026-12-04: the check's own seconds, inside the run's
            seconds = sorted(r["plausibility_seconds"] for r in timed)
            shares = sorted(r["plausibility_seconds"] / r["train_seconds"] for r in timed)
            cost = (f", the check itself {seconds[0]:.0f}–{seconds[-1]:.0f} s of each run ({shares[0]:.1%}–"
                    f"{shares[-1]:.1%} of its training seconds)")
        default = _default_is_the_check(result)
        alone = (f"The default (`'auto'`: the `{method}` check alone, strategy `none`)" if default
                 else f"With `autoassist_plausibility='{method}'` alone (strategy `none`)")  # fmt: skip
        line = (
            f"{alone}: {result['metric']} {seed_values(entry['final_validation'], digits)} against the full plain run's "
            f"{'–' if full is None else seed_values(full, digits)}, iso-quality speedup in seconds "
            f"{speedups(entry['seconds'])}"
            + (f" (the full plain run's own: {_full_plain_speedups(result)})" if default and result.get("seeds") else "")
            + ("" if entry["kept_noisy_fraction"]["median"] is None else
               f", {kept} kept {entry['kept_noisy_fraction']['median']:.2f} / "
               f"{entry['kept_clean_fraction']['median']:.2f}")
            + (f", gap to the perfect filter won {entry['gap_won']['median']:.2f}" if entry.get("gap_won", {}).get("median") is not None else "")  # noqa: E501
            + _noise_cost_won(result, results, values)
            + cost
            + (f" ({len(retime)} of these runs' seconds disturbed by other work, to be re-timed)" if retime else "")
            + "."
        )
        rows[task] = " ".join([line, row] if default else [row, line]).strip() + _perfect_filter(result)
    lines += [f"- {task}: {row}" for task, row in rows.items()]
    verdict = ("AutoAssist gains on " + ", ".join(gains)) if gains else "no task gains speed on every seed yet"
    lines += ["", f"In short: {'; '.join([verdict, *checked])}."]
    return "\n".join(lines)


def load_schedules(folder: Path = RESULTS / "schedules") -> list[dict]:
    """Plain fronts of recipes measured before the suite moved to its current one (kept as the reason it moved)."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def render_convergence(results: list[dict], schedules: list[dict] = ()) -> str:
    """benchmarks/README.md: the convergence check per task and recipe (the suite's, then earlier schedules), and on
    noisy tasks the perfect filter's ceiling and the share of the gap to it that each strategy's default wins."""
    lines = [
        "| task | epochs | plain at the budget before 1.0 | full plain | gain (median) | seed spread | converged | perfect filter "
        f"(ceiling) | gap won: {' / '.join(STRATEGY_ORDER)} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in [*results, *schedules]:
        digits, check = digits_of(result), result.get("convergence")
        if check is None:
            continue
        rows = {row["budget"]: row["final_validation"] for row in result["front"]["plain"]}
        before, full = rows.get(check["previous_budget"]), rows.get(1.0)
        ceiling, won = "–", "–"
        if "clean_ceiling" in result:
            ceiling = seed_values(result["clean_ceiling"], digits)
            shares = []
            for strategy in STRATEGY_ORDER:
                entry = _at_default(result, strategy)
                gap = None if entry is None else entry.get("gap_won")
                shares.append("–" if gap is None or gap["median"] is None else f"{gap['median']:.2f}")
            won = " / ".join(shares)
        spread = "–" if check["seed_spread"] is None else number(check["seed_spread"], digits)
        lines.append(
            f"| {result['task']} | {result['schedule']['num_train_epochs']:g} | {'–' if before is None else seed_values(before, digits)} "
            f"| {'–' if full is None else seed_values(full, digits)} | {number(check['gain']['median'], digits)} "
            f"| {spread} | {({True: 'yes', False: 'no', None: 'not yet'})[check['passes']]} | {ceiling} | {won} |"
        )
    return "\n".join(lines)


def render_curves(results: list[dict]) -> str:
    """benchmarks/README.md: every operating point of every strategy, and autoassist - random at each."""
    lines = [
        "| task | strategy | point | instances ÷ full plain | final validation | speedup in instances | speedup in "
        "seconds | noisy / clean kept | autoassist − random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        digits = digits_of(result)
        for strategy in STRATEGY_ORDER:
            for entry in result["iso_quality_curves"].get(strategy, []):
                kept = "–"
                if entry["kept_noisy_fraction"]["median"] is not None:
                    kept = f"{entry['kept_noisy_fraction']['median']:.2f} / {entry['kept_clean_fraction']['median']:.2f}"
                paired = "–"
                if strategy == "autoassist":
                    diff = result["autoassist_minus_random"].get(str(entry["point"]))
                    if diff and diff["values"]:
                        paired = f"{signed([diff['median']], digits)} ({signed(diff['values'], digits)})"
                lines.append(
                    f"| {result['task']} | {strategy} | {entry['point']} "
                    f"| {number(entry['instances_over_full_plain']['median'], 2)} "
                    f"| {seed_values(entry['final_validation'], digits)} | {speedups(entry['instances'])} "
                    f"| {speedups(entry['seconds'])} | {kept} | {paired} |"
                )
    notes = [note for result in results for note in _same_runs(result)]
    return "\n".join(lines + ([""] + notes if notes else []))


def _same_runs(result: dict) -> list[str]:
    """Notes on AutoAssist's points that trained identically on every seed (the same instances, the same metric):
    under `autoassist_confidence='skill'` the acceptance floor is `max(base_prob, 1 - skill)`, so a `base_prob` below
    `1 - skill` changes nothing."""
    runs = [r for r in result["runs"] if r["strategy"] == "autoassist"]
    points = sorted({r["point"] for r in runs})
    notes = []
    for low, high in zip(points, points[1:]):
        by_seed = {}
        for r in runs:
            if r["point"] in (low, high):
                by_seed.setdefault(r["seed"], []).append(r)
        pairs = [group for group in by_seed.values() if len(group) == 2]
        if pairs and all(
            (a["boss_instances"], a["final_validation"]) == (b["boss_instances"], b["final_validation"]) for a, b in pairs
        ):
            skills = [r["assistant_skill"] for group in pairs for r in group if r.get("assistant_skill") is not None]
            why = ""
            if skills:
                why = (f": the Assistant's skill ended at {min(skills):.2f}–{max(skills):.2f}, so the acceptance floor "
                       f"`max(base_prob, 1 − skill)` was `1 − skill` at both")  # fmt: skip
            seeds = "both seeds" if len(pairs) == 2 else f"all {len(pairs)} seeds"
            notes.append(
                f"- {result['task']}: AutoAssist at {low} and {high} trained the same instances to the same metric on "
                f"{seeds}{why}."
            )
    return notes
