"""Carrying each instance's dataset index through the collator to the training step."""

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.utils.data import Dataset

INDEX_KEY = "autoassist_index"


class IndexedDataset(Dataset):
    """`dataset[i]` plus `{INDEX_KEY: i}`, so the per-instance losses of a batch can be traced back to instances."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self._with_index(self.dataset[index], index)

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        # a `datasets.Dataset` reads a whole batch from Arrow at once, much faster than item by item
        getitems = getattr(self.dataset, "__getitems__", None)
        items = getitems(indices) if getitems is not None else [self.dataset[i] for i in indices]
        return [self._with_index(item, index) for item, index in zip(items, indices)]

    @staticmethod
    def _with_index(item: Any, index: int) -> dict[str, Any]:
        # any mapping: a dict, or a tokenizer's `BatchEncoding` returned from `__getitem__`
        if not isinstance(item, Mapping):
            raise TypeError(
                f"AutoAssist needs dataset items that are dicts of model inputs, got {type(item).__name__} at index "
                f"{index}. Return e.g. {{'pixel_values': ..., 'labels': ...}} from `__getitem__`."
            )
        return {**item, INDEX_KEY: index}


class IndexCollator:
    """Takes the index out of each feature, runs the wrapped collator, and puts the indices back as one tensor.

    The wrapped collator never sees the index (a padding collator would try to pad it).
    """

    def __init__(self, collator: Callable):
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        indices = [feature[INDEX_KEY] for feature in features]
        batch = self.collator([{k: v for k, v in feature.items() if k != INDEX_KEY} for feature in features])
        batch[INDEX_KEY] = torch.tensor(indices, dtype=torch.long)
        return batch
