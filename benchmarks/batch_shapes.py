"""What a batch size that changes every step costs: a suite task's model (forward, backward, optimizer step on random
inputs of its image size) at the full batch, at a fixed batch of the mean thinned size, at thinned sizes drawn anew
each step, and at those sizes topped up to multiples of 8 and of 16, the arms timed back to back in each repeat.

Why: the default thins each batch to its kept instances, so its batch sizes vary step to step. On CPU a new shape
makes oneDNN build a convolution's kernels again, and its primitive cache holds a bounded number of them: a ResNet
step of a size drawn anew each step costs about as much as a full one, and `autoassist_thinned_batch_multiple`
(batches topped up to a multiple) removes that here. Whole runs did not show it (the default's sizes vary less
within an epoch: docs/benchmarks.md, batch shapes), so the option is off by default. Run it once with
`ONEDNN_PRIMITIVE_CACHE_CAPACITY=8192` set to tell the cache from other causes.

    python benchmarks/batch_shapes.py --task vision-resnet

appends `{task, arm, ms_per_step (one per repeat), command, commit, onednn_cache}` lines to
`benchmarks/results/probes/batch-shapes.jsonl`.
"""

import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.runs import append_probe_run  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402
from hf_autoassist.sampler import topped_up_size  # noqa: E402

IMAGE_TASKS = ("vision-resnet", "vision-vit")


@dataclass
class BatchShapesArguments:
    task: str = field(default="vision-resnet", metadata={"choices": list(IMAGE_TASKS)})
    steps: int = field(default=300, metadata={"help": "Steps of each arm in each repeat."})
    repeats: int = field(default=3)
    smallest: int = field(default=51, metadata={"help": "The smallest thinned batch drawn (0.4 of 128: the floor of "
                                                "a converged recipe)."})  # fmt: skip
    data_dir: str = field(default="../shared/data", metadata={"help": "Read only to build the task's model."})
    work_dir: str = field(default="outputs/batch-shapes")


def topped_up(sizes: list[int], multiple: int, full: int) -> list[int]:
    """Each size rounded up to a multiple, never past the full batch.

    Example:
        >>> topped_up([51, 64, 127], 8, 128)
        [56, 64, 128]
    """
    return [topped_up_size(size, multiple, full) for size in sizes]


def arms(full: int, smallest: int, steps: int, seed: int = 0) -> dict[str, list[int]]:
    """Each arm's batch sizes, step by step."""
    rng = random.Random(seed)
    varying = [rng.randint(smallest, full) for _ in range(steps)]
    mean = round(statistics.mean(varying))
    return {
        f"fixed {full}": [full] * steps,
        f"fixed {mean} (the varying sizes' mean)": [mean] * steps,
        "varying": varying,
        "varying, in multiples of 8": topped_up(varying, 8, full),
        "varying, in multiples of 16": topped_up(varying, 16, full),
    }


def main(argv: list[str] | None = None) -> None:
    (probe,) = HfArgumentParser(BatchShapesArguments).parse_args_into_dataclasses(args=argv)
    task = TASKS[probe.task]
    preset = task.presets["full"]
    full = preset.training["per_device_train_batch_size"]
    data = task.load(probe.data_dir, preset, os.path.join(probe.work_dir, task.name))
    torch.manual_seed(0)
    model = data.build_model()  # the suite's own model of the task
    optimizer = torch.optim.AdamW(model.parameters(), lr=preset.training.get("learning_rate", 1e-3))

    def step(size: int) -> None:
        out = model(pixel_values=torch.randn(size, 1, 28, 28), labels=torch.randint(0, 10, (size,)))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    plan = arms(full, probe.smallest, probe.steps)
    for size in (full, full // 2):  # warm up
        for _ in range(5):
            step(size)
    timings = {name: [] for name in plan}
    for _ in range(probe.repeats):
        for name, sizes in plan.items():
            start = time.perf_counter()
            for size in sizes:
                step(size)
            timings[name].append(round((time.perf_counter() - start) / len(sizes) * 1e3, 2))
    cache = os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY")
    for name, values in timings.items():
        record = {"task": probe.task, "arm": name, "ms_per_step": values, "onednn_cache": cache}
        append_probe_run("batch-shapes.jsonl", "batch_shapes.py", argv, record)


if __name__ == "__main__":
    main()
