#!/usr/bin/env python
"""Which width `d` of the bag-of-tokens Assistant pays off? Replays one real stream of Boss losses into each.

1. Train a small Marian model on Multi30k en->de for one epoch with AutoAssistSeq2SeqTrainer and record every
   (indices, per-sentence losses) batch the Boss hands to the Assistant (the same stream for every width).
2. Replay that stream, in order, into a fresh synchronous Assistant of each width and measure its prequential
   accuracy (predicting each batch before learning from it, over the second half of the stream) and its cost.

    python benchmarks/assistant_dim.py --data_dir ../shared/data/multi30k/raw --output benchmarks/results/assistant_dim.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples/translation"))
import run_translation  # noqa: E402
from transformers import DataCollatorForSeq2Seq  # noqa: E402

from hf_autoassist import AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer  # noqa: E402
from hf_autoassist.assistants import AssistantWorker, build_assistant  # noqa: E402


def record_stream(data_dir: str, output_dir: str, max_train_samples: int | None, seed: int):
    raw = run_translation.load_multi30k(data_dir, "en", "de")
    train = raw["train"] if max_train_samples is None else raw["train"].select(range(max_train_samples))
    pairs = train["translation"]
    tokenizer = run_translation.train_joint_bpe(
        [p["en"] for p in pairs] + [p["de"] for p in pairs], 6000, str(Path(output_dir) / "tokenizer")
    )

    def preprocess(batch):
        return tokenizer(
            [p["en"] for p in batch["translation"]], text_target=[p["de"] for p in batch["translation"]],
            max_length=64, truncation=True,
        )  # fmt: skip

    tokenized = train.map(preprocess, batched=True, remove_columns=train.column_names)
    model_args = run_translation.ModelArguments(d_model=128, layers=2, attention_heads=4, ffn_dim=256)
    model = run_translation.build_marian(model_args, tokenizer, 64)
    args = AutoAssistSeq2SeqConfig(
        output_dir=output_dir, num_train_epochs=1, per_device_train_batch_size=64, learning_rate=1e-3,
        warmup_steps=200, label_smoothing_factor=0.1, report_to="none", save_strategy="no", use_cpu=True,
        disable_tqdm=True, logging_steps=100, seed=seed,
        # the Assistant's loss stream over every pair, as the study was recorded (the seq2seq default is the check alone)
        autoassist_strategy="autoassist", autoassist_plausibility="none",
    )  # fmt: skip
    trainer = AutoAssistSeq2SeqTrainer(
        model=model, args=args, train_dataset=tokenized, processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
    )  # fmt: skip
    stream = []
    trainer.get_train_dataloader()  # builds the worker, so its submit can be wrapped
    original_submit = trainer.selection_run.worker.submit

    def recording_submit(indices, losses):
        stream.append((indices.cpu().clone(), losses.cpu().clone()))
        original_submit(indices, losses)

    trainer.selection_run.worker.submit = recording_submit
    trainer.train()
    return tokenized, stream


def replay(tokenized, stream, dim: int, lr: float) -> dict:
    # the trainer's own path from tokenized columns to an Assistant (timed apart from the replay)
    worker = AssistantWorker(build_assistant("bag_of_tokens", tokenized, token_dim=dim), lr=lr, synchronous=True)
    correct = total = positives = 0
    start = time.perf_counter()
    for step, (indices, losses) in enumerate(stream):
        if step >= len(stream) // 2:  # prequential: predict the batch, then learn from it
            with worker.lock:
                predicted = worker.assistant(indices) > 0
            threshold = worker.label_rule.running_loss
            actual = losses > threshold
            correct += int((predicted == actual).sum())
            positives += int(actual.sum())
            total += len(indices)
        worker.submit(indices, losses)
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in worker.assistant.parameters())
    return {
        "dim": dim,
        "lr": lr,
        "accuracy_second_half": correct / total,
        # always answering the more common label; the running-mean threshold is the same for every width
        "majority_baseline": max(positives, total - positives) / total,
        "seconds": seconds,
        "parameters": params,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default="../shared/data/multi30k/raw")
    parser.add_argument("--output", default="benchmarks/results/assistant_dim.json")
    parser.add_argument("--max_train_samples", type=int, default=None)
    parser.add_argument("--dims", default="1,4,16,64")
    parser.add_argument("--lrs", default="0.01,0.05,0.2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    tokenized, stream = record_stream(args.data_dir, "/tmp/autoassist_dim_run", args.max_train_samples, args.seed)
    rows = [replay(tokenized, stream, int(d), float(lr)) for d in args.dims.split(",") for lr in args.lrs.split(",")]
    result = {
        "command": " ".join(["python", *sys.argv]),
        "batches": len(stream),
        "instances": sum(len(i) for i, _ in stream),
        "rows": rows,
    }
    for row in rows:
        print(f"d={row['dim']:<3} lr={row['lr']:<5} accuracy={row['accuracy_second_half']:.4f} "
              f"(majority {row['majority_baseline']:.4f}) seconds={row['seconds']:.2f} params={row['parameters']}")  # fmt: skip
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
