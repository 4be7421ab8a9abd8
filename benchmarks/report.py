#!/usr/bin/env python
"""Fills both READMEs' generated sections from the committed results (never typed by hand): each section between
its `<!-- name -->` and `<!-- /name -->` markers is what its table gives (`suite_tables.py` for the suite's
`benchmarks/results/<task>.json`, `study_tables.py` for the studies' JSON).

    python benchmarks/report.py            # rewrites the parts of both READMEs between their markers
    python benchmarks/report.py --check    # exits 1 if either README is not what the JSON gives
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.first_screen import PLOT, plot_first_screen, render_first_screen  # noqa: E402
from benchmarks.names import RESULTS  # noqa: E402
from benchmarks.study_tables import (  # noqa: E402
    render_ablation, render_assistant_dim, render_check_share, render_example, render_overhead, render_pairs_check,
    render_plausibility, render_signals, render_upstream_trainer,
)  # fmt: skip
from benchmarks.suite_tables import (  # noqa: E402
    load_results, load_schedules, render, render_convergence, render_curves, render_front, render_verdict,
)  # fmt: skip

# the suite recorded with the Assistant pinned to a thread (v2, until 2026-12-04), kept for its tables
V2 = RESULTS / "archive" / "v2-thread"
# the suite that decided on 300 validation pairs and 2,000 images (until 2026-12-06), kept for its tables
SMALL_SETS = RESULTS / "archive" / "small-sets"


def readme_sections(results: list[dict]) -> dict[str, str]:
    """README.md's generated sections, by marker name."""
    archived = load_results(SMALL_SETS)
    return {
        "first-screen": render_first_screen(results),
        "benchmark-results": render(archived),
        "who-gains": render_verdict(archived),
        "overhead-results": render_overhead(),
        "translation-example": render_example("translation"),
        "vision-example": render_example("vision"),
        "assistant-dim": render_assistant_dim(),
        "pairs-check": render_pairs_check(archived),
        "upstream-trainer": render_upstream_trainer(),
    }


def benchmarks_readme_sections(results: list[dict]) -> dict[str, str]:
    """benchmarks/README.md's generated sections, by marker name."""
    archived, small_sets = load_results(V2), load_results(SMALL_SETS)
    return {
        "ablation-results": render_ablation(),
        "signal-results": render_signals(),
        "convergence-results": render_convergence(small_sets, load_schedules()),
        "overhead-results": render_overhead(),
        "plausibility-results": render_plausibility(),
        "check-share": render_check_share(),
        "v2-results": f"{render_front(archived)}\n\n{render_curves(archived)}",
        "curve-results": render_curves(small_sets),
    }


def replace_section(text: str, table: str, name: str) -> str:
    """`text` with what stands between `<!-- name -->` and `<!-- /name -->` replaced by `table`."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if begin not in text or end not in text:
        raise ValueError(f"The README has no {begin} ... {end} section to fill.")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{table}\n{end}{tail}"


def filled(text: str, sections: dict[str, str]) -> str:
    for name, table in sections.items():
        text = replace_section(text, table, name)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if README.md is out of date")
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    parser.add_argument("--benchmarks_readme", default=str(REPO / "benchmarks" / "README.md"))
    args = parser.parse_args(argv)
    readme, benchmarks_readme = Path(args.readme), Path(args.benchmarks_readme)
    results = load_results()
    updates = {
        readme: filled(readme.read_text(), readme_sections(results)),
        benchmarks_readme: filled(benchmarks_readme.read_text(), benchmarks_readme_sections(results)),
    }
    if args.check:
        stale = [path.name for path, text in updates.items() if text != path.read_text()]
        if stale:
            print(f"{', '.join(stale)}: tables differ from benchmarks/results/*.json; run benchmarks/report.py")
            return 1
        return 0
    for path, text in updates.items():
        path.write_text(text)
    plot_first_screen(results, str(RESULTS / PLOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
