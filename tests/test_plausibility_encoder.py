"""A pretrained sentence encoder as the pairs check's scorer (`autoassist_plausibility_encoder`), offline: a tiny
BERT saved with `save_pretrained`, on real Multi30k sentences paired with their own words reversed, a quarter of them
re-paired. Random weights relate a sentence to its reversed words (the same tokens) and not to another sentence's,
which is all the test asks of the encoder: the pairs go from ids back to text, through the encoder, the cosine and
the calibrated mixture, and the flags land on the re-paired pairs."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from hf_autoassist import AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer
from hf_autoassist.plausibility import plausibility_for

from conftest import DATA_DIR
from test_translation import pad_pairs, tiny_marian

NUM_PAIRS = 400
MAX_WORDS = 30  # within tiny_marian's 32 positions, with the end token


@pytest.fixture(scope="module")
def corpus():
    """The first English Multi30k sentences (their words, at most `MAX_WORDS`), a word-level tokenizer over them
    (`<pad>` 0 and `</s>` 1, as tiny_marian reads them), and which pairs get another pair's target."""
    import gzip

    with gzip.open(DATA_DIR / "multi30k" / "raw" / "train.en.gz", "rt") as f:
        words = [next(f).split()[:MAX_WORDS] for _ in range(NUM_PAIRS)]
    model = Tokenizer(models.WordLevel(unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    model.train_from_iterator(
        [" ".join(w) for w in words], trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"])
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=model, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    noisy = np.sort(np.random.default_rng(0).choice(NUM_PAIRS, NUM_PAIRS // 4, replace=False))
    targets = [list(reversed(w)) for w in words]
    for i, j in zip(noisy, np.roll(noisy, -1)):
        targets[i] = list(reversed(words[j]))
    is_noisy = torch.zeros(NUM_PAIRS, dtype=torch.bool)
    is_noisy[noisy] = True

    def ids(rows):
        return [tokenizer.convert_tokens_to_ids(row) + [tokenizer.eos_token_id] for row in rows]

    train = Dataset.from_dict({"input_ids": ids(words), "labels": ids(targets)})
    return train, tokenizer, is_noisy


@pytest.fixture(scope="module")
def saved_encoder(tmp_path_factory, corpus):
    _, tokenizer, _ = corpus
    path = tmp_path_factory.mktemp("sentence-encoder")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_a_saved_sentence_encoder_flags_the_re_paired_pairs(corpus, saved_encoder):
    train, tokenizer, noisy = corpus
    state = torch.get_rng_state()
    plausibility = plausibility_for(train, encoder=saved_encoder, tokenizer=tokenizer, seed=0)
    assert torch.equal(torch.get_rng_state(), state)  # loading the encoder left the run's RNG alone
    flagged = plausibility.flagged
    assert flagged[noisy].float().mean() > 0.9 and flagged[~noisy].float().mean() < 0.05
    assert plausibility.implausible_share == pytest.approx(0.25, abs=0.08)


def test_the_trainer_reads_the_pairs_as_text_with_its_tokenizer(tmp_path, corpus, saved_encoder):
    train, tokenizer, noisy = corpus
    args = AutoAssistSeq2SeqConfig(
        str(tmp_path), report_to="none", use_cpu=True, num_train_epochs=1, per_device_train_batch_size=32,
        save_strategy="no", autoassist_strategy="none", autoassist_plausibility="pairs",
        autoassist_plausibility_encoder=saved_encoder,
    )  # fmt: skip
    trainer = AutoAssistSeq2SeqTrainer(
        model=tiny_marian(vocab=len(tokenizer)), args=args, train_dataset=train, data_collator=pad_pairs,
        processing_class=tokenizer,
    )  # fmt: skip
    trainer.train()
    flagged = trainer.selection_run.plausibility.flagged
    assert flagged[noisy].float().mean() > 0.9 and not flagged[trainer.selection_run.sampler.kept].any()


def test_an_encoder_needs_a_tokenizer_a_loadable_path_and_pairs(tmp_path, corpus, saved_encoder):
    train, tokenizer, _ = corpus

    def trainer(encoder, processing_class):
        args = AutoAssistSeq2SeqConfig(
            str(tmp_path), report_to="none", use_cpu=True, num_train_epochs=1, save_strategy="no",
            autoassist_plausibility="pairs", autoassist_plausibility_encoder=encoder,
        )  # fmt: skip
        return AutoAssistSeq2SeqTrainer(
            model=tiny_marian(vocab=len(tokenizer)), args=args, train_dataset=train, data_collator=pad_pairs,
            processing_class=processing_class,
        )  # fmt: skip

    with pytest.raises(ValueError, match="processing_class=tokenizer"):
        trainer(saved_encoder, None).train()
    missing = str(tmp_path / "no-such-encoder")
    with pytest.raises(ValueError, match=f"could not load a sentence encoder from '{missing}'"):
        trainer(missing, tokenizer).train()
    with pytest.raises(ValueError, match="`autoassist_plausibility_encoder` scores seq2seq pairs"):
        AutoAssistSeq2SeqConfig("out", autoassist_plausibility="labels", autoassist_plausibility_encoder=saved_encoder)
