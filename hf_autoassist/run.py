"""`SelectionRun`: everything one `train()` decides about which instances the Boss trains on, in one object.

It owns the strategy (and through it the Assistant), the sampler, the per-epoch selection and the step plan, the
report, the irreducible losses, the plausibility check's flags and the counters, and it is what a checkpoint saves
beside the Trainer's state. It never sees the trainer: it is given the arguments, the accelerator, the training set,
and callables for what only the trainer can do (its progress in optimizer steps, rebuilding its LR schedule,
reporting to its integrations). The trainer's hooks delegate to it (`mixin.py`).
"""

from collections.abc import Callable
from dataclasses import asdict

import torch
from transformers.utils import logging

from .assistants import Assistant
from .checkpoint import load_state
from .columns import columns_read_once
from .diagnostics import SelectionReport
from .epoch_selection import EpochSelection
from .irreducible import IrreducibleLosses
from .plausibility.check import LabelCheck, PlausibilityCheck
from .plausibility.gallery import write_gallery
from .sampler import AssistedBatchSampler, RescoringBatchSampler
from .schedule import EpochPlan
from .strategies import AUTO, AutoAssistSelection, build_strategy, resolve_strategy

logger = logging.get_logger(__name__)


class SelectionRun:
    """One training run's selection.

    Args:
        args: the run's `AutoAssistArguments`.
        accelerator (`Accelerator`): its processes (the decision is made on the main one and shared).
        dataset: the training set, its unused columns removed.
        batch_size (`int`): the Trainer's batch size per sampler batch (`_train_batch_size`).
        global_step (`Callable[[], int]`): optimizer steps done so far.
        replan (`Callable[[int], None]`): told each new total of optimizer steps.
        on_epoch_recorded (`Callable[[dict], None]`, *optional*): given the largest groups' kept fractions of
            each decided epoch, for the reporting integrations.
        assistant (`Assistant`, *optional*): the user's own Assistant, else one is built.
        irreducible (`IrreducibleLosses`, *optional*): each instance's irreducible loss, when the options read it.
        is_encoder_decoder (`bool`, defaults to False): the Boss is an encoder-decoder (where `"auto"` checks pairs).
        tokenizer (*optional*): the one that made the training set's token ids (the trainer's `processing_class`),
            for a pretrained plausibility encoder that reads the pairs as text, and for the report's flagged pairs.

    `report` is the per-epoch record (`SelectionReport`), readable after training.
    """

    def __init__(
        self,
        args,
        accelerator,
        dataset,
        batch_size: int,
        global_step: Callable[[], int],
        replan: Callable[[int], None],
        on_epoch_recorded: Callable[[dict], None] | None = None,
        assistant: Assistant | None = None,
        irreducible: IrreducibleLosses | None = None,
        is_encoder_decoder: bool = False,
        tokenizer=None,
    ):
        self.args, self.accelerator = args, accelerator
        self.dataset, self.tokenizer = dataset, tokenizer  # the report shows the flagged instances themselves
        self.num_samples = len(dataset)
        self.irreducible = irreducible
        self.seed = args.data_seed if args.data_seed is not None else args.seed
        # what the run checks (`plausibility/`) and, from it, the strategy `"auto"` stands for (`resolve_strategy`)
        requested = args.autoassist_strategy
        # the label column is read once at train start: by the check's resolution, the labels check, the Assistant
        # and the report alike
        with columns_read_once():
            check = PlausibilityCheck.from_args(args).resolved(requested, is_encoder_decoder, dataset)
            self.strategy_name = resolve_strategy(
                requested, check.method, args.needs_irreducible_losses, has_assistant=assistant is not None
            )
            if requested == AUTO:
                checked = f" with the {check.method} check" if check.method else ""
                logger.info(f"`autoassist_strategy='auto'` resolves to {self.strategy_name!r}{checked} on this run.")
            self.strategy = build_strategy(args, self.strategy_name)
            self.report = SelectionReport()
            self.on_epoch_recorded = on_epoch_recorded
            try:
                self.strategy.prepare(dataset, assistant=assistant, irreducible=irreducible, device=accelerator.device)
                self.report.start(dataset)
                self.label_check = None
                if check.method == "labels":
                    self.label_check = LabelCheck.from_args(dataset, args, automatic=check.automatic)
            except BaseException:
                self.strategy.close()  # a thread started before the failure must not outlive it
                raise
        self.instances_backpropagated = 0  # by this process
        # sampler batches per round: one per process, or one split across them (`split_batches`)
        self.batches_per_round = 1 if getattr(accelerator, "split_batches", False) else accelerator.num_processes
        # the instances found not to fit: never candidates of a pass, whatever the strategy keeps; pairs are
        # checked now, class labels when the third epoch starts, from the Boss's features (`label_check`)
        self.plausibility, self.flagged = check.run(dataset, self.seed, accelerator, tokenizer)
        self.checks = check.method is not None
        self.pool = None if self.flagged is None else (~self.flagged).nonzero().flatten()
        full_data_finish = args.autoassist_full_data_finish
        if full_data_finish is None:
            full_data_finish = self.strategy.default_full_data_finish
        self.epoch_selection = EpochSelection(
            args, self.strategy, accelerator, self.num_samples, self.seed, global_step, full_data_finish,
            pass_size=lambda: self.sampler.pass_size,
        )  # fmt: skip
        self.epoch_plan = EpochPlan(args, self.batches_per_round, global_step, replan, self.record_epoch)
        self.sampler = self._build_sampler(batch_size)

    def _build_sampler(self, batch_size: int) -> AssistedBatchSampler:
        """Decides each epoch at its start, or block by block with `autoassist_rescore_every`."""
        args = self.args
        num_processes = self.accelerator.num_processes
        per_round = batch_size * self.batches_per_round  # instances in one round of batches
        common = dict(
            batch_size=batch_size,
            seed=self.seed,
            drop_last=args.dataloader_drop_last,
            # every rank gets the same number of full batches, so accelerate never repeats instances to even them
            pad_to_multiple_of=per_round if num_processes > 1 else None,
            pool=self.pool,
        )
        keep_steps = args.autoassist_keep_steps
        # accelerate splits or dispatches batches of one size only: thinned batches need each rank to take its own
        fixed_size = getattr(self.accelerator, "split_batches", False) or getattr(
            self.accelerator, "dispatch_batches", False
        )
        if keep_steps is None:  # the strategy's own, but in-epoch decisions and fixed-size batches shrink instead
            keep_steps = self.strategy.keeps_steps and args.autoassist_rescore_every is None and not fixed_size
        if keep_steps and fixed_size:
            raise ValueError(
                "Thinned batches (`autoassist_keep_steps=True`) vary in size, which accelerate's `split_batches` and "
                "`dispatch_batches` do not take: leave `autoassist_keep_steps` unset to train fewer full batches, or "
                "turn those off."
            )
        if args.autoassist_rescore_every is None:
            return AssistedBatchSampler(
                self.num_samples, select_fn=self.epoch_selection.whole_pass, keep_steps=keep_steps,
                batch_multiple=args.autoassist_thinned_batch_multiple, **common,
            )  # fmt: skip
        if keep_steps:
            raise ValueError(
                "`autoassist_rescore_every` decides an epoch block by block, which thinned batches "
                "(`autoassist_keep_steps=True`) do not support yet: leave `autoassist_keep_steps` unset to train "
                "fewer batches, or leave `autoassist_rescore_every` unset."
            )
        accumulation = args.gradient_accumulation_steps
        return RescoringBatchSampler(
            self.num_samples,
            rescore_every=args.autoassist_rescore_every * self.batches_per_round,
            select_fn=self.epoch_selection.block,
            # a shrunk epoch ends on a whole accumulated step: the Trainer steps at a pass's end only at the full one
            round_to=per_round * accumulation if num_processes > 1 or accumulation > 1 else None,
            on_decided=self.epoch_plan.in_progress,
            **common,
        )

    # ---- what the Assistant learned, what each epoch kept ---------------------------------------------------------
    @property
    def worker(self):
        """The worker that trains the Assistant (strategy `"autoassist"` only)."""
        return self.strategy.worker if isinstance(self.strategy, AutoAssistSelection) else None

    @property
    def assistant(self) -> Assistant | None:
        return self.strategy.assistant if isinstance(self.strategy, AutoAssistSelection) else None

    def start_epoch(self, epoch: int, dataloader) -> tuple[int, int]:
        """At the Trainer's epoch start: draws and decides the epoch's pass, and plans the steps from its length.
        Returns this process's batches in the epoch (`len(dataloader)`) and its optimizer steps. Deciding inside the
        epoch (`autoassist_rescore_every`), the pass is only drawn here, and both are the full pass's (an upper
        bound) until it is decided."""
        if self.label_check is not None and self.label_check.due(epoch):
            self._exclude(self.label_check.decide(self.accelerator, self.seed))
            self.plausibility = self.label_check.plausibility
        self.sampler.set_epoch(epoch)
        if len(self.sampler.padding):
            self.epoch_selection.train_without_gradient(self.sampler.padding)
        steps_in_epoch = len(dataloader)
        return steps_in_epoch, self.epoch_plan.start(epoch, self.sampler, steps_in_epoch)

    def _exclude(self, flagged: torch.Tensor) -> None:
        """Passes from now on are drawn from the instances not flagged."""
        self.flagged, self.pool = flagged, (~flagged).nonzero().flatten()
        self.sampler.set_pool(self.pool)

    def record_epoch(self, epoch: int) -> None:
        """Once an epoch's pass is decided: what it kept, per group, and the Assistant then."""
        worker = self.worker
        assistant = None
        if worker is not None:
            assistant = dict(
                assistant_accuracy=round(worker.accuracy, 4),
                assistant_skill=round(worker.skill, 4),
                positive_rate=round(worker.positive_rate, 4),
            )
        self.report.record(epoch, self.sampler.selected, self.sampler.kept_fraction, assistant)
        metrics = self.report.group_metrics()
        if metrics and self.on_epoch_recorded is not None:
            self.on_epoch_recorded(metrics)

    # ---- the training step ----------------------------------------------------------------------------------------
    def batch_started(self, indices: torch.Tensor | None) -> None:
        """Counts one batch of this process (and its instances, when it carries their indices)."""
        self.epoch_plan.batches_done += 1
        if indices is not None:
            self.instances_backpropagated += len(indices)

    @property
    def observes_losses(self) -> bool:
        """Whether the training step reads per-instance losses (and, with `reads_boss_features`, features)."""
        return self.strategy.observes_losses or (self.label_check is not None and self.label_check.flagged is None)

    def loss_weights(self, indices: torch.Tensor) -> torch.Tensor | None:
        """`(batch,)` the running pass's loss weights of `indices`, or None to leave the loss untouched."""
        weights = self.epoch_selection.loss_weights
        return None if weights is None else weights[indices.cpu()]

    @property
    def reads_boss_features(self) -> bool:
        """Whether the Assistant learns from the Boss's own features of each trained instance."""
        reads = self.assistant is not None and self.assistant.reads_boss_features
        return reads or self.label_check is not None

    @property
    def reads_token_misses(self) -> bool:
        """Whether the strategy reads each instance's share of missed target tokens (where the targets are tokens)."""
        return self.strategy.reads_token_misses

    def observe(
        self, indices: torch.Tensor, losses: torch.Tensor, global_step: int, features=None, floor=0.0, misses=None
    ):  # fmt: skip
        """One Boss loss per trained instance, `(B,)`, from the step's own forward (and the Boss's features of them,
        `(B, F)`, when `reads_boss_features`); `floor`: the loss a fitted instance keeps under label smoothing;
        `misses`: `(B,)` the share of each one's target tokens whose argmax is wrong, where they are tokens."""
        if misses is not None and self.strategy.reads_token_misses:
            self.strategy.observe_token_misses(indices, misses, global_step)
        if self.strategy.reads_loss_above_floor:
            losses = (losses - floor).clamp_min(0.0)
        if features is not None and self.label_check is not None:
            self.label_check.record(indices, features)
        if features is None:  # as strategies written before features were recorded are called
            self.strategy.observe(indices, losses, global_step)
        else:
            self.strategy.observe(indices, losses, global_step, features)

    def metrics(self) -> dict[str, float]:
        metrics = {"autoassist/kept_fraction": round(self.sampler.kept_fraction, 4), **self.strategy.metrics()}
        # what this process back-propagated, every strategy alike (the Assistant's own count is `instances_trained`)
        metrics["autoassist/instances_backpropagated"] = self.instances_backpropagated
        if self.plausibility is not None:
            summary = self.plausibility.summary()
            metrics["autoassist/flagged_fraction"] = summary["flagged_fraction"]
            if summary["seconds"] is not None:  # None: restored from a checkpoint written before it was measured
                metrics["autoassist/plausibility_seconds"] = summary["seconds"]
        return metrics

    @property
    def writes_report(self) -> bool:
        """`autoassist_write_report`, or by default whether the Trainer saves and this run selects: a strategy other
        than `"none"`, or a plausibility check it resolved (`none` alone writes nothing the plain Trainer would not)."""
        if self.args.autoassist_write_report is not None:
            return self.args.autoassist_write_report
        return self.args.save_strategy != "no" and (self.strategy_name != "none" or self.checks)

    def write_report(self, output_dir: str) -> None:
        """The per-epoch diagnostics and, after a plausibility check, each instance's score and flag, and the
        flagged instances most likely implausible, drawn (`gallery.py`)."""
        self.report.write(output_dir)
        if self.plausibility is not None:
            self.plausibility.write(output_dir)
            try:
                write_gallery(self.plausibility, self.dataset, output_dir, self.tokenizer)
            except Exception as error:  # a picture must never cost the run its end
                logger.warning(f"AutoAssist could not draw the flagged instances ({type(error).__name__}: {error}).")

    def close(self) -> None:
        """Stops the Assistant's thread (it finishes its queue first); its numbers stay readable."""
        self.strategy.close()

    # ---- checkpoints ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What a checkpoint holds beside the Trainer's own state (see `checkpoint.py`)."""
        irreducible = self.irreducible
        return {
            "num_samples": self.num_samples,
            "strategy_name": self.strategy_name,
            "sampler": self.sampler.state_dict(),
            "strategy": self.strategy.state_dict(),
            "loss_weights": self.epoch_selection.loss_weights,
            "instances_backpropagated": self.instances_backpropagated,
            "history": self.report.history,
            **self.epoch_plan.state_dict(),
            "irreducible": None if irreducible is None else {**asdict(irreducible), "source": "computed"},
            "label_check": None if self.label_check is None else self.label_check.state_dict(),
        }

    def load_state_dict(self, state: dict, global_step: int, skip_data: bool = True) -> tuple[int, int]:
        """Puts the selection back as a checkpoint saved it; returns the epoch to resume and the batches of it
        already trained (0 with `skip_data=False`, the Trainer's `ignore_data_skip`)."""
        saved = saved_strategy(state)
        if saved is not None and saved != self.strategy_name:
            raise ValueError(
                f"The checkpoint was written by a run of strategy {saved!r}, but this run's is {self.strategy_name!r} "
                f"(`autoassist_strategy={self.args.autoassist_strategy!r}`; until 2026-12-06 'auto' meant 'autoassist' "
                f"on anything but seq2seq pairs). Resume with `autoassist_strategy={saved!r}`."
            )
        self.strategy.load_state_dict(state.get("strategy", {"worker": state.get("worker")}))
        if self.label_check is not None:
            self.label_check.load_state_dict(state.get("label_check"))
            if self.label_check.flagged is not None:  # decided before the checkpoint: its pool, before its pass
                self._exclude(self.label_check.flagged)
                self.plausibility = self.label_check.plausibility
        self.sampler.load_state_dict(state["sampler"])
        self.epoch_selection.loss_weights = state.get("loss_weights")
        self.instances_backpropagated = state.get("instances_backpropagated", 0)
        self.report.history = list(state.get("history", []))
        epoch = state["sampler"]["epoch"]
        steps_done = global_step - state["epoch_start_step"]
        if epoch is None or steps_done >= state["epoch_update_steps"]:
            return (0 if epoch is None else epoch + 1), 0  # saved at an epoch end: the next epoch starts afresh
        self.epoch_plan.resumed = (epoch, state["epoch_start_step"])
        return epoch, steps_done * self.args.gradient_accumulation_steps if skip_data else 0

    def resume(self, checkpoint: str, global_step: int, trainer_name: str) -> tuple[int, int] | None:
        """`load_state_dict` from `checkpoint`'s file of this process; None when it holds no usable state (with
        a warning that says what is lost: the Trainer's own count then stands)."""
        args = self.args
        state = load_state(checkpoint, args.process_index, self.num_samples, self.strategy_name, trainer_name)
        if state is None:
            return None
        return self.load_state_dict(state, global_step, skip_data=not args.ignore_data_skip)


def saved_strategy(state: dict) -> str | None:
    """The strategy that wrote a checkpoint's state: recorded since 2026-12-06, before then read from what its
    strategy kept (the Assistant's worker, InfoBatch's loss memory), else unknown (None)."""
    if "strategy_name" in state:
        return state["strategy_name"]
    kept = state.get("strategy") or {}
    if "worker" in kept or state.get("worker") is not None:
        return "autoassist"
    return "infobatch" if "memory" in kept else None
