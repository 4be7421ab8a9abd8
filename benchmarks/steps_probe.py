"""Do steps or instances make a recipe? The plain run of a suite task with a smaller batch for the same optimizer
steps as its converged recipe (so a fraction of its instances), beside the suite's plain front.

Why: a selection that skips whole batches makes a shorter schedule; one that thins each batch keeps the steps. If
the plain run with half the instances per step ends where the converged recipe ends, and above its half-length
run, the steps are what a recipe needs, and a default should thin batches rather than drop them (`adaptive`).

    python benchmarks/steps_probe.py --task vision-resnet --batch_size 64 --num_train_epochs 10 --seeds 0 1 2

Each run is appended to `benchmarks/results/probes/steps.jsonl` with the command that made it.
"""

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import PLAIN  # noqa: E402
from benchmarks.names import SUITE_TASKS  # noqa: E402
from benchmarks.runs import append_probe_run, run_one  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402


@dataclass
class StepsProbeArguments:
    task: str = field(default="vision-resnet", metadata={"choices": list(SUITE_TASKS)})
    batch_size: int = field(default=64, metadata={"help": "The per-device batch size of the probe's plain runs."})
    num_train_epochs: float = field(default=10.0, metadata={"help": "Its epochs (the recipe's steps at this batch)."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    data_dir: str = field(default="../shared/data")
    work_dir: str = field(default="outputs/steps-probe")


def main(argv: list[str] | None = None) -> list[dict]:
    (probe,) = HfArgumentParser(StepsProbeArguments).parse_args_into_dataclasses(args=argv)
    task = TASKS[probe.task]
    preset = task.presets["full"]
    preset = replace(preset, training={**preset.training, "per_device_train_batch_size": probe.batch_size})
    data = task.load(probe.data_dir, preset, os.path.join(probe.work_dir, task.name), task.noise)
    records = []
    for seed in probe.seeds:
        run = run_one(task, data, preset, PLAIN, seed, probe.work_dir, probe.num_train_epochs, {})
        keys = ("seed", "final_validation", "test_metric", "boss_instances", "optimizer_steps", "train_seconds",
                "foreign_cpu_seconds")  # fmt: skip
        record = {"task": task.name, "batch_size": probe.batch_size, "num_train_epochs": probe.num_train_epochs,
                  **{k: run[k] for k in keys}}  # fmt: skip
        records.append(append_probe_run("steps.jsonl", "steps_probe.py", argv, record))
    return records


if __name__ == "__main__":
    main()
