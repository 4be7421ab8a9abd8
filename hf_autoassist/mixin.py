"""`AutoAssistMixin`: the Trainer hooks that let a learned Assistant shrink each epoch.

It overrides narrow hooks only, each delegating to the run's selection (`run.py`) or to the loss reader
(`loss_reader.py`): the training DataLoader (index-carrying dataset, shrinking batch sampler), `training_step` /
`compute_loss` (per-instance losses from the training forward pass), `_run_epoch` (the real epoch length) and
`log`; the hooks for epochs of varying length (`max_steps`, the re-planned LR schedule, an epoch decided block by
block) come from `schedule.VaryingEpochsMixin`, those of checkpoints from `checkpoint.ResumableSelectionMixin`.
Nothing is added to the Trainer's callbacks. Placed first, it works with `Trainer` and `Seq2SeqTrainer`.
"""

from transformers.data.data_collator import default_data_collator
from transformers.trainer_utils import get_last_checkpoint
from transformers.utils import is_datasets_available, logging

from .checkpoint import ResumableSelectionMixin, saved_stream_state
from .config import AutoAssistArguments, check_arguments
from .data import INDEX_KEY, check_training_set, is_streamed, selection_dataloader
from .diagnostics import log_to_integrations, split_timings
from .irreducible import irreducible_losses_for_run
from .loss_reader import InstanceLossReader
from .losses import reweighted_loss
from .run import SelectionRun
from .schedule import VaryingEpochsMixin
from .stream import SelectedStream, selected_stream

if is_datasets_available():
    import datasets

logger = logging.get_logger(__name__)


class AutoAssistMixin(ResumableSelectionMixin, VaryingEpochsMixin):
    """Adds AutoAssist (Zhang, Yu & Dhillon, NeurIPS 2019) to a `transformers.Trainer` subclass.

    Extra keyword arguments:
        assistant (`Assistant`, *optional*): a ready Assistant over the training set; by default one is built from
            `args.autoassist_assistant` and the dataset's columns.
        per_instance_loss_fn (`Callable[[outputs, labels], Tensor]`, *optional*): one loss per instance, shape
            `(B,)`, for models whose output has no `logits` to derive it from.
        irreducible_model_init (`Callable[[], PreTrainedModel]`, *optional*): builds each irreducible-loss model
            (`autoassist_label="reducible"` or `"learnable"`), e.g. a smaller one; by default a copy of the Boss
            before training.

    `selection_run` is the running (or last) training's [`SelectionRun`] (strategy, Assistant, sampler, counters).
    """

    config_class: type = AutoAssistArguments
    # reads the loss and each instance's loss from the training forward (TRL's SFT trainer brings its own)
    loss_reader_class: type = InstanceLossReader
    # whether the loss may be rebuilt from the per-instance terms once checked (`single_pass.py`)
    single_pass_loss: bool = True

    def __init__(self, *args, assistant=None, per_instance_loss_fn=None, irreducible_model_init=None, **kwargs):
        if len(args) < 2 and kwargs.get("args") is None:
            kwargs["args"] = self.config_class(output_dir="trainer_output")
        # before the Trainer's own check, which would ask for `max_steps` instead
        train_dataset = kwargs.get("train_dataset", args[3] if len(args) > 3 else None)
        check_training_set(train_dataset, False, kwargs["args"] if len(args) < 2 else args[1])
        super().__init__(*args, **kwargs)
        check_arguments(self.args, type(self).__name__, self.config_class)
        self._user_assistant = assistant  # reused by every `train()`; one built here is built afresh each time
        self.irreducible_model_init = irreducible_model_init
        self.loss_reader = self.loss_reader_class(
            super().compute_loss, self.accelerator.unwrap_model, self.args.label_smoothing_factor, per_instance_loss_fn,
            single_pass=self.single_pass_loss and self.compute_loss_func is None,
        )
        self.selection_run: SelectionRun | None = None
        self.stream_selection: SelectedStream | None = None  # a streamed training set's filter
        self._resume_from: str | None = None
        self._batch_indices = None  # from `training_step` to `compute_loss`

    @property
    def autoassist_history(self) -> list[dict]:
        """Per epoch: the kept fraction, overall and per group, and the Assistant when it decided."""
        return [] if self.selection_run is None else self.selection_run.report.history

    @property
    def kept_fractions(self) -> dict[int, float]:
        """Epoch -> fraction of the training set it kept (read from `autoassist_history`)."""
        return {record["epoch"]: record["kept_fraction"] for record in self.autoassist_history}

    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        # known before the training DataLoader is built: what a checkpoint holds need not be computed again
        last = resume_from_checkpoint is True
        self._resume_from = get_last_checkpoint(self.args.output_dir) if last else (resume_from_checkpoint or None)
        try:
            result = super().train(resume_from_checkpoint, *args, **kwargs)
        finally:
            if self.selection_run is not None:
                self.selection_run.close()  # also when training fails: no thread outlives its run
            self.loss_reader.record_features(False)  # nor a hook on the model
        if self.selection_run is not None and self.selection_run.writes_report and self.is_world_process_zero():
            self.selection_run.write_report(self.args.output_dir)
        return result

    def get_train_dataloader(self):
        check_training_set(self.train_dataset, True, self.args)
        # each training run (a second `train()`, each `hyperparameter_search` trial) starts afresh
        if self.selection_run is not None:
            self.selection_run.close()
        self.stream_selection = None
        config = getattr(self.model, "config", None)
        is_encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))  # where "auto" checks pairs
        # the Trainer's factor on a model's loss across processes (`average_tokens_across_devices`)
        scaled = self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs
        self.loss_reader.reset(
            self.accelerator.num_processes // self.get_tp_size() if scaled else 1,
            single_pass=self.single_pass_loss and self.compute_loss_func is None,
        )
        if is_streamed(self.train_dataset):  # filtered as it is read (`stream.py`), else the plain Trainer's loader
            self.selection_run, saved = None, saved_stream_state(self)
            self.stream_selection = selected_stream(self.args, self.train_dataset, self.accelerator, config, saved)
            if self.stream_selection is None:
                return super().get_train_dataloader()
            return self._get_dataloader(self.stream_selection, "Training", self._train_batch_size, is_training=True)
        dataset, collator = self.train_dataset, self.data_collator or default_data_collator
        if is_datasets_available() and isinstance(dataset, datasets.Dataset):
            dataset = self._remove_unused_columns(dataset, description="training")
        else:
            collator = self._get_collator_with_removed_columns(collator, description="training")
        irreducible = irreducible_losses_for_run(  # each instance's loss under models that never saw it, if read
            self.args, self.model, self.loss_reader.is_causal_lm, self.irreducible_model_init, dataset, collator,
            self.is_world_process_zero(), self._resume_from,
        )  # fmt: skip

        def report(metrics):  # the state and control the Trainer holds when the epoch is recorded
            log_to_integrations(self.callback_handler.callbacks, self.args, self.state, self.control, metrics)

        self.selection_run = SelectionRun(
            self.args, self.accelerator, dataset, self._train_batch_size, lambda: self.state.global_step,
            self._replan, report if self.is_world_process_zero() else None, self._user_assistant, irreducible,
            is_encoder_decoder=is_encoder_decoder,
            tokenizer=getattr(self.processing_class, "tokenizer", self.processing_class),  # a processor's tokenizer
        )  # fmt: skip
        self.loss_reader.record_features(self.selection_run.reads_boss_features)
        self.loss_reader.read_token_misses(self.selection_run.reads_token_misses)
        loader = selection_dataloader(dataset, self.selection_run.sampler, collator, self.args)
        return self.accelerator.prepare(loader)

    def _run_epoch(self, *, model, epoch, train_dataloader, **kwargs):
        if self.selection_run is not None:  # decided here, so that the Trainer plans the epoch with its real length
            kwargs["steps_in_epoch"], kwargs["num_update_steps_per_epoch"] = self.selection_run.start_epoch(
                epoch, train_dataloader
            )
        return super()._run_epoch(model=model, epoch=epoch, train_dataloader=train_dataloader, **kwargs)

    def training_step(self, model, inputs, *args, **kwargs):
        self._batch_indices = inputs.pop(INDEX_KEY, None)
        if self.selection_run is not None:
            self.selection_run.batch_started(self._batch_indices)
        return super().training_step(model, inputs, *args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        run, indices, self._batch_indices = self.selection_run, self._batch_indices, None
        stream = self.stream_selection if run is None and model.training else None
        if stream is not None and stream.assistant is not None:  # it reads the batch, whose labels the reader takes
            batch, read = dict(inputs), self.loss_reader(model, inputs, num_items_in_batch, keep_graph=False)
            stream.assistant.observe(batch, read.per_instance)
            return (read.loss, read.outputs) if return_outputs else read.loss
        weights = None if run is None or indices is None else run.loss_weights(indices)
        if indices is None or not model.training or (not run.observes_losses and weights is None):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        read = self.loss_reader(model, inputs, num_items_in_batch, keep_graph=weights is not None)  # read
        loss = read.loss
        if weights is not None:  # weight
            loss = reweighted_loss(loss, read.sums, read.counts, weights.to(read.sums.device))
        if run.observes_losses:  # observe
            run.observe(indices, read.per_instance, self.state.global_step, read.features, read.floor, read.misses)
        return (loss, read.outputs) if return_outputs else loss

    def autoassist_metrics(self) -> dict[str, float]:
        if self.selection_run is None:
            return {} if self.stream_selection is None else self.stream_selection.metrics()
        return self.selection_run.metrics()

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if "loss" in logs or "train_runtime" in logs:  # timings to the integrations only: see `split_timings`
            reproducible, timings = split_timings(self.autoassist_metrics())
            log_to_integrations(self.callback_handler.callbacks, self.args, self.state, self.control, timings)
            logs = {**logs, **reproducible}
        super().log(logs, *args, **kwargs)
