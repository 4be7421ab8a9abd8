"""The AutoAssist state of a checkpoint: one file per process beside `trainer_state.json`, written with it and read
back on resume. What it holds (the epoch's pass and selection, where the epoch started, the strategy's learned state)
is what the plain Trainer's state cannot say: how long each shrunk epoch was."""

import os
from dataclasses import asdict

import torch
from transformers.utils import logging

logger = logging.get_logger(__name__)

# one file per process in each checkpoint folder, beside trainer_state.json
STATE_NAME = "autoassist_state-{process_index}.pt"


def state_path(folder: str, process_index: int) -> str:
    return os.path.join(folder, STATE_NAME.format(process_index=process_index))


def save_state(folder: str, process_index: int, state: dict) -> None:
    os.makedirs(folder, exist_ok=True)
    torch.save(state, state_path(folder, process_index))


def read_state(checkpoint: str, process_index: int) -> dict | None:
    """The saved state as it is, or None when the checkpoint has none."""
    path = state_path(checkpoint, process_index)
    return torch.load(path, weights_only=False) if os.path.isfile(path) else None


def load_state(checkpoint: str, process_index: int, num_samples: int, strategy: str, trainer_name: str) -> dict | None:
    """The saved state, or None (with a warning that says what is lost) when the checkpoint has none or was saved
    with a training set of another size: training then resumes as the plain Trainer would."""
    state = read_state(checkpoint, process_index)
    if state is None:
        path = state_path(checkpoint, process_index)
        logger.warning(
            f"{checkpoint} has no AutoAssist state ({os.path.basename(path)}): it was not written by {trainer_name}. "
            "Training resumes with a fresh Assistant, and the epoch to resume from is counted as if every epoch kept "
            "every instance."
        )
        return None
    saved_size = len(state["sampler"]["candidates"])
    if saved_size != num_samples:
        lost = (
            "nothing of the selection is lost (every instance is kept)"
            if strategy == "none"
            else f"its {strategy!r} state (the epoch's selection, the learned scores or losses per instance) cannot "
            "be mapped onto the new instances and is dropped: selection starts afresh, as after a warmup"
        )
        logger.warning(
            f"{checkpoint} was saved with a training set of {saved_size} instances, but this one has {num_samples}. "
            "Training resumes as the plain Trainer would (the epoch to resume from is counted as if every epoch kept "
            f"every instance), and {lost}. Resume with the original training set to continue exactly."
        )
        return None
    return state


def selection_state(trainer) -> dict:
    """What an AutoAssist trainer's checkpoint holds beside the Trainer's own state."""
    irreducible = trainer.irreducible
    return {
        "sampler": trainer.autoassist_sampler.state_dict(),
        "strategy": trainer.strategy.state_dict(),
        "loss_weights": trainer.epoch_selection.loss_weights,
        "instances_backpropagated": trainer.instances_backpropagated,
        "history": trainer.autoassist_history,
        **trainer.epoch_plan.state_dict(),
        "irreducible": None if irreducible is None else {**asdict(irreducible), "source": "computed"},
    }


def restore_selection(trainer, checkpoint: str) -> tuple[int, int] | None:
    """Puts the trainer's selection back as `checkpoint` saved it; returns the epoch to resume and the batches of it
    already trained, or None when the checkpoint holds no usable state (the Trainer's own count then stands)."""
    args, sampler = trainer.args, trainer.autoassist_sampler
    state = load_state(
        checkpoint, args.process_index, sampler.num_samples, args.autoassist_strategy, type(trainer).__name__
    )
    if state is None:
        return None
    trainer.strategy.load_state_dict(state.get("strategy", {"worker": state.get("worker")}))
    sampler.load_state_dict(state["sampler"])
    trainer.epoch_selection.loss_weights = state.get("loss_weights")
    trainer.instances_backpropagated = state.get("instances_backpropagated", 0)
    trainer.autoassist_report.history = list(state.get("history", []))
    epoch = state["sampler"]["epoch"]
    steps_done = trainer.state.global_step - state["epoch_start_step"]
    if epoch is None or steps_done >= state["epoch_update_steps"]:
        return (0 if epoch is None else epoch + 1), 0  # saved at an epoch end: the next epoch starts afresh
    trainer.epoch_plan.resumed = (epoch, state["epoch_start_step"])
    return epoch, 0 if args.ignore_data_skip else steps_done * args.gradient_accumulation_steps
