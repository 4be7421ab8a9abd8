"""Plausibility: which training instances do not fit — a target that does not translate its source — learned from
the training set itself, with a decision that flags nothing on clean data.

`plausibility_for(dataset, "pairs")` scores every pair with cross-fitted contrastive encoders (`pairs.py`), fits the
calibrated mixture of `mixture.py` (by default twice: the second encoders do not train on the pairs the first
flagged), and returns a [`Plausibility`]: scores, posteriors, flags, and a JSONL report
(`autoassist_plausibility.jsonl`, one line per instance, readable with `datasets.load_dataset("json", ...)`; the
flagged instances are also drawn, `gallery.py`). A user who has a pretrained sentence encoder
names it instead (`pretrained.py`): it scores the pairs decoded to text, in one round.
"""

import json
import os
import time
from dataclasses import dataclass

import torch

from ..columns import column_names, labels_are_sequences, read_column
from .mixture import MixtureFit, fit_null_mixture
from .pairs import MAX_PAIRS_SEEN, PairScores, cross_fitted_pair_scores
from .pretrained import encoder_pair_scores

REPORT_NAME = "autoassist_plausibility.jsonl"
# pairs: the encoders of a second round train without the pairs the first flagged, and score every pair again.
# Measured on the suite's Multi30k with 25% re-paired targets (seed 0): recall 0.877 -> 0.903 and aligned pairs
# flagged 2.4% -> 2.1% (AUC 0.989 -> 0.992); a third round changed neither (0.906, 2.2%); on Tatoeba (3 seeds)
# recall 0.77-0.84 -> 0.80-0.85 and aligned flagged 3.7-5.0% -> 3.2-3.6%. A second round of 16 passes instead of
# 32 loses to one round (recall 0.84-0.86 on Multi30k)
REFIT_ROUNDS = 2
METHODS = ("pairs", "labels")


@dataclass
class Plausibility:
    """Per instance: `scores` (higher fits better), `posterior` (probability of the implausible component) and
    `flagged` (posterior above `threshold`); `implausible_share` is the mixture's estimate of the implausible part;
    `suggested` (class labels only): the label each instance's neighbours favour among the others, for a reviewer;
    `seconds`: the check's wall-clock time on the main process (what it adds to the run)."""

    method: str
    scores: torch.Tensor
    posterior: torch.Tensor
    flagged: torch.Tensor
    implausible_share: float
    threshold: float
    suggested: torch.Tensor | None = None
    seconds: float | None = None

    def summary(self) -> dict:
        return {
            "method": self.method,
            "implausible_share": round(self.implausible_share, 4),
            "flagged": int(self.flagged.sum()),
            "flagged_fraction": round(float(self.flagged.float().mean()), 4),
            "threshold": self.threshold,
            "seconds": None if self.seconds is None else round(self.seconds, 2),
        }

    def least_plausible(self, count: int = 10) -> list[int]:
        """The indices of the `count` flagged instances most likely implausible, most likely first."""
        order = torch.argsort(self.posterior, descending=True, stable=True)
        return [i for i in order.tolist() if self.flagged[i]][:count]

    def write(self, output_dir: str) -> str:
        """`autoassist_plausibility.jsonl`: `index`, `score`, `posterior`, `flagged` (and `suggested_label`, for class
        labels) per instance, least plausible first."""
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, REPORT_NAME)
        with open(path, "w") as f:
            for i in torch.argsort(self.posterior, descending=True, stable=True).tolist():
                score, posterior = float(self.scores[i]), round(float(self.posterior[i]), 5)
                score = None if score != score else round(score, 5)  # NaN: not scored
                row = {"index": i, "score": score, "posterior": posterior, "flagged": bool(self.flagged[i])}
                if self.suggested is not None:
                    row["suggested_label"] = int(self.suggested[i])
                f.write(json.dumps(row) + "\n")
        return path


def holds_pairs(dataset) -> bool:
    """Whether the `"pairs"` method can read the set: `input_ids` and token-sequence `labels`."""
    names = column_names(dataset)
    return "input_ids" in names and "labels" in names and labels_are_sequences(dataset)


def check_pair_columns(dataset) -> None:
    """A set the `"pairs"` method can read, else an error naming its columns."""
    if not holds_pairs(dataset):
        names = column_names(dataset)
        raise ValueError(
            "`autoassist_plausibility='pairs'` tells whether each target fits its source, so it reads both sides of "
            "every pair: the source's token ids (`input_ids`) and the target's (`labels`, one token sequence per "
            f"instance, as a seq2seq set tokenized with `text_target=` has). This training set has columns {names}."
        )


def pair_columns(dataset) -> tuple[list, list]:
    """Each pair's source and target token ids: the `input_ids` and the token-sequence `labels` of a seq2seq set."""
    check_pair_columns(dataset)
    return list(read_column(dataset, "input_ids")), list(read_column(dataset, "labels"))


def check_text_decoder(tokenizer) -> None:
    """A pretrained encoder reads pairs as text: the tokenizer that made their ids must be there to decode them."""
    if tokenizer is None or not hasattr(tokenizer, "batch_decode"):
        raise ValueError(
            "`autoassist_plausibility_encoder` reads each pair as text, decoded from its token ids with the tokenizer "
            f"that made them: pass it to the trainer (`processing_class=tokenizer`); got {type(tokenizer).__name__}."
        )


def pair_texts(dataset, tokenizer) -> tuple[list[str], list[str]]:
    """Each pair's source and target as text, decoded with the tokenizer that made their ids (ignored labels and
    special tokens left out)."""
    check_text_decoder(tokenizer)
    sources, targets = pair_columns(dataset)

    def decode(rows):
        return tokenizer.batch_decode([[t for t in row if t >= 0] for row in rows], skip_special_tokens=True)

    return decode(sources), decode(targets)


def plausibility_for(
    dataset, method: str = "pairs", threshold: float = 0.5, folds: int = 5, passes: int = 32, dim: int = 256,
    seed: int = 0, max_pairs_seen: int = MAX_PAIRS_SEEN, encoder: str | None = None, tokenizer=None,
    device: str | torch.device = "cpu", rounds: int = REFIT_ROUNDS,
) -> Plausibility:  # fmt: skip
    """Scores every instance of `dataset` with `method` and decides which are implausible. Each encoder trains
    `passes` times over its folds, at most on `max_pairs_seen` pairs (the bound on a large corpus's cost), in
    `rounds` rounds (each later one without the pairs the one before flagged; stopped when none is). With
    `encoder` (a pretrained sentence encoder's Hub id or folder) the pairs, decoded with `tokenizer`, are scored by
    it instead, on `device`, in one round (it learns nothing from them)."""
    if method not in METHODS:
        raise ValueError(f"Unknown plausibility method {method!r}; choose one of {list(METHODS)}.")
    if rounds < 1:
        raise ValueError(f"A pairs check needs at least one round of encoders, got rounds={rounds}.")
    start = time.perf_counter()
    if encoder is not None:
        pairs = encoder_pair_scores(*pair_texts(dataset, tokenizer), encoder, seed=seed, device=device)
        fit = fit_null_mixture(pairs.scores, pairs.null_scores)
        seconds = time.perf_counter() - start
        return Plausibility(
            method, pairs.scores, fit.posterior, fit.posterior > threshold, fit.implausible_share, threshold,
            seconds=seconds,
        )  # fmt: skip
    sources, targets = pair_columns(dataset)
    flagged = None
    for _ in range(rounds):
        pairs: PairScores = cross_fitted_pair_scores(
            sources, targets, folds=folds, passes=passes, dim=dim, seed=seed, exclude=flagged,
            max_pairs_seen=max_pairs_seen,
        )
        fit: MixtureFit = fit_null_mixture(pairs.scores, pairs.null_scores)
        flagged = fit.posterior > threshold
        if not flagged.any():  # nothing to leave out of a next round's training
            break
    seconds = time.perf_counter() - start
    return Plausibility(method, pairs.scores, fit.posterior, flagged, fit.implausible_share, threshold, seconds=seconds)


__all__ = ["METHODS", "REPORT_NAME", "Plausibility", "cross_fitted_pair_scores", "fit_null_mixture", "plausibility_for"]
