#!/usr/bin/env python
"""The pairs check on a stream, at the scale of a whole corpus: every Tatoeba en-fr pair (167,130), a quarter
misaligned, tokenized with a joint BPE and written as JSON lines that `datasets` reads in streaming mode.

Four arms, each in its own process (its peak memory is its own), each recorded as it ends (rerun to resume):
- `map_check`: the map-style check (`plausibility_for`) of every pair, read as a `datasets.Dataset`;
- `stream_check`: the streamed check: fitted on the stream's first `--buffer` pairs, then every pair of the stream
  flagged as it is read (`SelectedStream`);
- `plain_run` / `default_run`: a plain streamed run (`autoassist_strategy="none"`, no check) and the default's
  (`"auto"`: the streamed check on an encoder-decoder), `--max_steps` steps of the suite's translation Boss each;
  their seconds per Boss instance are compared (the default's include its check's fit and scoring).

    python benchmarks/stream_check.py --data_dir ../shared/data

writes `benchmarks/results/stream-check-tatoeba.json`. Run it with nothing else running.
"""

import itertools
import json
import os
import resource
import shlex
import subprocess
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import transformers
from datasets import Dataset, load_dataset
from transformers import DataCollatorForSeq2Seq, HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.names import RESULTS  # noqa: E402
from benchmarks.noise import misalign_pairs  # noqa: E402
from benchmarks.runs import environment  # noqa: E402
from benchmarks.tasks import MAX_LENGTH, TRANSLATION_MODEL, TRANSLATION_TRAINING, load_example  # noqa: E402
from hf_autoassist import AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer  # noqa: E402
from hf_autoassist.plausibility import plausibility_for  # noqa: E402
from hf_autoassist.plausibility.stream import SCORE_CHUNK, StreamedPairsCheck  # noqa: E402
from hf_autoassist.stream import first_pairs  # noqa: E402

ARMS = ("map_check", "stream_check", "plain_run", "default_run")


@dataclass
class StreamCheckArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "The offline data folder, read in place."})
    work_dir: str = field(default="outputs/stream-check", metadata={"help": "Where the JSON lines file is written."})
    output: str = field(default=str(RESULTS / "stream-check-tatoeba.json"))
    arms: list[str] = field(default_factory=lambda: list(ARMS), metadata={"help": f"Among {list(ARMS)}."})
    buffer: int = field(default=20_000, metadata={"help": "The streamed check's first pairs (autoassist_stream_buffer)."})
    misaligned: float = field(default=0.25, metadata={"help": "Share of the pairs given another pair's target."})
    max_pairs: int | None = field(default=None, metadata={"help": "Only the first pairs of the file (a dry run)."})
    max_steps: int = field(default=2000, metadata={"help": "Steps of each training run (batches of 64)."})
    seed: int = field(default=0)


def corpus_file(bench: StreamCheckArguments) -> tuple[str, list[int]]:
    """The JSON lines file of every pair, tokenized, a share misaligned (written once), and the misaligned lines."""
    os.makedirs(bench.work_dir, exist_ok=True)
    path = os.path.join(bench.work_dir, f"tatoeba-{bench.max_pairs or 'all'}-{bench.misaligned}-{bench.seed}.jsonl")
    noisy_path = path + ".noisy.json"
    if os.path.isfile(noisy_path):
        return path, json.loads(Path(noisy_path).read_text())
    with zipfile.ZipFile(os.path.join(bench.data_dir, "anki-fra-eng", "fra-eng.zip")) as archive:
        lines = archive.read("fra-eng/fra.txt").decode("utf-8").splitlines()
    pairs = [line.split("\t")[:2] for line in lines][: bench.max_pairs]
    # the file runs from short to long sentences: a crawl's order is not that, and a buffer of the first pairs
    # would see only the shortest; the stream is the file in a seeded order
    order = np.random.default_rng(bench.seed).permutation(len(pairs))
    pairs = [pairs[i] for i in order]
    target_of, noisy = misalign_pairs(len(pairs), bench.misaligned, bench.seed)
    translation = load_example("examples/translation/run_translation.py")
    sentences = [s for pair in pairs for s in pair]
    tokenizer = translation.train_joint_bpe(sentences, TRANSLATION_MODEL["vocab_size"], os.path.join(bench.work_dir, "tokenizer"))
    sources = tokenizer([p[0] for p in pairs], max_length=MAX_LENGTH, truncation=True)["input_ids"]
    targets = tokenizer(text_target=[pairs[j][1] for j in target_of], max_length=MAX_LENGTH, truncation=True)["input_ids"]
    with open(path, "w") as f:
        for source, target in zip(sources, targets):
            f.write(json.dumps({"input_ids": source, "labels": target}) + "\n")
    Path(noisy_path).write_text(json.dumps(noisy.tolist()))
    return path, noisy.tolist()


def found(flags: torch.Tensor, noisy: list[int]) -> dict:
    is_noisy = torch.zeros(len(flags), dtype=torch.bool)
    is_noisy[noisy] = True
    return {"recall": round(float(flags[is_noisy].float().mean()), 4),
            "aligned_flagged": round(float(flags[~is_noisy].float().mean()), 4), "flagged": int(flags.sum()),
            "aligned_flagged_pairs": int(flags[~is_noisy].sum()), "aligned_pairs": int((~is_noisy).sum())}  # fmt: skip


def streamed(path: str):
    return load_dataset("json", data_files=path, split="train", streaming=True)


def run_arm(arm: str, bench: StreamCheckArguments) -> dict:
    path, noisy = corpus_file(bench)
    start = time.perf_counter()
    if arm == "map_check":
        pairs = Dataset.from_json(path)
        plausibility = plausibility_for(pairs, "pairs", seed=bench.seed)
        record = {"pairs": len(pairs), **found(plausibility.flagged, noisy), "check_seconds": plausibility.seconds}
    elif arm == "stream_check":
        check = StreamedPairsCheck.fit(*first_pairs(streamed(path), bench.buffer), seed=bench.seed)
        fitted = time.perf_counter() - start
        # every pair of the stream flagged as it is read, in `SelectedStream`'s chunks
        flags, pairs = [], iter(streamed(path))
        while chunk := list(itertools.islice(pairs, SCORE_CHUNK)):
            flags.append(check.flags([row["input_ids"] for row in chunk], [row["labels"] for row in chunk]))
        flags = torch.cat(flags)
        record = {"pairs": len(flags), "buffer": bench.buffer, **found(flags, noisy), "fit_seconds": fitted,
                  "scoring_seconds": time.perf_counter() - start - fitted,
                  "buffer_result": found(check.buffer.flagged, [i for i in noisy if i < bench.buffer])}  # fmt: skip
    else:
        translation = load_example("examples/translation/run_translation.py")
        tokenizer = transformers.AutoTokenizer.from_pretrained(os.path.join(bench.work_dir, "tokenizer"))
        model = translation.build_marian(translation.ModelArguments(**TRANSLATION_MODEL), tokenizer, MAX_LENGTH)
        options = {"autoassist_strategy": "none", "autoassist_plausibility": "none"} if arm == "plain_run" else {}
        training = {k: v for k, v in TRANSLATION_TRAINING.items() if k != "predict_with_generate"}
        args = AutoAssistSeq2SeqConfig(
            os.path.join(bench.work_dir, arm), report_to="none", use_cpu=True, max_steps=bench.max_steps,
            save_strategy="no", logging_steps=100, disable_tqdm=True, seed=bench.seed,
            autoassist_stream_buffer=bench.buffer, **training, **options,
        )  # fmt: skip
        collator = DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100)
        trainer = AutoAssistSeq2SeqTrainer(model=model, args=args, train_dataset=streamed(path), data_collator=collator)
        instances = []
        original_step = trainer.training_step

        def counting_step(model, inputs, *a, **k):
            instances.append(len(inputs["labels"]))
            return original_step(model, inputs, *a, **k)

        trainer.training_step = counting_step
        started = time.perf_counter()
        output = trainer.train()
        # the whole `train()`: the check is fitted when its DataLoader is built, before the Trainer starts its clock
        record = {"steps": trainer.state.global_step, "boss_instances": sum(instances),
                  "train_seconds": time.perf_counter() - started, "trainer_runtime": output.metrics["train_runtime"],
                  "final_loss": output.metrics["train_loss"], **trainer.autoassist_metrics()}  # fmt: skip
        record["seconds_per_instance"] = record["train_seconds"] / record["boss_instances"]
    record["wall_seconds"] = time.perf_counter() - start
    record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return record


def main(argv: list[str] | None = None) -> dict:
    (bench,) = HfArgumentParser(StreamCheckArguments).parse_args_into_dataclasses(args=argv)
    unknown = sorted(set(bench.arms) - set(ARMS))
    if unknown:
        raise ValueError(f"Unknown --arms {unknown}; choose among {list(ARMS)}.")
    result = json.loads(Path(bench.output).read_text()) if os.path.isfile(bench.output) else {"arms": {}}
    result.update(command="python benchmarks/stream_check.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
                  settings=asdict(bench), environment=environment())  # fmt: skip
    corpus_file(bench)  # written once, before any arm is timed
    for arm in bench.arms:
        if arm in result["arms"]:
            print(f"{arm}: recorded earlier, kept", flush=True)
            continue
        done = subprocess.run([sys.executable, __file__, "--arm_only", arm, *(argv if argv is not None else sys.argv[1:])],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{arm} failed:\n{done.stderr[-3000:]}")
        result["arms"][arm] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{arm}: {result['arms'][arm]}", flush=True)
        os.makedirs(os.path.dirname(bench.output), exist_ok=True)
        Path(bench.output).write_text(json.dumps(result, indent=1))
    arms = result["arms"]
    if "plain_run" in arms and "default_run" in arms:
        result["seconds_per_instance_ratio"] = round(
            arms["default_run"]["seconds_per_instance"] / arms["plain_run"]["seconds_per_instance"], 4
        )
        Path(bench.output).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    if "--arm_only" in sys.argv:
        at = sys.argv.index("--arm_only")
        arm, rest = sys.argv[at + 1], sys.argv[1:at] + sys.argv[at + 2 :]
        (arguments,) = HfArgumentParser(StreamCheckArguments).parse_args_into_dataclasses(args=rest)
        transformers.utils.logging.set_verbosity_error()
        print(json.dumps(run_arm(arm, arguments)), flush=True)
    else:
        main()
