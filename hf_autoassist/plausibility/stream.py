"""The pairs check on a stream: learned from a first buffer of the stream, then applied to each pair as it arrives.

The buffer is checked as a map-style set is (`plausibility_for`'s cross-fitted encoders and calibrated mixture,
in rounds). What the buffer's fit keeps for later pairs is what makes a later pair's score mean the same thing: the
fold's encoders, the mixture's plausible component and share, and its null sample. A pair of the buffer is scored
again by the encoder that never trained on it. Any other pair, which no encoder trained on, is scored by the mean of
every fold encoder's cosine, read with the buffer's mixture. The mean carries less of each encoder's own noise than
one cosine, so both components are narrower than the mixture assumes, which moves each pair away from the decision:
on the whole Tatoeba stream (167,130 pairs, a quarter misaligned, buffer 20,000) aligned pairs flagged 2.24% → 2.00%
and recall 97.6% → 97.9% against one encoder per pair (`benchmarks/stream_fit_probe.py`). A pair's flag depends on
its content only: the same in every epoch, whatever order the stream comes in.
"""

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import Plausibility
from .mixture import MAX_NULL_SAMPLE, fit_null_mixture, null_density
from .pairs import MAX_PAIRS_SEEN, PairEncoder, cross_fitted_pair_scores, padded_ids

# pairs scored at a time as the stream is read: enough to batch the encoders, few enough to keep the first batch near
SCORE_CHUNK = 256


def pair_key(source, target) -> bytes:
    """A digest of a pair's token ids (negative ids such as -100 dropped), the same whatever container holds them."""
    digest = hashlib.blake2b(digest_size=8)
    for side in (source, target):
        ids = np.asarray(side, dtype=np.int64).flatten()
        digest.update(ids[ids >= 0].tobytes())
        digest.update(b"|")
    return digest.digest()


@dataclass
class StreamedPairsCheck:
    """A pairs check fitted on a stream's first pairs, that flags any later pair on its own.

    encoders: the last round's encoders, one per fold; buffer_folds: the fold of each buffer pair (by `pair_key`);
    share, mean, std: the mixture's implausible share and plausible component; null: its null sample;
    pad_ids: each side's padding id (ids at or above it were never seen, and are read as padding);
    buffer: the [`Plausibility`] of the buffer's pairs, for the report; active: False when it flags nothing (a check
    chosen by "auto" that found most of the buffer implausible).
    """

    encoders: list
    buffer_folds: dict
    share: float
    mean: float
    std: float
    null: torch.Tensor
    pad_ids: tuple[int, int]
    threshold: float
    buffer: Plausibility
    active: bool = True

    @classmethod
    def fit(
        cls, sources: list, targets: list, threshold: float = 0.5, folds: int = 5, passes: int = 32, seed: int = 0,
        rounds: int = 2, max_pairs_seen: int = MAX_PAIRS_SEEN,
    ) -> "StreamedPairsCheck":  # fmt: skip
        """The map-style check of the buffer (`sources`, `targets`: its pairs' token ids), kept for later pairs."""
        start = time.perf_counter()
        flagged = None
        for _ in range(rounds):
            pairs = cross_fitted_pair_scores(
                sources, targets, folds=folds, passes=passes, seed=seed, exclude=flagged, max_pairs_seen=max_pairs_seen
            )
            fit = fit_null_mixture(pairs.scores, pairs.null_scores)
            flagged = fit.posterior > threshold
            if not flagged.any():
                break
        null = pairs.null_scores.double()
        if len(null) > MAX_NULL_SAMPLE:  # the sample `null_density` reads, kept as it read it
            null = null[torch.randperm(len(null), generator=torch.Generator().manual_seed(0))[:MAX_NULL_SAMPLE]]
        buffer = Plausibility(
            "pairs", pairs.scores, fit.posterior, flagged, fit.implausible_share, threshold,
            seconds=time.perf_counter() - start,
        )  # fmt: skip
        folds_of = {pair_key(s, t): int(f) for s, t, f in zip(sources, targets, pairs.fold)}
        return cls(
            pairs.encoders, folds_of, fit.implausible_share, fit.plausible_mean, fit.plausible_std, null,
            pairs.pad_ids, threshold, buffer,
        )  # fmt: skip

    def posterior(self, scores: torch.Tensor) -> torch.Tensor:
        """Each score's probability of the implausible component, under the buffer's mixture."""
        scores = scores.double()
        implausible = self.share * null_density(self.null)(scores)
        plausible = torch.exp(-0.5 * ((scores - self.mean) / self.std) ** 2) / (self.std * (2 * torch.pi) ** 0.5)
        return (implausible / (implausible + (1 - self.share) * plausible).clamp_min(1e-300)).float()

    @torch.no_grad()
    def cosines(self, sources: list, targets: list) -> torch.Tensor:
        """`(folds, B)` each pair's cosine under every fold's encoder."""
        source_ids, _ = padded_ids(sources, self.pad_ids[0])
        target_ids, _ = padded_ids(targets, self.pad_ids[1])
        source_ids.clamp_(max=self.pad_ids[0])  # a token the buffer never had: padding, left out of the mean
        target_ids.clamp_(max=self.pad_ids[1])
        embedded = (encoder(source_ids, target_ids) for encoder in self.encoders)
        return torch.stack([(x * y).sum(-1) for x, y in embedded])

    def scores(self, sources: list, targets: list) -> torch.Tensor:
        """`(B,)` each pair's cosine under encoders that never trained on it: a buffer pair's own held-out encoder,
        every encoder's mean for any other pair."""
        folds = torch.tensor([self.buffer_folds.get(pair_key(s, t), -1) for s, t in zip(sources, targets)])
        every = self.cosines(sources, targets)
        scores = every.mean(0)
        buffered = (folds >= 0).nonzero().flatten()
        scores[buffered] = every[folds[buffered], buffered]
        return scores

    def flags(self, sources: list, targets: list) -> torch.Tensor:
        """`(B,)` True for each pair the check drops."""
        if not self.active or not sources:
            return torch.zeros(len(sources), dtype=torch.bool)
        return self.posterior(self.scores(sources, targets)) > self.threshold

    def state_dict(self) -> dict:
        """Everything a resumed run (or another rank) needs to flag the same pairs."""
        return {
            "encoders": [encoder.state_dict() for encoder in self.encoders],
            "dim": self.encoders[0].source.embedding_dim,
            "buffer_folds": self.buffer_folds,
            "mixture": (self.share, self.mean, self.std),
            "null": self.null,
            "pad_ids": tuple(self.pad_ids),
            "threshold": self.threshold,
            "buffer": vars(self.buffer),
            "active": self.active,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> "StreamedPairsCheck":
        source_pad, target_pad = state["pad_ids"]
        encoders = []
        for weights in state["encoders"]:
            encoder = PairEncoder(source_pad, target_pad, state["dim"])
            encoder.load_state_dict(weights)
            encoders.append(encoder.eval())
        share, mean, std = state["mixture"]
        return cls(
            encoders, state["buffer_folds"], share, mean, std, state["null"], (source_pad, target_pad),
            state["threshold"], Plausibility(**state["buffer"]), state["active"],
        )  # fmt: skip
