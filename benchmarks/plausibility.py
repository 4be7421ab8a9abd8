#!/usr/bin/env python
"""How well the plausibility check finds misaligned pairs, and what it flags on clean data: no Boss is trained.

For each kind of misalignment (targets re-paired at random; targets shifted one line down within blocks of 10, the
crawled-corpus kind), each rate (25%, 10%) and clean data, on the suite's translation training set (`tasks.py`) or,
with `--corpus tatoeba`, as many Tatoeba en-fr pairs (a corpus the check was not developed on), and for each seed of
the check: `plausibility_for` with the library's defaults, then against the planted indices the AUC of its scores,
the precision and recall of its flags, the share it flags among misaligned and aligned pairs, the mixture's estimate
of the misaligned share, and its seconds (the full Boss run of the suite's recipe for scale).

    python benchmarks/plausibility.py --data_dir ../shared/data

writes `benchmarks/results/plausibility-translation.json` (`-tatoeba.json`) after every cell; cells already recorded
with the same configuration are kept, so the study resumes.
"""

import json
import os
import shlex
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.flags import flag_quality  # noqa: E402
from benchmarks.names import PLAUSIBILITY_CORPORA  # noqa: E402
from benchmarks.runs import environment  # noqa: E402
from benchmarks.tasks import TRANSLATION, TRANSLATION_TATOEBA, Noise  # noqa: E402
from hf_autoassist.plausibility import REFIT_ROUNDS, plausibility_for  # noqa: E402
from hf_autoassist.plausibility.pairs import MAX_PAIRS_SEEN  # noqa: E402

# corpus -> its clean task (the result file is PLAUSIBILITY_CORPORA's)
CORPUS_TASKS = {"multi30k": TRANSLATION, "tatoeba": TRANSLATION_TATOEBA}
# (kind, rate); None is clean data
NOISES = [None, ("pairs", 0.25), ("pairs", 0.10), ("shifted pairs", 0.25), ("shifted pairs", 0.10)]


@dataclass
class PlausibilityStudyArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "The offline data folder, read in place."})
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2], metadata={"help": "Seeds of the check."})
    corpus: str = field(
        default="multi30k",
        metadata={
            "help": "multi30k (en-de, the suite's training set) or tatoeba (en-fr, a corpus the check was not "
            "developed on).",
            "choices": list(CORPUS_TASKS),
        },
    )
    train_samples: int | None = field(
        default=None,
        metadata={"help": "Training pairs, default the suite's 3,250; another size writes `<file>-<size>.json`."},
    )
    max_pairs_seen: int = field(
        default=MAX_PAIRS_SEEN, metadata={"help": "Pairs each encoder trains on at most (the check's cost bound)."}
    )
    rounds: int = field(
        default=REFIT_ROUNDS,
        metadata={"help": "Rounds of encoders (`autoassist_plausibility_rounds`); another than the library's default "
                  "writes `<file>-rounds<n>.json`."},
    )
    output: str | None = field(
        default=None, metadata={"help": "Default: the corpus's file in benchmarks/results (benchmarks/names.py)."}
    )
    work_dir: str = field(default="outputs/benchmarks/plausibility")


def measure(
    train, noisy_indices, seed: int, max_pairs_seen: int = MAX_PAIRS_SEEN, rounds: int = REFIT_ROUNDS
) -> dict:  # fmt: skip
    plausibility = plausibility_for(train, seed=seed, max_pairs_seen=max_pairs_seen, rounds=rounds)
    record = plausibility.summary()  # its `seconds` are the check's alone, no Boss trained
    if noisy_indices:
        record.update(flag_quality(plausibility, noisy_indices))
    return record


def result_file_name(corpus: str, train_samples: int | None = None, rounds: int = REFIT_ROUNDS) -> str:
    """The study's result file for `corpus`: `<file>-N.json` at another size than the suite's, `<file>-roundsN.json`
    with another number of rounds than the library's (what `study_tables.py` reads back)."""
    file_name = PLAUSIBILITY_CORPORA[corpus][1]
    if train_samples is not None:
        file_name = file_name.replace(".json", f"-{train_samples}.json")
    if rounds != REFIT_ROUNDS:
        file_name = file_name.replace(".json", f"-rounds{rounds}.json")
    return file_name


def main():
    (study,) = HfArgumentParser(PlausibilityStudyArguments).parse_args_into_dataclasses()
    corpus, file_name = CORPUS_TASKS[study.corpus], result_file_name(study.corpus, study.train_samples, study.rounds)
    preset = corpus.presets["full"]
    if study.train_samples is not None:
        preset = replace(preset, train_samples=study.train_samples)
    if study.max_pairs_seen != MAX_PAIRS_SEEN and study.output is None:
        raise ValueError("A --max_pairs_seen other than the library's is not the check users run: name its --output.")
    study.output = study.output or os.path.join("benchmarks", "results", file_name)
    result = {"cells": []}
    if os.path.isfile(study.output):
        with open(study.output) as f:
            result = json.load(f)
    made_with = (
        result.get("train_pairs", corpus.presets["full"].train_samples), result.get("max_pairs_seen", MAX_PAIRS_SEEN),
        result.get("rounds", REFIT_ROUNDS),
    )
    if result["cells"] and made_with != (preset.train_samples, study.max_pairs_seen, study.rounds):
        raise ValueError(
            f"{study.output} was made with {made_with[0]} pairs, --max_pairs_seen {made_with[1]} and --rounds "
            f"{made_with[2]}: name another --output for this configuration."
        )
    done = {(c["noise"], c["fraction"], c["seed"]) for c in result["cells"]}
    result.update(
        command="python " + shlex.join(sys.argv),
        environment=environment(),
        data=f"{corpus.description}; {preset.train_samples} training pairs",
        train_pairs=preset.train_samples,
        max_pairs_seen=study.max_pairs_seen,
        rounds=study.rounds,
        torch_threads=torch.get_num_threads(),
    )
    for noise in NOISES:
        kind, fraction = noise or ("none", 0.0)
        task = replace(corpus, noise=None if noise is None else Noise(kind, fraction))
        data = None
        for seed in study.seeds:
            if (kind, fraction, seed) in done:
                continue
            if data is None:
                work_dir = os.path.join(study.work_dir, study.corpus, str(preset.train_samples), kind.replace(" ", "-"))
                data = task.load(study.data_dir, preset, work_dir, task.noise)
            record = {"noise": kind, "fraction": fraction, "seed": seed}
            record.update(measure(data.train, data.noisy_indices, seed, study.max_pairs_seen, study.rounds))
            print(json.dumps(record), flush=True)
            result["cells"].append(record)
            os.makedirs(os.path.dirname(study.output), exist_ok=True)
            with open(study.output, "w") as f:
                json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
