#!/usr/bin/env python
"""What choosing costs: training seconds per Boss instance of plain, `none`, `random` and `autoassist`, interleaved.

For each model (the suite's ResNet and Marian tasks, on a slice) and each repeat, in a rotated order: the plain
Trainer, AutoAssist keeping everything (`none`, the data path alone), `autoassist` with its defaults, and `random`
keeping the fractions that autoassist run kept (the same Boss instances, chosen without an Assistant). Repeats are
interleaved, so that a slow spell of the machine touches every strategy alike. Reported, per model:

- `none_over_plain_throughput`: plain's median seconds per instance over none's (aim >= 0.98);
- `autoassist_over_random_seconds`: autoassist's median seconds per instance over random's (aim <= 1.03);
- `assistant_cpu_share`: the Assistant thread's CPU seconds over autoassist's training seconds;
each `{median, values}`, the values per repeat.

    python benchmarks/overhead.py --data_dir ../shared/data

writes `benchmarks/results/overhead.json` with the command, the environment and the commit measured. Run it with
nothing else running. Each finished run is kept in `<work_dir>/<preset>/progress.json`: started again on the same
commit (a clean checkout), it goes on from the first run missing; any other code starts afresh.
"""

import json
import os
import shlex
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import transformers
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.runs import commit_measured, environment, run_one  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

# model -> (training instances, epochs): big enough that a run lasts 10-20 s on 2 cores (ResNet runs of 3-4 s, 8,000
# images for 4 epochs, varied by 15% from run to run: more than the 3% to resolve)
SIZES = {
    "full": {"vision-resnet": (20000, 5), "translation": (2000, 4)},
    "quick": {"vision-resnet": (256, 2), "translation": (64, 2)},
}
ORDER = ("plain", "none", "autoassist", "random")
# what each run keeps
RECORDED = ("seed", "boss_instances", "train_seconds", "assistant_cpu_seconds", "foreign_cpu_seconds",
            "kept_fraction_per_epoch")  # fmt: skip


@dataclass
class OverheadArguments:
    preset: str = field(default="full", metadata={"choices": list(SIZES)})
    data_dir: str = field(default="../shared/data")
    repeats: int = field(default=5, metadata={"help": "Runs of each strategy per model, interleaved."})
    models: list[str] = field(default_factory=lambda: ["vision-resnet", "translation"])
    output_dir: str = field(default="benchmarks/results")
    work_dir: str = field(default="outputs/overhead")


def rotated(repeat: int) -> list[str]:
    """The strategies in a different order each repeat; `random` always right after `autoassist`, whose kept
    fractions it replays.

    Example:
        >>> rotated(1)
        ['none', 'autoassist', 'random', 'plain']
    """
    units = [["plain"], ["none"], ["autoassist", "random"]]
    shift = repeat % len(units)
    return [name for unit in units[shift:] + units[:shift] for name in unit]


def seconds_per_instance(record: dict) -> float:
    return record["train_seconds"] / record["boss_instances"]


def ratio_of_medians(numerators: list[float], denominators: list[float]) -> dict:
    """`median(numerators) / median(denominators)`, with the per-repeat ratios as values."""
    return {
        "median": statistics.median(numerators) / statistics.median(denominators),
        "values": [a / b for a, b in zip(numerators, denominators)],
    }


class FinishedRuns:
    """The runs finished so far, per model and strategy, saved after each one; read back only for the same commit
    and sizes, so that a resumed measurement never mixes two versions of the code."""

    def __init__(self, path: str, key: dict):
        self.path, self.key = path, json.loads(json.dumps(key))  # as it reads back (tuples become lists)
        self.runs: dict = {}
        if key["commit"] is not None and os.path.exists(path):
            with open(path) as f:
                saved = json.load(f)
            if saved.get("key") == self.key:
                self.runs = saved["runs"]

    def of(self, model: str) -> dict[str, list[dict]]:
        return self.runs.setdefault(model, {name: [] for name in ORDER})

    def save(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + ".tmp", "w") as f:
            json.dump({"key": self.key, "runs": self.runs}, f)
        os.replace(self.path + ".tmp", self.path)


def measure(model: str, args: OverheadArguments, progress: FinishedRuns) -> dict:
    task = TASKS[model]
    samples, epochs = SIZES[args.preset][model]
    preset = replace(task.presets["full"], train_samples=samples, num_train_epochs=epochs)
    work_dir = os.path.join(args.work_dir, args.preset, model)
    data = task.load(args.data_dir, preset, work_dir)
    runs = progress.of(model)
    for repeat in range(args.repeats):
        for strategy in rotated(repeat):
            if len(runs[strategy]) > repeat:  # measured before, on this commit
                continue
            options = {"autoassist_synchronous": None}  # the library's default, which the suite pins to a thread
            if strategy == "random":
                kept = runs["autoassist"][-1]["kept_fraction_per_epoch"]
                options["autoassist_keep_prob"] = kept[1:] or [1.0]  # after the one-epoch warmup
            record = run_one(task, data, preset, strategy, seed=repeat, work_dir=work_dir, epochs=epochs,
                             options=options, evaluate=False)  # fmt: skip
            runs[strategy].append({k: record[k] for k in RECORDED})
            progress.save()
            print(f"{model} repeat {repeat} {strategy}: {record['boss_instances']} instances, "
                  f"{record['train_seconds']:.2f} s", flush=True)  # fmt: skip
    runs = {name: records[: args.repeats] for name, records in runs.items()}
    per_instance = {name: [seconds_per_instance(r) for r in records] for name, records in runs.items()}
    autoassist = runs["autoassist"]
    return {
        "task": model,
        "train_samples": samples,
        "num_train_epochs": epochs,
        # plain's seconds per instance over none's: a throughput ratio
        "none_over_plain_throughput": ratio_of_medians(per_instance["plain"], per_instance["none"]),
        "autoassist_over_random_seconds": ratio_of_medians(per_instance["autoassist"], per_instance["random"]),
        "assistant_cpu_share": {
            "median": statistics.median(r["assistant_cpu_seconds"] / r["train_seconds"] for r in autoassist),
            "values": [r["assistant_cpu_seconds"] / r["train_seconds"] for r in autoassist],
        },
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> dict:
    (args,) = HfArgumentParser(OverheadArguments).parse_args_into_dataclasses(args=argv)
    transformers.utils.logging.set_verbosity_error()
    commit = commit_measured()
    progress = FinishedRuns(
        os.path.join(args.work_dir, args.preset, "progress.json"),
        {"commit": commit, "sizes": {model: SIZES[args.preset][model] for model in args.models}},
    )
    result = {
        "command": "python benchmarks/overhead.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "environment": environment(),
        "commit": commit,
        "preset": args.preset,
        "repeats": args.repeats,
        "models": {model: measure(model, args, progress) for model in args.models},
    }
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "overhead.json"), "w") as f:
        json.dump(result, f, indent=1)
    for model, numbers in result["models"].items():
        print(f"{model}: none/plain throughput {numbers['none_over_plain_throughput']['median']:.3f}, "
              f"autoassist/random seconds {numbers['autoassist_over_random_seconds']['median']:.3f}, "
              f"Assistant CPU share {numbers['assistant_cpu_share']['median']:.3f}")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
