"""Re-planning the Trainer's step budget and LR schedule when an epoch's length changes.

The Trainer fixes `max_steps` and builds its scheduler from the length of the first epoch. With AutoAssist an
epoch is a pass over the data that keeps only the selected instances, so its length is known only when the
epoch starts. These helpers let the trainer plan again at each epoch start: the plan is exact once the last
epoch has started, so the LR schedule and the progress bar end together. Deciding inside the epoch
(`autoassist_rescore_every`), the length is known only when the pass is decided: the trainer plans again after each
decision, from `expected_epoch_batches`.
"""

import math

from torch.optim.lr_scheduler import LambdaLR
from transformers.trainer_callback import ProgressCallback, TrainerCallback

from .sampler import RescoringBatchSampler


def planned_total_steps(global_step: int, epoch: int, num_train_epochs: float, update_steps_this_epoch: int) -> int:
    """Optimizer steps done so far, plus this epoch's, plus the remaining epochs' at this epoch's length.

    `num_train_epochs` may be fractional, as in the Trainer: the last epoch then runs its share of steps.

    Example:
        >>> planned_total_steps(global_step=100, epoch=1, num_train_epochs=3, update_steps_this_epoch=40)
        180
    """
    this_epoch = math.ceil(min(1.0, num_train_epochs - epoch) * update_steps_this_epoch)
    later_epochs = math.ceil(max(0.0, num_train_epochs - epoch - 1) * update_steps_this_epoch)
    return global_step + this_epoch + later_epochs


def fast_forward(scheduler: LambdaLR, step: int) -> None:
    """Puts a freshly built `LambdaLR` at `step`, as if it had been stepped `step` times."""
    scheduler.last_epoch = step
    values = [base_lr * fn(step) for base_lr, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(scheduler.optimizer.param_groups, values):
        group["lr"] = lr
    scheduler._last_lr = values


def resize_progress_bars(callbacks: list, total: int) -> None:
    """The console progress bar was sized from the first plan; give it the new total."""
    for callback in callbacks:
        bar = getattr(callback, "training_bar", None) if isinstance(callback, ProgressCallback) else None
        if bar is not None:
            bar.total = total
            bar.refresh()


def expected_epoch_batches(sampler: RescoringBatchSampler) -> int:
    """The sampler's batches in its epoch: exact once the pass is decided, else the decided ones plus the rest of
    the pass at the last decision's kept rate (at most the full pass's).

    Example:
        >>> import torch
        >>> every_other = lambda epoch, candidates, offset: (offset + torch.arange(len(candidates))) % 2 == 0
        >>> sampler = RescoringBatchSampler(100, batch_size=10, rescore_every=1, select_fn=every_other)
        >>> sampler.set_epoch(0); _ = next(iter(sampler)); sampler.decided, len(sampler.stream)
        (20, 10)
        >>> expected_epoch_batches(sampler)  # 10 decided, and half of the 80 undecided
        5
    """
    if sampler.finished:
        return len(sampler)
    remaining = round(sampler.last_rate * (sampler.num_samples - sampler.decided))
    return sampler.batches_of(min(sampler.full_pass_items, len(sampler.stream) + remaining))


class InEpochProgress(TrainerCallback):
    """With decisions inside the epoch (`autoassist_rescore_every`) the Trainer measures an epoch against the full
    pass: this sets `state.epoch` from the batches expected instead, and ends the epoch once its decided pass is
    trained (the Trainer's loop would otherwise go on fetching from an exhausted DataLoader)."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        trainer = self.trainer
        sampler = trainer.autoassist_sampler
        if not isinstance(sampler, RescoringBatchSampler) or sampler.epoch is None:
            return
        done, expected = trainer._epoch_batches_done, max(1, trainer._epoch_batches_expected)
        state.epoch = sampler.epoch + min(1.0, done / expected)
        if sampler.finished and done >= expected:
            control.should_epoch_stop = True
