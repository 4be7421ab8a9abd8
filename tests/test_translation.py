"""The translation side: seq2seq per-instance losses in the trainer, the tokenizer, the data guards, the example."""

import gzip
import json
import subprocess
import sys
import zipfile

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import MarianConfig, MarianMTModel, T5Config, T5ForConditionalGeneration

from hf_autoassist import AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer
from hf_autoassist.data import INDEX_KEY
from hf_autoassist.losses import per_instance_loss

from conftest import DATA_DIR, REPO, load_example


@pytest.fixture(scope="module")
def translation_example():
    return load_example("examples/translation/run_translation.py")


def tiny_marian(vocab=40):
    torch.manual_seed(0)
    config = MarianConfig(
        vocab_size=vocab, decoder_vocab_size=vocab, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, max_position_embeddings=32,
        dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
    )  # fmt: skip
    return MarianMTModel(config)


def pad_pairs(examples: list[dict]) -> dict:
    """A batch of token-id pairs: sources padded with 0 (and their attention mask), targets with -100."""
    width = max(len(e["input_ids"]) for e in examples)
    target_width = max(len(e["labels"]) for e in examples)
    input_ids = torch.tensor([list(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in examples])
    labels = torch.tensor([list(e["labels"]) + [-100] * (target_width - len(e["labels"])) for e in examples])
    return {"input_ids": input_ids, "attention_mask": input_ids.ne(0).long(), "labels": labels}


def hand_sequence_losses(logits, labels, eps):
    """Row by row, token by token: (1 - eps) * nll + eps * mean(-log p) over the tokens that are not -100."""
    rows = []
    for row_logits, row_labels in zip(logits, labels):
        terms = []
        for position, label in enumerate(row_labels.tolist()):
            if label == -100:
                continue
            log_probs = F.log_softmax(row_logits[position].double(), -1)
            terms.append((1 - eps) * -log_probs[label] + eps * -log_probs.mean())
        rows.append(torch.stack(terms).mean() if terms else torch.tensor(0.0, dtype=torch.float64))
    return torch.stack(rows).float()


def test_t5_per_sequence_loss_matches_the_hand_computation():
    torch.manual_seed(0)
    config = T5Config(vocab_size=30, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(config).eval()
    labels = torch.tensor([[5, 6, 7, -100], [8, -100, -100, -100]])
    out = model(input_ids=torch.randint(2, 30, (2, 5)), labels=labels)
    torch.testing.assert_close(per_instance_loss(out.logits, labels), hand_sequence_losses(out.logits, labels, 0.0))
    torch.testing.assert_close(
        per_instance_loss(out.logits, labels, label_smoothing=0.2), hand_sequence_losses(out.logits, labels, 0.2)
    )


def test_seq2seq_trainer_feeds_the_assistant_the_per_sequence_losses_of_the_training_forward(tmp_path):
    # padded sources, -100 targets, label smoothing: the Assistant gets the hand computation on the step's logits
    train = Dataset.from_dict({"input_ids": [[5, 6, 7, 1], [8, 9, 1], [10, 1]], "labels": [[11, 1], [13, 1], [14, 1]]})
    args = AutoAssistSeq2SeqConfig(str(tmp_path), report_to="none", use_cpu=True, label_smoothing_factor=0.1,
                                   autoassist_strategy="autoassist")
    model = tiny_marian()  # no dropout: the training forward is reproducible
    trainer = AutoAssistSeq2SeqTrainer(model=model, args=args, train_dataset=train)
    trainer.get_train_dataloader()
    submitted = []
    trainer.selection_run.worker.submit = lambda indices, losses: submitted.append((indices, losses))

    input_ids = torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0], [10, 1, 0, 0]])
    labels = torch.tensor([[11, 12, 1, -100], [13, 1, -100, -100], [14, 15, 16, 1]])
    batch = {"input_ids": input_ids, "attention_mask": input_ids.ne(0).long(), "labels": labels}
    # as DataCollatorForSeq2Seq does: with label smoothing the Trainer takes `labels` away from the model
    batch["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
    with torch.no_grad():
        expected = hand_sequence_losses(model(**batch).logits, labels, 0.1)
    trainer.current_gradient_accumulation_steps = 1  # set by the training loop
    trainer.training_step(model, {**batch, INDEX_KEY: torch.tensor([2, 0, 1])})

    ((indices, losses),) = submitted
    assert indices.tolist() == [2, 0, 1]
    torch.testing.assert_close(losses, expected, rtol=1e-5, atol=1e-5)


def test_adaptive_with_the_smoothing_floor_remembers_each_pairs_loss_above_what_smoothing_leaves(tmp_path):
    from hf_autoassist.losses import smoothed_target_entropy

    train = Dataset.from_dict({"input_ids": [[5, 6, 7, 1], [8, 9, 1], [10, 1]], "labels": [[11, 1], [13, 1], [14, 1]]})
    args = AutoAssistSeq2SeqConfig(str(tmp_path), report_to="none", use_cpu=True, label_smoothing_factor=0.1,
                                   autoassist_strategy="adaptive", autoassist_smoothing_floor=True)  # fmt: skip
    model = tiny_marian()
    trainer = AutoAssistSeq2SeqTrainer(model=model, args=args, train_dataset=train)
    trainer.get_train_dataloader()
    input_ids = torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0], [10, 1, 0, 0]])
    labels = torch.tensor([[11, 12, 1, -100], [13, 1, -100, -100], [14, 15, 16, 1]])
    batch = {"input_ids": input_ids, "attention_mask": input_ids.ne(0).long(), "labels": labels}
    batch["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
    with torch.no_grad():
        expected = hand_sequence_losses(model(**batch).logits, labels, 0.1) - smoothed_target_entropy(0.1, 40)
    trainer.current_gradient_accumulation_steps = 1
    trainer.training_step(model, {**batch, INDEX_KEY: torch.tensor([2, 0, 1])})
    torch.testing.assert_close(trainer.selection_run.strategy.memory.loss[[2, 0, 1]], expected, rtol=1e-5, atol=1e-5)


def test_adaptive_reading_argmax_misses_remembers_each_pairs_share_of_wrong_target_tokens_from_the_step(tmp_path):
    train = Dataset.from_dict({"input_ids": [[5, 6, 7, 1], [8, 9, 1], [10, 1]], "labels": [[11, 1], [13, 1], [14, 1]]})
    input_ids = torch.tensor([[5, 6, 7, 1], [8, 9, 1, 0], [10, 1, 0, 0]])
    labels = torch.tensor([[11, 12, 1, -100], [13, 1, -100, -100], [14, 15, 16, 1]])
    for reading in ("argmax", "loss"):
        args = AutoAssistSeq2SeqConfig(str(tmp_path), report_to="none", use_cpu=True, label_smoothing_factor=0.1,
                                       autoassist_strategy="adaptive", autoassist_token_reading=reading)  # fmt: skip
        model = tiny_marian()
        trainer = AutoAssistSeq2SeqTrainer(model=model, args=args, train_dataset=train)
        trainer.get_train_dataloader()
        batch = {"input_ids": input_ids, "attention_mask": input_ids.ne(0).long(), "labels": labels}
        batch["decoder_input_ids"] = model.prepare_decoder_input_ids_from_labels(labels=labels)
        with torch.no_grad():
            predicted = model(**batch).logits.argmax(-1)
        counted = labels.ne(-100)
        expected = ((predicted != labels) & counted).sum(-1).float() / counted.sum(-1)
        trainer.current_gradient_accumulation_steps = 1
        trainer.training_step(model, {**batch, INDEX_KEY: torch.tensor([2, 0, 1])})
        strategy = trainer.selection_run.strategy
        if reading == "loss":
            assert strategy.missed is None and not trainer.loss_reader.reads_token_misses
            continue
        torch.testing.assert_close(strategy.missed[[2, 0, 1]], expected)
        # what `select` reads: the misses, not the smoothed loss (above 1 nat on every pair, none within the margin)
        torch.testing.assert_close(strategy.left(torch.tensor([2, 0, 1])), expected)
        assert (strategy.memory.loss > 1.0).all()


def test_bag_of_tokens_assistant_builds_from_tokenized_pairs_with_a_wider_embedding(tmp_path):
    from hf_autoassist.assistants import BagOfTokensAssistant, build_assistant

    train = Dataset.from_dict({"input_ids": [[5, 6, 1], [7, 1]], "labels": [[8, 1], [9, 10, 1]]})
    assistant = build_assistant("auto", train, token_dim=4)
    assert isinstance(assistant, BagOfTokensAssistant) and assistant.readout is not None
    scores = assistant.score(torch.arange(2))
    torch.testing.assert_close(scores, torch.full((2,), 0.5))  # zero readout: undecided until it learns


def test_tokenizer_trains_saves_and_loads_back(tmp_path, translation_example):
    sentences = ["A man is riding a horse .", "Ein Mann reitet ein Pferd .", "Two dogs play in the snow ."] * 50
    tokenizer = translation_example.train_joint_bpe(sentences, vocab_size=200, output_dir=str(tmp_path / "tok"))
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    ids = reloaded("A man is riding a horse .")["input_ids"]
    assert ids == tokenizer("A man is riding a horse .")["input_ids"]
    assert ids[-1] == reloaded.eos_token_id
    assert reloaded.decode(ids, skip_special_tokens=True) == "A man is riding a horse ."
    assert reloaded.pad_token == "<pad>" and reloaded.unk_token == "<unk>"


def write_gz(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def fake_multi30k(folder, langs=("en", "de"), counts=None):
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in ("train", "val", "test_2016_flickr"):
        for lang in langs:
            n = (counts or {}).get((prefix, lang), 3)
            write_gz(folder / f"{prefix}.{lang}.gz", [f"{lang} sentence {i}" for i in range(n)])
    return folder


def fake_anki(folder, lines, name="fra-eng.zip"):
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as archive:
        archive.writestr("fra-eng/_about.txt", "terms")
        archive.writestr("fra-eng/fra.txt", "\n".join(lines) + "\n")
    return folder


def test_anki_is_split_by_english_sentence(tmp_path, translation_example, monkeypatch):
    monkeypatch.setattr(translation_example, "ANKI_HELD_OUT", {"validation": 3, "test": 3})
    # every third English sentence has two French translations
    lines = [f"sentence {i}.\tphrase {i}." for i in range(20)] + [f"sentence {i}.\tautre {i}." for i in range(0, 20, 3)]
    folder = fake_anki(tmp_path / "anki", lines)
    raw = translation_example.load_anki(str(folder), "en", "fr")
    english = {split: [p["en"] for p in raw[split]["translation"]] for split in raw}
    assert sum(len(v) for v in english.values()) == len(lines)  # every pair is somewhere
    assert len(set(english["validation"])) == len(set(english["test"])) == 3
    assert not set(english["train"]) & (set(english["validation"]) | set(english["test"]))
    assert all(p["fr"].split()[-1] == p["en"].split()[-1] for p in raw["train"]["translation"])
    # the other direction reads the same archive, and the data_dir option finds it
    reverse = translation_example.load_anki(str(folder), "fr", "en")
    assert reverse["test"]["translation"] == raw["test"]["translation"]
    args = translation_example.DataTrainingArguments(data_dir=str(folder), source_lang="en", target_lang="fr")
    assert len(translation_example.load_raw_datasets(args)["train"]) == len(raw["train"])


def test_anki_guards_name_the_problem(tmp_path, translation_example, monkeypatch):
    monkeypatch.setattr(translation_example, "ANKI_HELD_OUT", {"validation": 1, "test": 1})
    folder = fake_anki(tmp_path / "ok", ["Hi.\tSalut.", "Go.\tVa !", "Run.\tCours !"])
    with pytest.raises(ValueError, match="Make one of them en"):
        translation_example.load_anki(str(folder), "de", "fr")
    with pytest.raises(FileNotFoundError, match=r"No single archive .* for the 'de' side .* \['fra-eng.zip'\]"):
        translation_example.load_anki(str(folder), "en", "de")  # the example's default target: never French
    fake_anki(folder, ["Hallo.\tHi."], name="deu-eng.zip")
    with pytest.raises(FileNotFoundError, match=r"for the 'es' side .* --target_lang spa"):
        translation_example.load_anki(str(folder), "en", "es")
    assert len(translation_example.load_anki(str(folder), "en", "fr")["train"]) == 1
    broken = fake_anki(tmp_path / "broken", ["Hi.\tSalut.", "no tab here"])
    with pytest.raises(ValueError, match=r"line 2 is not 'English<TAB>translation'"):
        translation_example.load_anki(str(broken), "en", "fr")
    small = fake_anki(tmp_path / "small", ["Hi.\tSalut.", "Go.\tVa !"])
    with pytest.raises(ValueError, match="has 2 English sentences; its splits hold out 2"):
        translation_example.load_anki(str(small), "en", "fr")


def test_data_guards_name_the_problem(tmp_path, translation_example):
    folder = fake_multi30k(tmp_path / "ok")
    assert len(translation_example.load_multi30k(str(folder), "en", "de")["train"]) == 3
    with pytest.raises(ValueError, match=r"--target_lang 'fr' has no files .* Languages there: \['de', 'en'\]"):
        translation_example.load_multi30k(str(folder), "en", "fr")
    with pytest.raises(ValueError, match=r"--source_lang 'xx' has no files"):
        translation_example.load_multi30k(str(folder), "xx", "de")
    uneven = fake_multi30k(tmp_path / "uneven", counts={("val", "de"): 2})
    with pytest.raises(ValueError, match="val.en.gz has 3 lines but .*val.de.gz has 2"):
        translation_example.load_multi30k(str(uneven), "en", "de")
    with pytest.raises(FileNotFoundError, match=r"is not a folder. Point it at Multi30k's raw files"):
        translation_example.load_multi30k(str(tmp_path / "nowhere"), "en", "de")
    (folder / "test_2016_flickr.de.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_2016_flickr.de.gz is missing: the test split needs both"):
        translation_example.load_multi30k(str(folder), "en", "de")
    with pytest.raises(ValueError, match="pick two languages"):
        translation_example.DataTrainingArguments(data_dir=str(folder), source_lang="en", target_lang="en")


@pytest.mark.slow
def test_translation_example_trains_a_tiny_marian_on_a_multi30k_slice(tmp_path):
    command = [
        sys.executable, str(REPO / "examples/translation/run_translation.py"),
        "--data_dir", str(DATA_DIR / "multi30k/raw"), "--source_lang", "en", "--target_lang", "de",
        "--output_dir", str(tmp_path), "--trainer", "autoassist", "--predict_with_generate",
        "--max_train_samples", "1000", "--max_eval_samples", "100", "--max_predict_samples", "100",
        "--num_train_epochs", "3", "--per_device_train_batch_size", "32", "--learning_rate", "2e-3",
        "--d_model", "64", "--layers", "1", "--ffn_dim", "128", "--vocab_size", "1000",
        "--eval_strategy", "epoch", "--save_strategy", "no", "--logging_steps", "5", "--report_to", "none",
        "--use_cpu", "--disable_tqdm", "true", "--autoassist_write_report", "true",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    # the default on seq2seq pairs is the pairs check alone; Multi30k is clean: it reports on every pair, flags none,
    # and the run keeps every pair, every epoch
    with open(tmp_path / "autoassist_plausibility.jsonl") as f:
        flags = [json.loads(line)["flagged"] for line in f]
    assert len(flags) == 1000 and sum(flags) == 0
    assert "Plausibility (pairs): 0 of 1000 training instances flagged" in result.stdout + result.stderr
    (row,) = json.loads((tmp_path / "comparison.json").read_text())
    assert row["kept_fraction_last_epoch"] == 1.0
    assert row["test_bleu"] is not None and row["sacrebleu_signature"].startswith("nrefs:1")
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    losses = [log["loss"] for log in history if "loss" in log]
    assert losses[-1] < losses[0]
    evals = [log for log in history if "eval_bleu" in log]
    assert len(evals) == 3 and all(log["eval_bleu"] >= 0 for log in evals)
    # the tokenizer saved beside the model loads with from_pretrained
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(str(tmp_path)).eos_token == "</s>"
