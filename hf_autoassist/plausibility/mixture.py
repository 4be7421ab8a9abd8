"""The calibrated decision: which instances belong to the implausible component of their scores.

Scores of plausible instances have no known shape, but the scores of implausible ones do: re-pairing an input with
another instance's target (or label) makes an instance that does not fit, and its score, taken the same way, is a
sample of what an implausible instance scores. The scores are then a two-component mixture whose implausible part is
known (a kernel density of that null sample, held fixed) and whose plausible part is fitted (a Gaussian): EM moves the
mixing share and the Gaussian only. On clean data the share goes to zero and nothing is flagged; the posterior of each instance says
how sure the flag is. This is only calibrated when no score comes from a model that trained on its own instance
(cross-fitting, `pairs.py`): a model that memorised a misaligned pair scores it above the null.
"""

from dataclasses import dataclass

import torch

# the null sample's size for its density: enough for a smooth estimate, bounded cost on large sets
MAX_NULL_SAMPLE = 4096


@dataclass
class MixtureFit:
    """implausible_share: the fitted share of instances that score as the null does; posterior `(N,)`: each
    instance's probability of belonging to that component; plausible_mean / plausible_std: the other component."""

    implausible_share: float
    posterior: torch.Tensor
    plausible_mean: float
    plausible_std: float


def null_density(null_scores: torch.Tensor, seed: int = 0):
    """A Gaussian kernel density of the null sample (Scott's bandwidth), as a function of scores."""
    null = null_scores.double().flatten()
    if len(null) > MAX_NULL_SAMPLE:
        null = null[torch.randperm(len(null), generator=torch.Generator().manual_seed(seed))[:MAX_NULL_SAMPLE]]
    bandwidth = max(1.06 * null.std().item() * len(null) ** -0.2, 1e-6)

    def density(scores: torch.Tensor) -> torch.Tensor:
        scores = scores.double()
        values = torch.empty_like(scores)
        for start in range(0, len(scores), 8192):  # (chunk, null) at a time
            z = (scores[start : start + 8192, None] - null[None, :]) / bandwidth
            values[start : start + 8192] = torch.exp(-0.5 * z**2).mean(1) / (bandwidth * (2 * torch.pi) ** 0.5)
        return values

    return density


def fit_null_mixture(
    scores: torch.Tensor, null_scores: torch.Tensor, max_iterations: int = 500, tolerance: float = 1e-6
) -> MixtureFit:
    """Fits `share * null(s) + (1 - share) * Normal(s; mean, std)` to `scores` by EM, the null density fixed."""
    if len(scores) < 2 or len(null_scores) < 2:
        raise ValueError(
            f"A mixture needs at least 2 scores and 2 null scores, got {len(scores)} and {len(null_scores)}."
        )
    scores = scores.double().flatten()
    null_at_scores = null_density(null_scores)(scores)
    share, mean, std = 0.5, scores.mean().item(), max(scores.std().item(), 1e-6)
    posterior = torch.zeros_like(scores)
    for _ in range(max_iterations):
        plausible = torch.exp(-0.5 * ((scores - mean) / std) ** 2) / (std * (2 * torch.pi) ** 0.5)
        implausible = share * null_at_scores
        posterior = implausible / (implausible + (1 - share) * plausible).clamp_min(1e-300)
        weight = 1 - posterior
        if weight.sum() <= 0:  # everything scores as the null does
            return MixtureFit(1.0, torch.ones_like(scores).float(), mean, std)
        new_share = posterior.mean().item()
        mean = (weight * scores).sum().item() / weight.sum().item()
        std = max(((weight * (scores - mean) ** 2).sum().item() / weight.sum().item()) ** 0.5, 1e-6)
        converged = abs(new_share - share) < tolerance
        share = new_share
        if converged:
            break
    return MixtureFit(share, posterior.float(), mean, std)
