#!/usr/bin/env python
"""Why the Assistant's choice loses to random on translation: what it keeps by length, and where the BLEU goes.

On the suite's clean translation recipe (Multi30k, 3,250 pairs, 32 epochs, one seed), three runs: the Assistant's
shrinking without the check (`autoassist_strategy="autoassist"`, `autoassist_plausibility="none"`), random at its
kept fractions epoch by epoch, and the plain run. Per quartile of pair length (source plus target tokens, the
report's groups): the share of each quartile the Assistant kept over the epochs it selected, the Boss's last loss
of the quartile's pairs (the loss memory), the Assistant's final score; per quartile of test source length: the test
BLEU of each run (greedy, 2,000 pairs). If the Assistant's label ("loss above its batch's median", a per-token mean)
is tied to length, it keeps one end of the length range and the BLEU it loses sits at the other.

    python benchmarks/text_assistant_probe.py --data_dir ../shared/data

writes `benchmarks/results/probes/text-assistant.json`.
"""

import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sacrebleu
import torch
import transformers
from transformers import HfArgumentParser

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.names import RESULTS  # noqa: E402
from benchmarks.runs import environment  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402


@dataclass
class ProbeArguments:
    data_dir: str = field(default="../shared/data", metadata={"help": "The offline data folder, read in place."})
    work_dir: str = field(default="outputs/text-assistant-probe")
    output: str = field(default=str(RESULTS / "probes" / "text-assistant.json"))
    seed: int = field(default=0)
    preset: str = field(default="full", metadata={"help": "'quick' for a dry run.", "choices": ["full", "quick"]})


def quartiles(lengths: np.ndarray) -> np.ndarray:
    """Each item's quartile of `lengths` (0 shortest)."""
    return np.searchsorted(np.quantile(lengths, [0.25, 0.5, 0.75]), lengths, side="right")


def bleu_by_quartile(trainer, data, tokenizer) -> dict:
    """Test BLEU overall and per quartile of source length (sacrebleu, greedy decoding as the suite evaluates)."""
    predictions = trainer.predict(data.test).predictions
    predictions = np.where(predictions != -100, predictions, tokenizer.pad_token_id)
    hypotheses = [s.strip() for s in tokenizer.batch_decode(predictions, skip_special_tokens=True)]
    labels = [[t for t in row if t >= 0] for row in data.test["labels"]]
    references = [s.strip() for s in tokenizer.batch_decode(labels, skip_special_tokens=True)]
    groups = quartiles(np.array([len(row) for row in data.test["input_ids"]]))
    result = {"all": round(sacrebleu.corpus_bleu(hypotheses, [references]).score, 2)}
    for q in range(4):
        chosen = np.flatnonzero(groups == q)
        result[f"q{q + 1}"] = round(
            sacrebleu.corpus_bleu([hypotheses[i] for i in chosen], [[references[i] for i in chosen]]).score, 2
        )
    return result


def main(argv: list[str] | None = None) -> dict:
    (probe,) = HfArgumentParser(ProbeArguments).parse_args_into_dataclasses(args=argv)
    transformers.utils.logging.set_verbosity_error()
    task = TASKS["translation"]
    preset = task.presets[probe.preset]
    data = task.load(probe.data_dir, preset, probe.work_dir, None)
    tokenizer = data.make_collator(data.build_model()).tokenizer
    train_lengths = np.array([len(s) + sum(1 for t in l if t >= 0) for s, l in zip(data.train["input_ids"], data.train["labels"])])
    train_groups = quartiles(train_lengths)
    result = {"command": "python benchmarks/text_assistant_probe.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "environment": environment(), "seed": probe.seed, "runs": {}}  # fmt: skip
    kept_fractions = None
    for name in ("autoassist", "random", "plain"):
        options = {"autoassist_plausibility": "none"}
        if name == "autoassist":
            options["autoassist_strategy"] = "autoassist"
        elif name == "random":  # the Assistant's kept fraction of each epoch after the warmup
            options.update(autoassist_strategy="random", autoassist_keep_prob=kept_fractions[1:])
        else:
            options["autoassist_strategy"] = "none"
        args = task.config_class(
            output_dir=f"{probe.work_dir}/{name}", num_train_epochs=preset.num_train_epochs, eval_strategy="no",
            save_strategy="no", logging_strategy="epoch", report_to="none", disable_tqdm=True, use_cpu=True,
            seed=probe.seed, **preset.training, **options,
        )  # fmt: skip
        transformers.set_seed(probe.seed)
        model = data.build_model()
        trainer = task.autoassist_trainer(model=model, args=args, train_dataset=data.train,
                                          data_collator=data.make_collator(model))  # fmt: skip
        trainer.train()
        record = {"kept_fraction_per_epoch": [round(f, 4) for f in trainer.kept_fractions.values()],
                  "test_bleu": bleu_by_quartile(trainer, data, tokenizer)}  # fmt: skip
        run = trainer.selection_run
        if name == "autoassist":
            kept_fractions = record["kept_fraction_per_epoch"]
            history = trainer.autoassist_history[1:]  # the epochs it selected
            groups = [g for g in history[0].get("kept_by_group", {})]
            record["kept_by_length_quartile"] = {
                g: round(float(np.mean([epoch["kept_by_group"][g] for epoch in history])), 4) for g in groups
            }
            memory = run.assistant  # the loss memory around the token Assistant
            last_loss = memory.last_log_loss.exp().numpy()
            scores = run.worker.score(torch.arange(len(data.train))).numpy()
            record["by_train_length_quartile"] = {
                f"q{q + 1}": {"last_loss": round(float(last_loss[train_groups == q].mean()), 4),
                              "assistant_score": round(float(scores[train_groups == q].mean()), 4)}
                for q in range(4)
            }  # fmt: skip
            ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731
            record["spearman_score_length"] = round(float(np.corrcoef(ranks(scores), ranks(train_lengths))[0, 1]), 4)
            record["spearman_loss_length"] = round(float(np.corrcoef(ranks(last_loss), ranks(train_lengths))[0, 1]), 4)
        result["runs"][name] = record
        print(name, json.dumps(record), flush=True)
        Path(probe.output).parent.mkdir(parents=True, exist_ok=True)
        Path(probe.output).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
