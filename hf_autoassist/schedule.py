"""Re-planning the Trainer's step budget and LR schedule when an epoch's length changes.

The Trainer fixes `max_steps` and builds its scheduler from the length of the first epoch. With AutoAssist an
epoch is a pass over the data that keeps only the selected instances, so its length is known only when the
epoch starts. These helpers let the trainer plan again at each epoch start: the plan is exact once the last
epoch has started, so the LR schedule and the progress bar end together.
"""

import math

from torch.optim.lr_scheduler import LambdaLR
from transformers.trainer_callback import ProgressCallback


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
