"""What a thinned batch saves, timed in the same minutes: a suite task's plain Trainer at its full batch and at
thinner ones, for the same optimizer steps, the batch sizes rotated within each repeat.

Why: the default keeps the plain run's steps and thins each batch, so its seconds are `f + (1 - f) * x` of the plain
run's (`x` its share of the instances, `f` the fixed share of a step). Fitted over the suite's runs, `f` reads the
VM's drift between rows timed half an hour apart (0.33 once, 0.59 another time, for the same ResNet). Here each
repeat times every batch size back to back, so a slow spell touches them alike, and `f` is fitted per repeat: the
spread over repeats is the yardstick for any seconds priced from counts.

    python benchmarks/step_cost.py --task vision-resnet --fractions 1.0 0.75 0.5 0.25 --steps 500 --repeats 5

Each run is appended to `benchmarks/results/probes/step-cost.jsonl` with the command that made it (started again,
it goes on from the first (repeat, batch) missing for this commit, task and steps); `--summarize` fits each repeat.
"""

import os
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import PLAIN, step_cost_per_repeat, thinned_seconds  # noqa: E402
from benchmarks.names import STEP_COST_PROBE, SUITE_TASKS, probe_records  # noqa: E402
from benchmarks.runs import append_probe_run, commit_measured, run_one  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

RECORDED = ("boss_instances", "optimizer_steps", "train_seconds", "foreign_cpu_seconds")


@dataclass
class StepCostArguments:
    task: str = field(default="vision-resnet", metadata={"choices": list(SUITE_TASKS)})
    fractions: list[float] = field(default_factory=lambda: [1.0, 0.75, 0.5, 0.25], metadata={
        "help": "Batch sizes as fractions of the recipe's (1.0 must be one)."})  # fmt: skip
    steps: int = field(default=500, metadata={"help": "Optimizer steps of each run (the Trainer's start, a few "
                       "tenths of a second, is spread over them as part of a step's fixed part)."})  # fmt: skip
    repeats: int = field(default=5)
    data_dir: str = field(default="../shared/data")
    work_dir: str = field(default="outputs/step-cost")
    summarize: bool = field(default=False, metadata={"help": "Train nothing: fit the recorded runs of this task."})


def rotated(fractions: list[float], repeat: int) -> list[float]:
    """The batch sizes in a different order each repeat, so that none is always timed first (or last).

    Example:
        >>> rotated([1.0, 0.5, 0.25], 1)
        [0.5, 0.25, 1.0]
    """
    shift = repeat % len(fractions)
    return fractions[shift:] + fractions[:shift]


def measure(probe: StepCostArguments, argv: list[str] | None) -> None:
    if 1.0 not in probe.fractions:
        raise ValueError(f"--fractions must include 1.0 (the recipe's batch) to price a thinner one; "
                         f"got {probe.fractions}")
    commit = commit_measured()
    recorded = probe_records(STEP_COST_PROBE, task=probe.task, steps=probe.steps, commit=commit) if commit else []
    done = {(r["repeat"], r["fraction"]) for r in recorded}
    task = TASKS[probe.task]
    recipe = task.presets["full"]
    full_batch = recipe.training["per_device_train_batch_size"]
    data = task.load(probe.data_dir, recipe, os.path.join(probe.work_dir, task.name), task.noise)
    for repeat in range(probe.repeats):
        for fraction in rotated(probe.fractions, repeat):
            if (repeat, fraction) in done:
                continue
            batch = max(1, round(full_batch * fraction))
            preset = replace(recipe, training={**recipe.training, "per_device_train_batch_size": batch,
                                               "max_steps": probe.steps})  # fmt: skip
            epochs = recipe.num_train_epochs  # max_steps decides
            run = run_one(task, data, preset, PLAIN, repeat, probe.work_dir, epochs, {}, evaluate=False)
            record = {"task": task.name, "repeat": repeat, "fraction": fraction, "batch_size": batch,
                      "steps": probe.steps, **{k: run[k] for k in RECORDED}}  # fmt: skip
            append_probe_run(STEP_COST_PROBE, "step_cost.py", argv, record)


def summary(task: str, runs: list[dict]) -> list[str]:
    """Per repeat, a step's fixed part, the part per instance and the fixed share of a full batch; then their median
    and range, and what thinning to a few shares of the instances saves at that share."""
    fits = step_cost_per_repeat(runs)
    if not fits:
        return [f"{task}: no repeat with a full batch, a thinner one and no disturbed run"]
    lines = [f"{task}: {len(fits)} repeats fitted ({len(runs)} runs)",
             "| repeat | fixed | per instance | fixed share |", "|---|---|---|---|"]
    lines += [f"| {f['repeat']} | {f['fixed'] * 1e3:.2f} ms | {f['per_instance'] * 1e3:.4f} ms | "
              f"{f['fixed_share']:.2f} |" for f in fits]  # fmt: skip
    shares = [f["fixed_share"] for f in fits]
    share = statistics.median(shares)
    lines.append(f"fixed share: median {share:.2f} (range {min(shares):.2f} to {max(shares):.2f})")
    for x in (0.9, 0.7, 0.5):
        seconds = [thinned_seconds(s, x) for s in shares]
        lines.append(f"{x:.0%} of the instances in as many steps: {statistics.median(seconds):.2f}x the seconds "
                     f"(range {min(seconds):.2f} to {max(seconds):.2f})")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> None:
    (probe,) = HfArgumentParser(StepCostArguments).parse_args_into_dataclasses(args=argv)
    if not probe.summarize:
        measure(probe, argv)
    print("\n".join(summary(probe.task, probe_records(STEP_COST_PROBE, task=probe.task))))


if __name__ == "__main__":
    main()
