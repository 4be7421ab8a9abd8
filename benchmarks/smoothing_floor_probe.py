"""Does `adaptive` thin a label-smoothed recipe once it reads the loss above what smoothing leaves? The default with
`autoassist_smoothing_floor=True` on a suite task, beside that task's recorded plain and default runs of the same
seed and length (a [`default_variant_probe`] with that one option).

Why: under `label_smoothing_factor=0.1` over the suite's 2,000 tokens an instance the Boss fits exactly still loses
1.08 nats, `1 - exp(-loss)` is 0.66 against a margin of 0.1, so the default keeps every pair the check leaves at
every recipe length (translation-noisy: 0.76 of the instances, the check's share, at half, converged and double).

    python benchmarks/smoothing_floor_probe.py --task translation-noisy --lengths 1.0 2.0 0.5 --seeds 0

Each run is appended to `benchmarks/results/probes/smoothing-floor.jsonl` with the command that made it.
"""

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.default_variant_probe import DefaultVariantProbeArguments, probe_default_variant  # noqa: E402
from benchmarks.names import SUITE_TASKS  # noqa: E402


@dataclass
class SmoothingFloorProbeArguments(DefaultVariantProbeArguments):
    options: str = field(default=json.dumps({"autoassist_smoothing_floor": True}))
    output: str = field(default="smoothing-floor.jsonl")
    task: str = field(default="translation-noisy", metadata={"choices": list(SUITE_TASKS)})
    work_dir: str = field(default="outputs/smoothing-floor-probe")


def main(argv: list[str] | None = None) -> list[dict]:
    (probe,) = HfArgumentParser(SmoothingFloorProbeArguments).parse_args_into_dataclasses(args=argv)
    return probe_default_variant(probe, "smoothing_floor_probe.py", argv)


if __name__ == "__main__":
    main()
