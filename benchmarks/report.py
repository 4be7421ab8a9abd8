#!/usr/bin/env python
"""README's benchmark tables, generated from `benchmarks/results/<task>.json`, and the curve, ablation and signal
tables of benchmarks/README.md, from the same JSON, `benchmarks/results/ablation-<task>.json`,
`benchmarks/results/signals-<task>.json` and `benchmarks/results/plausibility-translation*.json` (never typed by hand).

    python benchmarks/report.py            # rewrites the parts of both READMEs between their markers
    python benchmarks/report.py --check    # exits 1 if either README is not what the JSON gives
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.analysis import disturbed, pair_by_seed  # noqa: E402
from benchmarks.names import PLAUSIBILITY_CORPORA, SUITE_TASKS  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
BEGIN, END = "<!-- benchmark-results -->", "<!-- /benchmark-results -->"
ABLATION_BEGIN, ABLATION_END = "<!-- ablation-results -->", "<!-- /ablation-results -->"
CURVES_BEGIN, CURVES_END = "<!-- curve-results -->", "<!-- /curve-results -->"
SIGNALS_BEGIN, SIGNALS_END = "<!-- signal-results -->", "<!-- /signal-results -->"
VERDICT_BEGIN, VERDICT_END = "<!-- who-gains -->", "<!-- /who-gains -->"
CONVERGENCE_BEGIN, CONVERGENCE_END = "<!-- convergence-results -->", "<!-- /convergence-results -->"
OVERHEAD_BEGIN, OVERHEAD_END = "<!-- overhead-results -->", "<!-- /overhead-results -->"
PLAUSIBILITY_BEGIN, PLAUSIBILITY_END = "<!-- plausibility-results -->", "<!-- /plausibility-results -->"
V2_BEGIN, V2_END = "<!-- v2-results -->", "<!-- /v2-results -->"
TRANSLATION_EXAMPLE_BEGIN, TRANSLATION_EXAMPLE_END = "<!-- translation-example -->", "<!-- /translation-example -->"
VISION_EXAMPLE_BEGIN, VISION_EXAMPLE_END = "<!-- vision-example -->", "<!-- /vision-example -->"
ASSISTANT_DIM_BEGIN, ASSISTANT_DIM_END = "<!-- assistant-dim -->", "<!-- /assistant-dim -->"
PAIRS_CHECK_BEGIN, PAIRS_CHECK_END = "<!-- pairs-check -->", "<!-- /pairs-check -->"
V2 = RESULTS / "archive" / "v2-thread"
STRATEGY_ORDER = ("autoassist", "random", "infobatch", "filtered")
BOUND_MARK = {"exact": "", "at_most": "≤", "at_least": "≥", None: ""}


def _number(value, digits: int = 4) -> str:
    return "never" if value is None else f"{value:.{digits}f}"


def _signed(values: list, digits: int = 4) -> str:
    return ", ".join("n/a" if v is None else f"{v:+.{digits}f}" for v in values)


def _digits(result: dict) -> int:
    return 2 if result["metric"] == "bleu" else 4


def load_results(folder: Path = RESULTS) -> list[dict]:
    results = {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}
    return [results[name] for name in SUITE_TASKS if name in results and results[name].get("runs")]


def _speedups(entry: dict) -> str:
    """`median (seed, seed, seed)`, each seed marked ≤ / ≥ where the front only bounds it."""
    values = [
        "–" if v is None else f"{BOUND_MARK[b]}{v:.2f}" for v, b in zip(entry["values"], entry["bounds"])
    ]
    median = "–" if entry["median"] is None else f"{entry['median']:.2f}"
    return f"{median} ({', '.join(values)})"


def _seed_values(entry: dict, digits: int) -> str:
    return f"{_number(entry['median'], digits)} ({', '.join('–' if v is None else f'{v:.{digits}f}' for v in entry['values'])})"


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
        digits = _digits(result)
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
                f"{_number(entry['instances_over_full_plain']['median'], 2)} "
                f"| {_seed_values(entry['final_validation'], digits)} "
                f"| {_signed([entry['gain_over_full_plain']['median']], digits)} "
                f"| {_speedups(entry['instances'])} | {_speedups(entry['seconds'])} | {kept} |"
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
        cells = [_number(by_budget[b], _digits(result)) if b in by_budget else "–" for b in budgets]
        lines.append(f"| {result['task']} ({result['metric']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _threaded(result: dict) -> bool:
    """Whether the task's strategy runs were recorded with the Assistant pinned to a thread (the suites before
    2026-12-04), not with the library's default (inside the step on CPU)."""
    return any((r.get("autoassist_config") or {}).get("autoassist_synchronous") is False for r in result["runs"])


def _check_made(run: dict) -> str | None:
    """The plausibility check a run made (its recorded `autoassist_plausibility`, resolved since 2026-12-05)."""
    return (run.get("autoassist_config") or {}).get("autoassist_plausibility")


def _without_pairs_check(result: dict) -> bool:
    """Whether some of the task's AutoAssist runs were recorded without the pairs check on a task it reads: before
    it became the seq2seq default (`autoassist_plausibility="auto"`, 2026-12-05)."""
    reads_pairs = any(r["strategy"] == "filtered" and _check_made(r) == "pairs" for r in result["runs"])
    return reads_pairs and any(r["strategy"] == "autoassist" and _check_made(r) != "pairs" for r in result["runs"])


def _at_default(result: dict, strategy: str) -> dict | None:
    point = result["default_points"].get(strategy)
    return next((e for e in result.get("iso_quality_curves", {}).get(strategy, []) if e["point"] == point), None)


def _full_plain(result: dict) -> dict[int, float]:
    """Seed -> the full plain run's final validation metric."""
    full = next((row["final_validation"] for row in result["front"]["plain"] if row["budget"] == 1.0), None)
    values = [] if full is None else full["values"]
    return {seed: v for seed, v in zip(result["seeds"], values) if v is not None}


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
        "Who gains from AutoAssist's defaults today, measured by the suite against the plain Trainer's whole "
        "compute–quality front and against random skipping of the same instances, paired by seed (generated from "
        "`benchmarks/results/` by `benchmarks/report.py`; details under Benchmarks):",
        "",
    ]
    gains, rows = [], {task: "not measured yet at today's defaults and recipe (the suite resumes)." for task in SUITE_TASKS}
    for result in results:
        task, digits = result["task"], _digits(result)
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
            how += "; without the pairs check, recorded before it became the default: to be trained again"
        retime = [r for r in result["runs"]
                  if r["strategy"] in ("autoassist", "random") and r.get("point") == entry["point"] and disturbed(r)]  # fmt: skip
        if retime:
            how += f"; {len(retime)} of these runs' seconds disturbed by other work, to be re-timed"
        metric = ""
        if result.get("noise") is not None:  # what the default ends at on noisy data, against the full plain run
            full = _full_plain(result)
            metric = (
                f" The default's {result['metric']}: {_seed_values(entry['final_validation'], digits)} against the full "
                "plain run's "
                f"{', '.join(f'{full[s]:.{digits}f}' for s in result['seeds'] if s in full)}"
                + _noise_cost_won(result, results, entry["final_validation"]["values"]) + "."
            )
        rows[task] = (
            f"{'**gains**' if wins else 'no gain'}: iso-quality speedup in seconds {_speedups(entry['seconds'])}, "
            f"− random {_signed(versus, digits) or 'n/a'} ({len(seconds)} seeds; {recipe}; {how}).{metric}"
        )
    checked = []  # tasks where the plausibility check alone beats the full plain run on every seed
    for result in results:  # the plausibility check alone, where the suite ran it
        entry = _at_default(result, "filtered")
        if entry is None or not any(v is not None for v in entry["final_validation"]["values"]):
            continue
        digits, task = _digits(result), result["task"]
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
        rows[task] = (row + " " if row else "") + (
            f"With `autoassist_plausibility='{method}'` alone (strategy `none`): {result['metric']} "
            f"{_seed_values(entry['final_validation'], digits)} against the full plain run's "
            f"{'–' if full is None else _seed_values(full, digits)}, iso-quality speedup in seconds "
            f"{_speedups(entry['seconds'])}"
            + ("" if entry["kept_noisy_fraction"]["median"] is None else
               f", {kept} kept {entry['kept_noisy_fraction']['median']:.2f} / "
               f"{entry['kept_clean_fraction']['median']:.2f}")
            + (f", gap to the perfect filter won {entry['gap_won']['median']:.2f}" if entry.get("gap_won", {}).get("median") is not None else "")  # noqa: E501
            + _noise_cost_won(result, results, values)
            + cost
            + (f" ({len(retime)} of these runs' seconds disturbed by other work, to be re-timed)" if retime else "")
            + "."
        )
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
        digits, check = _digits(result), result.get("convergence")
        if check is None:
            continue
        rows = {row["budget"]: row["final_validation"] for row in result["front"]["plain"]}
        before, full = rows.get(check["previous_budget"]), rows.get(1.0)
        ceiling, won = "–", "–"
        if "clean_ceiling" in result:
            ceiling = _seed_values(result["clean_ceiling"], digits)
            shares = []
            for strategy in STRATEGY_ORDER:
                entry = _at_default(result, strategy)
                gap = None if entry is None else entry.get("gap_won")
                shares.append("–" if gap is None or gap["median"] is None else f"{gap['median']:.2f}")
            won = " / ".join(shares)
        spread = "–" if check["seed_spread"] is None else _number(check["seed_spread"], digits)
        lines.append(
            f"| {result['task']} | {result['schedule']['num_train_epochs']:g} | {'–' if before is None else _seed_values(before, digits)} "
            f"| {'–' if full is None else _seed_values(full, digits)} | {_number(check['gain']['median'], digits)} "
            f"| {spread} | {({True: 'yes', False: 'no', None: 'not yet'})[check['passes']]} | {ceiling} | {won} |"
        )
    return "\n".join(lines)


def render_overhead(folder: Path = RESULTS) -> str:
    """The cost of choosing (`overhead.py`): per model, `none` over plain in throughput and `autoassist` over
    `random` in seconds per Boss instance, median (per repeat), and the Assistant's share of the CPU."""
    path = folder / "overhead.json"
    if not path.exists():
        return "(no overhead measurement committed)"
    result = json.loads(path.read_text())
    lines = [
        f"`{result['command']}` at commit `{result['commit'][:7]}`, {result['repeats']} repeats (median of the "
        "ratios of medians; aims: `none` ≥ 0.98 × plain, `autoassist` ≤ 1.03 × `random`):",
        "",
        "| model | none ÷ plain throughput | autoassist ÷ random seconds | Assistant CPU share |",
        "|---|---|---|---|",
    ]
    for name, model in result["models"].items():
        lines.append(
            f"| {name} | {model['none_over_plain_throughput']['median']:.3f} "
            f"| {model['autoassist_over_random_seconds']['median']:.3f} | {model['assistant_cpu_share']['median']:.3f} |"
        )
    return "\n".join(lines)


# the examples' side-by-side runs whose rows README shows: file in benchmarks/results, the metric's key and header,
# the trainers' names
EXAMPLES = {
    "vision": ("vision_fashion_mnist.json", "test_accuracy", "test accuracy", 4, ("`Trainer`", "`AutoAssistTrainer`")),
    "translation": ("translation_multi30k_en_de.json", "test_bleu", "test BLEU", 2,
                    ("`Seq2SeqTrainer`", "`AutoAssistSeq2SeqTrainer`")),
}  # fmt: skip


def render_example(example: str, folder: Path = RESULTS) -> str:
    """README: an example's two trainers, from the `comparison.json` the example wrote (copied to benchmarks/results)."""
    file_name, key, header, digits, (plain_name, autoassist_name) = EXAMPLES[example]
    path = folder / file_name
    if not path.exists():
        return f"(no {example} example result committed)"
    rows = {row["trainer"]: row for row in json.loads(path.read_text())}
    names = {"plain": f"plain {plain_name}", "autoassist": autoassist_name}
    lines = [
        f"| trainer | {header} | train seconds | optimizer steps | kept in last epoch | Assistant seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("plain", "autoassist"):
        row = rows[name]
        lines.append(
            f"| {names[name]} | {row[key]:.{digits}f} | {row['train_seconds']:.0f} | {row['optimizer_steps']} "
            f"| {row['kept_fraction_last_epoch']:.3f} | {row.get('assistant_seconds', 0.0):.1f} |"
        )
    plain, autoassist = rows["plain"], rows["autoassist"]
    difference = autoassist[key] - plain[key]
    unit = "BLEU" if key == "test_bleu" else "accuracy"
    signature = f"sacreBLEU `{plain['sacrebleu_signature']}`. " if "sacrebleu_signature" in plain else ""
    lines += [
        "",
        f"{signature}AutoAssist took {autoassist['optimizer_steps'] / plain['optimizer_steps']:.0%} of the optimizer "
        f"steps in {autoassist['train_seconds'] / plain['train_seconds']:.0%} of the time and ended "
        f"{abs(difference):.{digits}f} {unit} {'higher' if difference > 0 else 'lower'}.",
    ]
    return "\n".join(lines)


def render_assistant_dim(folder: Path = RESULTS) -> str:
    """README: the bag-of-tokens Assistant's accuracy per width and step size (`assistant_dim.py`)."""
    path = folder / "assistant_dim.json"
    if not path.exists():
        return "(no Assistant width measurement committed)"
    result = json.loads(path.read_text())
    rows = result["rows"]
    rates = sorted({row["lr"] for row in rows})
    majority = rows[0]["majority_baseline"]
    lines = [
        f"`{result['command']}`: accuracy over the second half of the stream; always answering the majority label "
        f"scores {majority:.3f}.",
        "",
        "| `autoassist_assistant_dim` | " + " | ".join(f"lr {rate:g}" for rate in rates) + " | parameters |",
        "|---" * (len(rates) + 2) + "|",
    ]
    for dim in sorted({row["dim"] for row in rows}):
        cells = {row["lr"]: row for row in rows if row["dim"] == dim}
        accuracy = " | ".join(f"{cells[rate]['accuracy_second_half']:.3f}" if rate in cells else "–" for rate in rates)
        parameters = next(iter(cells.values()))["parameters"]
        lines.append(f"| {dim} | {accuracy} | {parameters / 1000:.0f}k |")
    return "\n".join(lines)


def render_curves(results: list[dict]) -> str:
    """benchmarks/README.md: every operating point of every strategy, and autoassist - random at each."""
    lines = [
        "| task | strategy | point | instances ÷ full plain | final validation | speedup in instances | speedup in "
        "seconds | noisy / clean kept | autoassist − random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        digits = _digits(result)
        for strategy in STRATEGY_ORDER:
            for entry in result["iso_quality_curves"].get(strategy, []):
                kept = "–"
                if entry["kept_noisy_fraction"]["median"] is not None:
                    kept = f"{entry['kept_noisy_fraction']['median']:.2f} / {entry['kept_clean_fraction']['median']:.2f}"
                paired = "–"
                if strategy == "autoassist":
                    diff = result["autoassist_minus_random"].get(str(entry["point"]))
                    if diff and diff["values"]:
                        paired = f"{_signed([diff['median']], digits)} ({_signed(diff['values'], digits)})"
                lines.append(
                    f"| {result['task']} | {strategy} | {entry['point']} "
                    f"| {_number(entry['instances_over_full_plain']['median'], 2)} "
                    f"| {_seed_values(entry['final_validation'], digits)} | {_speedups(entry['instances'])} "
                    f"| {_speedups(entry['seconds'])} | {kept} | {paired} |"
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


def render_ablation(folder: Path = RESULTS) -> str:
    """One row per task and variant: its options, kept fraction, final validation per seed and the paired
    difference to random skipping at the variant's own kept fractions."""
    lines = [
        "| task | variant | options | seeds | kept after warmup | Assistant accuracy | final validation | random at the same kept fractions | variant − random (median; per seed) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in SUITE_TASKS:
        path = folder / f"ablation-{task}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        digits = 2 if result["metric"] == "bleu" else 4
        paper = result.get("paper_rule", {})  # options are shown as changes from it
        for name, options in result["variants"].items():
            pairs = pair_by_seed(result["runs"], variant=name)
            seeds = list(pairs)
            if not seeds:
                continue
            ours = [pairs[s]["autoassist"] for s in seeds]
            theirs = [pairs[s]["random"] for s in seeds]
            kept = [sum(r["kept_fraction_per_epoch"][1:]) / max(1, len(r["kept_fraction_per_epoch"]) - 1) for r in ours]
            accuracy = [r["assistant_accuracy"] for r in ours if r.get("assistant_accuracy") is not None]
            diffs = [a["final_validation"] - b["final_validation"] for a, b in zip(ours, theirs)]
            changed = {k: v for k, v in options.items() if paper.get(k, v) != v or k not in paper}
            shown = ", ".join(f"`{k.removeprefix('autoassist_')}={v}`" for k, v in changed.items()) or "(the paper's)"
            lines.append(
                f"| {task} ({result['metric']}) | {name} | {shown} | {', '.join(map(str, seeds))} "
                f"| {_median(kept):.2f} | {_number(_median(accuracy) if accuracy else None, 2)} "
                f"| {', '.join(_number(r['final_validation'], digits) for r in ours)} "
                f"| {', '.join(_number(r['final_validation'], digits) for r in theirs)} "
                f"| {_signed([_median(diffs)], digits)} ({_signed(diffs, digits)}) |"
            )
    return "\n".join(lines)


def render_signals(folder: Path = RESULTS) -> str:
    """Per task and signal (`signals.py`): signal − random at the same kept fractions per seed, the kept fractions
    of noisy / clean instances, and the iso-quality speedup in instances, median (per seed)."""
    studies = {task: json.loads((folder / f"signals-{task}.json").read_text()) for task in SUITE_TASKS
               if (folder / f"signals-{task}.json").exists()}  # fmt: skip
    signals = list(dict.fromkeys(name for study in studies.values() for name in study["summary"]))
    lines = [f"| task | {' | '.join(signals)} |", "|---|" + "---|" * len(signals)]
    for task, study in studies.items():
        digits = 2 if study["metric"] == "bleu" else 4
        cells = []
        for name in signals:
            summary = study["summary"].get(name)
            if not summary or not summary["seeds"]:
                cells.append("–")
                continue
            cell = f"{_signed(summary['minus_random']['values'], digits)}"
            if summary["kept_noisy_fraction"]["median"] is not None:
                cell += f" ({summary['kept_noisy_fraction']['median']:.2f} / {summary['kept_clean_fraction']['median']:.2f})"
            iso = summary["iso_quality_instances"]
            cell += f"; iso {_number(iso['median'], 2)} ({', '.join(_number(v, 2) for v in iso['values'])})"
            cells.append(cell)
        metric = " (BLEU)" if study["metric"] == "bleu" else ""
        lines.append(f"| {task}{metric} | {' | '.join(cells)} |")
    return "\n".join(lines)


# studies of an earlier version of the check, kept in the table as what the current one is compared with
ARCHIVED_PLAUSIBILITY = (("Multi30k en-de, one round (until 2026-12-04)", "archive/plausibility-translation-one-round.json"),)


def _plausibility_studies(folder: Path, archived: bool = False) -> list[tuple[str, dict]]:
    """(corpus name, the study's JSON) for each corpus studied: at the suite's size, then at the other sizes studied
    (`plausibility.py --train_samples N` writes `<file>-N.json`), smallest first; with `archived`, then the earlier
    versions' studies."""
    studies = []
    for corpus, file_name in PLAUSIBILITY_CORPORA.values():
        stem = file_name.removesuffix(".json")
        sized = sorted(folder.glob(f"{stem}-[0-9]*.json"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
        for path in [folder / file_name, *sized]:
            if path.exists():
                study = json.loads(path.read_text())
                name = corpus if path.name == file_name else f"{corpus}, {study['train_pairs']:,} pairs"
                studies.append((name, study))
    for name, file_name in ARCHIVED_PLAUSIBILITY if archived else ():
        if (folder / file_name).exists():
            studies.append((name, json.loads((folder / file_name).read_text())))
    return studies


def render_plausibility(folder: Path = RESULTS) -> str:
    """benchmarks/README.md: what the plausibility check finds per corpus and kind and rate of misalignment
    (`plausibility.py`), median over its seeds."""
    keys = ("implausible_share", "flagged_fraction", "auc", "precision", "recall", "flagged_noisy", "flagged_clean",
            "seconds")  # fmt: skip
    lines = [
        "| corpus | misalignment | seeds | estimated share | flagged | AUC | precision | recall | flagged misaligned | "
        "flagged aligned | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for corpus, study in _plausibility_studies(folder, archived=True):
        cells = study["cells"]
        for noise, fraction in dict.fromkeys((c["noise"], c["fraction"]) for c in cells):
            group = [c for c in cells if (c["noise"], c["fraction"]) == (noise, fraction)]
            name = {"none": "none (clean data)", "pairs": "re-paired", "shifted pairs": "shifted in blocks"}[noise]
            row = [corpus, name if noise == "none" else f"{name}, {fraction:.0%}", str(len(group))]
            for key in keys:
                values = [c[key] for c in group if c.get(key) is not None]
                digits = 1 if key == "seconds" else (4 if key == "auc" else 3)
                row.append("–" if not values else f"{_median(values):.{digits}f}")
            lines.append("| " + " | ".join(row) + " |")
    if len(lines) == 2:
        return "Not measured yet: `python benchmarks/plausibility.py --data_dir ../shared/data`."
    return "\n".join(lines)


def render_pairs_check(results: list[dict], folder: Path = RESULTS) -> str:
    """README: the pairs check per corpus in one line each (the ranges over the kinds and rates of misalignment of the
    study's median rows), and its seconds against the suite's full plain translation run (median over seeds)."""
    by_task = {result["task"]: result for result in results}
    full_runs = [r["train_seconds"] for r in by_task.get("translation", {}).get("runs", [])
                 if r["strategy"] == "plain" and r.get("budget") == 1.0 and not disturbed(r)]  # fmt: skip
    lines = []
    for corpus, study in _plausibility_studies(folder):
        cells, threads = study["cells"], study.get("torch_threads")
        groups = {}
        for cell in cells:
            groups.setdefault((cell["noise"], cell["fraction"]), []).append(cell)

        def spread(key: str, noisy: bool = True) -> tuple[float, float]:
            medians = [_median([c[key] for c in group]) for (noise, _), group in groups.items() if (noise != "none") == noisy]
            return min(medians), max(medians)

        clean = spread("flagged_fraction", noisy=False)[1]
        recall, auc, aligned = spread("recall"), spread("auc"), spread("flagged_clean")
        seconds = (min(c["seconds"] for c in cells), max(c["seconds"] for c in cells))
        share = ""
        if full_runs:
            plain = _median(full_runs)
            share = f" ({seconds[0] / plain:.1%}–{seconds[1] / plain:.1%} of the suite's full plain translation run, {plain:.0f} s)"
            suite_pairs = by_task["translation"].get("data", {}).get("train")
            if suite_pairs and study.get("train_pairs", suite_pairs) != suite_pairs:  # the Boss's run grows with them
                plain *= study["train_pairs"] / suite_pairs
                share = (f" ({seconds[0] / plain:.1%}–{seconds[1] / plain:.1%} of the suite's full plain translation run "
                         f"scaled to as many pairs, {plain:.0f} s)")
        lines.append(
            f"- {corpus} ({len(cells) // len(groups)} seeds): clean pairs flagged {clean:.1%}; over re-paired and "
            f"shifted targets at 25% and 10%, misaligned pairs found {recall[0]:.2f}–{recall[1]:.2f}, AUC "
            f"{auc[0]:.3f}–{auc[1]:.3f}, aligned pairs flagged {aligned[0]:.1%}–{aligned[1]:.1%}; "
            f"{seconds[0]:.0f}–{seconds[1]:.0f} s per check on {threads} thread{'s' if threads != 1 else ''}{share}."
        )
    return "\n".join(lines) or "(no plausibility study committed)"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def replace_section(text: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    if begin not in text or end not in text:
        raise ValueError(f"The README has no {begin} ... {end} section to fill.")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    parser.add_argument("--benchmarks_readme", default=str(REPO / "benchmarks" / "README.md"))
    args = parser.parse_args(argv)
    readme, benchmarks_readme = Path(args.readme), Path(args.benchmarks_readme)
    results = load_results()
    benchmarks_text = replace_section(benchmarks_readme.read_text(), render_ablation(), ABLATION_BEGIN, ABLATION_END)
    benchmarks_text = replace_section(benchmarks_text, render_signals(), SIGNALS_BEGIN, SIGNALS_END)
    benchmarks_text = replace_section(benchmarks_text, render_convergence(results, load_schedules()), CONVERGENCE_BEGIN, CONVERGENCE_END)
    benchmarks_text = replace_section(benchmarks_text, render_overhead(), OVERHEAD_BEGIN, OVERHEAD_END)
    benchmarks_text = replace_section(benchmarks_text, render_plausibility(), PLAUSIBILITY_BEGIN, PLAUSIBILITY_END)
    archived = load_results(V2)
    v2_tables = f"{render_front(archived)}\n\n{render_curves(archived)}"
    benchmarks_text = replace_section(benchmarks_text, v2_tables, V2_BEGIN, V2_END)
    readme_text = replace_section(readme.read_text(), render(results))
    readme_text = replace_section(readme_text, render_verdict(results), VERDICT_BEGIN, VERDICT_END)
    readme_text = replace_section(readme_text, render_overhead(), OVERHEAD_BEGIN, OVERHEAD_END)
    readme_text = replace_section(
        readme_text, render_example("translation"), TRANSLATION_EXAMPLE_BEGIN, TRANSLATION_EXAMPLE_END
    )
    readme_text = replace_section(readme_text, render_example("vision"), VISION_EXAMPLE_BEGIN, VISION_EXAMPLE_END)
    readme_text = replace_section(readme_text, render_assistant_dim(), ASSISTANT_DIM_BEGIN, ASSISTANT_DIM_END)
    readme_text = replace_section(readme_text, render_pairs_check(results), PAIRS_CHECK_BEGIN, PAIRS_CHECK_END)
    updates = {
        readme: readme_text,
        benchmarks_readme: replace_section(benchmarks_text, render_curves(results), CURVES_BEGIN, CURVES_END),
    }
    if args.check:
        stale = [path.name for path, text in updates.items() if text != path.read_text()]
        if stale:
            print(f"{', '.join(stale)}: tables differ from benchmarks/results/*.json; run benchmarks/report.py")
            return 1
        return 0
    for path, text in updates.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
