#!/usr/bin/env python
"""Which selection signal: each one against random at its own kept fractions and against the plain front.

For every task, seed and signal (a few `autoassist_*` options over the library's defaults): an `autoassist` run,
then a `random` run that keeps, epoch by epoch, the fraction the signal kept after the warmup (with the same warmup
and the same in-epoch decisions, so that both skip in the same places). Each run is also placed on its seed's plain
front, read from the suite's `benchmarks/results/<task>.json` (run `run_benchmark.py` first): its iso-quality
speedup in instances and in seconds. On noisy tasks the kept fractions of noisy and clean instances are recorded.

    python benchmarks/signals.py --task all --data_dir ../shared/data

writes `benchmarks/results/signals-<task>.json` after every run; runs already recorded with the same configuration
are kept, so the study resumes where it stopped. `--retime_above 0.10` trains again the runs whose seconds something
else disturbed (and the random run replaying a re-trained signal run).
"""

import json
import os
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import transformers
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import disturbed, front_of, iso_quality, pair_by_seed, spread  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    Progress, autoassist_settings, environment, fingerprint, replayed_keep_probs, run_one, task_work_dir,
    training_arguments,
)  # fmt: skip
from benchmarks.tasks import TASKS  # noqa: E402

# each signal is what it changes from the library's defaults
SIGNALS = {
    "loss (batch median)": {},
    "decline": {"autoassist_label": "decline"},
    "reducible": {"autoassist_label": "reducible"},
    "loss, in-epoch": {"autoassist_rescore_every": 20},
    "reducible, in-epoch": {"autoassist_label": "reducible", "autoassist_rescore_every": 20},
    # added after the reducible label was measured to prefer wrong labels (its scale): the same idea in ranks
    "learnable": {"autoassist_label": "learnable"},
    # its label separates wrong from right labels far better with irreducible-loss models trained 3 epochs
    # (0.28-0.32 vs 0.58-0.59 labelled positive on noisy ResNet, against 0.40-0.42 vs 0.53-0.54 with 1)
    "learnable, 3-epoch irreducible": {"autoassist_label": "learnable", "autoassist_irreducible_epochs": 3.0},
    # the irreducible losses alone tell wrong labels well (AUC 0.91): those less likely than chance are dropped, the
    # rest chosen by the default label (kept at the floor, 0.3, they were kept as often as the learned right labels:
    # 0.46 / 0.48 of noisy / clean on noisy ResNet, archived)
    "implausible dropped": {"autoassist_implausible_keep_prob": 0.0},
    # the default label read by the Assistant of any modality: the Boss's own head input instead of pixels / tokens
    "boss features": {"autoassist_assistant": "boss_features"},
}
# signals that read class ids (not run on translation)
CLASSIFICATION_ONLY = {"implausible dropped"}


@dataclass
class SignalsArguments:
    task: str = field(default="all", metadata={"choices": ["all", *TASKS]})
    preset: str = field(default="full", metadata={"choices": ["full", "quick"]})
    data_dir: str = field(default="../shared/data")
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    signals: list[str] = field(default_factory=lambda: list(SIGNALS), metadata={"help": f"Among {list(SIGNALS)}."})
    suite_dir: str | None = field(default=None, metadata={"help": "Where the suite's JSON with the plain front is; default benchmarks/results[/quick]."})
    output_dir: str | None = field(default=None, metadata={"help": "Default: the suite_dir."})
    work_dir: str = field(default="outputs/signals")
    max_train_samples: int | None = field(default=None, metadata={"help": "Override the preset's training size (as the suite's)."})
    retime_above: float | None = field(
        default=None,
        metadata={"help": "Train again a recorded run whose foreign CPU seconds exceeded this share of its training "
                  "seconds (as run_benchmark.py's): its seconds are not comparable."},
    )


def summarize(runs: list[dict], signals: list[str], seeds: list[int]) -> dict:
    """Per signal: iso-quality speedups, the paired difference to random, kept fractions (noisy / clean)."""
    summary = {}
    for name in signals:
        pairs = pair_by_seed(runs, signal=name)
        complete = [s for s in seeds if s in pairs]
        chosen = [pairs[s]["autoassist"] for s in complete]
        summary[name] = {
            "seeds": complete,
            "final_validation": spread([r["final_validation"] for r in chosen]),
            "minus_random": spread([pairs[s]["autoassist"]["final_validation"] - pairs[s]["random"]["final_validation"] for s in complete]),
            "iso_quality_instances": spread([r["iso_quality"]["instances"] for r in chosen]),
            "iso_quality_seconds": spread([r["iso_quality"]["seconds"] for r in chosen]),
            "random_iso_quality_seconds": spread([pairs[s]["random"]["iso_quality"]["seconds"] for s in complete]),
            "gain_over_full_plain": spread([r["iso_quality"]["gain_over_full_plain"] for r in chosen]),
            "kept_noisy_fraction": spread([r.get("kept_noisy_fraction") for r in chosen]),
            "kept_clean_fraction": spread([r.get("kept_clean_fraction") for r in chosen]),
            "irreducible_heldout_accuracy": spread([r.get("irreducible", {}).get("heldout_accuracy") for r in chosen]),
        }  # fmt: skip
    return summary


class SignalStudy:
    """One task's JSON: the plain fronts it reads, the runs recorded so far (by fingerprint), saved after each run."""

    def __init__(self, task, args: SignalsArguments, command: str):
        self.task, self.args = task, args
        self.preset = replace(task.presets[args.preset])
        if args.max_train_samples is not None:
            self.preset.train_samples = args.max_train_samples
        suite_dir = args.suite_dir or os.path.join("benchmarks", "results", *(["quick"] if args.preset == "quick" else []))
        with open(os.path.join(suite_dir, f"{task.name}.json")) as f:
            suite_runs = json.load(f)["runs"]
        self.fronts = {seed: front_of(suite_runs, seed) for seed in args.seeds}
        missing = [seed for seed, front in self.fronts.items() if not front]
        if missing:
            raise ValueError(f"{task.name}: no plain front for seeds {missing} in {suite_dir}; run run_benchmark.py first.")
        output_dir = args.output_dir or suite_dir
        os.makedirs(output_dir, exist_ok=True)
        self.path = os.path.join(output_dir, f"signals-{task.name}.json")
        self.recorded, earlier = {}, {"runs": [], "commands": []}
        if os.path.isfile(self.path):
            with open(self.path) as f:
                earlier = json.load(f)
            self.recorded = {run["fingerprint"]: run for run in earlier["runs"]}
        self.work_dir = task_work_dir(args, task)
        self.data = task.load(args.data_dir, self.preset, self.work_dir, task.noise)
        commands = [c for c in earlier.get("commands", [earlier.get("command")]) if c and c != command] + [command]
        self.result = {
            "task": task.name, "preset": args.preset, "commands": commands, "environment": environment(),
            "metric": self.data.metric, "front_from": os.path.join(suite_dir, f"{task.name}.json"),
            # every run recorded so far stays until its slot is visited again: a study stopped midway, or one of
            # some signals only, keeps what the file held
            "runs": list(earlier["runs"]),
        }  # fmt: skip

    def run_seed(self, seed: int, progress: Progress) -> None:
        task, preset, epochs = self.task, self.preset, self.preset.num_train_epochs
        for name in self.args.signals:
            if name in CLASSIFICATION_ONLY and self.data.metric != "accuracy":
                progress.finish_one(trained=False)
                progress.finish_one(trained=False)
                continue
            options, chosen = SIGNALS[name], None
            for strategy in ("autoassist", "random"):
                if strategy == "random":  # the same warmup and decision points, the signal's kept fractions
                    warmup = chosen["autoassist_config"]["autoassist_warmup_epochs"]
                    options = {k: v for k, v in options.items() if k in ("autoassist_rescore_every", "autoassist_warmup_epochs")}
                    options["autoassist_keep_prob"] = replayed_keep_probs(chosen, warmup, len(self.data.train))
                args = training_arguments(task, preset, strategy, seed, self.work_dir, epochs, options)
                key = fingerprint(task, preset, strategy, seed, epochs, autoassist_settings(args, self.data))
                progress.announce(f"{task.name} seed {seed} {name}: {strategy}")
                record = self.recorded.get(key)
                if record is not None and self.args.retime_above is not None and disturbed(record, self.args.retime_above):
                    record = None
                if record is None:
                    record = run_one(task, self.data, preset, strategy, seed, self.work_dir, epochs, options)
                    record.update(fingerprint=key, signal=name, iso_quality=iso_quality(record, self.fronts[seed]))
                    self.recorded[key] = record
                    print(f"    validation {record['final_validation']:.4f}, {record['boss_instances']} instances, "
                          f"iso-quality {record['iso_quality']['instances']:.2f} (instances)", flush=True)  # fmt: skip
                    progress.finish_one(trained=True)
                else:
                    progress.finish_one(trained=False)
                # one record per (signal, seed, strategy): a run trained again (another configuration, or re-timed)
                # replaces the one it supersedes
                slot = (name, seed, strategy)
                self.result["runs"] = [
                    r for r in self.result["runs"] if (r["signal"], r["seed"], r["strategy"]) != slot
                ] + [record]
                chosen = record if strategy == "autoassist" else chosen
                studied = [n for n in SIGNALS if any(r["signal"] == n for r in self.result["runs"])]
                self.result["signals"] = {n: SIGNALS[n] for n in studied}
                self.result["summary"] = summarize(self.result["runs"], studied, self.args.seeds)
                with open(self.path, "w") as f:
                    json.dump(self.result, f, indent=1)


def main(argv: list[str] | None = None) -> list[dict]:
    (args,) = HfArgumentParser(SignalsArguments).parse_args_into_dataclasses(args=argv)
    unknown = [name for name in args.signals if name not in SIGNALS]
    if unknown:
        raise ValueError(f"Unknown signals {unknown}; choose among {list(SIGNALS)}.")
    transformers.utils.logging.set_verbosity_error()
    tasks = list(TASKS.values()) if args.task == "all" else [TASKS[args.task]]
    command = "python benchmarks/signals.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    studies = [SignalStudy(task, args, command) for task in tasks]
    progress = Progress(len(tasks) * len(args.seeds) * len(args.signals) * 2)
    # seed by seed across the tasks, so that an interrupted study has every task at its first seeds
    for seed in args.seeds:
        for study in studies:
            study.run_seed(seed, progress)
    return [study.result for study in studies]


if __name__ == "__main__":
    main()
