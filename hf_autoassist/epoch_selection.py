"""What each pass over the data keeps: whether it selects at all (the warmup, the full-data finish), the strategy's
decision made once on the main process and shared with every rank, and the loss weights of what it kept."""

import math
from collections.abc import Callable

import torch
from accelerate.utils import broadcast

from .selection import selects_in_epoch

# keeps the acceptance draws independent of the shuffling draws that use the same seed
_SELECTION_SEED_OFFSET = 1_000_003
# and, with in-epoch decisions, each block's draws independent of the others'
_BLOCK_SEED_STRIDE = 7_919


class EpochSelection:
    """The sampler's `select_fn` for one training run: `whole_pass` decides a pass at its start, `block` one block
    of it at a time (`autoassist_rescore_every`).

    Args:
        args: the run's `AutoAssistArguments` (warmup, epochs or `max_steps`).
        strategy (`SelectionStrategy`): what decides; asked on the main process only.
        accelerator (`Accelerator`): shares the main process's decision with every rank.
        num_samples (`int`): instances in the training set.
        seed (`int`): the run's data seed.
        global_step (`Callable[[], int]`): optimizer steps done so far (the run's progress under `max_steps`).
        full_data_finish (`float`): share of training at its end that keeps everything.
        pass_size (`Callable[[], int]`, *optional*): candidates in the running pass, asked of the sampler (which
            draws from a pool of the instances the plausibility check did not flag); default `num_samples`.

    It owns `loss_weights`: the weight of every instance in the running pass (the strategy's, for reweighting
    ones), or None to leave the loss untouched.
    """

    def __init__(
        self, args, strategy, accelerator, num_samples: int, seed: int, global_step, full_data_finish: float,
        pass_size: Callable[[], int] | None = None,
    ):  # fmt: skip
        self.args, self.strategy, self.accelerator = args, strategy, accelerator
        self.num_samples = num_samples
        self.pass_size = pass_size or (lambda: num_samples)
        self.seed = seed
        self.global_step = global_step
        self.full_data_finish = full_data_finish
        self.loss_weights: torch.Tensor | None = None

    def _seed(self, epoch: int, offset: int = 0) -> int:
        """Seed of the draws for the epoch's pass from `offset` on, apart from the shuffle's and other blocks'."""
        return self.seed + _SELECTION_SEED_OFFSET * (epoch + 1) + _BLOCK_SEED_STRIDE * offset

    def _progress(self, epochs_done):
        """Share of the run done when `epochs_done` (a number, or a tensor of one per candidate) are done: by
        optimizer steps with `max_steps`, else by epochs."""
        args = self.args
        if args.max_steps <= 0:
            return epochs_done / args.num_train_epochs
        done = self.global_step() / args.max_steps
        return torch.full_like(epochs_done, done) if torch.is_tensor(epochs_done) else done

    def whole_pass(self, epoch: int, candidates: torch.Tensor) -> torch.Tensor:
        """The epoch's keep mask over `candidates`."""
        args, strategy = self.args, self.strategy
        keep = torch.ones(len(candidates), dtype=torch.bool)
        self.loss_weights = None
        selecting = strategy.name != "none" and selects_in_epoch(
            epoch, self._progress(epoch), args.autoassist_warmup_epochs, self.full_data_finish
        )
        if not selecting:
            return keep
        keep, weights = self.decide(candidates, epoch - math.ceil(args.autoassist_warmup_epochs), self._seed(epoch))
        if not keep.any():  # an empty epoch would stop the Trainer
            keep[0] = True
        if strategy.reweights:
            self.loss_weights = torch.ones(self.num_samples)
            self.loss_weights[candidates] = weights
        return keep

    def block(self, epoch: int, candidates: torch.Tensor, offset: int) -> torch.Tensor:
        """The keep mask of one block of the pass, `candidates` being its positions `offset` onwards: the warmup
        and the full-data finish are told apart candidate by candidate, by the training done when each comes."""
        args, strategy = self.args, self.strategy
        if offset == 0:
            self.loss_weights = None
        keep = torch.ones(len(candidates), dtype=torch.bool)
        if strategy.name == "none":
            return keep
        epochs_done = epoch + (offset + torch.arange(len(candidates))) / self.pass_size()
        selecting = selects_in_epoch(
            epochs_done, self._progress(epochs_done), args.autoassist_warmup_epochs, self.full_data_finish
        )
        if not selecting.any():
            return keep
        chosen = candidates[selecting]
        kept, weights = self.decide(
            chosen, epoch - math.floor(args.autoassist_warmup_epochs), self._seed(epoch, offset)
        )
        keep[selecting] = kept
        if strategy.reweights:
            if self.loss_weights is None:
                self.loss_weights = torch.ones(self.num_samples)
            self.loss_weights[chosen] = weights
        return keep

    def train_without_gradient(self, indices: torch.Tensor) -> None:
        """`indices` (the instances a thinned batch was topped up with) are forwarded at weight 0 this pass: they
        give the batch its size and refresh their losses, not the gradient."""
        if self.loss_weights is None:
            self.loss_weights = torch.ones(self.num_samples)
        self.loss_weights[indices] = 0.0

    def decide(self, candidates: torch.Tensor, selecting_epoch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The strategy's keep mask and loss weights over `candidates`, decided on the main process (each rank's
        strategy saw its own shard) and shared with every rank, so that batch counts agree."""
        strategy, accelerator = self.strategy, self.accelerator
        strategy.synchronize(accelerator)
        keep, weights = torch.ones(len(candidates), dtype=torch.bool), torch.ones(len(candidates))
        if accelerator.is_main_process:
            selection = strategy.select(candidates, selecting_epoch, torch.Generator().manual_seed(seed))
            keep = selection.keep.clone()
            if selection.weights is not None:
                weights = selection.weights.float()
        if accelerator.num_processes > 1:
            keep = broadcast(keep.to(torch.uint8).to(accelerator.device), from_process=0).cpu().bool()
            if strategy.reweights:
                weights = broadcast(weights.to(accelerator.device), from_process=0).cpu()
        return keep, weights
