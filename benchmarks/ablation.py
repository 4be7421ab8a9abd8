#!/usr/bin/env python
"""One change at a time against the current AutoAssist, each judged against random skipping at its own kept fractions.

For every variant (a set of `autoassist_*` options) and seed: an `autoassist` run with those options, then a `random`
run that keeps, epoch by epoch, the fraction the variant kept. The difference of their final validation metrics,
paired by seed, says whether the variant's choice of instances is worth more than chance at the same budget.

    python benchmarks/ablation.py --task vision-resnet --seeds 0 1 2

writes `benchmarks/results/ablation-<task>.json` after every run.
"""

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import transformers
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import pair_by_seed, spread  # noqa: E402
from benchmarks.runs import Progress, environment, replayed_keep_probs, run_one  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

# the paper's rule, which the first ablations started from: every variant states its options against it, so that
# the study reads the same whatever the library's defaults are
PAPER_RULE = {
    "autoassist_label": "running_mean",
    "autoassist_confidence": "accuracy",
    "autoassist_assistant_memory": False,
    "autoassist_reweight": False,
    "autoassist_full_data_finish": 0.0,
}
# each variant changes one thing from the paper's rule (the first row), then combinations of those that did not lose
CHANGES = {
    "paper's rule": {},
    "skill confidence": {"autoassist_confidence": "skill"},
    "batch-median label": {"autoassist_label": "batch_median"},
    "reweight 1/p": {"autoassist_reweight": True},
    "full-data finish 0.125": {"autoassist_full_data_finish": 0.125},
    "loss memory": {"autoassist_assistant_memory": True},
    "skill + batch-median": {"autoassist_confidence": "skill", "autoassist_label": "batch_median"},
    "skill + batch-median + memory": {
        "autoassist_confidence": "skill", "autoassist_label": "batch_median", "autoassist_assistant_memory": True,
    },
    "skill + batch-median + memory + reweight": {
        "autoassist_confidence": "skill", "autoassist_label": "batch_median", "autoassist_assistant_memory": True,
        "autoassist_reweight": True,
    },
}  # fmt: skip
VARIANTS = {name: {**PAPER_RULE, **change} for name, change in CHANGES.items()}


@dataclass
class AblationArguments:
    task: str = field(default="vision-resnet", metadata={"choices": list(TASKS)})
    preset: str = field(default="full", metadata={"choices": ["full", "quick"]})
    data_dir: str = field(default="../shared/data")
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    variants: list[str] = field(default_factory=lambda: list(VARIANTS), metadata={"help": f"Among {list(VARIANTS)}."})
    combined: str | None = field(default=None, metadata={"help": "JSON options of one more variant, 'combined', changed from the paper's rule."})
    output_dir: str = field(default="benchmarks/results")
    work_dir: str = field(default="outputs/ablation")


def main(argv=None):
    (args,) = HfArgumentParser(AblationArguments).parse_args_into_dataclasses(args=argv)
    transformers.utils.logging.set_verbosity_error()
    variants = {name: VARIANTS[name] for name in args.variants}
    if args.combined:
        variants["combined"] = {**PAPER_RULE, **json.loads(args.combined)}
    task = TASKS[args.task]
    os.makedirs(args.output_dir, exist_ok=True)
    result_path = os.path.join(args.output_dir, f"ablation-{task.name}.json")
    preset = task.presets[args.preset]
    work_dir = os.path.join(args.work_dir, args.preset, task.name)
    data = task.load(args.data_dir, preset, work_dir, task.noise)
    warmup = math.ceil(task.config_class.__dataclass_fields__["autoassist_warmup_epochs"].default)
    command = "python benchmarks/ablation.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {"task": task.name, "preset": args.preset, "commands": [], "variants": {}, "runs": []}
    if os.path.exists(result_path):  # earlier invocations' runs are kept, except those re-run now
        with open(result_path) as f:
            result = json.load(f)
        if result.get("preset") != args.preset:
            raise ValueError(f"{result_path} holds the {result.get('preset')!r} preset; pass another --output_dir.")
        result.setdefault("commands", [result.pop("command")] if "command" in result else [])
        result["runs"] = [r for r in result["runs"] if not (r["variant"] in variants and r["seed"] in args.seeds)]
    result["commands"].append(command)
    result["environment"] = environment()
    result["metric"] = data.metric
    result["paper_rule"] = PAPER_RULE
    result["variants"].update(variants)
    progress = Progress(2 * len(variants) * len(args.seeds))
    for seed in args.seeds:
        for name, options in variants.items():
            progress.announce(f"{task.name} seed {seed} {name}")
            selected = run_one(task, data, preset, "autoassist", seed, work_dir, preset.num_train_epochs, options)
            progress.finish_one()
            progress.announce(f"{task.name} seed {seed} random at the kept fractions of {name}")
            # the kept fractions include any full-data epochs (1.0), so random replays those too
            keep = {"autoassist_keep_prob": replayed_keep_probs(selected, warmup, len(data.train))}
            random = run_one(task, data, preset, "random", seed, work_dir, preset.num_train_epochs, keep)
            progress.finish_one()
            for record in (selected, random):
                record["variant"] = name
                result["runs"].append(record)
            print(
                f"    {name}: {selected['final_validation']:.4f} vs random {random['final_validation']:.4f} "
                f"({selected['boss_instances']} instances, kept {selected['kept_fraction_per_epoch'][-1]:.3f} last)",
                flush=True,
            )
            result["summary"] = summarize(result["runs"], result["variants"])
            with open(result_path, "w") as f:
                json.dump(result, f, indent=1)
    return result


def summarize(runs: list[dict], variants: dict) -> dict:
    """Per variant: its final validation metric, its Boss instances, and its paired difference to random."""
    summary = {}
    for name in variants:
        complete = list(pair_by_seed(runs, variant=name).values())
        summary[name] = {
            "final_validation": spread([p["autoassist"]["final_validation"] for p in complete]),
            "random_final_validation": spread([p["random"]["final_validation"] for p in complete]),
            "minus_random": spread([p["autoassist"]["final_validation"] - p["random"]["final_validation"] for p in complete]),
            "boss_instances": spread([p["autoassist"]["boss_instances"] for p in complete]),
            "kept_after_warmup": spread(
                [sum(p["autoassist"]["kept_fraction_per_epoch"][1:]) / max(1, len(p["autoassist"]["kept_fraction_per_epoch"]) - 1) for p in complete]
            ),
        }
    return summary


if __name__ == "__main__":
    main()
