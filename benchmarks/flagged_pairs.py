#!/usr/bin/env python
"""What the pairs check flags on a corpus with no planted misalignment, as text: the pairs a user would be shown.

    python benchmarks/flagged_pairs.py --data_dir ../shared/data --corpus tatoeba --train_samples 26000

runs `plausibility_for` once on the clean training pairs of the plausibility study's corpus (the same pairs, in the
same order, as `plausibility.py`) and writes every flagged pair, least plausible first, with its posterior, to
`benchmarks/results/flagged-<corpus>-<pairs>.jsonl`.
"""

import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.plausibility import CORPUS_TASKS  # noqa: E402
from benchmarks.tasks import raw_translation  # noqa: E402
from hf_autoassist.plausibility import plausibility_for  # noqa: E402


@dataclass
class FlaggedPairsArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "The offline data folder, read in place."})
    corpus: str = field(default="tatoeba", metadata={"choices": list(CORPUS_TASKS)})
    train_samples: int | None = field(default=None, metadata={"help": "Training pairs; default the suite's 3,250."})
    seed: int = field(default=0, metadata={"help": "Seed of the check."})
    work_dir: str = field(default="outputs/benchmarks/flagged-pairs")


def main():
    (args,) = HfArgumentParser(FlaggedPairsArguments).parse_args_into_dataclasses()
    task = CORPUS_TASKS[args.corpus]
    preset = task.presets["full"]
    if args.train_samples is not None:
        preset = replace(preset, train_samples=args.train_samples)
    data = task.load(args.data_dir, preset, os.path.join(args.work_dir, args.corpus, str(preset.train_samples)))
    plausibility = plausibility_for(data.train, seed=args.seed)
    _, raw, target = raw_translation(args.corpus, args.data_dir, preset.train_samples)
    pairs = raw["train"]["translation"]
    output = os.path.join("benchmarks", "results", f"flagged-{args.corpus}-{preset.train_samples}.jsonl")
    flagged = plausibility.least_plausible(len(pairs))
    with open(output, "w") as f:
        for i in flagged:
            row = {"index": i, "posterior": round(float(plausibility.posterior[i]), 4), "en": pairs[i]["en"],
                   target: pairs[i][target]}  # fmt: skip
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(flagged)} of {len(pairs)} clean pairs flagged ({plausibility.summary()}); written to {output}")


if __name__ == "__main__":
    main()
