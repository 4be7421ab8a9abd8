"""How far does a seq2seq Boss fit its training pairs, epoch by epoch, and which per-pair reading of it could tell
learned pairs from the rest? The plain `Seq2SeqTrainer` of a suite translation task, with every `--every` epochs a
pass over the training pairs without gradients (under dropout, as the training step sees them, and without) and the
validation BLEU.

Why: the default skips an instance in proportion to `1 - exp(-loss)` under a margin of 0.1. On the suite's
translation recipe no pair ever comes within it (label smoothing and dropout keep every pair's loss per token above
1 nat, `docs/limits.md`), so the default keeps every pair at every length, while the plain front says the last
quarter of the converged recipe and the whole second half of the double one buy nothing. Per pair and checkpoint the
probe records what each candidate reading says is left to learn: the loss the memory holds (smoothed, under
dropout), the unsmoothed loss per token, the mean probability off each target token (`1 - p`), and the share of
target tokens whose argmax is wrong (what greedy decoding reads).

    python benchmarks/sequence_fit_probe.py --task translation --length 2.0 --every 4 --seed 10

The summary of each checkpoint is appended to `benchmarks/results/probes/sequence-fit.jsonl` with the command that
made it; the per-pair readings go to `<work_dir>/sequence-fit-seed<seed>.pt` (not committed: 3,250 pairs x
readings x checkpoints).
"""

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from transformers import HfArgumentParser, PrinterCallback, TrainerCallback, set_seed

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.analysis import PLAIN  # noqa: E402
from benchmarks.runs import BossInstanceCounter, append_probe_run, training_arguments  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402
from hf_autoassist.losses import per_instance_loss, per_instance_token_misses  # noqa: E402

READINGS = ("memory_loss", "token_nll", "token_off", "token_error")
# the shares of pairs under these values of each reading, per checkpoint (token_error 0: every argmax right)
THRESHOLDS = {"token_off": (0.1, 0.2, 0.3), "token_error": (0.0, 0.1, 0.2), "token_nll": (0.1, 0.25, 0.5)}


@dataclass
class SequenceFitProbeArguments:
    task: str = field(default="translation", metadata={"choices": ["translation", "translation-noisy"]})
    length: float = field(default=2.0, metadata={"help": "The recipe's length, a share of the converged epochs."})
    every: int = field(default=4, metadata={"help": "Epochs between two readings of the training pairs."})
    seed: int = field(default=10)
    data_dir: str = field(default="../shared/data")
    work_dir: str = field(default="outputs/sequence-fit-probe")


@torch.no_grad()
def pair_readings(model, loader, label_smoothing: float) -> dict[str, torch.Tensor]:
    """Each training pair's readings, in the loader's order (it must not shuffle), under the model's current mode."""
    out = {name: [] for name in READINGS}
    for batch in loader:
        labels = batch["labels"]
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits.float()
        mask = labels != -100
        tokens = mask.sum(-1).clamp_min(1)
        log_probs = logits.log_softmax(-1)
        target = log_probs.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1)
        out["memory_loss"].append(per_instance_loss(logits, labels, label_smoothing=label_smoothing))
        out["token_nll"].append(per_instance_loss(logits, labels))
        out["token_off"].append(((1 - target.exp()) * mask).sum(-1) / tokens)
        out["token_error"].append(per_instance_token_misses(logits, labels))
    return {name: torch.cat(values) for name, values in out.items()}


def summary(readings: dict[str, torch.Tensor]) -> dict:
    """Quartiles of each reading, and the share of pairs under each threshold."""
    row = {}
    for name, values in readings.items():
        q = torch.quantile(values, torch.tensor([0.1, 0.25, 0.5, 0.75, 0.9]))
        quantiles = [round(float(v), 4) for v in q]
        row[name] = {"mean": round(float(values.mean()), 4), "quantiles_10_25_50_75_90": quantiles}
        for threshold in THRESHOLDS.get(name, ()):
            row[name][f"share_le_{threshold}"] = round(float((values <= threshold).float().mean()), 4)
    return row


class PairReadingsCallback(TrainerCallback):
    """Every `every` epochs: reads the training pairs in train and eval mode, and asks the Trainer to evaluate."""

    def __init__(self, loader, every: int, label_smoothing: float):
        self.loader, self.every, self.label_smoothing = loader, every, label_smoothing
        self.checkpoints = []  # (epoch, {"train_mode": readings, "eval_mode": readings})
        self.model = None

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        epoch = round(state.epoch)
        if epoch % self.every and epoch != round(args.num_train_epochs):
            return
        was_training = model.training
        readings = {}
        for mode in ("train_mode", "eval_mode"):
            model.train(mode == "train_mode")
            readings[mode] = pair_readings(model, self.loader, self.label_smoothing)
        model.train(was_training)
        self.checkpoints.append((epoch, readings))
        control.should_evaluate = True


def main(argv: list[str] | None = None) -> list[dict]:
    (probe,) = HfArgumentParser(SequenceFitProbeArguments).parse_args_into_dataclasses(args=argv)
    task = TASKS[probe.task]
    preset = task.presets["full"]
    data = task.load(probe.data_dir, preset, os.path.join(probe.work_dir, task.name), task.noise)
    epochs = probe.length * preset.num_train_epochs
    args = training_arguments(task, preset, PLAIN, probe.seed, probe.work_dir, epochs, {})
    set_seed(probe.seed)
    model = data.build_model()
    collator = data.make_collator(model)
    trainer_class = type(f"Counted{task.plain_trainer.__name__}", (BossInstanceCounter, task.plain_trainer), {})
    trainer = trainer_class(
        model=model, args=args, train_dataset=data.train, eval_dataset=data.validation, data_collator=collator,
        compute_metrics=data.compute_metrics,
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    columns = ["input_ids", "attention_mask", "labels"]
    loader = DataLoader(data.train.select_columns(columns), batch_size=128, shuffle=False, collate_fn=collator)
    readings = PairReadingsCallback(loader, probe.every, args.label_smoothing_factor)
    trainer.add_callback(readings)
    trainer.train()
    bleu = {round(log["epoch"]): log[f"eval_{data.metric}"] for log in trainer.state.log_history
            if f"eval_{data.metric}" in log}  # fmt: skip
    torch.save(
        {"epochs": [e for e, _ in readings.checkpoints], "readings": [r for _, r in readings.checkpoints],
         "validation_bleu": bleu, "noisy_indices": data.noisy_indices},
        os.path.join(probe.work_dir, f"sequence-fit-seed{probe.seed}.pt"),
    )  # fmt: skip
    records = []
    for epoch, by_mode in readings.checkpoints:
        record = {"task": task.name, "length": probe.length, "num_train_epochs": epochs, "seed": probe.seed,
                  "epoch": epoch, "validation_bleu": bleu.get(epoch),
                  **{mode: summary(values) for mode, values in by_mode.items()}}  # fmt: skip
        records.append(append_probe_run("sequence-fit.jsonl", "sequence_fit_probe.py", argv, record))
    return records


if __name__ == "__main__":
    main()
