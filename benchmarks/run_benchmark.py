#!/usr/bin/env python
"""Time-to-target benchmark: plain Trainer, every `autoassist_strategy` and a budget-matched plain run, over seeds.

For each task and seed, in this order:
1. `plain`: the plain Trainer (or Seq2SeqTrainer); its final validation metric is that seed's target;
2. `none`: AutoAssistTrainer keeping everything (the data path's overhead);
3. `autoassist`: the defaults;
4. `random`: keeps instances at random at `autoassist`'s kept fraction of each epoch (same seed);
5. `infobatch`: InfoBatch with its defaults;
6. `budget_matched`: the plain Trainer with `num_train_epochs` cut to the instances `autoassist` back-propagated.
Every run evaluates on the validation split every `eval_every_instances` Boss instances (evaluation time is
recorded and left out of the training time), then once at the end, then on the test split.

    python benchmarks/run_benchmark.py --task all --preset full --data_dir ../shared/data

writes `benchmarks/results/<task>.json` and `<task>.png` after every run, so an interrupted suite keeps what it made.
"""

import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import transformers
from transformers import HfArgumentParser, TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import AUTOASSIST, BUDGET_MATCHED, PLAIN, RANDOM, analyse  # noqa: E402
from benchmarks.plots import plot_task  # noqa: E402
from benchmarks.tasks import TASKS, Task, TaskData  # noqa: E402

STRATEGIES = (PLAIN, "none", AUTOASSIST, RANDOM, "infobatch", BUDGET_MATCHED)


@dataclass
class BenchmarkArguments:
    task: str = field(default="all", metadata={"help": "A task, or 'all'.", "choices": ["all", *TASKS]})
    preset: str = field(default="full", metadata={"help": "Data sizes and schedule.", "choices": ["full", "quick"]})
    data_dir: str = field(default="../shared/data", metadata={"help": "The offline data folder, read in place."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where the JSON and plots go; default benchmarks/results[/quick]."}
    )
    seeds: list[int] | None = field(
        default=None, metadata={"help": "One run of each strategy per seed; default 0 1 2 (full) or 0 1 (quick)."}
    )
    strategies: list[str] = field(
        default_factory=lambda: list(STRATEGIES),
        metadata={"help": f"Which runs to make, among {list(STRATEGIES)} (random and budget_matched need autoassist)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Override the preset's training size."})
    num_train_epochs: float | None = field(default=None, metadata={"help": "Override the preset's schedule."})
    work_dir: str = field(default="outputs/benchmarks", metadata={"help": "Scratch space for trainer outputs."})
    reanalyse: bool = field(
        default=False,
        metadata={"help": "Train nothing: recompute the analysis and the plot of the existing JSON (after a change "
                  "to analysis.py or plots.py)."},
    )

    def __post_init__(self):
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"Unknown --strategies {unknown}; choose among {list(STRATEGIES)}.")
        needs_autoassist = {RANDOM, BUDGET_MATCHED} & set(self.strategies)
        if needs_autoassist and AUTOASSIST not in self.strategies:
            raise ValueError(f"{sorted(needs_autoassist)} are matched to the autoassist run: add 'autoassist'.")


class BossInstanceCounter:
    """Counts the instances each training step forward- and back-propagates (every strategy, the plain Trainer too)."""

    boss_instances = 0

    def training_step(self, model, inputs, *args, **kwargs):
        labels = inputs["labels"]
        self.boss_instances += len(labels)
        return super().training_step(model, inputs, *args, **kwargs)


class CurveRecorder(TrainerCallback):
    """After each evaluation: Boss instances so far, training seconds so far (evaluation left out), the metric."""

    def __init__(self, trainer, metric: str):
        self.trainer, self.metric = trainer, metric
        self.curve: list[dict] = []
        self.eval_seconds = 0.0
        self.start = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if f"eval_{self.metric}" not in metrics:
            return  # the test split, evaluated after training
        self.eval_seconds += metrics["eval_runtime"]
        self.curve.append(
            {
                "step": state.global_step,
                "instances": self.trainer.boss_instances,
                "train_seconds": round(time.perf_counter() - self.start - self.eval_seconds, 3),
                "metric": metrics[f"eval_{self.metric}"],
            }
        )


def run_one(
    task: Task, data: TaskData, preset, strategy: str, seed: int, work_dir: str, epochs: float, extra: dict,
    curve: bool = True,
):  # fmt: skip
    """One training run; returns its record. Without `curve`, the validation split is evaluated only at the end."""
    plain = strategy in (PLAIN, BUDGET_MATCHED)
    base = task.plain_trainer if plain else task.autoassist_trainer
    trainer_class = type(f"Counted{base.__name__}", (BossInstanceCounter, base), {})
    batch_size = preset.training["per_device_train_batch_size"]
    options = {} if plain else {"autoassist_strategy": strategy, **extra}
    args = task.config_class(
        output_dir=os.path.join(work_dir, f"{strategy}-seed{seed}"),
        num_train_epochs=epochs,
        eval_strategy="steps" if curve else "no",
        eval_steps=max(1, preset.eval_every_instances // batch_size),
        save_strategy="no",
        logging_strategy="epoch",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=seed,
        **preset.training,
        **options,
    )
    set_seed(seed)
    model = data.build_model()
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation,
        data_collator=data.make_collator(model),
        compute_metrics=data.compute_metrics,
    )
    recorder = CurveRecorder(trainer, data.metric)
    trainer.add_callback(recorder)
    trainer.remove_callback(PrinterCallback)  # the benchmark prints one line per run instead
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start - recorder.eval_seconds
    if not recorder.curve or recorder.curve[-1]["step"] != trainer.state.global_step:
        # the final point of the curve, at the training time the run ended with
        recorder.start = time.perf_counter() - train_seconds - recorder.eval_seconds
        trainer.evaluate()
    test = trainer.evaluate(eval_dataset=data.test, metric_key_prefix="test")
    metrics = trainer.autoassist_metrics() if hasattr(trainer, "autoassist_metrics") else {}
    record = {
        "seed": seed,
        "strategy": strategy,
        "num_train_epochs": epochs,
        "autoassist_options": options,
        # every AutoAssist setting in effect, defaults included, so a result says which method made it
        "autoassist_config": {k: v for k, v in vars(trainer.args).items() if k.startswith("autoassist_")} if not plain else None,
        "assistant_skill": metrics.get("autoassist/assistant_skill"),
        "kept_fraction_per_epoch": [round(f, 4) for f in getattr(trainer, "kept_fractions", {}).values()]
        or [1.0] * math.ceil(epochs),
        "boss_instances": trainer.boss_instances,  # forwarded and back-propagated alike: no extra forward pass
        "boss_instances_forwarded": trainer.boss_instances,
        "boss_instances_backpropagated": trainer.boss_instances,
        "optimizer_steps": trainer.state.global_step,
        "assistant_seconds": metrics.get("autoassist/assistant_seconds", 0.0),
        "assistant_accuracy": metrics.get("autoassist/assistant_accuracy"),
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(recorder.eval_seconds, 3),
        "final_validation": recorder.curve[-1]["metric"],
        "test_metric": test[f"test_{data.metric}"],
        "curve": recorder.curve,
    }
    return record


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "platform": platform.platform(),
    }


class Progress:
    """`[run k/n] ... ETA`, from the mean duration of the runs so far."""

    def __init__(self, total: int):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def announce(self, text: str) -> None:
        elapsed = time.perf_counter() - self.start
        eta = "?" if not self.done else f"{elapsed / self.done * (self.total - self.done) / 60:.1f} min"
        print(f"[run {self.done + 1}/{self.total}] {text} (elapsed {elapsed / 60:.1f} min, ETA {eta})", flush=True)

    def finish_one(self) -> None:
        self.done += 1


def run_task(task: Task, bench: BenchmarkArguments, output_dir: str, progress: Progress, command: str) -> dict:
    preset = task.presets[bench.preset]
    if bench.max_train_samples is not None:
        preset.train_samples = bench.max_train_samples
    if bench.num_train_epochs is not None:
        preset.num_train_epochs = bench.num_train_epochs
    work_dir = os.path.join(bench.work_dir, bench.preset, task.name)
    data = task.load(bench.data_dir, preset, work_dir)
    result = {
        "task": task.name,
        "description": task.description,
        "preset": bench.preset,
        "command": command,
        "environment": environment(),
        "metric": data.metric,
        "data": {
            "train": len(data.train),
            "validation": len(data.validation),
            "test": len(data.test),
        },
        "schedule": {
            "num_train_epochs": preset.num_train_epochs,
            "eval_every_instances": preset.eval_every_instances,
            "training_arguments": preset.training,
            "model": preset.model,
        },
        "seeds": bench.seeds,
        "runs": [],
    }
    for seed in bench.seeds:
        autoassist_run = None
        for strategy in bench.strategies:
            epochs, extra = preset.num_train_epochs, {}
            if strategy == RANDOM:
                warmup = math.ceil(task.config_class.__dataclass_fields__["autoassist_warmup_epochs"].default)
                extra = {"autoassist_keep_prob": autoassist_run["kept_fraction_per_epoch"][warmup:] or [1.0]}
            if strategy == BUDGET_MATCHED:
                epochs = autoassist_run["boss_instances"] / len(data.train)
            progress.announce(f"{task.name} seed {seed} {strategy}")
            record = run_one(task, data, preset, strategy, seed, work_dir, epochs, extra)
            progress.finish_one()
            if strategy == AUTOASSIST:
                autoassist_run = record
            result["runs"].append(record)
            print(
                f"    {strategy}: validation {record['final_validation']:.4f}, test {record['test_metric']:.4f}, "
                f"{record['boss_instances']} instances, {record['train_seconds']:.1f} s",
                flush=True,
            )
            save(result, output_dir)
    return result


def save(result: dict, output_dir: str) -> None:
    """Writes the JSON (runs plus their analysis) and the plot; called after every run."""
    runs = [dict(run) for run in result["runs"]]
    full = {**result, **analyse(runs), "runs": runs}  # analyse() adds its per-run numbers to the copies
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, f"{result['task']}.json"), "w") as f:
        json.dump(full, f, indent=1)
    plot_task(full, os.path.join(output_dir, f"{result['task']}.png"))


def main(argv: list[str] | None = None) -> list[dict]:
    (bench,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses(args=argv)
    if bench.seeds is None:
        bench.seeds = [0, 1] if bench.preset == "quick" else [0, 1, 2]
    transformers.utils.logging.set_verbosity_error()
    output_dir = bench.output_dir or os.path.join("benchmarks", "results", *(["quick"] if bench.preset == "quick" else []))
    tasks = list(TASKS.values()) if bench.task == "all" else [TASKS[bench.task]]
    if bench.reanalyse:
        results = []
        for task in tasks:
            path = os.path.join(output_dir, f"{task.name}.json")
            if os.path.isfile(path):
                with open(path) as f:
                    results.append(json.load(f))
                save(results[-1], output_dir)
        return results
    command = "python benchmarks/run_benchmark.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    progress = Progress(len(tasks) * len(bench.seeds) * len(bench.strategies))
    return [run_task(task, bench, output_dir, progress, command) for task in tasks]


if __name__ == "__main__":
    main()
