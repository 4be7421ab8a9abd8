#!/usr/bin/env python
"""Train a translation model with `AutoAssistSeq2SeqTrainer` (or the plain `Seq2SeqTrainer`) and score it with BLEU.

Shaped like `transformers/examples/pytorch/translation/run_translation.py`. Offline it reads Multi30k's raw files
or a manythings.org Tatoeba archive (`../shared/data/anki-fra-eng`, with `--target_lang fr`) from `--data_dir` (or
JSON lines through `--train_file`...), trains a joint BPE tokenizer on the training split and
builds a small Transformer from a `MarianConfig`; online it also takes `--dataset_name`, `--tokenizer_name` and
`--model_name_or_path`. BLEU is sacreBLEU's, called directly (`evaluate.load` needs the Hub).

    python examples/translation/run_translation.py --data_dir ../shared/data/multi30k/raw \\
        --source_lang en --target_lang de --output_dir outputs/translation --trainer both \\
        --predict_with_generate --num_train_epochs 10
"""

import gzip
import logging
import os
import random
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sacrebleu
import transformers
from accelerate import PartialState
from datasets import Dataset, DatasetDict, load_dataset
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    HfArgumentParser,
    MarianConfig,
    MarianMTModel,
    PreTrainedTokenizerFast,
    Seq2SeqTrainer,
    set_seed,
)

from hf_autoassist import AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer

# the examples' shared side-by-side table (examples/comparison.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from comparison import report_side_by_side  # noqa: E402

logger = logging.getLogger(__name__)

MULTI30K_SPLITS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}
# Tatoeba has no official splits: held-out English sentences (with all their translations), seeded
ANKI_HELD_OUT = {"validation": 1000, "test": 2000}
ANKI_SPLIT_SEED = 1234
SPECIAL_TOKENS = {"pad_token": "<pad>", "eos_token": "</s>", "unk_token": "<unk>"}


@dataclass
class ModelArguments:
    """Which model and tokenizer to train, and with which trainer."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A Hub id or local folder to fine-tune; without it a Marian model is built."}
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "A Hub id or local folder; without it a joint BPE is trained on train."}
    )
    vocab_size: int = field(default=8000, metadata={"help": "Size of the BPE vocabulary trained offline."})
    d_model: int = field(default=256, metadata={"help": "Width of the Transformer built from a MarianConfig."})
    layers: int = field(default=3, metadata={"help": "Encoder layers, and as many decoder layers."})
    attention_heads: int = field(default=4, metadata={"help": "Attention heads per layer."})
    ffn_dim: int = field(default=1024, metadata={"help": "Feed-forward width."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout of the built model."})
    trainer: str = field(
        default="autoassist",
        metadata={
            "help": "'autoassist', 'plain' (Seq2SeqTrainer), or 'both' to train each in turn with the same seed.",
            "choices": ["autoassist", "plain", "both"],
        },
    )


@dataclass
class DataTrainingArguments:
    """Where the sentence pairs come from and how they are cut."""

    source_lang: str = field(default="en", metadata={"help": "Source language code, e.g. en."})
    target_lang: str = field(default="de", metadata={"help": "Target language code, e.g. de."})
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "Read in place: Multi30k's raw folder (train/val/test_2016_flickr.<lang>.gz), or a manythings.org "
            "Anki folder (<lang>-eng.zip, Tatoeba pairs with English; split by English sentence, seeded)."
        },
    )
    train_file: str | None = field(default=None, metadata={"help": 'JSON lines {"translation": {"en": .., "de": ..}}.'})
    validation_file: str | None = field(default=None, metadata={"help": "JSON lines, as --train_file."})
    test_file: str | None = field(default=None, metadata={"help": "JSON lines, as --train_file."})
    dataset_name: str | None = field(default=None, metadata={"help": "A Hub dataset with a `translation` column."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Its configuration, e.g. de-en."})
    max_source_length: int = field(default=64, metadata={"help": "Source tokens kept per sentence."})
    max_target_length: int = field(default=64, metadata={"help": "Target tokens kept per sentence."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training pairs."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many validation pairs."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep only this many test pairs."})

    def __post_init__(self):
        if self.data_dir is None and self.train_file is None and self.dataset_name is None:
            raise ValueError(
                "Pass --data_dir (e.g. ../shared/data/multi30k/raw), --train_file (JSON lines) or --dataset_name."
            )
        if self.source_lang == self.target_lang:
            raise ValueError(f"--source_lang and --target_lang are both {self.source_lang!r}; pick two languages.")


# ---- data -------------------------------------------------------------------------------------------------------------


def read_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def load_multi30k(data_dir: str, source_lang: str, target_lang: str) -> DatasetDict:
    """Multi30k's official train / val / test_2016_flickr splits as `{"translation": {src: .., tgt: ..}}`."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"--data_dir {data_dir} is not a folder. Point it at Multi30k's raw files (train.en.gz, val.en.gz, "
            "test_2016_flickr.en.gz, ... e.g. ../shared/data/multi30k/raw), or pass --train_file or --dataset_name."
        )
    available = sorted({name.split(".")[1] for name in os.listdir(data_dir) if name.startswith("train.")})
    for lang, flag in ((source_lang, "--source_lang"), (target_lang, "--target_lang")):
        if lang not in available:
            raise ValueError(
                f"{flag} {lang!r} has no files in {data_dir} (no train.{lang}.gz). Languages there: {available}."
            )
    splits = {}
    for split, prefix in MULTI30K_SPLITS.items():
        paths = [os.path.join(data_dir, f"{prefix}.{lang}.gz") for lang in (source_lang, target_lang)]
        for path in paths:
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"{path} is missing: the {split} split needs both languages. --data_dir must hold "
                    f"{', '.join(p + '.<lang>.gz' for p in MULTI30K_SPLITS.values())} for both --source_lang and "
                    "--target_lang."
                )
        sources, targets = read_lines(paths[0]), read_lines(paths[1])
        if len(sources) != len(targets):
            raise ValueError(
                f"{paths[0]} has {len(sources)} lines but {paths[1]} has {len(targets)}: line i of one must translate "
                "line i of the other. Check that both files come from the same release."
            )
        pairs = [{source_lang: s, target_lang: t} for s, t in zip(sources, targets)]
        splits[split] = Dataset.from_dict({"translation": pairs})
    return DatasetDict(splits)


def load_anki(data_dir: str, source_lang: str, target_lang: str) -> DatasetDict:
    """Tatoeba pairs from a manythings.org/anki archive (`<code>-eng.zip`, lines `English<TAB><lang>`), split by
    English sentence: one English sentence often has several translations, and a split by line would put the same
    source in training and test. `ANKI_HELD_OUT` English sentences each go to validation and test, seeded."""
    if "en" not in (source_lang, target_lang):
        raise ValueError(
            f"Anki archives pair English with one language; got --source_lang {source_lang} --target_lang "
            f"{target_lang}. Make one of them en."
        )
    other = target_lang if source_lang == "en" else source_lang
    # manythings names archives by three-letter code: fra-eng.zip serves fr (or fra)
    archives = sorted(name for name in os.listdir(data_dir) if name.endswith("-eng.zip"))
    matching = [name for name in archives if name.startswith(other)]
    if len(matching) != 1:
        raise FileNotFoundError(
            f"No single archive in {data_dir} for the {other!r} side (archives there: {archives}). Name the language "
            "as the archive does where its code differs (e.g. --target_lang spa for spa-eng.zip), or pass --train_file."
        )
    path = os.path.join(data_dir, matching[0])
    with zipfile.ZipFile(path) as archive:
        texts = [name for name in archive.namelist() if name.endswith(".txt") and "MACOSX" not in name]
        member = next((name for name in texts if not os.path.basename(name).startswith("_")), None)
        if member is None:
            raise ValueError(f"{path} holds no pairs file (e.g. {other}-eng/{other}.txt).")
        lines = archive.read(member).decode("utf-8").splitlines()
    by_english: dict[str, list[str]] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise ValueError(f"{path}:{member} line {number} is not 'English<TAB>translation': {line[:80]!r}.")
        by_english.setdefault(fields[0], []).append(fields[1])
    english = sorted(by_english)
    random.Random(ANKI_SPLIT_SEED).shuffle(english)
    held_out = sum(ANKI_HELD_OUT.values())
    if len(english) <= held_out:
        raise ValueError(f"{path} has {len(english)} English sentences; its splits hold out {held_out}.")
    validation_end = ANKI_HELD_OUT["validation"]
    groups = {
        "train": english[held_out:],
        "validation": english[:validation_end],
        "test": english[validation_end:held_out],
    }
    splits = {}
    for split, sentences in groups.items():
        pairs = [{"en": sentence, other: translation} for sentence in sentences for translation in by_english[sentence]]
        splits[split] = Dataset.from_dict({"translation": pairs})
    return DatasetDict(splits)


def load_raw_datasets(data_args: DataTrainingArguments) -> DatasetDict:
    if data_args.data_dir is not None:
        if os.path.isdir(data_args.data_dir) and any(n.endswith("-eng.zip") for n in os.listdir(data_args.data_dir)):
            return load_anki(data_args.data_dir, data_args.source_lang, data_args.target_lang)
        return load_multi30k(data_args.data_dir, data_args.source_lang, data_args.target_lang)
    if data_args.train_file is not None:
        files = {"train": data_args.train_file, "validation": data_args.validation_file, "test": data_args.test_file}
        return load_dataset("json", data_files={k: v for k, v in files.items() if v is not None})
    return load_dataset(data_args.dataset_name, data_args.dataset_config_name)


# ---- tokenizer and model ----------------------------------------------------------------------------------------------


def train_joint_bpe(sentences: list[str], vocab_size: int, output_dir: str) -> PreTrainedTokenizerFast:
    """A byte-level-free BPE shared by both languages, trained with `tokenizers`, saved so `from_pretrained` works.

    Every sequence ends with `</s>`, as Marian expects."""
    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()), min_frequency=2)
    tokenizer.train_from_iterator(sentences, trainer=trainer)
    eos = SPECIAL_TOKENS["eos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tokenizer.token_to_id(eos))]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)
    fast.save_pretrained(output_dir)
    return AutoTokenizer.from_pretrained(output_dir)


def build_marian(model_args: ModelArguments, tokenizer, max_length: int) -> MarianMTModel:
    config = MarianConfig(
        vocab_size=len(tokenizer),
        decoder_vocab_size=len(tokenizer),
        d_model=model_args.d_model,
        encoder_layers=model_args.layers,
        decoder_layers=model_args.layers,
        encoder_attention_heads=model_args.attention_heads,
        decoder_attention_heads=model_args.attention_heads,
        encoder_ffn_dim=model_args.ffn_dim,
        decoder_ffn_dim=model_args.ffn_dim,
        dropout=model_args.dropout,
        max_position_embeddings=max(128, max_length),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
        share_encoder_decoder_embeddings=True,
        scale_embedding=True,
    )
    return MarianMTModel(config)


def bleu_metric(tokenizer):
    """`compute_metrics` for `predict_with_generate`: sacreBLEU of the decoded predictions against the decoded labels."""

    def compute_metrics(eval_preds):
        predictions, labels = eval_preds
        predictions = np.where(predictions != -100, predictions, tokenizer.pad_token_id)
        labels = np.where(labels != -100, labels, tokenizer.pad_token_id)
        hypotheses = [s.strip() for s in tokenizer.batch_decode(predictions, skip_special_tokens=True)]
        references = [s.strip() for s in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        bleu = sacrebleu.corpus_bleu(hypotheses, [references])
        return {"bleu": bleu.score, "gen_len": float(np.mean([np.count_nonzero(p != tokenizer.pad_token_id) for p in predictions]))}

    return compute_metrics


# ---- train and test -----------------------------------------------------------------------------------------------


def main():
    # ---- parse -------------------------------------------------------------------------------------------------
    parser = HfArgumentParser((ModelArguments, DataTrainingArguments, AutoAssistSeq2SeqConfig))
    if len(sys.argv) == 2 and sys.argv[1].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(json_file=os.path.abspath(sys.argv[1]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses()

    # ---- logging -----------------------------------------------------------------------------------------------
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)

    # ---- data --------------------------------------------------------------------------------------------------
    with training_args.main_process_first(desc="loading sentence pairs"):
        raw = load_raw_datasets(data_args)
    src, tgt = data_args.source_lang, data_args.target_lang
    for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples),
                         ("test", data_args.max_predict_samples)):  # fmt: skip
        if split in raw and limit is not None:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    if "train" not in raw:
        raise ValueError("The data has no train split.")

    # ---- tokenizer ---------------------------------------------------------------------------------------------
    if model_args.tokenizer_name or model_args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name or model_args.model_name_or_path)
    else:
        with training_args.main_process_first(desc="training the tokenizer"):
            pairs = raw["train"]["translation"]
            sentences = [p[src] for p in pairs] + [p[tgt] for p in pairs]
            tokenizer = train_joint_bpe(sentences, model_args.vocab_size, os.path.join(training_args.output_dir, "tokenizer"))

    # ---- preprocessing -----------------------------------------------------------------------------------------
    def preprocess(batch):
        sources = [pair[src] for pair in batch["translation"]]
        targets = [pair[tgt] for pair in batch["translation"]]
        return tokenizer(
            sources, text_target=targets, max_length=data_args.max_source_length, truncation=True
        )

    with training_args.main_process_first(desc="tokenizing"):
        tokenized = raw.map(preprocess, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")

    # ---- metric ------------------------------------------------------------------------------------------------
    compute_metrics = bleu_metric(tokenizer)

    # ---- train, evaluate, test -----------------------------------------------------------------------------------
    runs = {"autoassist": AutoAssistSeq2SeqTrainer, "plain": Seq2SeqTrainer}
    names = list(runs) if model_args.trainer == "both" else [model_args.trainer]
    base_output_dir, results = training_args.output_dir, []
    for name in names:
        if len(names) > 1:
            training_args.output_dir = os.path.join(base_output_dir, name)
        set_seed(training_args.seed)
        if model_args.model_name_or_path:
            config = AutoConfig.from_pretrained(model_args.model_name_or_path)
            model = AutoModelForSeq2SeqLM.from_pretrained(model_args.model_name_or_path, config=config)
        else:
            model = build_marian(model_args, tokenizer, max(data_args.max_source_length, data_args.max_target_length))
        model.generation_config.max_length = training_args.generation_max_length or data_args.max_target_length
        model.generation_config.num_beams = training_args.generation_num_beams or 1
        trainer = runs[name](
            model=model,
            args=training_args,
            train_dataset=tokenized["train"],
            eval_dataset=tokenized.get("validation"),
            processing_class=tokenizer,
            data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
            compute_metrics=compute_metrics if training_args.predict_with_generate else None,
        )
        start = time.perf_counter()
        train_result = trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
        train_seconds = time.perf_counter() - start
        trainer.save_model()
        tokenizer.save_pretrained(training_args.output_dir)
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
        trainer.save_state()
        row = {"trainer": name, "train_seconds": round(train_seconds, 1), "optimizer_steps": trainer.state.global_step}
        if "test" in tokenized and training_args.predict_with_generate:
            test = trainer.predict(tokenized["test"], metric_key_prefix="test")
            trainer.log_metrics("test", test.metrics)
            trainer.save_metrics("test", test.metrics)
            hypotheses = tokenizer.batch_decode(
                np.where(test.predictions != -100, test.predictions, tokenizer.pad_token_id), skip_special_tokens=True
            )
            references = [pair[tgt] for pair in raw["test"]["translation"]]
            # scored against the raw references, so the number is comparable with published sacreBLEU scores
            metric = sacrebleu.BLEU()
            bleu = metric.corpus_score([h.strip() for h in hypotheses], [references])
            row.update(test_bleu=round(bleu.score, 2), sacrebleu_signature=str(metric.get_signature()))
            with open(os.path.join(training_args.output_dir, "test_predictions.txt"), "w") as f:
                f.write("\n".join(hypotheses) + "\n")
        plausibility = getattr(getattr(trainer, "selection_run", None), "plausibility", None)
        if plausibility is not None and training_args.should_log:  # what the check found, as text
            pairs = raw["train"]["translation"]
            shown = "\n".join(f"  {i}: {pairs[i][src]!r} -> {pairs[i][tgt]!r}" for i in plausibility.least_plausible(5))
            if shown:  # a data-quality finding the user asked for: shown at the default log level
                logger.warning(f"The least plausible training pairs (flagged, not trained on):\n{shown}")
        metrics = trainer.autoassist_metrics() if hasattr(trainer, "autoassist_metrics") else {}
        row["kept_fraction_last_epoch"] = metrics.get("autoassist/kept_fraction", 1.0)
        row["instances_backpropagated"] = metrics.get("autoassist/instances_backpropagated")
        row["assistant_seconds"] = metrics.get("autoassist/assistant_seconds", 0.0)
        results.append(row)

    # ---- report ------------------------------------------------------------------------------------------------
    if training_args.should_log:
        columns = {
            "trainer": "trainer",
            "test_bleu": "test BLEU",
            "train_seconds": "train s",
            "optimizer_steps": "steps",
            "kept_fraction_last_epoch": "kept (last epoch)",
            "assistant_seconds": "assistant s",
        }
        print("\n" + report_side_by_side(results, columns, base_output_dir))
        if results and "sacrebleu_signature" in results[0]:
            print(f"sacreBLEU {results[0]['sacrebleu_signature']}")
    PartialState().destroy_process_group()  # a gloo rank left in the group can abort at exit


if __name__ == "__main__":
    main()
