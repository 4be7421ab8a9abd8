"""The AutoAssist state of a checkpoint: one file per process beside `trainer_state.json`, written with it and read
back on resume. What it holds (`SelectionRun.state_dict`: the epoch's pass and selection, where the epoch started,
the strategy's learned state) is what the plain Trainer's state cannot say: how long each shrunk epoch was."""

import os

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
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
    # the training set's size (a pass drawn from the instances not flagged is smaller); older states: the pass
    saved_size = state.get("num_samples", len(state["sampler"]["candidates"]))
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


def saved_stream_state(trainer) -> dict | None:
    """The streamed selection's state saved in the checkpoint `trainer` resumes from, if any (`SelectedStream`)."""
    if trainer._resume_from is None:
        return None
    return read_state(trainer._resume_from, trainer.args.process_index)


class ResumableSelectionMixin:
    """Trainer hooks that save the selection's state with each checkpoint and resume from it (placed before `Trainer`
    in the MRO). The trainer holds the running `selection_run` (None when nothing is selected)."""

    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        state = None
        if self.selection_run is not None:
            state = self.selection_run.state_dict()
        elif self.stream_selection is not None:
            state = self.stream_selection.state_dict()
        if state is not None:
            folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            save_state(folder, self.args.process_index, state)

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial):
        """On resume, epochs have varying lengths: the epoch and the batch to resume from are in the saved state."""
        epochs_trained, steps_trained = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        if resume_from_checkpoint is None or self.selection_run is None:
            return epochs_trained, steps_trained
        resumed = self.selection_run.resume(resume_from_checkpoint, self.state.global_step, type(self).__name__)
        return resumed or (epochs_trained, steps_trained)
