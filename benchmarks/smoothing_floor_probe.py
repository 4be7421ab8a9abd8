"""Does `adaptive` thin a label-smoothed recipe once it reads the loss above what smoothing leaves? The default with
`autoassist_smoothing_floor=True` on a suite task, beside that task's recorded plain and default runs of the same
seed and length.

Why: under `label_smoothing_factor=0.1` over the suite's 2,000 tokens an instance the Boss fits exactly still loses
1.08 nats, `1 - exp(-loss)` is 0.66 against a margin of 0.1, so the default keeps every pair the check leaves at
every recipe length (translation-noisy: 0.76 of the instances, the check's share, at half, converged and double).

    python benchmarks/smoothing_floor_probe.py --task translation-noisy --lengths 1.0 2.0 0.5 --seeds 0

Each run is appended to `benchmarks/results/probes/smoothing-floor.jsonl` with the command that made it.
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import DEFAULT  # noqa: E402
from benchmarks.names import SUITE_TASKS  # noqa: E402
from benchmarks.runs import append_probe_run, run_one  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402


@dataclass
class SmoothingFloorProbeArguments:
    task: str = field(default="translation-noisy", metadata={"choices": list(SUITE_TASKS)})
    lengths: list[float] = field(default_factory=lambda: [1.0], metadata={"help": "Recipe lengths (× converged)."})
    seeds: list[int] = field(default_factory=lambda: [0])
    data_dir: str = field(default="../shared/data")
    work_dir: str = field(default="outputs/smoothing-floor-probe")


def main(argv: list[str] | None = None) -> list[dict]:
    (probe,) = HfArgumentParser(SmoothingFloorProbeArguments).parse_args_into_dataclasses(args=argv)
    task = TASKS[probe.task]
    preset = task.presets["full"]
    data = task.load(probe.data_dir, preset, os.path.join(probe.work_dir, task.name), task.noise)
    epochs = preset.num_train_epochs
    records = []
    for length in probe.lengths:
        for seed in probe.seeds:
            options = {"autoassist_smoothing_floor": True}
            run = run_one(task, data, preset, DEFAULT, seed, probe.work_dir, epochs * length, options)
            keys = ("seed", "final_validation", "test_metric", "boss_instances", "optimizer_steps", "train_seconds",
                    "foreign_cpu_seconds", "kept_fraction_per_epoch", "kept_noisy_fraction", "kept_clean_fraction")  # fmt: skip
            record = {"task": task.name, "length": length, "options": options, **{k: run.get(k) for k in keys}}
            records.append(append_probe_run("smoothing-floor.jsonl", "smoothing_floor_probe.py", argv, record))
    return records


if __name__ == "__main__":
    main()
