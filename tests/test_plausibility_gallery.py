"""The report's picture of the flagged instances (`autoassist_plausibility.png`): thumbnails of images with their
given and suggested labels, or pairs as decoded text, least plausible first; nothing drawn when nothing is flagged."""

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Sequence, Value
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from hf_autoassist.plausibility import Plausibility
from hf_autoassist.plausibility.gallery import GALLERY_NAME, MAX_CHARS, pair_lines, thumbnail, write_gallery

matplotlib_image = pytest.importorskip("matplotlib.image")


def flags(posterior, method="labels", suggested=None):
    posterior = torch.tensor(posterior)
    return Plausibility(method, -posterior, posterior, posterior > 0.5, 0.2, 0.5, suggested)


def test_flagged_images_are_drawn_as_thumbnails_with_their_labels(tmp_path):
    features = Features({"pixel_values": Sequence(Sequence(Sequence(Value("float32")))),
                         "labels": ClassLabel(names=["shirt", "coat", "bag"])})  # fmt: skip
    pixels = np.random.default_rng(0).normal(size=(6, 1, 8, 8)).astype(np.float32)
    images = Dataset.from_dict({"pixel_values": pixels.tolist(), "labels": [0, 1, 2, 0, 1, 2]}, features=features)
    found = flags([0.1, 0.9, 0.2, 0.95, 0.6, 0.0], suggested=torch.tensor([0, 0, 2, 1, 2, 2]))
    path = write_gallery(found, images, str(tmp_path))
    assert path == str(tmp_path / GALLERY_NAME)
    assert matplotlib_image.imread(path).shape[0] > 100  # a real PNG, one row of three thumbnails
    # the thumbnail is the image itself, rescaled to [0, 1] and channels last
    image = thumbnail(images[3])
    assert image.shape == (8, 8) and image.min() == 0.0 and image.max() == 1.0
    assert np.allclose(image, (pixels[3, 0] - pixels[3, 0].min()) / np.ptp(pixels[3, 0]), atol=1e-6)


def test_nothing_is_drawn_when_nothing_is_flagged_or_the_instances_cannot_be_shown(tmp_path):
    images = Dataset.from_dict({"pixel_values": np.zeros((3, 1, 4, 4)).tolist(), "labels": [0, 1, 0]})
    assert write_gallery(flags([0.1, 0.2, 0.3]), images, str(tmp_path)) is None
    tabular = Dataset.from_dict({"x": [0.1, 0.2, 0.3], "labels": [0, 1, 0]})
    assert write_gallery(flags([0.1, 0.9, 0.3]), tabular, str(tmp_path)) is None
    pairs = Dataset.from_dict({"input_ids": [[3, 4]] * 3, "labels": [[5, 6]] * 3})
    assert write_gallery(flags([0.1, 0.9, 0.3], "pairs"), pairs, str(tmp_path)) is None  # no tokenizer to decode
    assert write_gallery(flags([0.1, 0.9, 0.3]), [(np.zeros((1, 4, 4)), 0)] * 3, str(tmp_path)) is None  # tuples
    assert not (tmp_path / GALLERY_NAME).exists()


def test_flagged_pairs_are_drawn_as_their_decoded_text(tmp_path):
    words = ["[UNK]", "a", "cat", "sits", "un", "chat", "dort", "long"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    pairs = Dataset.from_dict({"input_ids": [[1, 2, 3], [1, 2], [7] * 100], "labels": [[4, 5, -100], [6], [5]]})
    assert pair_lines(pairs[0], tokenizer) == ("a cat sits", "un chat")  # ignored labels left out
    source, _ = pair_lines(pairs[2], tokenizer)
    assert len(source) == MAX_CHARS and source.endswith("…")
    path = write_gallery(flags([0.9, 0.1, 0.7], "pairs"), pairs, str(tmp_path), tokenizer)
    assert path is not None and matplotlib_image.imread(path).shape[1] > 500
