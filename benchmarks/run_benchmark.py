#!/usr/bin/env python
"""Compute-quality benchmark: the default against the plain run the user would have made, against random skipping of
as many instances, and against the plain front, per task, recipe length and seed.

For each seed and task, in this order:
1. `plain` at each budget of the plan (0.25 ... 2.0 of the converged recipe's epochs): the plain Trainer
   (Seq2SeqTrainer), each a complete run whose LR schedule ends at its budget. Together they are the seed's **plain
   front**; the budgets 0.5, 1.0 and 2.0 are also the plain runs of the half, converged and double **recipe lengths**.
   On a noisy task, `plain_clean` (the perfect filter: plain on the clean instances only) at the recipe's epochs; where
   a plausibility check is opt-in, `filtered` (the check alone, `autoassist_strategy="none"`) at the recipe's epochs.
2. At each recipe length, `default` (AutoAssistTrainer with no option set, as users get it), then `random` keeping,
   epoch by epoch, the fraction of the whole training set that the default kept (same seed, no check). When the default
   kept every instance, random at its fractions is the plain run, and is not trained again.
3. `infobatch` at its operating points (`autoassist_prune_ratio`), when asked for.
The verdict rows (plain, default and random at the converged length) take `verdict_seeds` seeds, everything else
`front_seeds`. Each run evaluates the validation split once, at its end, then the test split; `benchmarks/verdicts.py`
turns them into paired differences with their 95% intervals.

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
from benchmarks.analysis import CLEAN, DEFAULT, FILTERED, INFOBATCH, PLAIN, RANDOM, disturbed  # noqa: E402
from benchmarks.plots import plot_task  # noqa: E402
from benchmarks.runs import (  # noqa: E402
    Progress, autoassist_settings, environment, fingerprint, replayed_keep_probs, run_one, task_work_dir,
    training_arguments,
)  # fmt: skip
from benchmarks.tasks import TASKS, Task, TaskData  # noqa: E402
from benchmarks.verdicts import analyse, kept_everything, pricing_step_cost  # noqa: E402

STRATEGIES = (PLAIN, CLEAN, FILTERED, DEFAULT, RANDOM, INFOBATCH)
# the suite's runs unless --strategies says otherwise: InfoBatch's curve is asked for by name
SUITE_STRATEGIES = (PLAIN, CLEAN, FILTERED, DEFAULT, RANDOM)
# the option that moves a strategy along its curve
KNOBS = {INFOBATCH: "autoassist_prune_ratio"}
# a strategy run at each recipe length rather than at a budget or operating point
AT_LENGTHS = (DEFAULT, RANDOM)


@dataclass
class Plan:
    """The budgets of the plain front (shares of the converged recipe's epochs), the recipe lengths the default is
    judged at (each also a budget), the seeds of the verdict rows (plain, default and random at the converged length)
    and of every other run, and the operating points of the strategies that have a knob."""

    budgets: tuple[float, ...]
    lengths: tuple[float, ...]
    verdict_seeds: int
    front_seeds: int
    points: dict[str, tuple[float, ...]]

    def for_task(self, task: Task | None) -> "Plan":
        """The plan a task runs: `translation-tatoeba-noisy` keeps its converged rows only (the suite's time)."""
        if task is None or task.lengths is None:
            return self
        longest = max(task.lengths)
        return replace(self, lengths=task.lengths, budgets=tuple(b for b in self.budgets if b <= longest))

    def seeds_of(self, strategy: str, value: float) -> int:
        verdict = strategy in (PLAIN, *AT_LENGTHS) and value == 1.0
        return self.verdict_seeds if verdict else self.front_seeds


PLANS = {
    # 5 seeds where a verdict is read (a 95% interval over 3 seeds is 4.3 standard errors wide, over 5 2.8); the
    # half and double lengths and the front's other budgets 3
    "full": Plan(budgets=(0.25, 0.5, 0.75, 1.0, 2.0), lengths=(0.5, 1.0, 2.0), verdict_seeds=5, front_seeds=3,
                 points={INFOBATCH: (0.3, 0.5, 0.7)}),  # fmt: skip
    "quick": Plan(budgets=(0.5, 1.0), lengths=(1.0,), verdict_seeds=1, front_seeds=1, points={INFOBATCH: (0.5,)}),
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
        default=None,
        metadata={"help": "The seeds; default the plan's: 0 to 4 for the verdict rows, 0 to 2 for the rest (full)."},
    )
    strategies: list[str] = field(
        default_factory=lambda: list(SUITE_STRATEGIES),
        metadata={"help": f"Which runs to make, among {list(STRATEGIES)} (random needs default)."},
    )
    values: list[float] | None = field(
        default=None,
        metadata={"help": "Only the runs at these budgets, recipe lengths or points of the plan (say 1.0: the "
                  "converged verdict rows first); the other recorded runs stay in the JSON."},
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
        if RANDOM in self.strategies and DEFAULT not in self.strategies:
            raise ValueError("'random' replays the kept fractions of the default's runs: add 'default'.")


def planned_runs(bench: BenchmarkArguments, plan: Plan, task: Task | None = None, seed: int | None = None):
    """(strategy, budget, length or point) in the order they run for `seed` (every run of any seed when None); random
    follows the default run it replays. On a noisy task the perfect filter (`CLEAN`) follows the front, at the
    recipe's epochs; then, where the plausibility check is opt-in (`task.plausibility` but not the default's), the
    check alone (`FILTERED`) at the recipe's epochs."""
    plan = plan.for_task(task)
    runs = []
    if PLAIN in bench.strategies:
        runs += [(PLAIN, budget) for budget in plan.budgets]
    if CLEAN in bench.strategies and task is not None and task.noise is not None:
        runs.append((CLEAN, 1.0))
    if FILTERED in bench.strategies and task is not None and task.plausibility not in (None, "pairs"):
        runs.append((FILTERED, 1.0))  # the default ('auto') makes the pairs check alone: that run is `default`
    for length in plan.lengths:
        runs += [(strategy, length) for strategy in AT_LENGTHS if strategy in bench.strategies]
    if INFOBATCH in bench.strategies:
        runs += [(INFOBATCH, point) for point in plan.points[INFOBATCH]]
    if bench.values is not None:
        runs = [(s, v) for s, v in runs if v in bench.values]
    return [(s, v) for s, v in runs if seed is None or seed < plan.seeds_of(s, v)]


def default_points(task: Task) -> dict[str, float]:
    """Each knob's operating point when the user sets nothing."""
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
        self.recorded = {run["fingerprint"]: run for run in previous if "fingerprint" in run}
        plan = PLANS[bench.preset].for_task(task)
        self.result = {
            "task": task.name,
            "description": task.description,
            "preset": bench.preset,
            "command": command,
            "environment": environment(),
            "metric": data.metric,
            # the sizes of the sets each run is decided (validation) and reported (test) on
            "data": {"train": len(data.train), "validation": len(data.validation), "test": len(data.test)},
            "schedule": {
                "num_train_epochs": preset.num_train_epochs,
                "training_arguments": preset.training,
                "model": preset.model,
            },
            "plan": asdict(plan),
            "default_points": default_points(task),
            "seeds": sorted(set(bench.seeds) | set(range(max(plan.verdict_seeds, plan.front_seeds)))),
            "runs": [],
        }
        if task.noise is not None:
            self.result["noise"] = {**asdict(task.noise), "indices": data.noisy_indices}
        # the recorded runs that the whole plan still holds stay in the JSON from the start (an interrupted suite
        # loses none of them, and a run of some strategies keeps the others'); those of another configuration (an
        # earlier recipe) are dropped
        self.work_dir = task_work_dir(bench, task)
        # every run of the plan, whatever this invocation's --strategies, --values and --seeds
        every_run = replace(bench, strategies=list(STRATEGIES), values=None)
        for seed in self.result["seeds"]:
            replayed = {}
            for spec in run_specs(task, data, every_run, preset, seed, self.work_dir, replayed):
                record = self.recorded.get(spec.key)
                if record is not None:
                    self.result["runs"].append(record)
                    if spec.strategy == DEFAULT:
                        replayed[spec.value] = record

    def add(self, record: dict) -> None:
        """Records the run in its place (seed, strategy, budget, length or point), replacing any earlier record there,
        of the same run or of one it supersedes (random replaying a default run that was trained again), and saves the
        JSON and the plot."""
        runs = self.result["runs"]
        same = [i for i, run in enumerate(runs) if _slot(run) == _slot(record)]
        if same:
            runs[same[0]] = record
            for i in reversed(same[1:]):
                del runs[i]
        else:
            runs.append(record)
        self.recorded[record["fingerprint"]] = record
        save(self.result, self.output_dir)


# the record field that places a run of each strategy in the plan
VALUE_FIELD = {PLAIN: "budget", DEFAULT: "length", RANDOM: "length"}


def _slot(record: dict) -> tuple:
    """Where a run sits in the plan: one run per seed, strategy and budget, length or point."""
    return record["seed"], record["strategy"], record[VALUE_FIELD.get(record["strategy"], "point")]


def save(result: dict, output_dir: str) -> None:
    """Writes the JSON (runs plus their analysis) and the plot."""
    full = {**result, **analyse(result["runs"], pricing_step_cost(result["task"], result["runs"]))}
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, f"{result['task']}.json"), "w") as f:
        json.dump(full, f, indent=1)
    plot_task(full, os.path.join(output_dir, f"{result['task']}.png"))


@dataclass
class RunSpec:
    strategy: str
    value: float  # the plain run's budget, the recipe length of default and random, or a strategy's operating point
    epochs: float
    options: dict
    key: str  # its fingerprint

    @property
    def label(self) -> str:
        if self.strategy == PLAIN:
            return f"budget {self.value}"
        if self.strategy in KNOBS:
            return f"{KNOBS[self.strategy]}={self.value}"
        return f"epochs x {self.value}"


def run_specs(
    task: Task, data: TaskData, bench: BenchmarkArguments, preset, seed: int, work_dir: str, replayed: dict
):  # fmt: skip
    """The seed's runs in order, with their fingerprints. A `random` run needs the record of the default run it
    replays, which the caller puts in `replayed[length]` after that run; without it (or when that run kept every
    instance) the random run is left out."""
    for strategy, value in planned_runs(bench, PLANS[bench.preset], task, seed):
        epochs, options = value * preset.num_train_epochs, {}
        if strategy == FILTERED:
            options = {"autoassist_plausibility": task.plausibility}
        elif strategy == RANDOM:
            source = replayed.get(value)
            if source is None or kept_everything(source):
                continue
            warmup = source["autoassist_config"]["autoassist_warmup_epochs"]
            # a share of the whole training set, drawn from all of it: random skipping without the check
            keep = replayed_keep_probs(source, warmup, len(data.train), over_unflagged=False)
            options = {"autoassist_keep_prob": keep, "autoassist_plausibility": "none"}
            if source.get("keep_steps"):  # the default thinned the plain run's batches: so does random
                options["autoassist_keep_steps"] = True
        elif strategy in KNOBS:
            epochs, options = preset.num_train_epochs, {KNOBS[strategy]: value}
        settings = None
        if strategy not in (PLAIN, CLEAN):
            args = training_arguments(task, preset, strategy, seed, work_dir, epochs, options)
            settings = autoassist_settings(args, data)
        yield RunSpec(strategy, value, epochs, options, fingerprint(task, preset, strategy, seed, epochs, settings))


def run_seed(suite: TaskSuite, bench: BenchmarkArguments, preset, data: TaskData, seed: int, progress: Progress):
    task = suite.task
    work_dir = suite.work_dir
    replayed = {}  # length -> the default's record there, for the random run that replays it
    for spec in run_specs(task, data, bench, preset, seed, work_dir, replayed):
        progress.announce(f"{task.name} seed {seed} {spec.strategy} {spec.label}")
        record = suite.recorded.get(spec.key)
        if record is not None and bench.retime_above is not None and disturbed(record, bench.retime_above):
            record = None
        trained = record is None
        if trained:
            record = run_one(task, data, preset, spec.strategy, seed, work_dir, spec.epochs, spec.options)
            record.update(fingerprint=spec.key, **{VALUE_FIELD.get(spec.strategy, "point"): spec.value})
            print(
                f"    validation {record['final_validation']:.4f}, test {record['test_metric']:.4f}, "
                f"{record['boss_instances']} instances, {record['train_seconds']:.1f} s",
                flush=True,
            )
        else:
            print("    recorded earlier with the same configuration: kept", flush=True)
        progress.finish_one(trained)
        if spec.strategy == DEFAULT:
            replayed[spec.value] = record
        suite.add(record)


def main(argv: list[str] | None = None) -> list[dict]:
    (bench,) = HfArgumentParser(BenchmarkArguments).parse_args_into_dataclasses(args=argv)
    plan = PLANS[bench.preset]
    if bench.seeds is None:
        bench.seeds = list(range(max(plan.verdict_seeds, plan.front_seeds)))
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
    total = sum(len(planned_runs(bench, plan, t, seed)) for t in tasks for seed in bench.seeds)
    progress = Progress(total)
    # seed by seed across the tasks, so that an interrupted suite has every task at its first seeds
    for seed in bench.seeds:
        for suite, preset, data in suites:
            run_seed(suite, bench, preset, data, seed, progress)
    return [suite.result for suite, _, _ in suites]


if __name__ == "__main__":
    main()
