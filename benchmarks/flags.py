"""How well a plausibility check's scores and flags find the planted noise of a benchmark task: AUC, precision,
recall, and the share flagged (or kept) on each side. Used by the detection study (`plausibility.py`) and by the
suite's runs (`runs.py`)."""

import torch


def auc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Probability that a positive (misaligned) pair scores below an aligned one, ties counting half (Mann-Whitney)."""
    ranks = torch.empty(len(scores))
    order = torch.argsort(scores, stable=True)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float)
    for value in scores.unique()[torch.unique(scores, return_counts=True)[1] > 1]:  # ties: their mean rank
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    positives, negatives = int(positive.sum()), int((~positive).sum())
    above = ranks[~positive].sum() - negatives * (negatives + 1) / 2  # pairs (aligned above misaligned)
    return float(above / (positives * negatives))


def noise_mask(noisy_indices: list[int], size: int) -> torch.Tensor:
    """`(size,)` booleans, True at the planted noise."""
    noisy = torch.zeros(size, dtype=torch.bool)
    noisy[noisy_indices] = True
    return noisy


def shares(selected: torch.Tensor, noisy: torch.Tensor) -> tuple[float, float]:
    """The fractions of the noisy and of the clean instances that the boolean mask `selected` covers."""
    return (round(float((selected & noisy).sum() / noisy.sum().clamp(min=1)), 4),
            round(float((selected & ~noisy).sum() / (~noisy).sum().clamp(min=1)), 4))  # fmt: skip


def flag_quality(plausibility, noisy_indices: list[int]) -> dict:
    """The check's `Plausibility` against the planted `noisy_indices` (instances never scored count as plausible)."""
    scores, flagged = plausibility.scores.nan_to_num(nan=float("inf")), plausibility.flagged
    noisy = noise_mask(noisy_indices, len(flagged))
    hits = int((flagged & noisy).sum())
    flagged_noisy, flagged_clean = shares(flagged, noisy)
    return {
        "auc": round(auc(scores, noisy), 4),
        "precision": None if not flagged.any() else round(hits / int(flagged.sum()), 4),
        "recall": round(hits / int(noisy.sum()), 4),
        "flagged_noisy": flagged_noisy,
        "flagged_clean": flagged_clean,
    }
