"""Training arguments for the AutoAssist trainers.

The AutoAssist options live in one dataclass mixin, `AutoAssistArguments`, so that the classification config
(`AutoAssistConfig`) and the seq2seq config (`AutoAssistSeq2SeqConfig`) share them without copying a field.
"""

from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments, TrainingArguments
from transformers.utils import logging

from .assistants.labels import LABEL_RULES

logger = logging.get_logger(__name__)

STRATEGIES = ("autoassist", "random", "infobatch", "none")
ASSISTANTS = ("auto", "pixels", "bag_of_tokens")


@dataclass
class AutoAssistArguments:
    """Options of [`AutoAssistTrainer`]; every other option is the one of [`~transformers.TrainingArguments`].

    Parameters that control selection:
        autoassist_strategy (`str`, *optional*, defaults to `"autoassist"`):
            `"autoassist"` lets the Assistant shrink each epoch. The baselines run on the same machinery, so that a
            comparison measures the selection alone: `"random"` keeps each instance with `autoassist_keep_prob`;
            `"infobatch"` (Qin et al., ICLR 2024) prunes `autoassist_prune_ratio` of the instances whose last loss is
            below the mean and scales up the loss of the rest of them; `"none"` keeps every instance while going
            through the same data path, so that the overhead of the path itself can be measured.
        autoassist_base_prob (`float`, *optional*, defaults to `0.3`):
            Floor on every instance's acceptance probability (the paper's value). `1.0` keeps everything.
        autoassist_target_keep (`float`, *optional*):
            `"autoassist"` only: a budget. Each epoch after the warmup keeps this fraction of the instances on average,
            the Assistant choosing which: its acceptance probabilities are scaled by one factor (floored by
            `autoassist_base_prob`, or by the target if lower) so that they average the target. Unset, the rule
            decides how much to keep.
        autoassist_warmup_epochs (`float`, *optional*, defaults to `1.0`):
            Epochs `e` with `e < autoassist_warmup_epochs` keep every instance while the Assistant learns (every
            strategy waits for it, so that they all start selecting at the same epoch). With
            `autoassist_rescore_every` it may end inside an epoch (`0.25`: a quarter of the first pass).
        autoassist_rescore_every (`int`, *optional*):
            Decide the rest of the epoch every this many training batches (per process) instead of once at its
            start: each decision uses what the selection learned from the batches before it, and a fractional
            warmup ends inside the epoch, so that a one-epoch run shrinks after its warmup. The epoch's length is
            then known only when its pass is decided: the LR schedule is planned again at each decision.
        autoassist_full_data_finish (`float`, *optional*):
            Fraction of the training (by epochs, or by steps with `max_steps`) at its end in which every instance is
            kept again. Defaults to the strategy's own: 0.125 for `"infobatch"` (its paper's), 0 for the others.
        autoassist_keep_prob (`list[float]`, *optional*, defaults to `[0.5]`):
            `"random"` only: chance of keeping each instance after the warmup. Several values give one per epoch
            after the warmup, the last one repeating (to replay another run's kept fraction epoch by epoch).
        autoassist_prune_ratio (`float`, *optional*, defaults to `0.5`):
            `"infobatch"` only: fraction `r` of the below-mean-loss instances left out of an epoch; the kept ones
            have their loss scaled by `1 / (1 - r)`, so that the expected gradient is unchanged.
        autoassist_reweight (`bool`, *optional*, defaults to `False`):
            `"autoassist"` only: scale each kept instance's loss by `1 / p`, its acceptance probability, so that the
            expected gradient is the full data's (the linear-SVM study shows the bias this removes). Off, the
            Trainer's loss is left untouched.

    Parameters that control the Assistant:
        autoassist_assistant (`str`, *optional*, defaults to `"auto"`):
            `"pixels"` (logistic model over average-pooled pixels plus a bias per label), `"bag_of_tokens"`
            (summed per-token weights of source and target), or `"auto"` to pick from the dataset's columns.
        autoassist_assistant_lr (`float`, *optional*, defaults to `0.05`):
            SGD step size of the Assistant.
        autoassist_queue_size (`int`, *optional*, defaults to `512`):
            Batches of Boss losses waiting for the Assistant; when full the oldest batch is dropped and counted.
        autoassist_assistant_cpu_share (`float`, *optional*, defaults to `0.1`):
            Bound on the Assistant thread's CPU time (when it trains in a thread, see `autoassist_synchronous`), as a
            share of the wall-clock time since training started
            (0.1: a tenth of one core). Past it the thread sleeps and batches wait in the queue (the oldest dropped
            when it is full), so that the Boss keeps the cores. The Assistant's measured share on the benchmark's
            small models: 0.03 (ResNet) and 0.01 (Marian), since its step is taken in closed form. `None` for no bound.
        autoassist_loss_momentum (`float`, *optional*, defaults to `0.99`):
            Momentum of the running mean of Boss losses that separates "informative" from "learned" instances.
        autoassist_label (`str`, *optional*, defaults to `"batch_median"`):
            What the Assistant learns to predict: `"batch_median"`, the Boss loss above its own batch's median
            (balanced by construction, no lag while the loss falls), `"running_mean"`, above its running mean (the
            paper's; mostly 0 for right-skewed losses), or `"decline"`, the loss fell more since the instance's
            previous visit than the batch's median fall (learnability, as Dynamic Sentence Sampling: a learned or a
            mislabelled instance stops declining; needs `autoassist_assistant_memory`, and a second visit before
            an instance is labelled), or `"reducible"`, the loss over the instance's irreducible loss (in log) above
            the batch's median (RHO-LOSS: skips what is learned and what cannot be learned, such as a wrong label;
            needs `autoassist_assistant_memory`; see `autoassist_irreducible_*`), or `"learnable"`, the instance's
            rank by Boss loss in its batch times its rank by irreducible loss counted from the top, above the median
            (both at once: a high loss that a model which never saw the instance could predict; in ranks, because a
            Boss soon more confident than a briefly trained irreducible-loss model makes `"reducible"` read wrong
            labels as still to learn).
        autoassist_implausible_keep_prob (`float`, *optional*):
            Set, an instance whose label the irreducible-loss models find less likely than a uniform guess over the
            classes (irreducible loss above `log(number of classes)`) is kept with this probability in each selecting
            epoch, whatever the Assistant says (below `autoassist_base_prob` if asked; 0 drops it): mostly wrong
            labels, which a loss-seeking rule keeps (measured on Fashion-MNIST with 30% of the labels flipped: 70% of
            the wrong labels and 7% of the right ones are flagged with the default one-epoch models, 82% and 3% with
            three). Classification sets only; it trains the irreducible-loss models as the labels that read them do
            (`autoassist_irreducible_*`).
        autoassist_irreducible_fraction (`float`, *optional*, defaults to `0.5`):
            With irreducible losses only: each irreducible-loss model trains on this fraction of the training
            set and scores the rest (`round(1 / fraction)` models, so that every instance is scored out of sample;
            the Boss still trains on every instance). The models are copies of the Boss at its starting weights, or
            `irreducible_model_init()` passed to the trainer.
        autoassist_irreducible_epochs (`float`, *optional*, defaults to `1.0`):
            With irreducible losses only: epochs each irreducible-loss model trains on its fraction. Their
            cost, about `epochs` Boss epochs in all, is part of `train()`'s time.
        autoassist_irreducible_cache (`str`, *optional*):
            With irreducible losses only: a file to write the irreducible losses to, and to read them from in a
            later run of the same data and settings (logged when it is used).
        autoassist_confidence (`str`, *optional*, defaults to `"skill"`):
            How far the shrinking rule trusts the Assistant: its `"skill"` over always answering the majority label,
            so that an Assistant that learned nothing keeps everything, or its running `"accuracy"` (the paper's,
            which reads label imbalance as knowledge).
        autoassist_assistant_memory (`bool`, *optional*, defaults to `True`):
            Let the Assistant also read each instance's last Boss loss, whether it was ever seen and how long ago
            ([`~assistants.WithLossMemory`]); `False` is the paper's input-only Assistant. With several processes the
            memories of all ranks are merged before each decision.
        autoassist_assistant_dim (`int`, *optional*, defaults to `1`):
            Size of each token's weight vector in the `"bag_of_tokens"` Assistant; 1 is the paper's model, larger
            values add a linear layer over the two summed bags.
        autoassist_pool_size (`int`, *optional*, defaults to `7`):
            Side of the average-pooled image that the `"pixels"` Assistant reads (7 turns 28x28 into 7x7).
        autoassist_synchronous (`bool`, *optional*):
            Where the Assistant trains. Unset: inside the training step when the Boss trains on CPU, in a background
            thread on an accelerator. On CPU the Boss's own threads take every core, and a thread beside them stalls
            them for more than its CPU time (measured on the benchmark's ResNet: 1.21 x the seconds of random
            skipping in a thread, 1.01 x inside the step, 3 paired runs); on an accelerator the CPU is free while the
            step runs. `True`: always inside the step, which is also reproducible to the bit (for debugging and
            tests); `False`: always in a thread (bounded by `autoassist_assistant_cpu_share`).

    Parameters that control the report:
        autoassist_write_report (`bool`, *optional*):
            Write `autoassist_diagnostics.json` / `.png` (what each epoch kept, per label or length) into `output_dir`
            when training ends. Defaults to writing it whenever the Trainer saves (`save_strategy` other than
            `"no"`), so that a run that saves nothing leaves `output_dir` as the plain `Trainer` would. The report is
            always kept in memory as `trainer.autoassist_history`.
    """

    # Parameters that control selection
    autoassist_strategy: str = field(
        default="autoassist",
        metadata={
            "help": "'autoassist' lets a learned Assistant shrink each epoch; 'none' keeps every instance through "
            "the same code path (to measure its overhead).",
            "choices": list(STRATEGIES),
        },
    )
    autoassist_base_prob: float = field(
        default=0.3,
        metadata={"help": "Floor on every instance's acceptance probability, in (0, 1]; 1.0 keeps everything."},
    )
    autoassist_target_keep: float | None = field(
        default=None,
        metadata={"help": "'autoassist' only: keep this fraction of each epoch after the warmup on average, in (0, 1] "
                  "(a budget); unset, the rule decides how much to keep."},
    )
    autoassist_warmup_epochs: float = field(
        default=1.0,
        metadata={"help": "Epochs e < autoassist_warmup_epochs keep every instance while the Assistant learns."},
    )
    autoassist_rescore_every: int | None = field(
        default=None,
        metadata={"help": "Decide the rest of each epoch every this many batches (per process), not once at its "
                  "start; a fractional warmup then ends inside an epoch."},
    )

    autoassist_full_data_finish: float | None = field(
        default=None,
        metadata={
            "help": "Fraction of training at its end that keeps every instance again, in [0, 1); default: the "
            "strategy's own (0.125 for infobatch, 0 otherwise)."
        },
    )
    autoassist_keep_prob: list[float] = field(
        default_factory=lambda: [0.5],
        metadata={
            "help": "'random' only: chance of keeping each instance after the warmup, in (0, 1]; several values give "
            "one per epoch after the warmup (the last repeats)."
        },
    )
    autoassist_prune_ratio: float = field(
        default=0.5,
        metadata={"help": "'infobatch' only: fraction of the below-mean-loss instances pruned per epoch, in [0, 1)."},
    )
    autoassist_reweight: bool = field(
        default=False,
        metadata={"help": "'autoassist' only: scale each kept instance's loss by 1/p (unbiased gradient)."},
    )

    # Parameters that control the Assistant
    autoassist_assistant: str = field(
        default="auto",
        metadata={
            "help": "Model that scores instances: 'pixels', 'bag_of_tokens', or 'auto' to pick from the dataset's "
            "columns (pixel_values -> pixels, input_ids -> bag_of_tokens).",
            "choices": list(ASSISTANTS),
        },
    )
    autoassist_assistant_lr: float = field(default=0.05, metadata={"help": "SGD step size of the Assistant."})
    autoassist_queue_size: int = field(
        default=512,
        metadata={"help": "Batches of Boss losses queued for the Assistant; when full the oldest is dropped."},
    )
    autoassist_assistant_cpu_share: float | None = field(
        default=0.1,
        metadata={"help": "Bound on the Assistant thread's CPU time as a share of wall-clock time (0.1: a tenth of "
                  "one core); past it the thread sleeps. None for no bound."},
    )
    autoassist_loss_momentum: float = field(
        default=0.99,
        metadata={"help": "Momentum of the running mean of Boss losses (the Assistant's label threshold), in [0, 1)."},
    )
    autoassist_label: str = field(
        default="batch_median",
        metadata={
            "help": "Assistant's label: Boss loss above its 'batch_median', above its 'running_mean' (the paper's), or "
            "a loss 'decline' since the previous visit above the batch's median, or a 'reducible' loss (minus the "
            "instance's irreducible loss) above the batch's median, or 'learnable': the loss's rank in the batch times "
            "the irreducible loss's rank from the top, above the median.",
            "choices": list(LABEL_RULES),
        },
    )
    autoassist_implausible_keep_prob: float | None = field(
        default=None,
        metadata={"help": "Set: keep instances whose label the irreducible-loss models find less likely than chance "
                  "(loss above log(classes)) with this probability (0 drops them): mostly wrong labels. "
                  "Classification only."},
    )
    autoassist_irreducible_fraction: float = field(
        default=0.5,
        metadata={"help": "With irreducible losses only: fraction of the training set each irreducible-loss model "
                  "trains on, in (0, 0.5]; it scores the rest."},
    )
    autoassist_irreducible_epochs: float = field(
        default=1.0, metadata={"help": "With irreducible losses only: epochs each irreducible-loss model trains."}
    )
    autoassist_irreducible_cache: str | None = field(
        default=None,
        metadata={"help": "With irreducible losses only: file to write the irreducible losses to and reuse in "
                  "later runs of the same data and settings."},
    )
    autoassist_confidence: str = field(
        default="skill",
        metadata={
            "help": "Trust in the Assistant: its 'skill' over the majority answer or its running 'accuracy' (the "
            "paper's).",
            "choices": ["accuracy", "skill"],
        },
    )
    autoassist_assistant_memory: bool = field(
        default=True,
        metadata={"help": "Let the Assistant also read each instance's last Boss loss and its age (False: the paper's)."},
    )
    autoassist_assistant_dim: int = field(
        default=1,
        metadata={"help": "Size of each token's weight vector in the 'bag_of_tokens' Assistant; 1 is the paper's."},
    )
    autoassist_pool_size: int = field(
        default=7, metadata={"help": "Side of the average-pooled image read by the 'pixels' Assistant."}
    )
    autoassist_synchronous: bool | None = field(
        default=None,
        metadata={"help": "Train the Assistant inside the training step (True; reproducible) or in a background "
                  "thread (False); unset: inside the step on CPU, in a thread on an accelerator."},
    )

    # Parameters that control the report
    autoassist_write_report: bool | None = field(
        default=None,
        metadata={"help": "Write autoassist_diagnostics.json/.png into output_dir at the end; default: when the "
                  "Trainer saves (save_strategy != 'no')."},
    )

    @property
    def needs_irreducible_losses(self) -> bool:
        """Whether the run trains irreducible-loss models: a label that reads them, or
        `autoassist_implausible_keep_prob`."""
        return self.autoassist_strategy == "autoassist" and (
            LABEL_RULES[self.autoassist_label].reads_irreducible or self.autoassist_implausible_keep_prob is not None
        )

    @property
    def writes_report(self) -> bool:
        """`autoassist_write_report`, or by default whether the Trainer saves checkpoints."""
        return self.save_strategy != "no" if self.autoassist_write_report is None else self.autoassist_write_report

    @property
    def assistant_trains_in_step(self) -> bool:
        """`autoassist_synchronous`, or by default whether the Boss trains on CPU, where a thread beside its own
        would stall them."""
        if self.autoassist_synchronous is not None:
            return self.autoassist_synchronous
        return self.device.type == "cpu"

    def __post_init__(self):
        super().__post_init__()
        if self.train_sampling_strategy != "random":
            logger.warning(
                f"`train_sampling_strategy={self.train_sampling_strategy!r}` is ignored: AutoAssist draws each "
                "epoch from its own seeded shuffle of the instances it keeps. Use the plain `Trainer` for "
                "length-grouped batches."
            )
        if self.autoassist_strategy not in STRATEGIES:
            raise ValueError(
                f"`autoassist_strategy` must be one of {list(STRATEGIES)}, got {self.autoassist_strategy!r}."
            )
        if self.autoassist_assistant not in ASSISTANTS:
            raise ValueError(
                f"`autoassist_assistant` must be one of {list(ASSISTANTS)}, got {self.autoassist_assistant!r}."
            )
        if self.autoassist_label not in LABEL_RULES:
            raise ValueError(f"`autoassist_label` must be one of {list(LABEL_RULES)}, got {self.autoassist_label!r}.")
        if not 0.0 < self.autoassist_base_prob <= 1.0:
            raise ValueError(
                f"`autoassist_base_prob` must be in (0, 1], got {self.autoassist_base_prob}. It is the smallest "
                "chance any instance has to be trained on; use 1.0 to train on every instance."
            )
        implausible = self.autoassist_implausible_keep_prob
        if implausible is not None and not 0.0 <= implausible <= 1.0:
            raise ValueError(
                f"`autoassist_implausible_keep_prob` must be in [0, 1], got {implausible}: the chance to keep an "
                "instance whose label looks wrong (0 drops it). Leave it unset to keep the rule's."
            )
        if self.autoassist_target_keep is not None and not 0.0 < self.autoassist_target_keep <= 1.0:
            raise ValueError(
                f"`autoassist_target_keep` must be in (0, 1], got {self.autoassist_target_keep}: it is the fraction "
                "of each epoch to keep. Leave it unset to let the rule decide how much to keep."
            )
        if self.autoassist_warmup_epochs < 0:
            raise ValueError(
                f"`autoassist_warmup_epochs` must be >= 0, got {self.autoassist_warmup_epochs}. "
                "Use 0 to let the Assistant select from the first epoch on."
            )
        if isinstance(self.autoassist_keep_prob, (int, float)):
            self.autoassist_keep_prob = [float(self.autoassist_keep_prob)]
        self.autoassist_keep_prob = [float(p) for p in self.autoassist_keep_prob]
        if not self.autoassist_keep_prob or not all(0.0 < p <= 1.0 for p in self.autoassist_keep_prob):
            raise ValueError(
                f"`autoassist_keep_prob` must be one or more values in (0, 1], got {self.autoassist_keep_prob}. "
                "Use 1.0 to keep every instance."
            )
        if not 0.0 <= self.autoassist_prune_ratio < 1.0:
            raise ValueError(
                f"`autoassist_prune_ratio` must be in [0, 1), got {self.autoassist_prune_ratio}: the kept "
                "below-mean instances are scaled by 1 / (1 - ratio). Use 0 to prune nothing."
            )
        if self.autoassist_full_data_finish is not None and not 0.0 <= self.autoassist_full_data_finish < 1.0:
            raise ValueError(
                f"`autoassist_full_data_finish` must be in [0, 1), got {self.autoassist_full_data_finish}. "
                "Use 0 to select until the end, or `autoassist_strategy='none'` to never select."
            )
        if self.autoassist_assistant_lr <= 0:
            raise ValueError(f"`autoassist_assistant_lr` must be > 0, got {self.autoassist_assistant_lr}.")
        if self.autoassist_assistant_cpu_share is not None and not 0.0 < self.autoassist_assistant_cpu_share <= 1.0:
            raise ValueError(
                f"`autoassist_assistant_cpu_share` must be in (0, 1], got {self.autoassist_assistant_cpu_share}; "
                "set it to None for no bound."
            )
        if self.autoassist_queue_size < 1:
            raise ValueError(f"`autoassist_queue_size` must be >= 1, got {self.autoassist_queue_size}.")
        if not 0.0 <= self.autoassist_loss_momentum < 1.0:
            raise ValueError(
                f"`autoassist_loss_momentum` must be in [0, 1), got {self.autoassist_loss_momentum}; "
                "0 compares each loss with its own batch's mean."
            )
        if LABEL_RULES[self.autoassist_label].reads_memory and not self.autoassist_assistant_memory:
            raise ValueError(
                f"`autoassist_label={self.autoassist_label!r}` learns from each instance's past losses, which the loss "
                "memory keeps: set `autoassist_assistant_memory=True`."
            )
        if not 0.0 < self.autoassist_irreducible_fraction <= 0.5:
            raise ValueError(
                f"`autoassist_irreducible_fraction` must be in (0, 0.5], got {self.autoassist_irreducible_fraction}: "
                "each irreducible-loss model must leave out at least half of the instances it scores."
            )
        if self.autoassist_irreducible_epochs <= 0:
            raise ValueError(
                f"`autoassist_irreducible_epochs` must be > 0, got {self.autoassist_irreducible_epochs}."
            )
        if self.autoassist_assistant_dim < 1:
            raise ValueError(f"`autoassist_assistant_dim` must be >= 1, got {self.autoassist_assistant_dim}.")
        if self.autoassist_pool_size < 1:
            raise ValueError(f"`autoassist_pool_size` must be >= 1, got {self.autoassist_pool_size}.")
        if self.autoassist_rescore_every is not None and self.autoassist_rescore_every < 1:
            raise ValueError(
                f"`autoassist_rescore_every` must be a number of batches >= 1, got {self.autoassist_rescore_every}; "
                "leave it unset to decide each epoch once, at its start."
            )


def check_arguments(args, trainer_name: str, config_class: type) -> None:
    """A trainer's `args` must carry the AutoAssist options."""
    if not isinstance(args, AutoAssistArguments):
        raise TypeError(
            f"{trainer_name} needs its `args` to be a {config_class.__name__}, got {type(args).__name__}. Build them "
            f"with `{config_class.__name__}(...)` (it takes every `TrainingArguments` option plus the `autoassist_*` "
            "ones)."
        )


@dataclass
class AutoAssistConfig(AutoAssistArguments, TrainingArguments):
    """[`~transformers.TrainingArguments`] plus the AutoAssist options of [`AutoAssistArguments`], for
    [`AutoAssistTrainer`]."""


@dataclass
class AutoAssistSeq2SeqConfig(AutoAssistArguments, Seq2SeqTrainingArguments):
    """[`~transformers.Seq2SeqTrainingArguments`] plus the AutoAssist options of [`AutoAssistArguments`], for
    [`AutoAssistSeq2SeqTrainer`]."""
