#!/usr/bin/env python
"""The pairs check's share of a run, for the suite's small Boss and for a Boss of the size users fine-tune.

The check's seconds do not depend on the Boss (its encoders are its own), and past about 4,000 pairs they stop
growing with the corpus; the Boss's seconds grow with both. So its share of a run is a property of the recipe and of
the Boss. For each Boss, built from a `MarianConfig` over the suite's joint BPE: the suite's (d_model 128, 2+2 layers)
and opus-mt's size (d_model 512, 6+6 layers, 8 heads, FFN 2048; the Hub's opus-mt models also have a 58,000-token
vocabulary, which only makes their step dearer). Its training seconds per pair are timed over `steps` plain
`Seq2SeqTrainer` steps on the suite's translation pairs, after `warmup_steps`; the suite's recipe (3,250 pairs, 32
epochs) is projected from them. The check's seconds are the plausibility study's on as many Tatoeba pairs
(`plausibility.py --corpus tatoeba`, 2 threads, the misaligned cells; `--rounds 1` for one round).

    python benchmarks/check_share.py --data_dir ../shared/data

writes `benchmarks/results/check-share.json`. Run it with nothing else running.
"""

import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import transformers
from transformers import HfArgumentParser, Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.names import RESULTS  # noqa: E402
from benchmarks.plausibility import result_file_name  # noqa: E402
from benchmarks.runs import environment  # noqa: E402
from benchmarks.tasks import TRANSLATION, TRANSLATION_MODEL  # noqa: E402

BOSSES = {
    "suite": TRANSLATION_MODEL,
    "opus-mt size": {**TRANSLATION_MODEL, "d_model": 512, "layers": 6, "attention_heads": 8, "ffn_dim": 2048},
}


@dataclass
class CheckShareArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "The offline data folder, read in place."})
    steps: int = field(default=20, metadata={"help": "Timed Trainer steps per Boss."})
    warmup_steps: int = field(default=5, metadata={"help": "Steps before the timed ones (allocations, caches)."})
    work_dir: str = field(default="outputs/benchmarks/check-share")
    output: str = field(default=str(RESULTS / "check-share.json"))


class StepClock(TrainerCallback):
    """The wall-clock time at the end of two optimizer steps."""

    def __init__(self, first: int, last: int):
        self.first, self.last, self.times = first, last, {}

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in (self.first, self.last):
            self.times[state.global_step] = time.perf_counter()


def seconds_per_pair(data, preset, work_dir: str, steps: int, warmup_steps: int) -> float:
    training = {k: v for k, v in preset.training.items() if k != "predict_with_generate"}
    args = Seq2SeqTrainingArguments(
        output_dir=work_dir, max_steps=warmup_steps + steps, save_strategy="no", eval_strategy="no",
        report_to="none", disable_tqdm=True, use_cpu=True, seed=0, **training,
    )  # fmt: skip
    model = data.build_model()
    clock = StepClock(warmup_steps, warmup_steps + steps)
    trainer = Seq2SeqTrainer(
        model=model, args=args, train_dataset=data.train, data_collator=data.make_collator(model), callbacks=[clock]
    )
    trainer.train()
    return (clock.times[warmup_steps + steps] - clock.times[warmup_steps]) / (steps * args.per_device_train_batch_size)


def check_seconds(rounds: int) -> list[float]:
    """The check's seconds on the misaligned cells of the Tatoeba plausibility study with `rounds` rounds."""
    file_name = result_file_name("tatoeba", rounds=rounds)
    study = json.loads((RESULTS / file_name).read_text())
    if study.get("torch_threads") != 2:
        raise ValueError(f"{file_name} was measured on {study.get('torch_threads')} threads, not the suite's 2.")
    return [cell["seconds"] for cell in study["cells"] if cell["noise"] != "none"]


def main():
    (bench,) = HfArgumentParser(CheckShareArguments).parse_args_into_dataclasses()
    transformers.utils.logging.set_verbosity_error()
    preset = TRANSLATION.presets["full"]
    checks = {rounds: statistics.median(check_seconds(rounds)) for rounds in (2, 1)}
    result = {
        "command": "python " + shlex.join(sys.argv),
        "environment": environment(),
        "recipe": {"pairs": preset.train_samples, "epochs": preset.num_train_epochs},
        "check_seconds": {f"rounds={rounds}": round(seconds, 2) for rounds, seconds in checks.items()},
        "bosses": {},
    }
    for name, model in BOSSES.items():
        boss_preset = replace(preset, model=model)
        data = TRANSLATION.load(bench.data_dir, boss_preset, os.path.join(bench.work_dir, "data"))
        work_dir = os.path.join(bench.work_dir, name)
        per_pair = seconds_per_pair(data, boss_preset, work_dir, bench.steps, bench.warmup_steps)
        run = per_pair * preset.train_samples * preset.num_train_epochs
        result["bosses"][name] = {
            "model": model,
            "seconds_per_pair": round(per_pair, 5),
            "recipe_seconds": round(run, 1),
            "check_share": {key: round(seconds / (run + seconds), 4) for key, seconds in
                            zip(result["check_seconds"], checks.values())},  # fmt: skip
        }
        print(json.dumps({name: result["bosses"][name]}), flush=True)
    os.makedirs(os.path.dirname(bench.output), exist_ok=True)
    with open(bench.output, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
