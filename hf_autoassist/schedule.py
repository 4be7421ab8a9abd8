"""Re-planning the Trainer's step budget and LR schedule when an epoch's length changes.

The Trainer fixes `max_steps` and builds its scheduler from the length of the first epoch. With AutoAssist an
epoch is a pass over the data that keeps only the selected instances, so its length is known only when the
epoch starts. `EpochPlan` plans again at each epoch start: the plan is exact once the last epoch has started, so
the LR schedule and the progress bar end together (the trainer rebuilds both from each new total). Deciding
inside the epoch (`autoassist_rescore_every`), the length is known only when the pass is decided: it plans again
after each decision, from `expected_epoch_batches`, and `follow_decided_epoch` ends the epoch when its decided
batches are trained.
"""

import math
import sys
import warnings

from torch.optim.lr_scheduler import LambdaLR
from transformers.trainer_callback import ProgressCallback

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
    """Puts a freshly built `LambdaLR` at `step`, as if it had been stepped `step` times: one public `step()` from
    `step - 1` sets the groups' learning rates and `get_last_lr()`. Called before the optimizer's first step of
    this process, `step()` warns about the order of calls: here that order is intended."""
    if step == 0:
        return  # built at step 0 already
    scheduler.last_epoch = step - 1
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
        scheduler.step()


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


class EpochPlan:
    """The running epoch's place in the Trainer's plan: where it started, how many optimizer steps it holds, the
    batches trained and expected in it; and the total steps planned again from them each time they change. One per
    training run; its numbers are saved with every checkpoint.

    Args:
        args: the run's training arguments (epochs or `max_steps`, gradient accumulation).
        batches_per_round (`int`): sampler batches per round of optimizer steps (one per process, or one split).
        global_step (`Callable[[], int]`): optimizer steps done so far.
        replan (`Callable[[int], None]`): told the new total of optimizer steps (the trainer rebuilds its LR
            schedule and progress bar from it).
        on_decided (`Callable[[int], None]`): told the epoch whose pass is decided (to record what it kept).
    """

    def __init__(self, args, batches_per_round: int, global_step, replan, on_decided):
        self.args = args
        self.batches_per_round = batches_per_round
        self.global_step = global_step
        self._replan, self.on_decided = replan, on_decided
        self.start_step = 0  # optimizer steps done when the running epoch started
        self.update_steps = 0  # optimizer steps it holds, as planned now
        self.resumed: tuple[int, int] | None = None  # (epoch, its start step) of a run resumed inside it
        self.batches_done = 0  # this process's batches of the running epoch, trained
        self.batches_expected = 0  # and expected (`autoassist_rescore_every`)

    def start(self, epoch: int, sampler, steps_in_epoch: int) -> int:
        """At the epoch's start, its sampler drawn: the plan from its length; returns its optimizer steps (the full
        pass's until decided, when deciding inside the epoch)."""
        accumulation = self.args.gradient_accumulation_steps
        update_steps = max(1, math.ceil(steps_in_epoch / accumulation))
        resumed, self.resumed = self.resumed, None
        global_step = self.global_step()
        self.start_step = resumed[1] if resumed is not None and resumed[0] == epoch else global_step
        self.batches_done = (global_step - self.start_step) * accumulation
        if isinstance(sampler, RescoringBatchSampler):
            self.in_progress(sampler)
        else:
            self.update_steps = update_steps
            self.replan(epoch, update_steps)
            self.on_decided(epoch)
        return update_steps

    def in_progress(self, sampler: RescoringBatchSampler) -> None:
        """After each decision inside an epoch: the epoch's optimizer steps as expected now (the decided part, and
        the rest at the last decision's kept rate; exact once the pass is decided), and the plan from them. The
        plan never ends before the batches already decided are trained."""
        rounds = self.batches_per_round
        accumulation = self.args.gradient_accumulation_steps
        self.batches_expected = math.ceil(expected_epoch_batches(sampler) / rounds)  # this process's
        steps = max(1, math.ceil(self.batches_expected / accumulation))
        if not sampler.finished:
            steps = max(steps, len(sampler.stream) // (sampler.batch_size * rounds * accumulation) + 1)
        self.update_steps = steps
        self.replan(sampler.epoch, steps)
        if sampler.finished:
            self.on_decided(sampler.epoch)

    def replan(self, epoch: int, update_steps_this_epoch: int) -> None:
        """`num_train_epochs` counts passes over the data: plan the total steps again from this epoch's length
        (`max_steps` is honoured exactly: epochs just hold fewer steps)."""
        if self.args.max_steps <= 0:
            self._replan(
                planned_total_steps(self.start_step, epoch, self.args.num_train_epochs, update_steps_this_epoch)
            )

    def state_dict(self) -> dict:
        return {"epoch_start_step": self.start_step, "epoch_update_steps": self.update_steps}


def follow_decided_epoch(run, state, control) -> None:
    """With decisions inside the epoch (`autoassist_rescore_every`) the Trainer measures an epoch against the full
    pass: this sets `state.epoch` from the batches expected instead, and ends the epoch once its decided pass is
    trained (the Trainer's loop would otherwise go on fetching from an exhausted DataLoader). `run` is the running
    training's `SelectionRun` (None when nothing is selected)."""
    sampler = None if run is None else run.sampler
    if not isinstance(sampler, RescoringBatchSampler) or sampler.epoch is None:
        return
    done, expected = run.epoch_plan.batches_done, max(1, run.epoch_plan.batches_expected)
    state.epoch = sampler.epoch + min(1.0, done / expected)
    if sampler.finished and done >= expected:
        control.should_epoch_stop = True


class VaryingEpochsMixin:
    """Trainer hooks for epochs whose length changes from one to the next (placed before `Trainer` in the MRO).

    With `max_steps` the run goes on for as many epochs as it takes, while the state shows the plain Trainer's
    estimate; `_replan(total_steps)` makes the state, the LR schedule and the progress bars follow a new total of
    optimizer steps. A scheduler the user passed in `optimizers=` is never rebuilt.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._user_lr_scheduler = self.lr_scheduler is not None

    def set_initial_training_values(self, args, dataloader):
        values = list(super().set_initial_training_values(args, dataloader))
        self._epochs_estimate = values[0]  # what the plain Trainer would run: the figure saved in the state
        if args.max_steps > 0:  # shrunk epochs are shorter: go on until `max_steps`, however many epochs it takes
            values[0] = sys.maxsize
        return tuple(values)

    def _init_training_state(self, *args, **kwargs):
        trained = super()._init_training_state(*args, **kwargs)
        self.state.num_train_epochs = self._epochs_estimate  # not sys.maxsize: trainer_state.json shows it
        return trained

    def _run_epoch(self, *, epoch, **kwargs):
        if self.args.max_steps > 0:  # as many epochs as it takes: the state counts those begun
            self.state.num_train_epochs = max(self.state.num_train_epochs, epoch + 1)
        return super()._run_epoch(epoch=epoch, **kwargs)

    def _maybe_log_save_evaluate(self, *args, **kwargs):
        # after every optimizer step's callbacks, before logging, saving and the loop's check of `should_epoch_stop`:
        # the place a callback would take, without one in the user's `callback_handler.callbacks`
        follow_decided_epoch(getattr(self, "selection_run", None), self.state, self.control)
        return super()._maybe_log_save_evaluate(*args, **kwargs)

    def _replan(self, total_steps: int) -> None:
        """A new total of optimizer steps: the state, the LR schedule and the progress bar follow it."""
        self.state.max_steps = total_steps
        # rebuilt even when the total did not change: one loaded from a checkpoint lost the plan it was built for
        if isinstance(self.lr_scheduler, LambdaLR) and not self._user_lr_scheduler:
            self.lr_scheduler = None  # `create_scheduler` builds one only where there is none
            self.create_scheduler(num_training_steps=total_steps, optimizer=self.optimizer)
            fast_forward(self.lr_scheduler, self.state.global_step)
            self.callback_handler.lr_scheduler = self.lr_scheduler
        resize_progress_bars(self.callback_handler.callbacks, total_steps)
