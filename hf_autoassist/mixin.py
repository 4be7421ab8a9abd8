"""`AutoAssistMixin`: the Trainer hooks that let a learned Assistant shrink each epoch.

It overrides narrow hooks only: the training DataLoader (index-carrying dataset, shrinking batch sampler),
`training_step` / `compute_loss` (per-instance losses from the training forward pass), `_run_epoch` (the real
epoch length and a re-planned schedule) and `log`. Placed first, it works with `Trainer` and `Seq2SeqTrainer`.
"""

import os
import sys
from functools import partial

import torch
from torch.utils.data import DataLoader, IterableDataset
from transformers.data.data_collator import default_data_collator
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, seed_worker
from transformers.utils import is_datasets_available, logging

from .assistants import Assistant, AssistantWorker
from .assistants.factory import columns_read_once
from .checkpoint import restore_selection, save_state, selection_state
from .config import AutoAssistArguments
from .data import INDEX_KEY, IndexCollator, IndexedDataset
from .diagnostics import SelectionReport
from .epoch_selection import EpochSelection
from .irreducible import IrreducibleLosses, irreducible_losses_for
from .losses import per_instance_loss_terms, reweighted_loss
from .sampler import AssistedBatchSampler, RescoringBatchSampler
from .schedule import EpochPlan, InEpochProgress
from .single_pass import SinglePassLoss
from .strategies import AutoAssistSelection, SelectionStrategy, build_strategy

if is_datasets_available():
    import datasets

logger = logging.get_logger(__name__)


class AutoAssistMixin:
    """Adds AutoAssist (Zhang, Yu & Dhillon, NeurIPS 2019) to a `transformers.Trainer` subclass.

    Extra keyword arguments:
        assistant (`Assistant`, *optional*): a ready Assistant over the training set; by default one is built from
            `args.autoassist_assistant` and the dataset's columns.
        per_instance_loss_fn (`Callable[[outputs, labels], Tensor]`, *optional*): one loss per instance, shape
            `(B,)`, for models whose output has no `logits` to derive it from.
        irreducible_model_init (`Callable[[], PreTrainedModel]`, *optional*): builds each irreducible-loss model
            (`autoassist_label="reducible"` or `"learnable"`), e.g. a smaller one; by default a copy of the Boss
            before training.
    """

    config_class: type = AutoAssistArguments
    # whether the loss may be rebuilt from the per-instance terms once checked (`single_pass.py`); a trainer whose
    # loss already comes with them from one computation (TRL's SFT) says no
    single_pass_loss: bool = True

    def __init__(
        self, *args, assistant: Assistant | None = None, per_instance_loss_fn=None, irreducible_model_init=None, **kwargs
    ):
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
        self._user_assistant = assistant  # reused by every `train()`; one built here is built afresh each time
        self.per_instance_loss_fn = per_instance_loss_fn
        self._single_pass = SinglePassLoss(self)
        self._causal_lm: tuple | None = None  # (model, whether it is a causal LM), see `_is_causal_lm`
        self.irreducible_model_init = irreducible_model_init
        # each instance's irreducible loss and how it was obtained (`args.needs_irreducible_losses`)
        self.irreducible: IrreducibleLosses | None = None
        self._resume_from: str | None = None
        self.strategy: SelectionStrategy | None = None
        self.autoassist_sampler: AssistedBatchSampler | None = None
        self._autoassist_indices: torch.Tensor | None = None
        # what each pass keeps, and the loss weights of the running one (one per `train()`)
        self.epoch_selection: EpochSelection | None = None
        self.instances_backpropagated = 0  # by this process
        # per epoch: what it kept, per group, and the Assistant then (`autoassist_history`)
        self.autoassist_report = SelectionReport()
        # the running epoch's place in the plan, and the plan made again when it changes
        self.epoch_plan = EpochPlan(self)
        self.add_callback(InEpochProgress(self))

    @property
    def assistant_worker(self) -> AssistantWorker | None:
        """The background worker that trains the Assistant (strategy `"autoassist"` only)."""
        return self.strategy.worker if isinstance(self.strategy, AutoAssistSelection) else None

    @property
    def autoassist_history(self) -> list[dict]:
        """Per epoch: the kept fraction, overall and per group, and the Assistant when it decided (in memory, also
        when the report is not written to `output_dir`)."""
        return self.autoassist_report.history

    @property
    def kept_fractions(self) -> dict[int, float]:
        """Epoch -> fraction of the training set it kept (read from `autoassist_history`)."""
        return {record["epoch"]: record["kept_fraction"] for record in self.autoassist_history}

    @property
    def full_data_finish(self) -> float:
        if self.args.autoassist_full_data_finish is not None:
            return self.args.autoassist_full_data_finish
        return self.strategy.default_full_data_finish

    def _close_strategy(self) -> None:
        """Stops the Assistant's thread (it finishes its queue first); its numbers stay readable."""
        if self.strategy is not None:
            self.strategy.close()

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        # known before the training DataLoader is built: what a checkpoint holds need not be computed again
        self._resume_from = resume_from_checkpoint or None
        if resume_from_checkpoint is True:
            self._resume_from = get_last_checkpoint(self.args.output_dir)
        try:
            result = super().train(resume_from_checkpoint, *args, **kwargs)
        finally:
            self._close_strategy()  # also when training fails: no thread outlives its run
        if self._writes_report() and self.is_world_process_zero():
            self.autoassist_report.write(self.args.output_dir)
        return result

    def _writes_report(self) -> bool:
        """`autoassist_write_report`, or by default: whenever the Trainer saves checkpoints."""
        if self.args.autoassist_write_report is not None:
            return self.args.autoassist_write_report
        return self.args.save_strategy != "no"

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
        if len(self.train_dataset) == 0:
            raise ValueError(
                "The training set is empty: AutoAssist needs at least one instance to select from. Check the split "
                "and any filtering (`max_train_samples`, `.filter`, `.select`) applied before the trainer."
            )
        dataset, collator = self.train_dataset, self.data_collator or default_data_collator
        if is_datasets_available() and isinstance(dataset, datasets.Dataset):
            dataset = self._remove_unused_columns(dataset, description="training")
        else:
            collator = self._get_collator_with_removed_columns(collator, description="training")

        # each training run (a second `train()`, each `hyperparameter_search` trial) starts from a fresh strategy
        self._close_strategy()
        self.strategy = build_strategy(self.args)
        self._single_pass.reset()
        self.irreducible = None
        if self.args.needs_irreducible_losses:
            self.irreducible = irreducible_losses_for(self, dataset, collator, resume_from=self._resume_from)
        with columns_read_once():  # the Assistant and the report read the same label / token columns
            self.strategy.prepare(dataset, assistant=self._user_assistant, irreducible=self.irreducible)
            self.autoassist_report.start(dataset)
        if isinstance(self.strategy, AutoAssistSelection):
            self.assistant = self.strategy.assistant
        self.instances_backpropagated = 0
        if self.args.train_sampling_strategy != "random":
            logger.warning(
                f"`train_sampling_strategy={self.args.train_sampling_strategy!r}` is ignored: AutoAssist draws each "
                "epoch from its own seeded shuffle of the instances it keeps. Use the plain `Trainer` for "
                "length-grouped batches."
            )

        self.autoassist_sampler = self._build_sampler(len(dataset))
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

    def _build_sampler(self, num_samples: int) -> AssistedBatchSampler:
        """Decides each epoch at its start, or block by block with `autoassist_rescore_every`."""
        num_processes = self.accelerator.num_processes
        per_round = self._train_batch_size * self._batches_per_round  # instances in one round of batches
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        self.epoch_selection = EpochSelection(self, num_samples, seed)
        common = dict(
            batch_size=self._train_batch_size,
            seed=seed,
            drop_last=self.args.dataloader_drop_last,
            # every rank gets the same number of full batches, so accelerate never repeats instances to even them
            pad_to_multiple_of=per_round if num_processes > 1 else None,
        )
        if self.args.autoassist_rescore_every is None:
            return AssistedBatchSampler(num_samples, select_fn=self.epoch_selection.whole_pass, **common)
        accumulation = self.args.gradient_accumulation_steps
        return RescoringBatchSampler(
            num_samples,
            rescore_every=self.args.autoassist_rescore_every * self._batches_per_round,
            select_fn=self.epoch_selection.block,
            # a shrunk epoch ends on a whole accumulated step: the Trainer steps at a pass's end only at the full one
            round_to=per_round * accumulation if num_processes > 1 or accumulation > 1 else None,
            on_decided=self.epoch_plan.in_progress,
            **common,
        )

    @property
    def _batches_per_round(self) -> int:
        """Sampler batches per round: one per process, or one split across them (`split_batches`)."""
        return 1 if getattr(self.accelerator, "split_batches", False) else self.accelerator.num_processes

    # ---- steps and schedule -------------------------------------------------------------------------------------
    def set_initial_training_values(self, args, dataloader):
        values = list(super().set_initial_training_values(args, dataloader))
        self._epochs_estimate = values[0]  # what the plain Trainer would run: the figure saved in the state
        if args.max_steps > 0:
            # shrunk epochs are shorter: keep going until `max_steps` optimizer steps, however many epochs it takes
            values[0] = sys.maxsize
        return tuple(values)

    def _run_epoch(self, *, model, epoch, train_dataloader, steps_in_epoch, num_update_steps_per_epoch, **kwargs):
        sampler = self.autoassist_sampler
        # the selection is made here, so the epoch's length is known; deciding in the epoch, the pass is drawn here
        # and the length is the full pass's (an upper bound) until the pass is decided
        sampler.set_epoch(epoch)
        steps_in_epoch = len(train_dataloader)
        num_update_steps_per_epoch = self.epoch_plan.start(epoch, sampler, steps_in_epoch)
        if self.args.max_steps > 0:  # as many epochs as it takes: the state counts those begun
            self.state.num_train_epochs = max(self.state.num_train_epochs, epoch + 1)
        return super()._run_epoch(
            model=model,
            epoch=epoch,
            train_dataloader=train_dataloader,
            steps_in_epoch=steps_in_epoch,
            num_update_steps_per_epoch=num_update_steps_per_epoch,
            **kwargs,
        )

    def _record_epoch(self, epoch: int) -> None:
        worker = self.assistant_worker
        assistant = None
        if worker is not None:
            assistant = dict(
                assistant_accuracy=round(worker.accuracy, 4),
                assistant_skill=round(worker.skill, 4),
                positive_rate=round(worker.positive_rate, 4),
            )
        sampler = self.autoassist_sampler
        self.autoassist_report.record(epoch, sampler.kept, sampler.kept_fraction, assistant)
        self._report_groups()

    def _report_groups(self) -> None:
        """The largest groups' kept fractions go to the reporting integrations (TensorBoard, W&B, ...) once per
        epoch, not into the console's log lines: the Trainer has no other way to log to integrations only."""
        metrics = self.autoassist_report.group_metrics()
        integrations = [
            callback
            for callback in self.callback_handler.callbacks
            if type(callback).__module__.startswith("transformers.integrations")
        ]
        if metrics and integrations and self.is_world_process_zero():
            for callback in integrations:
                callback.on_log(self.args, self.state, self.control, logs=dict(metrics))

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def _save_checkpoint(self, model, trial) -> None:
        super()._save_checkpoint(model, trial)
        if self.autoassist_sampler is not None:
            folder = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            folder = os.path.join(self._get_output_dir(trial=trial), folder)
            save_state(folder, self.args.process_index, selection_state(self))

    def _init_training_state(self, max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial):
        """On resume, epochs have varying lengths: the epoch and the batch to resume from are in the saved state."""
        epochs_trained, steps_trained = super()._init_training_state(
            max_steps, num_update_steps_per_epoch, num_train_epochs, resume_from_checkpoint, trial
        )
        self.state.num_train_epochs = self._epochs_estimate  # not sys.maxsize: trainer_state.json shows it
        if resume_from_checkpoint is None or self.autoassist_sampler is None:
            return epochs_trained, steps_trained
        return restore_selection(self, resume_from_checkpoint) or (epochs_trained, steps_trained)

    # ---- per-instance losses ------------------------------------------------------------------------------------
    def training_step(self, model, inputs, *args, **kwargs):
        self._autoassist_indices = inputs.pop(INDEX_KEY, None)
        self.epoch_plan.batches_done += 1
        if self._autoassist_indices is not None:
            self.instances_backpropagated += len(self._autoassist_indices)
        return super().training_step(model, inputs, *args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        indices, self._autoassist_indices = self._autoassist_indices, None
        weights = None if self.epoch_selection is None else self.epoch_selection.loss_weights
        needs_losses = self.strategy is not None and self.strategy.observes_losses
        if indices is None or not model.training or (not needs_losses and weights is None):
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        labels = inputs.get("labels")  # kept aside: a label smoother or `compute_loss_func` pops it
        # one cross entropy: once checked, the loss is rebuilt from the per-instance terms
        if self._single_pass.applies(model, labels, num_items_in_batch):
            outputs = self._single_pass.forward(model, inputs)
            sums, counts = self._per_instance_loss_terms(model, outputs, labels)
            loss = self._single_pass.loss(sums, counts, num_items_in_batch)
        else:
            loss, outputs = self._loss_and_outputs(model, inputs, num_items_in_batch)
            # with weights the terms keep their graph, to rebuild the loss; without, they are only read
            with torch.set_grad_enabled(weights is not None):
                sums, counts = self._per_instance_loss_terms(model, outputs, labels)
            if self._single_pass.should_check(model, labels, num_items_in_batch):
                self._single_pass.check(model, loss, sums, counts, num_items_in_batch)
        if weights is not None:
            loss = reweighted_loss(loss, sums, counts, weights[indices.cpu()].to(sums.device))
        if needs_losses:
            losses = sums.detach() / counts.clamp(min=1)
            self.strategy.observe(indices, losses, self.state.global_step)
        return (loss, outputs) if return_outputs else loss

    def _loss_and_outputs(self, model, inputs, num_items_in_batch):
        """The Trainer's loss and the outputs of the same forward pass, read for the per-instance losses."""
        return super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)

    def _per_instance_loss_terms(self, model, outputs, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """Each instance's summed loss and its count of loss terms (target tokens; 1 for a class label)."""
        if self.per_instance_loss_fn is not None:
            losses = self.per_instance_loss_fn(outputs, labels)
            return losses, torch.ones_like(losses)
        logits = outputs.get("logits") if isinstance(outputs, dict) else None
        if logits is None or labels is None:
            keys = list(outputs.keys()) if isinstance(outputs, dict) else type(outputs).__name__
            raise ValueError(
                "AutoAssist learns from one Boss loss per instance, computed from the model's `logits` and the "
                f"batch's `labels`, but the model returned {keys} and the batch "
                f"{'has' if labels is not None else 'has no'} `labels`. Pass `per_instance_loss_fn=` "
                "(outputs, labels -> (batch,) losses) to the trainer, or set `autoassist_strategy='none'`."
            )
        return per_instance_loss_terms(
            logits, labels, label_smoothing=self.args.label_smoothing_factor, shift_labels=self._is_causal_lm(model)
        )

    def _is_causal_lm(self, model) -> bool:
        """Whether labels are next tokens (shifted by one), also for a PEFT model wrapping a causal LM; found once
        per model (it is asked every step)."""
        if self._causal_lm is None or self._causal_lm[0] is not model:
            self._causal_lm = (model, self._base_model(model)._get_name() in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
        return self._causal_lm[1]

    def _base_model(self, model):
        """The model under accelerate's wrappers and, for a `peft.PeftModel`, under its adapters."""
        base = self.accelerator.unwrap_model(model)
        return base.get_base_model() if hasattr(base, "get_base_model") else base

    # ---- logging ------------------------------------------------------------------------------------------------
    def autoassist_metrics(self) -> dict[str, float]:
        metrics = {}
        if self.autoassist_sampler is not None:
            metrics["autoassist/kept_fraction"] = round(self.autoassist_sampler.kept_fraction, 4)
        if self.strategy is not None:
            metrics.update(self.strategy.metrics())
            metrics["autoassist/instances_seen"] = self.instances_backpropagated
        return metrics

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs or "train_runtime" in logs:
            logs = {**logs, **self.autoassist_metrics()}
        super().log(logs, *args, **kwargs)
