"""Carrying each instance's dataset index through the collator to the training step, and the training DataLoader
that does it."""

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset
from transformers.trainer_utils import seed_worker
from transformers.utils import is_datasets_available

from .stream import STREAMED_CHECKS, STREAMED_STRATEGIES

if is_datasets_available():
    import datasets


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


def is_streamed(dataset) -> bool:
    """Whether `dataset` is streamed (no `__len__`, no index to select by)."""
    streamed = (IterableDataset, datasets.IterableDataset) if is_datasets_available() else IterableDataset
    return isinstance(dataset, streamed)


def check_training_set(dataset, for_training: bool, args=None) -> None:
    """Stops early on a training set AutoAssist cannot select from: streamed under a strategy or check that reads
    instances by index (`stream.py` says which can run on a stream), or, when training starts, empty (a trainer built
    for evaluation only may hold an empty one)."""
    if for_training and dataset is None:
        raise ValueError("Trainer: training requires a train_dataset.")
    if is_streamed(dataset):
        strategy = getattr(args, "autoassist_strategy", "autoassist")
        check = getattr(args, "autoassist_plausibility", None)
        if strategy not in STREAMED_STRATEGIES or check not in STREAMED_CHECKS:
            asked = (f"autoassist_strategy={strategy!r}" if strategy not in STREAMED_STRATEGIES
                     else f"autoassist_plausibility={check!r}")  # fmt: skip
            raise ValueError(
                f"`{asked}` reads every instance by index (its last loss, its features), which a streamed training set "
                f"({type(dataset).__name__}) does not have. On a stream AutoAssist runs `autoassist_strategy` in "
                f"{list(STREAMED_STRATEGIES)} with `autoassist_plausibility` 'pairs', 'auto' or 'none'; or load the set "
                "without `streaming=True` (or materialise it with `datasets.Dataset.from_generator`) to select from it."
            )
        return
    if for_training and len(dataset) == 0:
        raise ValueError(
            "The training set is empty: AutoAssist needs at least one instance to select from. Check the split "
            "and any filtering (`max_train_samples`, `.filter`, `.select`) applied before the trainer."
        )


def selection_dataloader(dataset, batch_sampler, collator: Callable, args) -> DataLoader:
    """The training DataLoader over `batch_sampler`'s batches of `dataset`, each batch carrying its indices, with
    the Trainer's worker options (`dataloader_*` of `args`)."""
    params = {
        "batch_sampler": batch_sampler,
        "collate_fn": IndexCollator(collator),
        "num_workers": args.dataloader_num_workers,
        "pin_memory": args.dataloader_pin_memory,
        "persistent_workers": args.dataloader_persistent_workers,
        "worker_init_fn": partial(seed_worker, num_workers=args.dataloader_num_workers, rank=args.process_index),
    }
    if args.dataloader_num_workers > 0:
        params["prefetch_factor"] = args.dataloader_prefetch_factor
        params["multiprocessing_context"] = args.dataloader_multiprocessing_context
    return DataLoader(IndexedDataset(dataset), **params)
