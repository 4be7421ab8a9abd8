#!/usr/bin/env python
"""README's benchmark tables, generated from `benchmarks/results/<task>.json`, and the ablation table of
benchmarks/README.md, from `benchmarks/results/ablation-<task>.json` (never typed by hand).

    python benchmarks/report.py            # rewrites the parts of both READMEs between their markers
    python benchmarks/report.py --check    # exits 1 if either README is not what the JSON gives
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BEGIN, END = "<!-- benchmark-results -->", "<!-- /benchmark-results -->"
ABLATION_BEGIN, ABLATION_END = "<!-- ablation-results -->", "<!-- /ablation-results -->"
TASK_ORDER = ("vision-resnet", "vision-vit", "translation")
STRATEGY_ORDER = ("plain", "none", "autoassist", "random", "infobatch", "budget_matched")


def _number(value, digits: int = 4) -> str:
    return "never" if value is None else f"{value:.{digits}f}"


def _signed(values: list, digits: int = 4) -> str:
    return ", ".join("n/a" if v is None else f"{v:+.{digits}f}" for v in values)


def _digits(result: dict) -> int:
    return 2 if result["metric"] == "bleu" else 4


def load_results(folder: Path = RESULTS) -> list[dict]:
    results = {path.stem: json.loads(path.read_text()) for path in folder.glob("*.json")}
    return [results[name] for name in TASK_ORDER if name in results and results[name].get("runs")]


def render(results: list[dict]) -> str:
    lines = [
        "Medians over seeds (each seed's target is its own plain run's final validation metric; time-to-target is the "
        "training time of the first evaluation that reaches it, as a fraction of the plain run's whole training time; "
        "\"never\" when the median run does not reach it).",
        "",
        "| task | run | validation | test | Boss instances (x plain) | train s | time-to-target (x plain) | reached |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        summary, digits = result["summary"], _digits(result)
        plain_instances = summary["plain"]["boss_instances"]["median"]
        for strategy in STRATEGY_ORDER:
            if strategy not in summary:
                continue
            row = summary[strategy]
            reached = sum(v is not None for v in row["time_to_target_ratio"]["values"])
            lines.append(
                f"| {result['task']} ({result['metric']}) | {strategy} | {_number(row['final_validation']['median'], digits)} "
                f"| {_number(row['test_metric']['median'], digits)} | {row['boss_instances']['median'] / plain_instances:.2f} "
                f"| {_number(row['train_seconds']['median'], 1)} | {_number(row['time_to_target_ratio']['median'], 2)} "
                f"| {reached}/{len(row['time_to_target_ratio']['values'])} |"
            )
    lines += [
        "",
        "Paired by seed (final validation metric; seeds in order; AutoAssist's own budget for `random` and "
        "`budget_matched`), and the data path's overhead:",
        "",
        "| task | autoassist - random | autoassist - budget_matched | autoassist - plain | infobatch - plain "
        "| none / plain throughput |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        paired, digits = result["paired_differences"], _digits(result)

        def cell(name):
            entry = paired.get(f"{name}: final_validation")
            if entry is None:
                return "-"
            return f"{_signed([entry['median']], digits)} ({_signed(entry['values'], digits)})"

        throughput = result["none_over_plain_throughput"]
        lines.append(
            f"| {result['task']} | {cell('autoassist - random')} | {cell('autoassist - budget_matched')} "
            f"| {cell('autoassist - plain')} | {cell('infobatch - plain')} "
            f"| {_number(throughput['median'], 3)} ({', '.join(_number(v, 3) for v in throughput['values'])}) |"
        )
    return "\n".join(lines)


def render_ablation(folder: Path = RESULTS) -> str:
    """One row per task and variant: its options, kept fraction, final validation per seed and the paired
    difference to random skipping at the variant's own kept fractions."""
    lines = [
        "| task | variant | options | seeds | kept after warmup | Assistant accuracy | final validation | random at the same kept fractions | variant − random (median; per seed) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task in TASK_ORDER:
        path = folder / f"ablation-{task}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        digits = 2 if result["metric"] == "bleu" else 4
        paper = result.get("paper_rule", {})  # options are shown as changes from it
        for name, options in result["variants"].items():
            pairs = {}
            for run in result["runs"]:
                if run["variant"] == name:
                    pairs.setdefault(run["seed"], {})[run["strategy"]] = run
            seeds = sorted(seed for seed, pair in pairs.items() if len(pair) == 2)
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
    updates = {
        readme: replace_section(readme.read_text(), render(load_results())),
        benchmarks_readme: replace_section(
            benchmarks_readme.read_text(), render_ablation(), ABLATION_BEGIN, ABLATION_END
        ),
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
