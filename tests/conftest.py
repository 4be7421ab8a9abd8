import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast, ResNetConfig, ResNetForImageClassification

REPO = Path(__file__).resolve().parents[1]
# the project's offline data lives beside the repository (../shared/data); HF_AUTOASSIST_DATA overrides
DATA_DIR = Path(os.environ.get("HF_AUTOASSIST_DATA", REPO.parent / "shared" / "data"))

sys.path.insert(0, str(REPO))
from benchmarks.tasks import load_example  # noqa: E402  (tests use the examples' own data loading, not a copy)


@pytest.fixture(scope="session")
def vision_example():
    return load_example("examples/vision/run_image_classification.py")


@pytest.fixture(scope="session")
def fashion_mnist(vision_example):
    """Fashion-MNIST read in place from the shared data folder; a missing folder fails loudly, never skips."""
    folder = DATA_DIR / "fashion-mnist"
    if not folder.is_dir():
        pytest.fail(f"Fashion-MNIST not found at {folder}; set HF_AUTOASSIST_DATA to the shared data folder.")
    return vision_example.load_idx_dataset(str(folder))


def assert_shrank_and_learned(trainer):
    """Trains, then: the warmup kept everything, a later epoch shrank, the loss fell and the run ended on plan."""
    trainer.train()
    assert trainer.kept_fractions[0] == 1.0 and min(trainer.kept_fractions.values()) < 1.0
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert np.mean(losses[-2:]) < np.mean(losses[:2])
    assert trainer.state.global_step == trainer.state.max_steps


def tiny_resnet(num_labels: int = 10, seed: int = 0) -> ResNetForImageClassification:
    torch.manual_seed(seed)
    config = ResNetConfig(
        num_channels=1,
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        downsample_in_first_stage=False,
        num_labels=num_labels,
    )
    return ResNetForImageClassification(config)


@pytest.fixture(scope="session")
def sentences():
    with gzip.open(DATA_DIR / "multi30k" / "raw" / "train.en.gz", "rt") as en, gzip.open(
        DATA_DIR / "multi30k" / "raw" / "train.de.gz", "rt"
    ) as de:
        return [(next(en).strip(), next(de).strip()) for _ in range(256)]


def multi30k_token_pairs(num_pairs: int, misaligned: float = 0.25, seed: int = 0):
    """The first `num_pairs` real Multi30k en-de pairs as word-level token ids (a vocabulary per side), the German
    targets, a copy where `misaligned` of the pairs took the next chosen pair's target, and which those are."""
    with gzip.open(DATA_DIR / "multi30k" / "raw" / "train.en.gz", "rt") as en, gzip.open(
        DATA_DIR / "multi30k" / "raw" / "train.de.gz", "rt"
    ) as de:
        pairs = [(next(en).strip(), next(de).strip()) for _ in range(num_pairs)]
    encoded = []
    for texts in ([p[0] for p in pairs], [p[1] for p in pairs]):
        tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=4000, special_tokens=["<unk>"]))
        encoded.append([e.ids for e in tokenizer.encode_batch(texts)])
    sources, targets = encoded
    noisy = np.sort(np.random.default_rng(seed).choice(num_pairs, round(misaligned * num_pairs), replace=False))
    shuffled = list(targets)
    for i, j in zip(noisy, np.roll(noisy, -1)):
        shuffled[i] = targets[j]
    is_noisy = torch.zeros(num_pairs, dtype=torch.bool)
    is_noisy[noisy] = True
    return sources, targets, shuffled, is_noisy


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, sentences):
    """A word-piece-free BPE trained on 256 Multi30k pairs, saved as a `transformers` tokenizer folder."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = ["<pad>", "</s>", "<unk>", "<s>"]
    tokenizer.train_from_iterator([s for pair in sentences for s in pair], trainers.BpeTrainer(vocab_size=500, special_tokens=specials))
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>")
    folder = tmp_path_factory.mktemp("tokenizer")
    fast.save_pretrained(folder)
    return folder
