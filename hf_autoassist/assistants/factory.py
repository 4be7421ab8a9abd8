"""Builds the Assistant named in the config from the training set's columns (`columns.py` reads them)."""

import numpy as np
import torch
from torch.utils.data import Dataset

from ..columns import (
    class_ids, column_names, holds_token_ids, image_column, labels_are_sequences, pooled_images, read_column,
    token_lists,
)  # fmt: skip
from .base import Assistant
from .boss_features import BossFeatureAssistant
from .label_bias import LabelBiasAssistant
from .pixels import PixelAssistant
from .tokens import BagOfTokensAssistant


def resolve_assistant_name(name: str, dataset: Dataset) -> str:
    """`"auto"` becomes `"pixels"` for a `pixel_values` (or image) column, `"bag_of_tokens"` for token ids in
    `input_ids`, and `"boss_features"` for any other set (tabular, audio, regression, float `input_ids`): that one
    reads no input, only what each training step tells it (the Boss's own representation, and the loss memory around
    it) and the class label."""
    if name != "auto":
        return name
    columns = column_names(dataset)
    if "pixel_values" in columns or image_column(dataset) is not None:
        return "pixels"
    if "input_ids" in columns and holds_token_ids(dataset):
        return "bag_of_tokens"
    return "boss_features"


# what each Assistant reads, and what to do when the column is missing
REQUIRED_COLUMNS = {
    "pixels": (
        "pixel_values",
        "Store the images as a `pixel_values` or a `datasets.Image` column, or use `autoassist_assistant='bag_of_tokens'` "
        "for text.",
    ),
    "bag_of_tokens": ("input_ids", "Tokenize the dataset first, or use `autoassist_assistant='pixels'` for images."),
}


def build_assistant(name: str, dataset: Dataset, pool_size: int = 7, token_dim: int = 1) -> Assistant:
    """Reads the features that `name` needs for every instance of `dataset` and builds the Assistant (for
    `"loss_memory"` only its label bias: the caller wraps it in `WithLossMemory`; `"boss_features"` fills its
    features as the Boss trains)."""
    name = resolve_assistant_name(name, dataset)
    if name == "loss_memory":
        return LabelBiasAssistant(len(dataset), class_ids(dataset))
    if name == "boss_features":
        return BossFeatureAssistant(len(dataset), class_ids(dataset))
    if name not in REQUIRED_COLUMNS:
        raise ValueError(
            f"Unknown Assistant {name!r}; choose 'pixels', 'bag_of_tokens', 'boss_features', 'loss_memory' or 'auto'."
        )
    column, fix = REQUIRED_COLUMNS[name]
    columns = column_names(dataset)
    if name == "pixels" and image_column(dataset) is not None:
        pixels = pooled_images(dataset, image_column(dataset), pool_size)
        return PixelAssistant(pixels, class_ids(dataset), pool_size=pool_size)
    if column not in columns:
        raise ValueError(f"The {name!r} Assistant reads a `{column}` column, but the training set has {columns}. {fix}")
    if name == "pixels":
        values = read_column(dataset, "pixel_values")
        pixels = torch.as_tensor(np.stack(values) if isinstance(values, list) else values)
        return PixelAssistant(pixels, class_ids(dataset), pool_size=pool_size)
    if not holds_token_ids(dataset):
        raise ValueError(
            "The 'bag_of_tokens' Assistant reads token ids, but the training set's `input_ids` hold "
            f"{np.asarray(dataset[0]['input_ids']).dtype} values. Use `autoassist_assistant='boss_features'` (or "
            "'auto') for inputs that are not token ids."
        )
    sources = token_lists(dataset, "input_ids")
    targets = token_lists(dataset, "labels") if "labels" in columns and labels_are_sequences(dataset) else None
    return BagOfTokensAssistant(sources, targets, dim=token_dim)


