#!/usr/bin/env python
"""README's benchmark tables, generated from `benchmarks/results/<task>.json` (never typed by hand).

    python benchmarks/report.py            # rewrites the part of README.md between the benchmark-results markers
    python benchmarks/report.py --check    # exits 1 if README.md is not what the JSON gives
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
BEGIN, END = "<!-- benchmark-results -->", "<!-- /benchmark-results -->"
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


def replace_section(text: str, table: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f"README.md has no {BEGIN} ... {END} section to fill.")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    args = parser.parse_args(argv)
    readme = Path(args.readme)
    updated = replace_section(readme.read_text(), render(load_results()))
    if args.check:
        if updated != readme.read_text():
            print("README.md's benchmark tables are not those of benchmarks/results/*.json: run benchmarks/report.py")
            return 1
        return 0
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
