#!/usr/bin/env python
"""Fills the generated sections of both READMEs and of the documentation's pages from the committed results (never
typed by hand): each section between its `<!-- name -->` and `<!-- /name -->` markers, wherever it stands, is what
its table gives (`verdict_tables.py` and `suite_tables.py` for the suite's JSON, `study_tables.py` for the studies').

    python benchmarks/report.py            # rewrites the generated sections
    python benchmarks/report.py --check    # exits 1 if any is not what the JSON gives
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.verdict_tables import (  # noqa: E402
    PLOT, plot_first_screen, render_first_screen, render_flips, render_front as render_v3_front, render_other_arms,
    render_step_cost, render_step_cost_back_to_back,
)  # fmt: skip
from benchmarks.names import RESULTS  # noqa: E402
from benchmarks.study_tables import (  # noqa: E402
    render_ablation, render_assistant_dim, render_check_share, render_example, render_overhead, render_pairs_check,
    render_plausibility, render_signals, render_stream_check, render_upstream_trainer,
)  # fmt: skip
from benchmarks.suite_tables import (  # noqa: E402
    load_results, load_schedules, render, render_convergence, render_curves, render_front, render_verdict,
)  # fmt: skip

# the suite recorded with the Assistant pinned to a thread (v2, until 2026-12-04), kept for its tables
V2 = RESULTS / "archive" / "v2-thread"
# the suite that decided on 300 validation pairs and 2,000 images (until 2026-12-06), kept for its tables
SMALL_SETS = RESULTS / "archive" / "small-sets"
# the v3 suite's rows of the default until 2026-12-06 (the Assistant's shrinking), on the same sets, kept for its table
ASSISTANT_DEFAULT = RESULTS / "archive" / "assistant-default"


def readme_sections(results: list[dict]) -> dict[str, str]:
    """The generated sections that stood in README.md (now README's first screen and the documentation's pages)."""
    archived, previous = load_results(SMALL_SETS), load_results(ASSISTANT_DEFAULT)
    # the earlier suite's verdicts beside v3's of the same default (the Assistant's, archived, where v3 had it)
    replaced = {result["task"]: result for result in previous}
    same_default = [replaced.get(result["task"], result) for result in results]
    return {
        "first-screen": render_first_screen(results),
        "v3-front": render_v3_front(results),
        "v3-other-arms": render_other_arms(results),
        "step-cost": render_step_cost(results),
        "step-cost-back-to-back": render_step_cost_back_to_back(),
        "v3-flips": render_flips(same_default, archived),
        "previous-default": render_first_screen(previous, with_plot=False),
        "benchmark-results": render(archived),
        "who-gains": render_verdict(archived),
        "overhead-results": render_overhead(),
        "translation-example": render_example("translation"),
        "vision-example": render_example("vision"),
        "assistant-dim": render_assistant_dim(),
        "pairs-check": render_pairs_check(archived),
        "upstream-trainer": render_upstream_trainer(),
        "upstream-trainer-callback": render_upstream_trainer(file_name="upstream-trainer-callback.json"),
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
        "stream-check": render_stream_check(),
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


def documents(repo: Path) -> list[Path]:
    """The files whose generated sections the report fills: both READMEs and the documentation's pages."""
    return [repo / "README.md", repo / "benchmarks" / "README.md", *sorted((repo / "docs").glob("*.md"))]


def fill_all(texts: dict[Path, str], sections: dict[str, str]) -> dict[Path, str]:
    """Each section written into every document that has its markers; a section no document has is an error (a page
    moved without its markers)."""
    missing = [name for name in sections if not any(f"<!-- {name} -->" in text for text in texts.values())]
    if missing:
        raise ValueError(f"No document has the generated section(s) {missing}: put their markers back.")
    filled_texts = {}
    for path, text in texts.items():
        present = {name: table for name, table in sections.items() if f"<!-- {name} -->" in text}
        filled_texts[path] = filled(text, present)
    return filled_texts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a document is out of date")
    parser.add_argument("--repo", default=str(REPO), help="the checkout whose documents are filled")
    args = parser.parse_args(argv)
    results = load_results()
    texts = {path: path.read_text() for path in documents(Path(args.repo))}
    updates = fill_all(texts, {**readme_sections(results), **benchmarks_readme_sections(results)})
    if args.check:
        stale = [str(path.relative_to(args.repo)) for path, text in updates.items() if text != texts[path]]
        if stale:
            print(f"{', '.join(stale)}: generated sections differ from benchmarks/results/*.json; run benchmarks/report.py")
            return 1
        return 0
    for path, text in updates.items():
        if text != texts[path]:
            path.write_text(text)
    plot_first_screen(results, str(RESULTS / PLOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
