"""Training arguments for the AutoAssist trainers.

The AutoAssist options live in one dataclass mixin, `AutoAssistArguments`, so that the classification config
(`AutoAssistConfig`) and the seq2seq config (`AutoAssistSeq2SeqConfig`) share them without copying a field.
"""

from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments, TrainingArguments
from transformers.utils import logging

from .assistants.labels import LABEL_RULES
from .plausibility.check import PlausibilityCheck
from .strategies import AUTO, STRATEGY_CLASSES

logger = logging.get_logger(__name__)

STRATEGIES = (AUTO, "autoassist", "adaptive", "random", "infobatch", "none")
ASSISTANTS = ("auto", "pixels", "bag_of_tokens", "boss_features", "loss_memory")


@dataclass
class AutoAssistArguments:
    """Options of [`AutoAssistTrainer`]; every other option is the one of [`~transformers.TrainingArguments`].

    The names are flat (`autoassist_*`), as users type them on the command line; each is described once, in its
    `help` below (`--help` prints it). The code that reads an option owns its meaning and checks its value: the
    strategies (`strategies/`, e.g. [`AutoAssistSelection`] for `autoassist_base_prob` ... `autoassist_synchronous`,
    [`RandomSelection`] for `autoassist_keep_prob`, [`InfoBatchSelection`] for `autoassist_prune_ratio`), the
    labelling rules (`assistants/labels/`), the epoch selection (`autoassist_warmup_epochs`,
    `autoassist_rescore_every`, `autoassist_full_data_finish`), the irreducible losses (`autoassist_irreducible_*`)
    and the plausibility check ([`PlausibilityCheck`], `autoassist_plausibility*`). Building the config builds
    every strategy and the check once, so a bad value stops here, not mid-training.
    """

    # Parameters that control selection
    autoassist_strategy: str = field(
        default=AUTO,
        metadata={
            "help": "'auto' (the default) is 'adaptive': each epoch keeps the plain run's batches and optimizer "
            "steps, each batch thinned to the instances the Boss has not yet learned (from its loss memory, "
            "autoassist_learned_margin), the kept ones weighted by 1/p; with the pairs check on a seq2seq set of "
            "token-id pairs. 'autoassist' lets a learned Assistant shrink each epoch (fewer batches); 'none' keeps "
            "every instance through the same code path (to measure its overhead).",
            "choices": list(STRATEGIES),
        },
    )
    autoassist_base_prob: float | None = field(
        default=None,
        metadata={"help": "Floor on every instance's acceptance probability, in (0, 1]; 1.0 keeps everything. Unset: "
                  "the strategy's own, 0.3 (the paper's value) for 'autoassist', 0.1 for 'adaptive' (whose floor in "
                  "force is autoassist_learned_visits / the planned epochs, never below it). Under 'autoassist' the "
                  "floor in force is max(base_prob, 1 - confidence): with an Assistant of skill about 0.5 (the suite's "
                  "translation tasks) any base_prob below 0.5 trains the same run."},
    )
    autoassist_target_keep: float | None = field(
        default=None,
        metadata={"help": "'autoassist' only: keep this fraction of each epoch after the warmup on average, in (0, 1] "
                  "(a budget); the Assistant's acceptance probabilities are scaled by one factor to meet it, so it "
                  "still decides which (with no skill, that is random skipping at the budget). Unset, the rule decides "
                  "how much to keep."},
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
    autoassist_learned_margin: float = field(
        default=0.1,
        metadata={"help": "'adaptive' only: an instance whose probability off its target, 1 - exp(-loss), is below "
                  "this counts as learned and is kept in proportion (half of it: half of the time, never below "
                  "autoassist_base_prob), its loss scaled by 1/p; instances still being learned are always kept."},
    )
    autoassist_smoothing_floor: bool = field(
        default=False,
        metadata={"help": "'adaptive' only: read what is left to learn from the loss above the one label smoothing "
                  "leaves on an instance the Boss fits exactly (the smoothed target's entropy: 1.08 nats at "
                  "label_smoothing_factor=0.1 over 2,000 tokens). Without it, under label smoothing no instance ever "
                  "counts as learned and 'adaptive' keeps everything. Off by default: on the suite's translation recipe "
                  "no pair came within the margin of its floor, so it changed nothing there (docs/limits.md)."},
    )
    autoassist_token_reading: str = field(
        default="loss",
        metadata={
            "help": "'adaptive' only, where the targets are tokens (seq2seq, causal LM, token classification): read "
            "what an instance has left to learn as the share of its target tokens whose argmax is not the target "
            "('argmax') or, as on class labels, from its mean token loss ('loss'). Label smoothing and dropout keep "
            "the token loss of a sequence the Boss fits far above the margin (on the suite's translation recipe, "
            "every pair at every length); they move its argmax less. Off: screened on that recipe it kept 0.96 of the "
            "pairs at the converged length and 0.80 at double length, where it ended below the plain run on both "
            "seeds (docs/benchmarks.md, what a translation pair has left to learn).",
            "choices": ["argmax", "loss"],
        },
    )
    autoassist_unlearned_visits: int = field(
        default=8,
        metadata={"help": "'adaptive' only: an instance kept whole (not learned) in this many decided epochs is kept "
                  "at the floor from then on, as a learned one, its loss scaled by 1/p: what the Boss has not learned "
                  "in that many visits it learns only by memorising, if at all. Only once most of the set is learned "
                  "(autoassist/learned_fraction at least 0.5 in the logs; the gate then stays open): under label "
                  "smoothing, where no instance comes within the margin, it floors nothing; on a recipe of 8 epochs "
                  "or fewer the floor is 1. Ignored with autoassist_retained_visits. 0: an instance not learned is "
                  "kept in every epoch (the default until 2026-12-07; screened in docs/benchmarks.md, candidates for "
                  "the default)."},
    )
    autoassist_retained_visits: int = field(
        default=0,
        metadata={"help": "'adaptive' only: when positive, an instance is skipped only after its loss stayed within "
                  "autoassist_learned_margin on this many visits in a row, then kept with a chance halved at each "
                  "further such visit (never below autoassist_base_prob); a visit outside the margin starts it over. "
                  "0: each instance is kept in proportion to what its last loss leaves to learn. Screened at 2 with "
                  "autoassist_base_prob=0.1: more saved on long recipes, below the plain run on the converged ResNet "
                  "(docs/benchmarks.md, candidates for the default)."},
    )
    autoassist_learned_visits: float = field(
        default=8.0,
        metadata={"help": "'adaptive' only: floor each instance's chance at autoassist_learned_visits / the planned "
                  "epochs (never below autoassist_base_prob, at most 1), so that a learned instance is still visited "
                  "about this many times over the run whatever its length: a recipe of 8 epochs or fewer keeps "
                  "everything, a 10-epoch one about 0.9 of its instances, a 40-epoch one about half (a third with "
                  "autoassist_unlearned_visits). 0: the floor is autoassist_base_prob alone, whatever the length."},
    )
    autoassist_adaptive_reweight: bool = field(
        default=True,
        metadata={"help": "'adaptive' only: scale each kept instance's loss by 1/p, so that the expected gradient is "
                  "the full batch's; False trains the kept instances at weight 1 (less variance, a gradient leaning "
                  "towards the instances still being learned). Screened: it does not remove the converged ResNet's "
                  "shortfall (docs/benchmarks.md, candidates for the default)."},
    )
    autoassist_keep_steps: bool | None = field(
        default=None,
        metadata={"help": "Keep the plain run's batches and optimizer steps in a shrunk epoch, each batch thinned to "
                  "its kept instances (True), or train fewer full batches (False); unset: the strategy's own (True "
                  "for 'adaptive', False otherwise)."},
    )
    autoassist_thinned_batch_multiple: int = field(
        default=1,
        metadata={"help": "With thinned batches, top each one up to a multiple of this many instances with others of "
                  "its slice, drawn at random and trained at weight 0 (they shape the batch and refresh their loss "
                  "memory but add no gradient; with batch norm they join the batch's statistics). For a model whose "
                  "kernels are built anew for each batch shape (torch.compile, XLA); on CPU (oneDNN) thinned ResNet "
                  "runs took as long with it as without over five seeds (docs/benchmarks.md, batch shapes), with "
                  "about 4 more instances forwarded per 100. 1 leaves each batch at the size the draw gives."},
    )
    autoassist_reweight: bool = field(
        default=False,
        metadata={"help": "'autoassist' only: scale each kept instance's loss by 1/p (unbiased gradient)."},
    )

    # Parameters that control the Assistant
    autoassist_assistant: str = field(
        default="auto",
        metadata={
            "help": "Model that scores instances: 'pixels', 'bag_of_tokens', 'boss_features' (the Boss's own "
            "representation, the input of its output head, recorded in the training forward), 'loss_memory' (only "
            "each instance's last losses and its class), or 'auto' to pick from the dataset's columns (pixel_values "
            "-> pixels, input_ids -> bag_of_tokens, anything else -> boss_features).",
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
        metadata={"help": "Let the Assistant also read each instance's last Boss loss, whether it was seen, and how "
                  "long ago (False: the paper's input-only Assistant)."},
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
        metadata={"help": "Train the Assistant inside the training step (True: two runs with one seed keep the same "
                  "instances and end the same) or in a background thread (False: it learns at the thread's pace, so "
                  "decisions may differ run to run); unset: inside the step on CPU, in a thread on an accelerator."},
    )

    # Parameters that control the plausibility check
    autoassist_plausibility: str | None = field(
        default="auto",
        metadata={
            "help": "'pairs': before training, learn from the training pairs themselves whether each seq2seq target "
            "fits its own source better than other sources (cross-fitted contrastive encoders), and never train on "
            "the pairs a calibrated mixture finds misaligned. 'labels': when the third epoch starts, whether each "
            "class label agrees with the labels of its nearest neighbours in the Boss's own representation better "
            "than another label would, and never train again on the instances whose label looks wrong. On clean "
            "data either flags (almost) nothing. 'auto' (default), unless autoassist_strategy='none' (the plain "
            "run): 'pairs' on an encoder-decoder model's set of source and target token ids, 'labels' on a set of "
            "class ids of up to 200,000 instances (it drops nothing if it would drop most), else no check. 'none': "
            "no check.",
            "choices": ["auto", "pairs", "labels", "none", None],
        },
    )
    autoassist_plausibility_threshold: float = field(
        default=0.5,
        metadata={"help": "Flag an instance whose probability of being implausible is above this, in (0, 1)."},
    )
    autoassist_plausibility_folds: int = field(
        default=5,
        metadata={"help": "'pairs' only: each instance is scored by an encoder trained on the other folds."},
    )
    autoassist_plausibility_passes: int = field(
        default=32,
        metadata={"help": "'pairs' only: passes of each plausibility encoder over its folds, stopped at 100,000 pairs "
                  "seen (the bound on a large corpus's cost: past ~4,000 pairs the check's seconds stop growing)."},
    )
    autoassist_plausibility_rounds: int = field(
        default=2,
        metadata={"help": "'pairs' only: rounds of encoders; each round after the first trains without the pairs the "
                  "one before flagged, and scores every pair again (1 halves the check's seconds on misaligned data, "
                  "at a few points of recall: README, 'The pairs check')."},
    )
    autoassist_plausibility_encoder: str | None = field(
        default=None,
        metadata={"help": "'pairs' only: a pretrained sentence encoder (a Hub id, or a folder written by "
                  "`save_pretrained` with its tokenizer) that scores each pair by the cosine of its source's and "
                  "target's mean embeddings, instead of encoders learned from the pairs; the pairs are decoded to "
                  "text with the trainer's tokenizer (`processing_class`)."},
    )
    autoassist_stream_buffer: int = field(
        default=20_000,
        metadata={"help": "'pairs' on a streamed training set: the check learns from the stream's first this many "
                  "pairs, then checks each later pair as it is read."},
    )

    # Parameters that control the report
    autoassist_write_report: bool | None = field(
        default=None,
        metadata={"help": "Write autoassist_diagnostics.json/.png (and after a plausibility check "
                  "autoassist_plausibility.jsonl/.png) into output_dir at the end; default: when the Trainer saves "
                  "(save_strategy != 'no') and the run selects (a strategy other than 'none', or a plausibility "
                  "check): 'none' without a check writes only what the plain Trainer writes."},
    )

    @property
    def needs_irreducible_losses(self) -> bool:
        """Whether the run trains irreducible-loss models: a label that reads them, or
        `autoassist_implausible_keep_prob` (under `"auto"` too, which then resolves to `"autoassist"`)."""
        return self.autoassist_strategy in ("autoassist", AUTO) and (
            LABEL_RULES[self.autoassist_label].reads_irreducible or self.autoassist_implausible_keep_prob is not None
        )

    def __post_init__(self):
        super().__post_init__()
        if self.autoassist_thinned_batch_multiple < 1:
            raise ValueError(
                f"`autoassist_thinned_batch_multiple` must be a positive number of instances, got "
                f"{self.autoassist_thinned_batch_multiple}; 1 leaves thinned batches at the size the draw gives."
            )
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
        if self.autoassist_warmup_epochs < 0:
            raise ValueError(
                f"`autoassist_warmup_epochs` must be >= 0, got {self.autoassist_warmup_epochs}. "
                "Use 0 to let the Assistant select from the first epoch on."
            )
        if self.autoassist_stream_buffer < 2 * self.autoassist_plausibility_folds:
            raise ValueError(
                f"`autoassist_stream_buffer` must be at least 2 pairs per fold ({2 * self.autoassist_plausibility_folds}"
                f"), got {self.autoassist_stream_buffer}: the check learns from that many of the stream's first pairs."
            )
        if isinstance(self.autoassist_keep_prob, (int, float)):
            self.autoassist_keep_prob = [float(self.autoassist_keep_prob)]
        self.autoassist_keep_prob = [float(p) for p in self.autoassist_keep_prob]
        if self.autoassist_full_data_finish is not None and not 0.0 <= self.autoassist_full_data_finish < 1.0:
            raise ValueError(
                f"`autoassist_full_data_finish` must be in [0, 1), got {self.autoassist_full_data_finish}. "
                "Use 0 to select until the end, or `autoassist_strategy='none'` to never select."
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
        if self.autoassist_rescore_every is not None and self.autoassist_rescore_every < 1:
            raise ValueError(
                f"`autoassist_rescore_every` must be a number of batches >= 1, got {self.autoassist_rescore_every}; "
                "leave it unset to decide each epoch once, at its start."
            )
        # each strategy checks its own options (an option of a strategy not in use is checked all the same), and
        # so does the plausibility check
        for strategy in STRATEGY_CLASSES.values():
            strategy.from_args(self)
        PlausibilityCheck.from_args(self)


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
