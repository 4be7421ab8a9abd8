"""What every benchmark script shares: one training run of a task (`run_one`), the training arguments and the
fingerprint that identify it, the counters recorded beside it (Boss instances, kept noisy / clean, CPU taken by other
processes) and the progress line. The suite (`run_benchmark.py`), the signals study, the ablation and the overhead
benchmark import it; none of them imports another's runner."""

import hashlib
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import torch
import transformers
from transformers import TrainerCallback, set_seed
from transformers.trainer_callback import PrinterCallback

from benchmarks.analysis import CLEAN, DEFAULT, FILTERED, PLAIN
from benchmarks.flags import flag_quality, noise_mask, shares
from benchmarks.names import RESOLVED_STRATEGY, RESULTS
from benchmarks.tasks import Task, TaskData
from hf_autoassist.plausibility.check import resolve_method
from hf_autoassist.losses import smoothed_target_entropy
from hf_autoassist.strategies import STRATEGY_CLASSES, resolve_strategy
from hf_autoassist.strategies.adaptive import left_to_learn


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
        self.noisy = noise_mask(noisy_indices, len(trainer.train_dataset))
        self.per_epoch: list[dict] = []

    def on_epoch_end(self, args, state, control, **kwargs):
        kept = torch.zeros_like(self.noisy)
        kept[self.trainer.selection_run.sampler.selected] = True  # not those topping a batch up at weight 0
        noisy, clean = shares(kept, self.noisy)
        self.per_epoch.append({"noisy": noisy, "clean": clean})


class TestCurve(TrainerCallback):
    """The test metric every `every` epochs and at the last, beside the counts and the training seconds so far (its
    own evaluations left out): when a run reaches a metric, not only where it ends. The random state is restored
    after each evaluation, so the training is the one without the curve and its last point is the run's test
    metric."""

    def __init__(self, trainer, test_dataset, metric: str, every: int):
        self.trainer, self.test_dataset, self.metric, self.every = trainer, test_dataset, metric, every
        self.points: list[dict] = []
        self.eval_seconds = 0.0
        self.start = time.perf_counter()  # made just before `train()`: its seconds are the run's, the check's too

    def on_epoch_end(self, args, state, control, **kwargs):
        epoch = round(state.epoch)
        if epoch % self.every and epoch < round(args.num_train_epochs):
            return
        begin = time.perf_counter()
        # a DataLoader draws its base seed from torch's global generator: restored, so that dropout draws what it
        # would have without the evaluation
        rng = torch.get_rng_state()
        metrics = self.trainer.evaluate(eval_dataset=self.test_dataset, metric_key_prefix="test")
        torch.set_rng_state(rng)
        self.points.append({
            "epoch": epoch,
            "boss_instances": self.trainer.boss_instances,
            "optimizer_steps": state.global_step,
            "train_seconds": round(begin - self.start - self.eval_seconds, 3),
            "test_metric": metrics[f"test_{self.metric}"],
        })  # fmt: skip
        self.eval_seconds += time.perf_counter() - begin


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
        **({} if strategy in (PLAIN, CLEAN, DEFAULT) else {"autoassist_strategy": LIBRARY_STRATEGY.get(strategy, strategy)}),
        **({} if strategy in (PLAIN, CLEAN) else options),
    )


def autoassist_settings(args, data: TaskData) -> dict:
    """Every AutoAssist setting in effect, defaults included, so that a result says which method made it; the
    plausibility check as the run resolves it on this task (`"auto"` is the check it makes, or None)."""
    settings = {f.name: getattr(args, f.name) for f in fields(args) if f.name.startswith("autoassist_")}
    settings["autoassist_plausibility"] = resolve_method(
        args.autoassist_plausibility, args.autoassist_strategy, data.is_encoder_decoder, data.train,
        args.autoassist_plausibility_folds,
    )  # fmt: skip
    # what "auto" trains is the library's choice of the day: a run recorded under another choice is another run
    resolved = resolve_strategy(
        args.autoassist_strategy, settings["autoassist_plausibility"], args.needs_irreducible_losses
    )
    settings[RESOLVED_STRATEGY] = resolved
    settings["autoassist_base_prob"] = STRATEGY_CLASSES[resolved].base_prob_from(args)  # the floor in force
    return settings


def resolved_before_adaptive(settings: dict) -> str:
    """What `"auto"` resolved to until 2026-12-06 (before `adaptive`): the pairs check alone on pairs, else the
    Assistant. The runs recorded then did not record it: left out of the fingerprint while it is this."""
    if settings.get("autoassist_strategy") != "auto":
        return settings.get("autoassist_strategy")
    return "none" if settings.get("autoassist_plausibility") == "pairs" else "autoassist"


# the suite's strategies that are a library strategy with options (`run_benchmark.run_specs` sets them)
LIBRARY_STRATEGY = {FILTERED: "none"}
# settings that change what is written, not what is trained: left out of the fingerprint
NOT_TRAINING = ("autoassist_write_report",)
# options added after the first runs of this suite were recorded, with the default that does what those runs did:
# left out of the fingerprint while at that default, so that the recorded runs still count
ADDED_LATER = {
    "autoassist_smoothing_floor": False,
    "autoassist_target_keep": None,
    "autoassist_rescore_every": None,
    "autoassist_irreducible_fraction": 0.5,
    "autoassist_irreducible_epochs": 1.0,
    "autoassist_irreducible_cache": None,
    # a bound that the suite's runs never reached (the thread took 0.05 / 0.01 of a core): the same runs
    "autoassist_assistant_cpu_share": 0.1,
    "autoassist_implausible_keep_prob": None,
    "autoassist_plausibility": None,
    "autoassist_plausibility_threshold": 0.5,
    "autoassist_plausibility_folds": 5,
    "autoassist_plausibility_passes": 32,
    "autoassist_plausibility_encoder": None,
    "autoassist_plausibility_rounds": 2,
    "autoassist_learned_margin": 0.1,
    "autoassist_keep_steps": None,
    "autoassist_retained_visits": 0,
    "autoassist_learned_visits": 0.0,
    "autoassist_adaptive_reweight": True,
    "autoassist_thinned_batch_multiple": 1,
    "autoassist_token_reading": "loss",
    "autoassist_unlearned_visits": 0,
    # read from streamed training sets only: the suite's are map-style
    "autoassist_stream_buffer": 20_000,
}


# options only `adaptive` reads: inert on a run of another strategy
ADAPTIVE_ONLY = ("autoassist_learned_margin", "autoassist_smoothing_floor", "autoassist_retained_visits",
                 "autoassist_learned_visits", "autoassist_adaptive_reweight", "autoassist_token_reading",
                 "autoassist_unlearned_visits")  # fmt: skip
# what sets `adaptive`'s floor and weights: inert where no instance ever comes within its margin
ADAPTIVE_FLOOR = ("autoassist_base_prob", "autoassist_learned_visits", "autoassist_retained_visits",
                  "autoassist_adaptive_reweight", "autoassist_unlearned_visits")  # fmt: skip
# what shapes thinned batches: inert on a run whose batches are never thinned
THINNING = ("autoassist_thinned_batch_multiple",)
# an inert option is fingerprinted at the value the runs recorded before it could change (else its `ADDED_LATER`)
RECORDED_BEFORE = {"autoassist_base_prob": 0.3}


def inert_options(preset, settings: dict | None = None, token_targets: bool = False) -> set[str]:
    """Options that change nothing on this recipe and run, whatever their value: the smoothing floor without
    smoothing; how token targets are read on a task without them; `adaptive`'s options on a run of another strategy;
    the shape of thinned batches on a run that trains fewer, full ones; and `adaptive`'s floor, weights and batch
    shapes under label smoothing when it reads the loss without the smoothing floor, where an instance's loss never
    falls below the smoothed target's entropy (over 2 classes, the least it can be), so none comes within the margin:
    every chance is 1 whatever the floor."""
    smoothing = preset.training.get("label_smoothing_factor") or 0.0
    inert = set() if smoothing else {"autoassist_smoothing_floor"}
    if not token_targets:
        inert.add("autoassist_token_reading")
    strategy = (settings or {}).get(RESOLVED_STRATEGY)
    if strategy is None:
        return inert
    keep_steps = settings.get("autoassist_keep_steps")
    if not (keep_steps or (keep_steps is None and strategy == "adaptive")):
        inert |= set(THINNING)  # fewer, full batches
    if strategy != "adaptive":
        return inert | set(ADAPTIVE_ONLY)
    least_left = float(left_to_learn(torch.tensor(smoothed_target_entropy(smoothing, 2))))
    margin = settings.get("autoassist_learned_margin", ADDED_LATER["autoassist_learned_margin"])
    reads_misses = token_targets and settings.get("autoassist_token_reading", "loss") == "argmax"
    if smoothing and not settings.get("autoassist_smoothing_floor") and not reads_misses and margin < least_left:
        inert |= set(ADAPTIVE_FLOOR) | set(THINNING)  # every chance is 1: no batch is thinned
    return inert


def fingerprint(task: Task, preset, strategy: str, seed: int, epochs: float, settings: dict | None) -> str:
    """What makes two runs the same run: a resumed suite keeps a recorded run only if this matches."""
    if settings is not None:
        before, inert = resolved_before_adaptive(settings), inert_options(preset, settings, task.token_targets)
        settings = {k: RECORDED_BEFORE.get(k, ADDED_LATER.get(k)) if k in inert else v for k, v in settings.items()}
        settings = {
            k: v for k, v in settings.items() if k not in NOT_TRAINING and k not in inert - set(RECORDED_BEFORE)
            and not (k in ADDED_LATER and v == ADDED_LATER[k]) and not (k == RESOLVED_STRATEGY and v == before)
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
    evaluate: bool = True, curve_every: int = 0,
):  # fmt: skip
    """One training run, evaluated on the validation and test splits at its end (unless not `evaluate`), and on the
    test split every `curve_every` epochs if that is set ([`TestCurve`]); returns its record."""
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
    curve = TestCurve(trainer, data.test, data.metric, curve_every) if curve_every else None
    if curve is not None:
        trainer.add_callback(curve)
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start - (curve.eval_seconds if curve else 0.0)
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
        "autoassist_config": autoassist_settings(args, data) if strategy not in (PLAIN, CLEAN) else None,
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
        # the plausibility check's seconds, part of `train_seconds` (None: no check ran)
        "plausibility_seconds": metrics.get("autoassist/plausibility_seconds"),
        "final_validation": validation.get(f"eval_{data.metric}"),
        "test_metric": test.get(f"test_{data.metric}"),
    }
    if curve is not None:
        record["test_curve"] = curve.points
    run = getattr(trainer, "selection_run", None)
    irreducible = None if run is None else run.irreducible
    if irreducible is not None:  # the irreducible-loss models' instances cost what the Boss's do: they count
        record["irreducible"] = irreducible.summary()
        record["boss_instances"] += irreducible.instances
    if run is not None and run.sampler.keep_steps:  # thinned batches: random replays it with the same steps
        record["keep_steps"] = True
    if run is not None and run.flagged is not None:  # the pool random draws from when it replays this run
        record["plausibility_flagged"] = int(run.flagged.sum())
    if run is not None and run.plausibility is not None and data.noisy_indices:  # the check against the planted noise
        record["flags"] = flag_quality(run.plausibility, data.noisy_indices)
    if noise is not None:
        warmup = args.autoassist_warmup_epochs
        selected = [e for i, e in enumerate(noise.per_epoch) if i >= warmup] or noise.per_epoch
        record["kept_per_epoch_noisy_clean"] = noise.per_epoch
        # mean over the epochs in which the strategy selected (after its warmup)
        record["kept_noisy_fraction"] = round(sum(e["noisy"] for e in selected) / len(selected), 4)
        record["kept_clean_fraction"] = round(sum(e["clean"] for e in selected) / len(selected), 4)
    return record


def replayed_keep_probs(record: dict, warmup: float, num_samples: int, over_unflagged: bool = True) -> list[float]:
    """Random's keep probability for each epoch after the warmup, replaying `record`'s kept fractions. They are
    shares of the whole training set; when random draws from the instances the plausibility check did not flag
    (`over_unflagged`: `plausibility_flagged` of `num_samples`, recorded since 2026-12-05) each is read as a share of
    those. An epoch in which a fractional warmup ends kept its warmup part whole: only the rest was selected.

    Example:
        >>> replayed_keep_probs({"kept_fraction_per_epoch": [1.0, 0.55, 0.4]}, warmup=1.0, num_samples=100)
        [0.55, 0.4]
        >>> [round(p, 3) for p in replayed_keep_probs({"kept_fraction_per_epoch": [0.7, 0.4]}, 0.25, 100)]
        [0.6, 0.4]
        >>> replayed_keep_probs({"kept_fraction_per_epoch": [0.75, 0.375], "plausibility_flagged": 25}, 1.0, 100)
        [0.5]
        >>> replayed_keep_probs({"kept_fraction_per_epoch": [0.75, 0.375], "plausibility_flagged": 25}, 1.0, 100, False)
        [0.375]
    """
    pool = 1.0 - record.get("plausibility_flagged", 0) / num_samples if over_unflagged else 1.0
    first = math.floor(warmup)
    probs = []
    for epoch, kept in enumerate(record["kept_fraction_per_epoch"][first:], start=first):
        kept = kept / pool
        whole = min(1.0, max(0.0, warmup - epoch))  # the share of this epoch still in the warmup
        probs.append(1.0 if whole >= 1.0 else max(0.0, min(1.0, (kept - whole) / (1.0 - whole))))
    return probs or [1.0]


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


def append_probe_run(file_name: str, script: str, argv: list[str] | None, record: dict) -> dict:
    """One probe run appended to `benchmarks/results/probes/<file_name>` as a line of JSON, with the exact command
    (`script` and its arguments) and the commit that made it."""
    command = f"python benchmarks/{script} " + shlex.join(argv if argv is not None else sys.argv[1:])
    record = {**record, "command": command, "commit": commit_measured()}
    out = RESULTS / "probes" / file_name
    out.parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(record), flush=True)
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def commit_measured() -> str | None:
    """The checkout's commit, or None when it cannot say which code runs (not a git checkout, or changed files other
    than the results, which a measurement writes as it goes and which run nothing)."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                  ":(exclude)benchmarks/results"], cwd=root, capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return None if changed.stdout.strip() else commit.stdout.strip()


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


def task_work_dir(bench, task: Task) -> str:
    """Scratch space of one task's runs (its tokenizer, the trainers' output folders)."""
    return os.path.join(bench.work_dir, bench.preset, task.name)
