"""The studies' tables, from their JSON in `benchmarks/results/`: the overhead benchmark, the examples' runs, the
Assistant's width, the ablation, the signals study and the plausibility study (with what the check costs a suite
run)."""

import json
from pathlib import Path

from benchmarks.analysis import disturbed, pair_by_seed
from benchmarks.names import PLAUSIBILITY_CORPORA, RESULTS, SUITE_TASKS
from benchmarks.number_format import median, number, signed

# the examples' side-by-side runs whose rows README shows: file in benchmarks/results, the metric's key and header,
# the trainers' names
EXAMPLES = {
    "vision": ("vision_fashion_mnist.json", "test_accuracy", "test accuracy", 4, ("`Trainer`", "`AutoAssistTrainer`")),
    "translation": ("translation_multi30k_en_de.json", "test_bleu", "test BLEU", 2,
                    ("`Seq2SeqTrainer`", "`AutoAssistSeq2SeqTrainer`")),
}  # fmt: skip


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
                f"| {median(kept):.2f} | {number(median(accuracy) if accuracy else None, 2)} "
                f"| {', '.join(number(r['final_validation'], digits) for r in ours)} "
                f"| {', '.join(number(r['final_validation'], digits) for r in theirs)} "
                f"| {signed([median(diffs)], digits)} ({signed(diffs, digits)}) |"
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
            cell = f"{signed(summary['minus_random']['values'], digits)}"
            if summary["kept_noisy_fraction"]["median"] is not None:
                cell += f" ({summary['kept_noisy_fraction']['median']:.2f} / {summary['kept_clean_fraction']['median']:.2f})"
            iso = summary["iso_quality_instances"]
            cell += f"; iso {number(iso['median'], 2)} ({', '.join(number(v, 2) for v in iso['values'])})"
            cells.append(cell)
        metric = " (BLEU)" if study["metric"] == "bleu" else ""
        lines.append(f"| {task}{metric} | {' | '.join(cells)} |")
    return "\n".join(lines)


# studies of an earlier version of the check, kept in the table as what the current one is compared with
ARCHIVED_PLAUSIBILITY = (("Multi30k en-de, one round (until 2026-12-04)", "archive/plausibility-translation-one-round.json"),)


def _plausibility_studies(folder: Path, archived: bool = False) -> list[tuple[str, dict]]:
    """(corpus name, the study's JSON) for each corpus studied: at the suite's size, then at the other sizes studied
    (`plausibility.py --train_samples N` writes `<file>-N.json`), smallest first, then with other numbers of rounds
    (`--rounds N`: `<file>-roundsN.json`); with `archived`, then the earlier versions' studies."""
    studies = []
    for corpus, file_name in PLAUSIBILITY_CORPORA.values():
        stem = file_name.removesuffix(".json")
        sized = sorted(folder.glob(f"{stem}-[0-9]*.json"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
        rounds = sorted(folder.glob(f"{stem}-rounds[0-9]*.json"))
        for path in [folder / file_name, *sized, *rounds]:
            if path.exists():
                study = json.loads(path.read_text())
                name = corpus
                if path in sized:
                    name = f"{corpus}, {study['train_pairs']:,} pairs"
                elif path in rounds:
                    name = f"{corpus}, `autoassist_plausibility_rounds={study['rounds']}`"
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
                row.append("–" if not values else f"{median(values):.{digits}f}")
            lines.append("| " + " | ".join(row) + " |")
    if len(lines) == 2:
        return "Not measured yet: `python benchmarks/plausibility.py --data_dir ../shared/data`."
    return "\n".join(lines)


def render_check_share(folder: Path = RESULTS) -> str:
    """benchmarks/README.md: the pairs check's share of the suite's translation recipe per Boss (`check_share.py`)."""
    path = folder / "check-share.json"
    if not path.exists():
        return "Not measured yet: `python benchmarks/check_share.py --data_dir ../shared/data`."
    study = json.loads(path.read_text())
    rounds = list(study["check_seconds"])
    lines = [
        "| Boss | seconds per pair | the recipe's run | "
        + " | ".join(f"check share, {key} ({study['check_seconds'][key]:.1f} s)" for key in rounds) + " |",
        "|---|---|---|" + "---|" * len(rounds),
    ]
    for name, boss in study["bosses"].items():
        model = boss["model"]
        lines.append(
            f"| {name} (d_model {model['d_model']}, {model['layers']}+{model['layers']} layers) | "
            f"{boss['seconds_per_pair'] * 1000:.2f} ms | {boss['recipe_seconds']:.0f} s | "
            + " | ".join(f"{boss['check_share'][key]:.1%}" for key in rounds) + " |"
        )
    return "\n".join(lines)


def render_stream_check(folder: Path = RESULTS) -> str:
    """docs/scale.md: the pairs check on a stream of the whole Tatoeba file against the map-style check of the same
    pairs, and the streamed run's seconds per Boss instance against the plain streamed run's (`stream_check.py`)."""
    path = folder / "stream-check-tatoeba.json"
    if not path.exists():
        return "Not measured yet: `python benchmarks/stream_check.py --data_dir ../shared/data`."
    studies = [json.loads(path.read_text())]
    larger = folder / "stream-check-tatoeba-buffer-125000.json"
    if larger.exists():
        studies.append(json.loads(larger.read_text()))
    arms = studies[0]["arms"]
    lines = ["| | recall (misaligned flagged) | aligned flagged | seconds | peak memory |", "|---|---|---|---|---|"]

    def row(name: str, arm: dict, seconds: str) -> str:
        return (f"| {name} | {arm['recall']:.1%} | {arm['aligned_flagged']:.2%} | {seconds} | "
                f"{arm['peak_rss_mb']:,.0f} MB |")  # fmt: skip

    check = arms["map_check"]
    lines.append(row(f"map-style check of all {check['pairs']:,} pairs", check, f"{check['check_seconds']:.0f}"))
    for study in studies:
        arm = study["arms"]["stream_check"]
        seconds = f"{arm['fit_seconds']:.0f} fit + {arm['scoring_seconds']:.0f} scoring every pair"
        lines.append(row(f"streamed check: fitted on the first {arm['buffer']:,}", arm, seconds))
    plain, default = arms["plain_run"], arms["default_run"]
    lines += [
        "",
        f"Training the suite's translation Boss for {plain['steps']:,} steps of 64 on the stream: the plain streamed run "
        f"took {plain['train_seconds']:.1f} s for {plain['boss_instances']:,} instances, the default (the streamed "
        f"check) {default['train_seconds']:.1f} s for {default['boss_instances']:,}, "
        f"**{studies[0]['seconds_per_instance_ratio']:.3f}× the seconds per Boss instance**; of the difference, "
        f"{default['train_seconds'] - default['trainer_runtime']:.0f} s is the check's fit before the first step, and "
        f"the Trainer's own clock, which scoring each pair as it is read adds to, reads {default['trainer_runtime']:.1f} "
        f"s against {plain['trainer_runtime']:.1f} s.",
    ]
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
            medians = [median([c[key] for c in group]) for (noise, _), group in groups.items() if (noise != "none") == noisy]
            return min(medians), max(medians)

        clean = spread("flagged_fraction", noisy=False)[1]
        recall, auc, aligned = spread("recall"), spread("auc"), spread("flagged_clean")
        seconds = (min(c["seconds"] for c in cells), max(c["seconds"] for c in cells))
        share = ""
        if full_runs:
            plain = median(full_runs)
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


def render_upstream_trainer(folder: Path = RESULTS, file_name: str = "upstream-trainer.json") -> str:
    """transformers' own Trainer tests (one file's result) with the plain Trainer and with each swap
    (`upstream_trainer.py`)."""
    from benchmarks.upstream_trainer import PLAIN, lost_tests, plain_passes

    path = folder / file_name
    if not path.exists():
        return "(no run of transformers' Trainer tests committed)"
    result = json.loads(path.read_text())
    plain = result["runs"][PLAIN]
    counts = {kind: sum(outcome == kind for outcome in plain["outcomes"].values()) for kind in ("skipped", "failed")}
    passed = plain_passes(result)
    swaps = [strategy for strategy in result["runs"] if strategy != PLAIN]
    lines = [
        f"`{result['command']}` (transformers {result['transformers']}, commit {result['commit'] or 'not named'}). "
        f"The plain `Trainer` passes **{len(passed)}** of the file's "
        f"{len(plain['outcomes'])} tests ({counts['skipped']} skip: GPU, Hub staging or optional packages; "
        f"{counts['failed']} fail with the plain `Trainer` too).",
        "",
        f"| `autoassist_strategy` | of the plain Trainer's {len(passed)} passes | seconds (plain: {plain['seconds']:.0f}) |",
        "|---|---|---|",
    ]
    lines += [f"| `{strategy}` | {len(passed) - len(lost_tests(result, strategy))} | "
              f"{result['runs'][strategy]['seconds']:.0f} |" for strategy in swaps]  # fmt: skip
    lost = [(test, strategy) for strategy in swaps for test in lost_tests(result, strategy)]
    if lost:
        lines += ["", "| passes with the plain Trainer, not with | test | outcome: first line |", "|---|---|---|"]
        for test, strategy in lost:
            run = result["runs"][strategy]
            message = run["messages"].get(test, "").replace("|", "\\|")
            lines.append(f"| `{strategy}` | `{test}` | {run['outcomes'].get(test, 'not run')}: {message} |")
    return "\n".join(lines)
