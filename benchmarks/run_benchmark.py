#!/usr/bin/env python
"""Compute-quality benchmark: every strategy's curve against the plain Trainer's front, per task and seed.

For each seed and task, in this order:
1. `plain` at each budget of the plan (0.25 ... 1.0 of the recipe's instances): the plain Trainer (Seq2SeqTrainer),
   each a complete run whose LR schedule ends at its budget. Together they are the seed's **plain front**. On a
   noisy task, `plain_clean` (the perfect filter: plain on the clean instances only) at the recipe's epochs and at its
   instances; on a task the plausibility check reads (translation), `filtered`: every instance the check does not flag
   (`autoassist_strategy="none"`, `autoassist_plausibility`), at the recipe's epochs.
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

import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import transformers
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import AUTOASSIST, CLEAN, FILTERED, INFOBATCH, PLAIN, RANDOM, analyse, disturbed  # noqa: E402
from benchmarks.plots import plot_task  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    Progress, autoassist_settings, environment, fingerprint, replayed_keep_probs, run_one, task_work_dir,
    training_arguments,
)  # fmt: skip
from benchmarks.tasks import TASKS, Task, TaskData  # noqa: E402

STRATEGIES = (PLAIN, CLEAN, FILTERED, AUTOASSIST, RANDOM, INFOBATCH)
# the option that moves each strategy along its curve; `random` replays autoassist's kept fractions at its points
KNOBS = {AUTOASSIST: "autoassist_base_prob", RANDOM: "autoassist_base_prob", INFOBATCH: "autoassist_prune_ratio"}
# where the plausibility check runs alone (`filtered`, on tasks it can read): the recipe's epochs
FILTERED_EPOCHS = (1.0,)


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


def planned_runs(bench: BenchmarkArguments, plan: Plan, task: Task | None = None):
    """(strategy, budget or point) in the order they run for one seed; random follows the autoassist run it replays.
    On a noisy task the perfect filter (`CLEAN`) follows the front: plain on the clean instances at the full run's
    epochs, and at its instances (the epochs over the clean share). Then, on a task the plausibility check reads,
    the check alone (`FILTERED`) at the recipe's epochs."""
    runs = []
    if PLAIN in bench.strategies:
        runs += [(PLAIN, budget) for budget in plan.budgets]
    if CLEAN in bench.strategies and task is not None and task.noise is not None:
        runs += [(CLEAN, 1.0), (CLEAN, round(1.0 / (1.0 - task.noise.fraction), 4))]
    if FILTERED in bench.strategies and task is not None and task.plausibility is not None:
        runs += [(FILTERED, factor) for factor in FILTERED_EPOCHS]
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
    points = {strategy: defaults[knob] for strategy, knob in KNOBS.items()}
    if task.plausibility is not None:
        points[FILTERED] = 1.0  # the recipe's epochs
    return points


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
        # the recorded runs that the whole plan still holds stay in the JSON from the start (an interrupted suite
        # loses none of them, and a run of some strategies keeps the others'); those of another configuration (an
        # earlier recipe) are dropped
        self.work_dir = task_work_dir(bench, task)
        self.recorded = recorded
        every_strategy = replace(bench, strategies=list(STRATEGIES))
        for seed in bench.seeds:
            replayed = {}
            for spec in run_specs(task, data, every_strategy, preset, seed, self.work_dir, replayed):
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


@dataclass
class RunSpec:
    strategy: str
    value: float  # the plain run's budget, or the strategy's operating point
    epochs: float
    options: dict
    key: str  # its fingerprint

    @property
    def label(self) -> str:
        if self.strategy in (PLAIN, CLEAN, FILTERED):
            return f"{'budget' if self.strategy == PLAIN else 'epochs x'} {self.value}"
        return f"{KNOBS[self.strategy]}={self.value}"


def run_specs(
    task: Task, data: TaskData, bench: BenchmarkArguments, preset, seed: int, work_dir: str, replayed: dict
):  # fmt: skip
    """The seed's runs in order, with their fingerprints. A `random` run needs the record of the autoassist run it
    replays, which the caller puts in `replayed[point]` after that run; without it the random run is left out."""
    for strategy, value in planned_runs(bench, PLANS[bench.preset], task):
        epochs, options = preset.num_train_epochs, {}
        if strategy in (PLAIN, CLEAN):
            epochs = value * preset.num_train_epochs
        elif strategy == FILTERED:
            epochs, options = value * preset.num_train_epochs, {"autoassist_plausibility": task.plausibility}
        elif strategy == RANDOM:
            source = replayed.get(value)
            if source is None:
                continue
            warmup = source["autoassist_config"]["autoassist_warmup_epochs"]
            options = {"autoassist_keep_prob": replayed_keep_probs(source, warmup, len(data.train))}
        else:
            options = {KNOBS[strategy]: value}
        settings = None
        if strategy not in (PLAIN, CLEAN):
            args = training_arguments(task, preset, strategy, seed, work_dir, epochs, options)
            settings = autoassist_settings(args, data)
        yield RunSpec(strategy, value, epochs, options, fingerprint(task, preset, strategy, seed, epochs, settings))


def run_seed(suite: TaskSuite, bench: BenchmarkArguments, preset, data: TaskData, seed: int, progress: Progress):
    task = suite.task
    work_dir = suite.work_dir
    replayed = {}  # autoassist point -> its record, for the random run that replays it
    for spec in run_specs(task, data, bench, preset, seed, work_dir, replayed):
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
                results[-1]["default_points"] = default_points(task)  # the library's defaults today
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
