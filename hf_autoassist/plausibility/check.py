"""`autoassist_plausibility`: the options of the plausibility check, checked where they are read, and the check
run once per training run on the main process, its flags shared with every rank: before training for pairs
(`PlausibilityCheck`), after two epochs for class labels (`LabelCheck`, which reads the Boss's features).

The default, `"auto"`, is `"pairs"` where that check is measured to pay and safe — a selecting run of an
encoder-decoder model on a set of source and target token ids — `"labels"` on a set of class ids of a size whose
features fit in memory, and nothing elsewhere (`resolve_method`)."""

import time
from dataclasses import asdict, replace

import torch
from accelerate.utils import broadcast
from transformers.utils import logging

from ..columns import class_ids, column_names, labels_are_sequences
from ..head_features import FeatureMemory
from . import METHODS, REFIT_ROUNDS, Plausibility, check_pair_columns, check_text_decoder, plausibility_for
from .labels import label_plausibility
from .pretrained import check_sentence_encoder

logger = logging.get_logger(__name__)
# the labels check decides when this epoch starts: after two passes the Boss's features of the first pass (recorded
# while it changed fastest) have all been replaced (measured: after one pass 86% of wrong labels and 7.0% of right
# ones flagged, after two 87% and 5.1%, k = 50)
DECIDE_AT_EPOCH = 2
AUTO = "auto"
# what users may set: a method, "auto" (the default) or "none" / None for no check
CHOICES = (AUTO, *METHODS, "none")
# "auto" trusts a pairs check only when its mixture leaves most pairs plausible: a corpus whose pairs mostly do not
# fit is far likelier an encoder that did not learn (too few or too unlike pairs) than a corpus mostly misaligned, and
# a default must not drop most of a user's data on a guess (set "pairs" to act on it anyway)
AUTO_MAX_FLAGGED = 0.5
# "auto" checks class labels on sets up to this size: the check keeps every instance's features until it decides
# (a set of 200,000 with 512 features holds 400 MB), and above it a user asks for it by name
AUTO_LABELS_MAX_INSTANCES = 200_000


def resolve_method(method: str | None, strategy: str, is_encoder_decoder: bool, dataset, folds: int = 5) -> str | None:
    """The check a run makes: `method` itself, except `"auto"`, which is nothing when the strategy is `"none"` (which
    stays the plain run), else `"pairs"` when the model is an encoder-decoder (a causal LM's labels repeat its
    inputs) and the set holds each pair's source and target token ids (`input_ids`, token-sequence `labels`), at
    least two per fold; `"labels"` when the set's labels are class ids of at least two classes and it holds at most
    `AUTO_LABELS_MAX_INSTANCES`; else nothing.

    Why `"labels"` by default (docs/benchmarks.md, suite v3, 10,000 test images): with 30% wrong labels the check
    alone gains 0.82 points [0.39, 1.25] over the plain run; on clean labels it flags about 0.5% and ties it."""
    if method in (None, "none"):
        return None
    if method != AUTO:
        return method
    if strategy == "none":
        return None
    if is_encoder_decoder:
        names = column_names(dataset)
        if "input_ids" not in names or "labels" not in names or not labels_are_sequences(dataset):
            return None  # e.g. speech-to-text: `input_features` carry the source
        return "pairs" if len(dataset) >= 2 * folds else None
    if len(dataset) > AUTO_LABELS_MAX_INSTANCES:
        return None
    labels = class_ids(dataset)
    return "labels" if labels is not None and len(labels.unique()) >= 2 else None


class PlausibilityCheck:
    """Flags the training instances that do not fit before training starts; the run never trains on them.

    Args (the flat option each comes from in brackets; `from_args` reads them):
        method (`str`, *optional*): `"pairs"` scores whether each seq2seq target fits its own source; `"auto"`
            decides per run (`resolve_method`, `resolved`); None or `"none"` checks nothing
            (`autoassist_plausibility`).
        threshold (`float`, defaults to 0.5): flag an instance whose probability of belonging to the implausible
            component is above this, in (0, 1) (`autoassist_plausibility_threshold`).
        folds (`int`, defaults to 5), passes (`int`, defaults to 32): each instance is scored by an encoder trained
            `passes` times over the other `folds - 1` folds, on at most `MAX_PAIRS_SEEN` pairs in all
            (`autoassist_plausibility_folds`, `_passes`).
        rounds (`int`, defaults to 2): rounds of encoders, each after the first trained without the pairs the one
            before flagged (`autoassist_plausibility_rounds`; a clean corpus stops after the first).
        encoder (`str`, *optional*): a pretrained sentence encoder (Hub id or folder) that scores the pairs instead
            (`autoassist_plausibility_encoder`, `pretrained.py`); pairs only.
    """

    def __init__(
        self, method: str | None = None, threshold: float = 0.5, folds: int = 5, passes: int = 32,
        encoder: str | None = None, rounds: int = REFIT_ROUNDS,
    ):  # fmt: skip
        if method is not None and method not in CHOICES:
            raise ValueError(f"`autoassist_plausibility` must be one of {list(CHOICES)} or None, got {method!r}.")
        if not 0.0 < threshold < 1.0:
            raise ValueError(
                f"`autoassist_plausibility_threshold` must be in (0, 1), got {threshold}: an instance is flagged when "
                "its probability of being implausible is above it (0.5 is the Bayes decision)."
            )
        if folds < 2:
            raise ValueError(
                f"`autoassist_plausibility_folds` must be >= 2, got {folds}: each instance is scored by an encoder "
                "that never trained on it."
            )
        if passes < 1:
            raise ValueError(f"`autoassist_plausibility_passes` must be >= 1, got {passes}.")
        if rounds < 1:
            raise ValueError(
                f"`autoassist_plausibility_rounds` must be >= 1, got {rounds}: the first round scores every pair, each "
                "later one again without the pairs the round before flagged."
            )
        if encoder is not None and method not in (AUTO, "pairs"):
            raise ValueError(
                f"`autoassist_plausibility_encoder` scores seq2seq pairs, but `autoassist_plausibility` is {method!r}: "
                "set it to 'pairs' (or 'auto', the default), or unset the encoder."
            )
        self.method, self.threshold, self.folds, self.passes = method, threshold, folds, passes
        self.encoder, self.rounds = encoder, rounds
        self.automatic = False  # chosen by "auto": an inconclusive check drops nothing

    @classmethod
    def from_args(cls, args) -> "PlausibilityCheck":
        return cls(
            args.autoassist_plausibility, args.autoassist_plausibility_threshold, args.autoassist_plausibility_folds,
            args.autoassist_plausibility_passes, args.autoassist_plausibility_encoder,
            args.autoassist_plausibility_rounds,
        )

    def resolved(self, strategy: str, is_encoder_decoder: bool, dataset) -> "PlausibilityCheck":
        """This check with `"auto"` / `"none"` replaced by what the run does (`resolve_method`)."""
        method = resolve_method(self.method, strategy, is_encoder_decoder, dataset, self.folds)
        check = PlausibilityCheck(
            method, self.threshold, self.folds, self.passes, self.encoder if method == "pairs" else None, self.rounds
        )
        check.automatic = self.method == AUTO
        if check.automatic and method is None and self.encoder is not None:
            logger.warning(
                "`autoassist_plausibility_encoder` is set, but 'auto' makes no pairs check on this run (it needs a "
                "selecting strategy, an encoder-decoder model and `input_ids` with token-sequence `labels`); set "
                "`autoassist_plausibility='pairs'` to make it."
            )
        if check.automatic and method == "pairs":
            logger.info(
                f"`autoassist_plausibility='auto'`: checking whether each of the {len(dataset)} training pairs' target "
                "fits its source ('pairs'); set it to 'none' to skip the check."
            )
        return check

    def run(
        self, dataset, seed: int, accelerator, tokenizer=None
    ) -> tuple[Plausibility | None, torch.Tensor | None]:  # fmt: skip
        """The main process's `Plausibility` (None elsewhere) and the `(N,)` flags every rank receives; (None, None)
        when no method is set or the method decides during training (`"labels"`: [`LabelCheck`]). `tokenizer`: the
        one that made the pairs' ids, which a pretrained `encoder` reads them back to text with."""
        if self.method != "pairs":
            return None, None
        # on every rank: one that stopped alone would leave the others waiting
        check_pair_columns(dataset)
        if self.encoder is not None:
            check_text_decoder(tokenizer)
            check_sentence_encoder(self.encoder)
        plausibility = None
        flagged = torch.zeros(len(dataset), dtype=torch.bool)
        if accelerator.is_main_process:
            plausibility = plausibility_for(
                dataset, self.method, self.threshold, folds=self.folds, passes=self.passes, seed=seed,
                encoder=self.encoder, tokenizer=tokenizer, device=accelerator.device, rounds=self.rounds,
            )  # fmt: skip
            if self.automatic:
                plausibility = dropping_nothing_if_most(plausibility, "pairs implausible", "pairs really are misaligned")
            flagged = plausibility.flagged
            summary = plausibility.summary()
            logger.warning(
                f"Plausibility ({self.method}): {summary['flagged']} of {len(dataset)} training instances flagged "
                f"({summary['flagged_fraction']:.1%}; the mixture's implausible share "
                f"{summary['implausible_share']:.1%}; {summary['seconds']:.0f} s); the run does not train on them."
            )
        return plausibility, shared_flags(flagged, accelerator, self.method)


def dropping_nothing_if_most(plausibility: Plausibility, found: str, really: str) -> Plausibility:
    """A check chosen by "auto" that flags more than `AUTO_MAX_FLAGGED` of the training set drops nothing (with a
    warning that says how to drop them anyway): it is likelier a check that did not learn than a set mostly wrong."""
    share = plausibility.flagged.float().mean()
    if share <= AUTO_MAX_FLAGGED:
        return plausibility
    logger.warning(
        f"Plausibility (auto): the {plausibility.method} check found {share:.0%} of the training {found}, more than a "
        f"default acts on: nothing is dropped. If most {really}, set `autoassist_plausibility='{plausibility.method}'` "
        "to drop them."
    )
    return replace(plausibility, flagged=torch.zeros_like(plausibility.flagged))


def shared_flags(flagged: torch.Tensor, accelerator, method: str) -> torch.Tensor:
    """The main process's flags on every rank; a check that flagged everything stops every rank with an error."""
    if accelerator.num_processes > 1:
        flagged = broadcast(flagged.to(torch.uint8).to(accelerator.device), from_process=0).cpu().bool()
    if flagged.all():  # after the broadcast, so that every rank stops
        raise ValueError(
            f"The plausibility check ({method}) flagged every one of the {len(flagged)} training instances: their "
            "inputs and labels do not match at all (a wrong `labels` column?). Check the data, or unset "
            "`autoassist_plausibility`."
        )
    return flagged


class LabelCheck:
    """`autoassist_plausibility="labels"`: wrong class labels, decided once, when epoch `DECIDE_AT_EPOCH` (the
    third) starts, from the Boss's features recorded while it trained on every instance (`labels.py`). From then on
    the run never trains on the flagged instances; a run of fewer epochs checks nothing.

    Args:
        labels (`torch.Tensor`): `(N,)` class ids of the training set.
        threshold (`float`): flag an instance whose probability of a wrong label is above this.
    """

    def __init__(self, labels: torch.Tensor, threshold: float = 0.5, automatic: bool = False):
        self.labels, self.threshold = labels, threshold
        # chosen by "auto": says less, and drops nothing when it would drop most of the data
        self.automatic = automatic
        self.memory = FeatureMemory(len(labels))
        self.flagged: torch.Tensor | None = None  # decided flags, on every rank
        self.plausibility: Plausibility | None = None  # on the main process

    @classmethod
    def from_args(cls, dataset, args, automatic: bool = False) -> "LabelCheck":
        labels = class_ids(dataset)
        if labels is None:
            raise ValueError(
                "`autoassist_plausibility='labels'` checks class labels: the training set needs a `labels` (or "
                "`label`) column of class ids (non-negative integers). For seq2seq pairs use 'pairs'."
            )
        if args.max_steps <= 0 and args.num_train_epochs <= DECIDE_AT_EPOCH:
            (logger.info if automatic else logger.warning)(
                f"`autoassist_plausibility='labels'` decides when epoch {DECIDE_AT_EPOCH} starts (counting from 0), "
                f"from the Boss's features of the epochs before; this run has {args.num_train_epochs} epoch(s), so "
                "no label will be checked."
            )
        return cls(labels, args.autoassist_plausibility_threshold, automatic)

    def due(self, epoch: int) -> bool:
        """Whether to decide at the start of `epoch` (once)."""
        return self.flagged is None and epoch >= DECIDE_AT_EPOCH

    def record(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        if self.flagged is None:
            self.memory.record(indices.cpu(), features)

    def decide(self, accelerator, seed: int) -> torch.Tensor:
        """The flags, the same on every rank (every rank must call it: the features are merged first)."""
        self.memory.merge(accelerator)
        flagged = torch.zeros(len(self.labels), dtype=torch.bool)
        if accelerator.is_main_process:
            start = time.perf_counter()
            self.plausibility = replace(self._score(seed), seconds=time.perf_counter() - start)
            if self.automatic:
                self.plausibility = dropping_nothing_if_most(self.plausibility, "labels wrong", "labels really are wrong")
            flagged = self.plausibility.flagged
            summary = self.plausibility.summary()
            logger.warning(
                f"Plausibility (labels): {summary['flagged']} of {len(flagged)} training labels flagged "
                f"({summary['flagged_fraction']:.1%}; estimated share of wrong labels "
                f"{summary['implausible_share']:.1%}; {summary['seconds']:.0f} s); the run does not train on them "
                "from now on."
            )
        self.flagged = shared_flags(flagged, accelerator, "labels")
        return self.flagged

    def _score(self, seed: int) -> Plausibility:
        seen = self.memory.seen
        if not seen.any():  # a Boss without a linear head records none (`head_features.output_head`)
            (logger.info if self.automatic else logger.warning)(
                "No training instance has recorded features (the model has no linear output head AutoAssist can "
                "read): no label is checked."
            )
            nothing, unscored = torch.zeros(seen.shape), torch.full(seen.shape, float("nan"))
            # each instance's own label stands as its suggestion: the report has the same columns either way
            return Plausibility("labels", unscored, nothing, nothing.bool(), 0.0, self.threshold, self.labels.clone())
        if not seen.all():
            logger.warning(
                f"{int((~seen).sum())} training instances have no recorded features (not trained on yet): their "
                "labels are not checked."
            )
        found = label_plausibility(self.memory.features[seen], self.labels[seen], self.threshold, seed)
        scores, posterior = torch.full(seen.shape, float("nan")), torch.zeros(seen.shape)
        scores[seen], posterior[seen] = found.scores, found.posterior
        flagged = torch.zeros(seen.shape, dtype=torch.bool)
        flagged[seen] = found.flagged
        suggested = self.labels.clone()  # an instance without features: no other label to suggest
        suggested[seen] = found.suggested
        return Plausibility("labels", scores, posterior, flagged, found.implausible_share, self.threshold, suggested)

    def state_dict(self) -> dict:
        """The flags (and on the main process the scores) once decided; before that, the features recorded so far."""
        return {
            "flagged": self.flagged,
            "plausibility": None if self.plausibility is None else asdict(self.plausibility),
            "memory": None if self.flagged is not None else self.memory.state_dict(),
        }

    def load_state_dict(self, state: dict | None) -> None:
        if state is None:
            return
        self.flagged = state["flagged"]
        if state.get("plausibility") is not None:
            self.plausibility = Plausibility(**state["plausibility"])
        if state["memory"] is not None:
            self.memory.load_state_dict(state["memory"])
