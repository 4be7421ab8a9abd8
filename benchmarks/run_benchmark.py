#!/usr/bin/env python
"""Compute-quality benchmark: every strategy's curve against the plain Trainer's front, per task and seed.

For each seed and task, in this order:
1. `plain` at each budget of the plan (0.25 ... 1.0 of the recipe's instances): the plain Trainer (Seq2SeqTrainer),
   each a complete run whose LR schedule ends at its budget. Together they are the seed's **plain front**.
2. `autoassist` at each of its operating points (`autoassist_base_prob`), each followed by `random` keeping, epoch by
   epoch, the fraction that autoassist run kept (same seed): random skipping at the same kept fractions.
3. `infobatch` at each of its operating points (`autoassist_prune_ratio`).
Each run evaluates the validation split once, at its end, then the test split. Its iso-quality speedup is what the
front needs (piecewise-linear between budgets) to reach its final validation metric, over what it used
(`benchmarks/analysis.py`).

    python benchmarks/run_benchmark.py --task all --preset full --data_dir ../shared/data

writes `benchmarks/results/<task>.json` and `<task>.png` after every run. The suite resumes: a run already in the
JSON with the same configuration (its fingerprint) is kept and not trained again, so a suite can finish over several
sessions; `--fresh` trains everything again.
"""

import hashlib
import json
import os
import platform
import resource
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import transformers
from transformers import HfArgumentParser, TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import AUTOASSIST, CLEAN, INFOBATCH, PLAIN, RANDOM, analyse  # noqa: E402
from benchmarks.plots import plot_task  # noqa: E402
from benchmarks.tasks import TASKS, Task, TaskData  # noqa: E402

STRATEGIES = (PLAIN, CLEAN, AUTOASSIST, RANDOM, INFOBATCH)
# the option that moves each strategy along its curve; `random` replays autoassist's kept fractions at its points
KNOBS = {AUTOASSIST: "autoassist_base_prob", RANDOM: "autoassist_base_prob", INFOBATCH: "autoassist_prune_ratio"}


@dataclass
class Plan:
    """The budgets of the plain front and the operating points of each strategy."""

    budgets: tuple[float, ...]
    points: dict[str, tuple[float, ...]]


PLANS = {
    # autoassist accepts with at least max(base_prob, 1 - skill): below 1 - skill (about 0.2 on images, 0.45 on
    # text) base_prob changes nothing, so its points start at the default
    "full": Plan(budgets=(0.25, 0.4, 0.55, 0.7, 1.0), points={AUTOASSIST: (0.3, 0.45, 0.6), INFOBATCH: (0.3, 0.5, 0.7)}),
    "quick": Plan(budgets=(0.5, 1.0), points={AUTOASSIST: (0.3,), INFOBATCH: (0.5,)}),
}


@dataclass
class BenchmarkArguments:
    task: str = field(default="all", metadata={"help": "A task, or 'all'.", "choices": ["all", *TASKS]})
    preset: str = field(default="full", metadata={"help": "Data sizes and schedule.", "choices": ["full", "quick"]})
    data_dir: str = field(default="../shared/data", metadata={"help": "The offline data folder, read in place."})
    output_dir: str | None = field(
        default=None, metadata={"help": "Where the JSON and plots go; default benchmarks/results[/quick]."}
    )
    seeds: list[int] | None = field(
        default=None, metadata={"help": "The seeds, each a whole front and every curve; default 0 1 2 (full), 0 (quick)."}
    )
    strategies: list[str] = field(
        default_factory=lambda: list(STRATEGIES),
        metadata={"help": f"Which runs to make, among {list(STRATEGIES)} (random needs autoassist)."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Override the preset's training size."})
    num_train_epochs: float | None = field(default=None, metadata={"help": "Override the preset's schedule."})
    work_dir: str = field(default="outputs/benchmarks", metadata={"help": "Scratch space for trainer outputs."})
    fresh: bool = field(default=False, metadata={"help": "Train every run again instead of resuming from the JSON."})
    retime_above: float | None = field(
        default=None,
        metadata={"help": "Train again a recorded run whose foreign CPU seconds exceeded this share of its training "
                  "seconds, or were not measured (something else may have run beside it: its time is not comparable)."},
    )
    reanalyse: bool = field(
        default=False,
        metadata={"help": "Train nothing: recompute the analysis and the plot of the existing JSON (after a change "
                  "to analysis.py or plots.py)."},
    )

    def __post_init__(self):
        unknown = sorted(set(self.strategies) - set(STRATEGIES))
        if unknown:
            raise ValueError(f"Unknown --strategies {unknown}; choose among {list(STRATEGIES)}.")
        if RANDOM in self.strategies and AUTOASSIST not in self.strategies:
            raise ValueError("'random' replays the kept fractions of the autoassist runs: add 'autoassist'.")


class BossInstanceCounter:
    """Counts the instances each training step forward- and back-propagates (every strategy, the plain Trainer too)."""

    boss_instances = 0

    def training_step(self, model, inputs, *args, **kwargs):
        self.boss_instances += len(inputs["labels"])
        return super().training_step(model, inputs, *args, **kwargs)


class NoiseRecorder(TrainerCallback):
    """At each epoch's end, the fraction of the noisy and of the clean instances that the epoch kept (the sampler
    decides inside `_run_epoch`, after `on_epoch_begin`)."""

    def __init__(self, trainer, noisy_indices: list[int]):
        self.trainer = trainer
        self.noisy = torch.zeros(len(trainer.train_dataset), dtype=torch.bool)
        self.noisy[noisy_indices] = True
        self.per_epoch: list[dict] = []

    def on_epoch_end(self, args, state, control, **kwargs):
        kept = torch.zeros_like(self.noisy)
        kept[self.trainer.selection_run.sampler.kept] = True
        self.per_epoch.append(
            {
                "noisy": round(float((kept & self.noisy).sum() / self.noisy.sum().clamp(min=1)), 4),
                "clean": round(float((kept & ~self.noisy).sum() / (~self.noisy).sum().clamp(min=1)), 4),
            }
        )


class ForeignCpu:
    """CPU seconds that other processes used while this one ran: system-wide busy time from /proc/stat minus this
    process's own (all its threads, the Assistant's too). Timing on 2 cores is only honest when it stays near 0;
    None where /proc/stat does not exist."""

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except OSError:
            return None
        idle = fields[3] + fields[4]  # idle + iowait
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK"), usage.ru_utime + usage.ru_stime

    def seconds(self) -> float | None:
        end = self._read()
        if end is None or self.start is None:
            return None
        return round(max(0.0, (end[0] - self.start[0]) - (end[1] - self.start[1])), 2)


def training_arguments(task: Task, preset, strategy: str, seed: int, work_dir: str, epochs: float, options: dict):
    return task.config_class(
        output_dir=os.path.join(work_dir, f"{strategy}-seed{seed}"),
        num_train_epochs=epochs,
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="epoch",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=seed,
        **preset.training,
        # the library's defaults but the strategy and its knob: on CPU the Assistant learns inside the step, as users
        # get it (the suites and studies recorded before 2026-12-04 pinned it to a thread, the default then)
        **({} if strategy in (PLAIN, CLEAN) else {"autoassist_strategy": strategy, **options}),
    )


def autoassist_settings(args) -> dict:
    """Every AutoAssist setting in effect, defaults included, so that a result says which method made it."""
    return {f.name: getattr(args, f.name) for f in fields(args) if f.name.startswith("autoassist_")}


# settings that change what is written, not what is trained: left out of the fingerprint
NOT_TRAINING = ("autoassist_write_report",)
# options added after the first runs of this suite were recorded, with the default that does what those runs did:
# left out of the fingerprint while at that default, so that the recorded runs still count
ADDED_LATER = {
    "autoassist_target_keep": None,
    "autoassist_rescore_every": None,
    "autoassist_irreducible_fraction": 0.5,
    "autoassist_irreducible_epochs": 1.0,
    "autoassist_irreducible_cache": None,
    # a bound that the suite's runs never reached (the thread took 0.05 / 0.01 of a core): the same runs
    "autoassist_assistant_cpu_share": 0.1,
    "autoassist_implausible_keep_prob": None,
}


def fingerprint(task: Task, preset, strategy: str, seed: int, epochs: float, settings: dict | None) -> str:
    """What makes two runs the same run: a resumed suite keeps a recorded run only if this matches."""
    if settings is not None:
        settings = {
            k: v for k, v in settings.items() if k not in NOT_TRAINING and not (k in ADDED_LATER and v == ADDED_LATER[k])
        }
    payload = {
        "task": task.name,
        "preset": asdict(preset),
        "noise": None if task.noise is None else asdict(task.noise),
        "strategy": strategy,
        "seed": seed,
        "epochs": round(epochs, 6),
        "autoassist": settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_one(
    task: Task, data: TaskData, preset, strategy: str, seed: int, work_dir: str, epochs: float, options: dict,
    evaluate: bool = True,
):  # fmt: skip
    """One training run, evaluated on the validation and test splits at its end (unless not `evaluate`); returns its
    record."""
    base = task.plain_trainer if strategy in (PLAIN, CLEAN) else task.autoassist_trainer
    trainer_class = type(f"Counted{base.__name__}", (BossInstanceCounter, base), {})
    args = training_arguments(task, preset, strategy, seed, work_dir, epochs, options)
    set_seed(seed)
    model = data.build_model()
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=data.clean_train() if strategy == CLEAN else data.train,
        eval_dataset=data.validation,
        data_collator=data.make_collator(model),
        compute_metrics=data.compute_metrics,
    )
    trainer.remove_callback(PrinterCallback)  # the benchmark prints one line per run instead
    noise = None
    if data.noisy_indices is not None and strategy not in (PLAIN, CLEAN):
        noise = NoiseRecorder(trainer, data.noisy_indices)
        trainer.add_callback(noise)
    foreign = ForeignCpu()
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    foreign_seconds = foreign.seconds()
    start = time.perf_counter()
    validation, test = {}, {}
    if evaluate:
        validation = trainer.evaluate()
        test = trainer.evaluate(eval_dataset=data.test, metric_key_prefix="test")
    eval_seconds = time.perf_counter() - start
    metrics = trainer.autoassist_metrics() if hasattr(trainer, "autoassist_metrics") else {}
    record = {
        "seed": seed,
        "strategy": strategy,
        "num_train_epochs": epochs,
        "autoassist_options": options if strategy not in (PLAIN, CLEAN) else {},
        "autoassist_config": autoassist_settings(args) if strategy not in (PLAIN, CLEAN) else None,
        "kept_fraction_per_epoch": [round(f, 4) for f in getattr(trainer, "kept_fractions", {}).values()] or None,
        "boss_instances": trainer.boss_instances,  # forwarded and back-propagated alike: no extra forward pass
        "optimizer_steps": trainer.state.global_step,
        "assistant_seconds": metrics.get("autoassist/assistant_seconds", 0.0),
        "assistant_accuracy": metrics.get("autoassist/assistant_accuracy"),
        "assistant_skill": metrics.get("autoassist/assistant_skill"),
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(eval_seconds, 3),
        # CPU seconds other processes took during training: its seconds are comparable only when this is near 0
        "foreign_cpu_seconds": foreign_seconds,
        "assistant_cpu_seconds": metrics.get("autoassist/assistant_cpu_seconds", 0.0),
        "final_validation": validation.get(f"eval_{data.metric}"),
        "test_metric": test.get(f"test_{data.metric}"),
    }
    run = getattr(trainer, "selection_run", None)
    irreducible = None if run is None else run.irreducible
    if irreducible is not None:  # the irreducible-loss models' instances cost what the Boss's do: they count
        record["irreducible"] = irreducible.summary()
        record["boss_instances"] += irreducible.instances
    if noise is not None:
        warmup = args.autoassist_warmup_epochs
        selected = [e for i, e in enumerate(noise.per_epoch) if i >= warmup] or noise.per_epoch
        record["kept_per_epoch_noisy_clean"] = noise.per_epoch
        # mean over the epochs in which the strategy selected (after its warmup)
        record["kept_noisy_fraction"] = round(sum(e["noisy"] for e in selected) / len(selected), 4)
        record["kept_clean_fraction"] = round(sum(e["clean"] for e in selected) / len(selected), 4)
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
    """`[run k/n] ... ETA`, from the mean duration of the runs trained so far."""

    def __init__(self, total: int):
        self.total, self.done, self.trained, self.start = total, 0, 0, time.perf_counter()

    def announce(self, text: str) -> None:
        elapsed = time.perf_counter() - self.start
        eta = "?" if not self.trained else f"{elapsed / self.trained * (self.total - self.done) / 60:.1f} min"
        print(f"[run {self.done + 1}/{self.total}] {text} (elapsed {elapsed / 60:.1f} min, ETA {eta})", flush=True)

    def finish_one(self, trained: bool = True) -> None:
        self.done += 1
        self.trained += trained


def planned_runs(bench: BenchmarkArguments, plan: Plan, task: Task | None = None):
    """(strategy, budget or point) in the order they run for one seed; random follows the autoassist run it replays.
    On a noisy task the perfect filter (`CLEAN`) follows the front: plain on the clean instances at the full run's
    epochs, and at its instances (the epochs over the clean share)."""
    runs = []
    if PLAIN in bench.strategies:
        runs += [(PLAIN, budget) for budget in plan.budgets]
    if CLEAN in bench.strategies and task is not None and task.noise is not None:
        runs += [(CLEAN, 1.0), (CLEAN, round(1.0 / (1.0 - task.noise.fraction), 4))]
    if AUTOASSIST in bench.strategies:
        for point in plan.points[AUTOASSIST]:
            runs.append((AUTOASSIST, point))
            if RANDOM in bench.strategies:
                runs.append((RANDOM, point))
    if INFOBATCH in bench.strategies:
        runs += [(INFOBATCH, point) for point in plan.points[INFOBATCH]]
    return runs


def default_points(task: Task) -> dict[str, float]:
    """Each strategy's operating point when the user sets nothing: its knob's default."""
    defaults = {f.name: f.default for f in fields(task.config_class)}
    return {strategy: defaults[knob] for strategy, knob in KNOBS.items()}


class TaskSuite:
    """One task's JSON: the runs recorded so far, found by fingerprint, and saved with their analysis after each run."""

    def __init__(self, task: Task, bench: BenchmarkArguments, preset, data: TaskData, output_dir: str, command: str):
        self.task, self.output_dir = task, output_dir
        self.path = os.path.join(output_dir, f"{task.name}.json")
        previous = []
        if os.path.isfile(self.path) and not bench.fresh:
            with open(self.path) as f:
                previous = json.load(f).get("runs", [])
        recorded = {}  # fingerprint -> the run, preferring the record that was trained over its copies
        for run in previous:
            if "fingerprint" in run and ("same_run_as" not in run or run["fingerprint"] not in recorded):
                recorded[run["fingerprint"]] = run
        self.result = {
            "task": task.name,
            "description": task.description,
            "preset": bench.preset,
            "command": command,
            "environment": environment(),
            "metric": data.metric,
            "data": {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)},
            "schedule": {
                "num_train_epochs": preset.num_train_epochs,
                "training_arguments": preset.training,
                "model": preset.model,
            },
            "plan": asdict(PLANS[bench.preset]),
            "default_points": default_points(task),
            "seeds": bench.seeds,
            "runs": [],
        }
        if task.noise is not None:
            self.result["noise"] = {**asdict(task.noise), "indices": data.noisy_indices}
        # the recorded runs that this plan still holds stay in the JSON from the start (an interrupted suite loses
        # none of them); those of another configuration are dropped
        self.work_dir = task_work_dir(bench, task)
        self.recorded = recorded
        for seed in bench.seeds:
            replayed = {}
            for spec in run_specs(task, bench, preset, seed, self.work_dir, replayed):
                record = self.find(spec)
                if record is not None:
                    self.result["runs"].append(record)
                    if spec.strategy == AUTOASSIST:
                        replayed[spec.value] = record

    def find(self, spec: "RunSpec") -> dict | None:
        """The recorded run of `spec`'s configuration. Two operating points can be one configuration (random
        replaying the same kept fractions): the run is then made once and recorded under each point."""
        record = self.recorded.get(spec.key)
        if record is None or _value(record) == spec.value:
            return record
        field_name = "budget" if spec.strategy == PLAIN else "point"
        return {**record, field_name: spec.value, "same_run_as": _value(record)}

    def add(self, record: dict) -> None:
        """Records the run in its place (seed, strategy, budget or point), replacing any earlier record there, of the
        same run or of one it supersedes (random replaying an autoassist run that was trained again), and saves the
        JSON and the plot."""
        runs = self.result["runs"]
        same = [i for i, run in enumerate(runs) if _slot(run) == _slot(record)]
        if same:
            runs[same[0]] = record
            for i in reversed(same[1:]):
                del runs[i]
        else:
            runs.append(record)
        if "same_run_as" not in record:
            self.recorded[record["fingerprint"]] = record
        save(self.result, self.output_dir)


def _slot(record: dict) -> tuple:
    """Where a run sits in the plan: one run per seed, strategy and budget or point."""
    return record["seed"], record["strategy"], _value(record)


def _value(record: dict) -> float:
    """A run's budget (plain) or operating point."""
    return record["budget"] if record["strategy"] == PLAIN else record["point"]


def save(result: dict, output_dir: str) -> None:
    """Writes the JSON (runs plus their analysis) and the plot."""
    full = {**result, **analyse(result["runs"], result["seeds"], result["default_points"])}
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, f"{result['task']}.json"), "w") as f:
        json.dump(full, f, indent=1)
    plot_task(full, os.path.join(output_dir, f"{result['task']}.png"))


def disturbed(record: dict, share: float) -> bool:
    """Whether other processes took more than `share` of the run's training seconds in CPU; a run recorded before
    this was measured counts as disturbed (its seconds cannot be vouched for)."""
    foreign = record.get("foreign_cpu_seconds")
    return foreign is None or foreign > share * record["train_seconds"]


@dataclass
class RunSpec:
    strategy: str
    value: float  # the plain run's budget, or the strategy's operating point
    epochs: float
    options: dict
    key: str  # its fingerprint

    @property
    def label(self) -> str:
        if self.strategy in (PLAIN, CLEAN):
            return f"{'budget' if self.strategy == PLAIN else 'clean instances, epochs x'} {self.value}"
        return f"{KNOBS[self.strategy]}={self.value}"


def task_work_dir(bench: "BenchmarkArguments", task: Task) -> str:
    """Scratch space of one task's runs (its tokenizer, the trainers' output folders)."""
    return os.path.join(bench.work_dir, bench.preset, task.name)


def run_specs(task: Task, bench: BenchmarkArguments, preset, seed: int, work_dir: str, replayed: dict):
    """The seed's runs in order, with their fingerprints. A `random` run needs the record of the autoassist run it
    replays, which the caller puts in `replayed[point]` after that run; without it the random run is left out."""
    for strategy, value in planned_runs(bench, PLANS[bench.preset], task):
        epochs, options = preset.num_train_epochs, {}
        if strategy in (PLAIN, CLEAN):
            epochs = value * preset.num_train_epochs
        elif strategy == RANDOM:
            source = replayed.get(value)
            if source is None:
                continue
            warmup = int(source["autoassist_config"]["autoassist_warmup_epochs"])
            options = {"autoassist_keep_prob": source["kept_fraction_per_epoch"][warmup:] or [1.0]}
        else:
            options = {KNOBS[strategy]: value}
        settings = None
        if strategy not in (PLAIN, CLEAN):
            settings = autoassist_settings(training_arguments(task, preset, strategy, seed, work_dir, epochs, options))
        yield RunSpec(strategy, value, epochs, options, fingerprint(task, preset, strategy, seed, epochs, settings))


def run_seed(suite: TaskSuite, bench: BenchmarkArguments, preset, data: TaskData, seed: int, progress: Progress):
    task = suite.task
    work_dir = suite.work_dir
    replayed = {}  # autoassist point -> its record, for the random run that replays it
    for spec in run_specs(task, bench, preset, seed, work_dir, replayed):
        progress.announce(f"{task.name} seed {seed} {spec.strategy} {spec.label}")
        record = suite.find(spec)
        if record is not None and bench.retime_above is not None and disturbed(record, bench.retime_above):
            record = None
        trained = record is None
        if trained:
            record = run_one(task, data, preset, spec.strategy, seed, work_dir, spec.epochs, spec.options)
            record.update(fingerprint=spec.key, **({"budget": spec.value} if spec.strategy == PLAIN else {"point": spec.value}))
            print(
                f"    validation {record['final_validation']:.4f}, test {record['test_metric']:.4f}, "
                f"{record['boss_instances']} instances, {record['train_seconds']:.1f} s",
                flush=True,
            )
        else:
            print("    recorded earlier with the same configuration: kept", flush=True)
        progress.finish_one(trained)
        if spec.strategy == AUTOASSIST:
            replayed[spec.value] = record
        suite.add(record)


def main(argv: list[str] | None = None) -> list[dict]:
    (bench,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses(args=argv)
    if bench.seeds is None:
        bench.seeds = [0] if bench.preset == "quick" else [0, 1, 2]
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
    suites = []
    for task in tasks:
        preset = task.presets[bench.preset]
        if bench.max_train_samples is not None:
            preset.train_samples = bench.max_train_samples
        if bench.num_train_epochs is not None:
            preset.num_train_epochs = bench.num_train_epochs
        data = task.load(bench.data_dir, preset, task_work_dir(bench, task), task.noise)
        suites.append((TaskSuite(task, bench, preset, data, output_dir, command), preset, data))
    progress = Progress(len(bench.seeds) * sum(len(planned_runs(bench, PLANS[bench.preset], t)) for t in tasks))
    # seed by seed across the tasks, so that an interrupted suite has every task at its first seeds
    for seed in bench.seeds:
        for suite, preset, data in suites:
            run_seed(suite, bench, preset, data, seed, progress)
    return [suite.result for suite, _, _ in suites]


if __name__ == "__main__":
    main()
