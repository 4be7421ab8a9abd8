"""`AssistedBatchSampler`: a seeded shuffled pass, shrunk to the instances that a selection function keeps."""

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

# (epoch, shuffled indices) -> bool mask of the indices to keep, the same on every rank
SelectFn = Callable[[int, torch.Tensor], torch.Tensor]


class AssistedBatchSampler(Sampler[list[int]]):
    """Yields batches of the indices of one shuffled pass that `select_fn` keeps.

    The pass is a permutation of `range(num_samples)` drawn from `(seed, epoch)`, so every process builds the same
    one. The selection is made once per epoch, in `set_epoch` (idempotent, as accelerate calls it several times), so
    `len()` is exact for the epoch and the Trainer can plan its steps from it.

    Knows nothing about models or ranks: accelerate's `BatchSamplerShard` splits its batches across processes.
    With `pad_to_multiple_of=batch_size * num_processes` the kept set is topped up with the next rejected candidates
    of the pass (or, if too few were rejected, trimmed) so that every rank gets the same number of full batches and
    `BatchSamplerShard` never has to repeat an instance to even them out.

    Example:
        >>> sampler = AssistedBatchSampler(6, batch_size=2, seed=0, select_fn=lambda epoch, idx: idx % 2 == 0)
        >>> sampler.set_epoch(0); len(sampler), sorted(i for b in sampler for i in b)
        (2, [0, 2, 4])
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int = 0,
        select_fn: SelectFn | None = None,
        drop_last: bool = False,
        pad_to_multiple_of: int | None = None,
    ):
        if num_samples <= 0:
            raise ValueError(f"AssistedBatchSampler needs at least one instance, got num_samples={num_samples}.")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.select_fn = select_fn
        self.pad_to_multiple_of = pad_to_multiple_of
        self.epoch: int | None = None
        self.candidates = torch.arange(num_samples)
        self.kept = self.candidates

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        generator = torch.Generator().manual_seed(self.seed + epoch)
        self.candidates = torch.randperm(self.num_samples, generator=generator)
        if self.select_fn is None:
            keep = torch.ones(self.num_samples, dtype=torch.bool)
        else:
            keep = self.select_fn(epoch, self.candidates).clone()
        if self.pad_to_multiple_of:
            keep = self._round_to_multiple(keep, self.pad_to_multiple_of)
        self.kept = self.candidates[keep]
        self.epoch = epoch

    @staticmethod
    def _round_to_multiple(keep: torch.Tensor, multiple: int) -> torch.Tensor:
        """Turns on the first rejected positions until the count is a multiple, else turns off the last kept."""
        kept, rejected = keep.nonzero().squeeze(1), (~keep).nonzero().squeeze(1)
        missing, extra = -len(kept) % multiple, len(kept) % multiple
        if missing <= len(rejected):
            keep[rejected[:missing]] = True
        elif extra < len(kept):  # a pass smaller than one round of batches is left as it is
            keep[kept[len(kept) - extra :]] = False
        return keep

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "candidates": self.candidates.clone(), "kept": self.kept.clone()}

    def load_state_dict(self, state: dict) -> None:
        """Restores an epoch's pass and selection, so a resumed run does not decide that epoch again."""
        if len(state["candidates"]) != self.num_samples:
            raise ValueError(
                f"The saved selection covers {len(state['candidates'])} instances but the training set has "
                f"{self.num_samples}. Resume with the training set the checkpoint was made with."
            )
        self.epoch, self.candidates, self.kept = state["epoch"], state["candidates"], state["kept"]

    @property
    def kept_fraction(self) -> float:
        return len(self.kept) / self.num_samples

    def __iter__(self) -> Iterator[list[int]]:
        kept = self.kept.tolist()
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield kept[start : start + self.batch_size]

    def __len__(self) -> int:
        if self.drop_last:
            # only full batches
            return len(self.kept) // self.batch_size
        # the last batch may be short
        return math.ceil(len(self.kept) / self.batch_size)
