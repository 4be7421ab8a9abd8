"""The suite's task names and the plausibility study's result files, in one place that imports nothing heavy:
`tasks.py` builds the tasks under these names, and the READMEs' tables (`suite_tables.py`, `study_tables.py`) read
their JSON without importing torch."""

import json
from pathlib import Path

# the suite's tasks, in the order they run and are reported
SUITE_TASKS = (
    "vision-resnet",
    "vision-resnet-noisy",
    "vision-vit",
    "translation",
    "translation-noisy",
    "translation-tatoeba-noisy",
)

# the plausibility study's corpora (`plausibility.py --corpus`): the name its tables give, its result file
PLAUSIBILITY_CORPORA = {
    "multi30k": ("Multi30k en-de", "plausibility-translation.json"),
    "tatoeba": ("Tatoeba en-fr", "plausibility-translation-tatoeba.json"),
}

# where every result file is committed
RESULTS = Path(__file__).resolve().parent / "results"

# a step's cost at the full batch and thinner ones, timed back to back (`step_cost.py`)
STEP_COST_PROBE = "step-cost.jsonl"


def probe_records(file_name: str, **where) -> list[dict]:
    """The runs a probe appended to `results/probes/<file_name>` whose fields equal `where`'s (none if it has none)."""
    path = RESULTS / "probes" / file_name
    if not path.exists():
        return []
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if all(r.get(key) == value for key, value in where.items())]


# the strategy "auto" resolved to on a run (recorded from 2026-12-06 on, when "auto" became "adaptive")
RESOLVED_STRATEGY = "autoassist_strategy_resolved"
