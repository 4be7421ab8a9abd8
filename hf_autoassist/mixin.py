"""`AutoAssistMixin`: the Trainer hooks that let a learned Assistant shrink each epoch.

It overrides narrow hooks only: the training DataLoader (index-carrying dataset, shrinking batch sampler),
`training_step` / `compute_loss` (per-instance losses from the training forward pass), `_run_epoch` (the real
epoch length and a re-planned schedule) and `log`. Placed first, it works with `Trainer` and `Seq2SeqTrainer`.
"""

import math
import os
import sys
from functools import partial

import torch
from accelerate.utils import broadcast
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader, IterableDataset
from transformers.data.data_collator import default_data_collator
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, seed_worker
from transformers.utils import is_datasets_available, logging

from .assistants import Assistant, AssistantWorker, build_assistant
from .config import AutoAssistArguments
from .data import INDEX_KEY, IndexCollator, IndexedDataset
from .losses import per_instance_loss
from .sampler import AssistedBatchSampler
from .schedule import fast_forward, planned_total_steps, resize_progress_bars
from .selection import acceptance_probability, sample_keep_mask

if is_datasets_available():
    import datasets

logger = logging.get_logger(__name__)

# keeps the acceptance draws independent of the shuffling draws that use the same seed
_SELECTION_SEED_OFFSET = 1_000_003
# one file per process in each checkpoint folder, beside trainer_state.json
STATE_NAME = "autoassist_state-{process_index}.pt"


class AutoAssistMixin:
    """Adds AutoAssist (Zhang, Yu & Dhillon, NeurIPS 2019) to a `transformers.Trainer` subclass.

    Extra keyword arguments:
        assistant (`Assistant`, *optional*): a ready Assistant over the training set; by default one is built from
            `args.autoassist_assistant` and the dataset's columns.
        per_instance_loss_fn (`Callable[[outputs, labels], Tensor]`, *optional*): one loss per instance, shape
            `(B,)`, for models whose output has no `logits` to derive it from.
    """

    config_class: type = AutoAssistArguments

    def __init__(self, *args, assistant: Assistant | None = None, per_instance_loss_fn=None, **kwargs):
        if len(args) < 2 and kwargs.get("args") is None:
            kwargs["args"] = self.config_class(output_dir="trainer_output")
        # before the Trainer's own check, which would ask for `max_steps` instead
        self._check_map_style(kwargs.get("train_dataset", args[3] if len(args) > 3 else None))
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, AutoAssistArguments):
            raise TypeError(
                f"{type(self).__name__} needs its `args` to be a {self.config_class.__name__}, got "
                f"{type(self.args).__name__}. Build them with `{self.config_class.__name__}(...)` (it takes every "
                "`TrainingArguments` option plus the `autoassist_*` ones)."
            )
        self.assistant = assistant
        self.per_instance_loss_fn = per_instance_loss_fn
        self.assistant_worker: AssistantWorker | None = None
        self.autoassist_sampler: AssistedBatchSampler | None = None
        self._autoassist_indices: torch.Tensor | None = None
        # where the running epoch started (optimizer steps) and how many it holds: saved with checkpoints
        self._epoch_start_step = 0
        self._epoch_update_steps = 0
        self._resumed_epoch: tuple[int, int] | None = None  # (epoch, its start step) of a resumed mid-epoch run

    @property
    def _autoassist_enabled(self) -> bool:
        return self.args.autoassist_strategy == "autoassist"

    @staticmethod
    def _check_map_style(dataset) -> None:
        if isinstance(dataset, IterableDataset) or (
            is_datasets_available() and isinstance(dataset, datasets.IterableDataset)
        ):
            raise ValueError(
                "AutoAssist selects instances by index, so it needs a map-style training set with `__len__` and "
                f"`__getitem__`, got {type(dataset).__name__}. Load it without `streaming=True` (or materialise it "
                "with `datasets.Dataset.from_generator`), or use the plain `Trainer` for streamed data."
            )

    # ---- data ---------------------------------------------------------------------------------------------------
    def get_train_dataloader(self) -> DataLoader:
        if self.train_dataset is None:
            raise ValueError("Trainer: training requires a train_dataset.")
        self._check_map_style(self.train_dataset)
        dataset, collator = self.train_dataset, self.data_collator or default_data_collator
        if is_datasets_available() and isinstance(dataset, datasets.Dataset):
            dataset = self._remove_unused_columns(dataset, description="training")
        else:
            collator = self._get_collator_with_removed_columns(collator, description="training")

        if self._autoassist_enabled and self.assistant_worker is None:
            self._start_assistant(dataset)
        if self.args.train_sampling_strategy != "random":
            logger.warning(
                f"`train_sampling_strategy={self.args.train_sampling_strategy!r}` is ignored: AutoAssist draws each "
                "epoch from its own seeded shuffle of the instances it keeps. Use the plain `Trainer` for "
                "length-grouped batches."
            )

        num_processes = self.accelerator.num_processes
        split_batches = getattr(self.accelerator, "split_batches", False)
        self.autoassist_sampler = AssistedBatchSampler(
            len(dataset),
            batch_size=self._train_batch_size,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            select_fn=self._select_instances,
            drop_last=self.args.dataloader_drop_last,
            # every rank gets the same number of full batches, so accelerate never repeats instances to even them
            pad_to_multiple_of=self._train_batch_size * (1 if split_batches else num_processes)
            if num_processes > 1
            else None,
        )
        params = {
            "batch_sampler": self.autoassist_sampler,
            "collate_fn": IndexCollator(collator),
            "num_workers": self.args.dataloader_num_workers,
            "pin_memory": self.args.dataloader_pin_memory,
            "persistent_workers": self.args.dataloader_persistent_workers,
            "worker_init_fn": partial(
                seed_worker, num_workers=self.args.dataloader_num_workers, rank=self.args.process_index
            ),
        }
        if self.args.dataloader_num_workers > 0:
            params["prefetch_factor"] = self.args.dataloader_prefetch_factor
            params["multiprocessing_context"] = self.args.dataloader_multiprocessing_context
        return self.accelerator.prepare(DataLoader(IndexedDataset(dataset), **params))

    def _start_assistant(self, dataset) -> None:
        assistant = self.assistant
        if assistant is None:
            assistant = build_assistant(
                self.args.autoassist_assistant,
                dataset,
                pool_size=self.args.autoassist_pool_size,
                token_dim=self.args.autoassist_assistant_dim,
            )
        if assistant.num_instances != len(dataset):
            raise ValueError(
                f"The Assistant was built for {assistant.num_instances} instances but the training set has "
                f"{len(dataset)}. Build it from the same `train_dataset` you pass to the trainer."
            )
        self.assistant = assistant
        self.assistant_worker = AssistantWorker(
            assistant,
            lr=self.args.autoassist_assistant_lr,
            queue_size=self.args.autoassist_queue_size,
            loss_momentum=self.args.autoassist_loss_momentum,
            synchronous=self.args.autoassist_synchronous,
        )

    def _select_instances(self, epoch: int, candidates: torch.Tensor) -> torch.Tensor:
        """The epoch's keep mask over `candidates`; decided on the main process and shared with every rank."""
        keep = torch.ones(len(candidates), dtype=torch.bool)
        selecting = self._autoassist_enabled and epoch >= self.args.autoassist_warmup_epochs
        if selecting and self.accelerator.is_main_process:
            worker = self.assistant_worker
            probs = acceptance_probability(worker.score(candidates), worker.confidence, self.args.autoassist_base_prob)
            generator = torch.Generator().manual_seed(self.autoassist_sampler.seed + _SELECTION_SEED_OFFSET * (epoch + 1))
            keep = sample_keep_mask(probs, generator)
            if not keep.any():  # an empty epoch would stop the Trainer
                keep[0] = True
        if selecting and self.accelerator.num_processes > 1:
            # each rank's Assistant learned from its own shard: rank 0 decides for all, so batch counts agree
            keep = broadcast(keep.to(torch.uint8).to(self.accelerator.device), from_process=0).cpu().bool()
        return keep

    # ---- steps and schedule -------------------------------------------------------------------------------------
    def set_initial_training_values(self, args, dataloader):
        values = list(super().set_initial_training_values(args, dataloader))
        if args.max_steps > 0:
            # shrunk epochs are shorter: keep going until `max_steps` optimizer steps, however many epochs it takes
            values[0] = sys.maxsize
        return tuple(values)

    def _run_epoch(self, *, model, epoch, train_dataloader, steps_in_epoch, num_update_steps_per_epoch, **kwargs):
        self.autoassist_sampler.set_epoch(epoch)  # the selection is made here, so the epoch's length is known
        steps_in_epoch = len(train_dataloader)
        num_update_steps_per_epoch = max(1, math.ceil(steps_in_epoch / self.args.gradient_accumulation_steps))
        if self._resumed_epoch is not None and self._resumed_epoch[0] == epoch:
            self._epoch_start_step = self._resumed_epoch[1]
        else:
            self._epoch_start_step = self.state.global_step
        self._resumed_epoch = None
        self._epoch_update_steps = num_update_steps_per_epoch
        self._replan(epoch, num_update_steps_per_epoch)
        return super()._run_epoch(
            model=model,
            epoch=epoch,
            train_dataloader=train_dataloader,
            steps_in_epoch=steps_in_epoch,
            num_update_steps_per_epoch=num_update_steps_per_epoch,
            **kwargs,
        )

    def _replan(self, epoch: int, update_steps_this_epoch: int) -> None:
        """`num_train_epochs` counts passes over the data: plan the total steps again from this epoch's length."""
        if self.args.max_steps > 0:
            return  # `max_steps` is honoured exactly; epochs just hold fewer steps
        planned = planned_total_steps(
            self._epoch_start_step, epoch, self.args.num_train_epochs, update_steps_this_epoch
        )
        self.state.max_steps = planned
        # rebuilt even when the total did not change: a scheduler loaded from a checkpoint keeps the state but not
        # the plan it was built for (LambdaLR does not save its functions)
        if isinstance(self.lr_scheduler, LambdaLR) and self._created_lr_scheduler:
            self.lr_scheduler = None
            self.create_scheduler(num_training_steps=planned, optimizer=self.optimizer)
            fast_forward(self.lr_scheduler, self.state.global_step)
            self.callback_handler.lr_scheduler = self.lr_scheduler
        resize_progress_bars(self.callback_handler.callbacks, planned)

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        if self.autoassist_sampler is None:
            return
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        state = {
            "sampler": self.autoassist_sampler.state_dict(),
            "worker": self.assistant_worker.state_dict() if self.assistant_worker is not None else None,
            "epoch_start_step": self._epoch_start_step,
            "epoch_update_steps": self._epoch_update_steps,
        }
        os.makedirs(folder, exist_ok=True)
        torch.save(state, os.path.join(folder, STATE_NAME.format(process_index=self.args.process_index)))

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial):
        """On resume, epochs have varying lengths: find the epoch and the batch to resume from in the saved state."""
        epochs_trained, steps_trained = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        if resume_from_checkpoint is None or self.autoassist_sampler is None:
            return epochs_trained, steps_trained
        path = os.path.join(resume_from_checkpoint, STATE_NAME.format(process_index=self.args.process_index))
        if not os.path.isfile(path):
            logger.warning(
                f"{resume_from_checkpoint} has no AutoAssist state ({os.path.basename(path)}): it was not written by "
                f"{type(self).__name__}. Training resumes with a fresh Assistant, and the epoch to resume from is "
                "counted as if every epoch kept every instance."
            )
            return epochs_trained, steps_trained
        state = torch.load(path, weights_only=False)
        if self.assistant_worker is not None and state["worker"] is not None:
            self.assistant_worker.load_state_dict(state["worker"])
        self.autoassist_sampler.load_state_dict(state["sampler"])
        epoch = state["sampler"]["epoch"]
        steps_done = self.state.global_step - state["epoch_start_step"]
        if epoch is None or steps_done >= state["epoch_update_steps"]:
            return (0 if epoch is None else epoch + 1), 0  # saved at an epoch end: the next epoch starts afresh
        self._resumed_epoch = (epoch, state["epoch_start_step"])
        skip = 0 if self.args.ignore_data_skip else steps_done * self.args.gradient_accumulation_steps
        return epoch, skip

    # ---- per-instance losses ------------------------------------------------------------------------------------
    def training_step(self, model, inputs, *args, **kwargs):
        self._autoassist_indices = inputs.pop(INDEX_KEY, None)
        return super().training_step(model, inputs, *args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        indices, self._autoassist_indices = self._autoassist_indices, None
        if indices is None or self.assistant_worker is None or not model.training:
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        labels = inputs.get("labels")  # kept aside: a label smoother or `compute_loss_func` pops it
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        self.assistant_worker.submit(indices, self._per_instance_losses(model, outputs, labels))
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _per_instance_losses(self, model, outputs, labels) -> torch.Tensor:
        if self.per_instance_loss_fn is not None:
            return self.per_instance_loss_fn(outputs, labels)
        logits = outputs.get("logits") if isinstance(outputs, dict) else None
        if logits is None or labels is None:
            keys = list(outputs.keys()) if isinstance(outputs, dict) else type(outputs).__name__
            raise ValueError(
                "AutoAssist learns from one Boss loss per instance, computed from the model's `logits` and the "
                f"batch's `labels`, but the model returned {keys} and the batch "
                f"{'has' if labels is not None else 'has no'} `labels`. Pass `per_instance_loss_fn=` "
                "(outputs, labels -> (batch,) losses) to the trainer, or set `autoassist_strategy='none'`."
            )
        name = self.accelerator.unwrap_model(model)._get_name()
        return per_instance_loss(
            logits,
            labels,
            label_smoothing=self.args.label_smoothing_factor,
            shift_labels=name in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values(),
        )

    # ---- logging ------------------------------------------------------------------------------------------------
    def autoassist_metrics(self) -> dict[str, float]:
        metrics = {}
        if self.autoassist_sampler is not None:
            metrics["autoassist/kept_fraction"] = round(self.autoassist_sampler.kept_fraction, 4)
        if self.assistant_worker is not None:
            metrics.update(self.assistant_worker.metrics())
        return metrics

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs or "train_runtime" in logs:
            logs = {**logs, **self.autoassist_metrics()}
        super().log(logs, *args, **kwargs)
