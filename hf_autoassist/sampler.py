"""`AssistedBatchSampler`: a seeded shuffled pass, shrunk to the instances that a selection function keeps."""

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Sampler

# (epoch, shuffled indices) -> bool mask of the indices to keep, the same on every rank
SelectFn = Callable[[int, torch.Tensor], torch.Tensor]
# keeps the draws that top thinned batches up independent of the shuffle's, which use the same seed
_TOP_UP_SEED_OFFSET = 2_000_003


def topped_up_size(kept: int, multiple: int, limit: int) -> int:
    """A thinned batch's size once topped up to a multiple of `multiple`, never past `limit` (its slice).

    Example:
        >>> [topped_up_size(kept, 8, 128) for kept in (51, 64, 127)]
        [56, 64, 128]
    """
    return min(limit, math.ceil(kept / multiple) * multiple)


class AssistedBatchSampler(Sampler[list[int]]):
    """Yields batches of the indices of one shuffled pass that `select_fn` keeps.

    The pass is a permutation of `range(num_samples)` (or of `pool`, the instances that may be trained on at all)
    drawn from `(seed, epoch)`, so every process builds the same one. The selection is made once per epoch, in
    `set_epoch` (idempotent, as accelerate calls it several times), so `len()` is exact for the epoch and the Trainer
    can plan its steps from it.

    Knows nothing about models or ranks: accelerate's `BatchSamplerShard` splits its batches across processes.
    With `pad_to_multiple_of=batch_size * num_processes` the kept set is topped up with the next rejected candidates
    of the pass (or, if too few were rejected, trimmed) so that every rank gets the same number of full batches and
    `BatchSamplerShard` never has to repeat an instance to even them out.

    With `keep_steps`, the epoch keeps the full pass's batches and thins each one instead: the pass is cut into
    batches as if everything were kept, and each batch holds the kept instances of its slice (at least one). The
    Trainer then takes as many optimizer steps, on the same LR schedule, as the plain run; only the instances each
    step forwards are fewer. With `batch_multiple`, each thinned batch is topped up to a multiple of it with
    instances of its slice that were not kept, drawn at random (`padding`, which the run trains at weight 0), so that
    batches take a few sizes only: a new batch shape can cost a kernel built anew.

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
        pool: torch.Tensor | None = None,
        keep_steps: bool = False,
        batch_multiple: int = 1,
    ):
        if num_samples <= 0:
            raise ValueError(f"AssistedBatchSampler needs at least one instance, got num_samples={num_samples}.")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
        self.num_samples = num_samples
        self._batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.select_fn = select_fn
        self.pad_to_multiple_of = pad_to_multiple_of
        self.keep_steps = keep_steps
        self.batch_multiple = batch_multiple
        self.set_pool(pool)
        self.epoch: int | None = None
        self.padding = torch.empty(0, dtype=torch.long)  # with `batch_multiple`: the instances topping batches up
        self.candidates = torch.arange(num_samples) if pool is None else pool.clone()
        self._reset()

    @property
    def batch_size(self) -> int | None:
        """The batch size accelerate reads to shard the batches across processes: None with `keep_steps`, where
        batches are thinned, so that `BatchSamplerShard` hands them out round by round whatever their sizes."""
        return None if self.keep_steps else self._batch_size

    def set_pool(self, pool: torch.Tensor | None) -> None:
        """From the next pass on, draw only from `pool` (all instances when None): the others are never candidates."""
        self.pool = pool
        self.pass_size = self.num_samples if pool is None else len(pool)
        if self.pass_size <= 0:
            raise ValueError("The sampler's pool is empty: no instance may be trained on.")

    def _reset(self) -> None:
        """Before the first epoch: every candidate kept."""
        self.kept = self.candidates
        self._batch_sizes: list[int] | None = None  # with `keep_steps`: each thinned batch's size

    def _draw_pass(self, epoch: int) -> torch.Tensor:
        """The epoch's shuffled pass, the same on every process."""
        order = torch.randperm(self.pass_size, generator=torch.Generator().manual_seed(self.seed + epoch))
        return order if self.pool is None else self.pool[order]

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        self.candidates = self._draw_pass(epoch)
        if self.select_fn is None:
            keep = torch.ones(self.pass_size, dtype=torch.bool)
        else:
            keep = self.select_fn(epoch, self.candidates).clone()
        self.padding = torch.empty(0, dtype=torch.long)
        if self.keep_steps:
            self.kept, self._batch_sizes = self._thin(keep, epoch)
        else:
            if self.pad_to_multiple_of:
                keep = self._round_to_multiple(keep, self.pad_to_multiple_of)
            self.kept, self._batch_sizes = self.candidates[keep], None
        self.epoch = epoch

    def _thin(self, keep: torch.Tensor, epoch: int) -> tuple[torch.Tensor, list[int]]:
        """The kept instances and each batch's size when the full pass's batches are thinned to `keep` (a batch
        with nothing kept keeps its first instance: an empty batch would end the epoch), each topped up to a
        multiple of `batch_multiple` (the instances added in `padding`)."""
        full = torch.ones(len(keep), dtype=torch.bool)
        if self.pad_to_multiple_of:
            full = self._round_to_multiple(full, self.pad_to_multiple_of)
        candidates, keep = self.candidates[full], keep[full].clone()
        starts = range(0, self.batches_of(len(candidates)) * self._batch_size, self._batch_size)
        generator = torch.Generator().manual_seed(self.seed + _TOP_UP_SEED_OFFSET * (epoch + 1))
        added = torch.zeros(len(keep), dtype=torch.bool)
        sizes = []
        for start in starts:
            window = keep[start : start + self._batch_size]  # a view: what is set in it is set in `keep`
            if not window.any():
                window[0] = True
            kept = int(window.sum())
            missing = topped_up_size(kept, self.batch_multiple, len(window)) - kept
            if missing:
                left_out = (~window).nonzero().squeeze(1)
                chosen = left_out[torch.randperm(len(left_out), generator=generator)[:missing]]
                window[chosen] = True
                added[start + chosen] = True
            sizes.append(kept + missing)
        limit = len(starts) * self._batch_size
        self.padding = candidates[:limit][added[:limit]]
        return candidates[:limit][keep[:limit]], sizes

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
        state = {"epoch": self.epoch, "candidates": self.candidates.clone(), "kept": self.kept.clone()}
        if self.keep_steps:
            state.update(keep_steps=True, batch_sizes=self._batch_sizes, padding=self.padding.clone())
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores an epoch's pass and selection, so a resumed run does not decide that epoch again."""
        if state.get("finished") is False:
            raise ValueError(
                "The checkpoint was taken while its epoch was decided block by block (`autoassist_rescore_every`), "
                "which is unset now. Resume with the options the checkpoint was made with."
            )
        if self.keep_steps != state.get("keep_steps", False):
            saved, now = ("shrunk", "thinned batch by batch") if self.keep_steps else ("thinned batch by batch", "shrunk")
            raise ValueError(
                f"The checkpoint's epochs were {saved} but this run's are {now} (`autoassist_keep_steps`, and the "
                "strategy's default). Resume with the options the checkpoint was made with."
            )
        self._restore_pass(state)
        self.kept, self._batch_sizes = state["kept"], state.get("batch_sizes")
        self.padding = state.get("padding", torch.empty(0, dtype=torch.long))

    def _restore_pass(self, state: dict) -> None:
        if len(state["candidates"]) != self.pass_size:
            raise ValueError(
                f"The saved selection covers {len(state['candidates'])} instances but this run draws from "
                f"{self.pass_size}. Resume with the training set the checkpoint was made with and its plausibility "
                "options (the check leaves out the instances it flags): a seq2seq checkpoint written without the pairs "
                "check, before 'auto' made it the default, resumes with `autoassist_plausibility='none'`."
            )
        self.epoch, self.candidates = state["epoch"], state["candidates"]

    @property
    def selected(self) -> torch.Tensor:
        """The instances the selection kept this pass: `kept` without those that only top batches up."""
        return self.kept if not len(self.padding) else self.kept[~torch.isin(self.kept, self.padding)]

    @property
    def kept_fraction(self) -> float:
        """The share of the instances the selection kept this pass (not counting those that top batches up)."""
        return (len(self.kept) - len(self.padding)) / self.num_samples

    def __iter__(self) -> Iterator[list[int]]:
        kept = self.kept.tolist()
        if self._batch_sizes is not None:
            start = 0
            for size in self._batch_sizes:
                yield kept[start : start + size]
                start += size
            return
        for start in range(0, len(self) * self._batch_size, self._batch_size):
            yield kept[start : start + self._batch_size]

    def __len__(self) -> int:
        if self._batch_sizes is not None:
            return len(self._batch_sizes)
        if self.keep_steps:  # before the first epoch is decided: the full pass's batches
            return self.batches_of(self.pass_size)
        return self.batches_of(len(self.kept))

    def batches_of(self, items: int) -> int:
        """Batches that `items` kept instances make: only full ones with `drop_last`, else the last may be short."""
        return items // self._batch_size if self.drop_last else math.ceil(items / self._batch_size)


# (epoch, candidates, offset) -> keep mask: `candidates` are the pass's positions `offset` onwards
BlockSelectFn = Callable[[int, torch.Tensor, int], torch.Tensor]


class RescoringBatchSampler(AssistedBatchSampler):
    """An [`AssistedBatchSampler`] that decides its pass block by block while it is iterated, not once per epoch.

    When the batches decided so far run out, the next block of the pass is handed to `select_fn(epoch, candidates,
    offset)`, sized to yield about `rescore_every` more batches at the last block's kept rate: each decision uses
    what the selection learned from the batches trained before it. The epoch's length is therefore known only when
    the whole pass is decided; until then `len()` is the full pass's (an upper bound) and `on_decided(sampler)` is
    called after each decision, so that the trainer can plan its steps again.

    When the pass ends, the kept count is topped up with rejected candidates to a multiple of `round_to` (a whole
    number of accumulated steps on every rank); if too few were rejected, the epoch is the full pass, trimmed to a
    multiple of `pad_to_multiple_of` like an epoch that keeps everything. The items such a trim could remove are
    held back until the pass is decided, so nothing is removed after it was yielded.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        rescore_every: int,
        seed: int = 0,
        select_fn: BlockSelectFn | None = None,
        drop_last: bool = False,
        pad_to_multiple_of: int | None = None,
        round_to: int | None = None,
        on_decided: Callable[["RescoringBatchSampler"], None] | None = None,
        pool: torch.Tensor | None = None,
    ):
        super().__init__(num_samples, batch_size, seed, select_fn, drop_last, pad_to_multiple_of, pool)
        if rescore_every <= 0:
            raise ValueError(f"rescore_every must be a positive number of batches, got {rescore_every}.")
        self.rescore_every = rescore_every
        self.round_to = round_to
        self.on_decided = on_decided
        self.last_rate = 1.0

    def set_pool(self, pool: torch.Tensor | None) -> None:
        super().set_pool(pool)
        # a full pass trims this many items to reach `pad_to_multiple_of`: they wait until the pass is decided
        self.holdback = self.pass_size % self.pad_to_multiple_of if self.pad_to_multiple_of else 0

    def _reset(self) -> None:
        """A new pass: nothing decided yet (`last_rate`, the kept fraction of the last decision, carries over as
        the first estimate of the new pass)."""
        self.stream: list[int] = []  # the kept instances in the order they are yielded
        self.decided = 0  # candidates of the pass decided so far
        self.finished = False

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        self.candidates = self._draw_pass(epoch)
        self.epoch = epoch
        self._reset()

    @property
    def kept(self) -> torch.Tensor:
        return torch.tensor(self.stream, dtype=torch.long)

    @property
    def full_pass_items(self) -> int:
        """Instances in an epoch that keeps everything (after the trim to `pad_to_multiple_of`)."""
        return self.pass_size - self.holdback

    def _decide_next_block(self, items_wanted: int) -> None:
        rate = max(self.last_rate, 0.05)
        size = max(self.rescore_every * self._batch_size, math.ceil(items_wanted / rate))
        offset = self.decided
        block = self.candidates[offset : offset + size]
        if self.select_fn is None:
            keep = torch.ones(len(block), dtype=torch.bool)
        else:
            keep = self.select_fn(self.epoch, block, offset).clone()
        self.stream.extend(block[keep].tolist())
        self.decided += len(block)
        self.last_rate = float(keep.float().mean())
        if self.decided == self.pass_size:
            self._finish()
        if self.on_decided is not None:
            self.on_decided(self)

    def _finish(self) -> None:
        """Rounds the kept count once the pass is decided (see the class docstring)."""
        if self.round_to and len(self.stream) % self.round_to:
            in_stream = torch.zeros(self.num_samples, dtype=torch.bool)
            in_stream[self.stream] = True
            rejected = self.candidates[~in_stream[self.candidates]].tolist()
            missing = -len(self.stream) % self.round_to
            self.stream.extend(rejected[:missing])
        if not self.stream:  # an empty epoch would stop the Trainer
            self.stream = self.candidates[: self.round_to or 1].tolist()
        if len(self.stream) == self.pass_size and self.holdback:
            del self.stream[self.pass_size - self.holdback :]
        self.finished = True

    def _ensure(self, items: int) -> None:
        """Decides blocks until `items` instances (plus the held-back tail) are decided, or the pass is."""
        while not self.finished and len(self.stream) < items + self.holdback:
            self._decide_next_block(items + self.holdback - len(self.stream) + self.rescore_every * self._batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        batch = 0
        while True:
            end = (batch + 1) * self._batch_size
            self._ensure(end)
            if self.finished and batch >= len(self):
                return
            yield self.stream[batch * self._batch_size : end]
            batch += 1

    def __len__(self) -> int:
        return self.batches_of(len(self.stream) if self.finished else self.full_pass_items)

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "candidates": self.candidates.clone(),
            "kept": self.kept,
            "decided": self.decided,
            "last_rate": self.last_rate,
            "finished": self.finished,
        }

    def load_state_dict(self, state: dict) -> None:
        if "decided" not in state:
            raise ValueError(
                "The checkpoint's selection was decided once per epoch, but `autoassist_rescore_every` is set now. "
                "Resume with the options the checkpoint was made with."
            )
        self._restore_pass(state)
        self.stream = state["kept"].tolist()
        self.decided, self.last_rate, self.finished = state["decided"], state["last_rate"], state["finished"]
