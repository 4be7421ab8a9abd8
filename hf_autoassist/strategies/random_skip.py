"""`random`: keeps each instance with a fixed probability, the baseline any learned selection has to beat.

A learned selection that keeps a fraction `f` of an epoch is only worth its cost if it does better than keeping a
random `f`: run this strategy with `autoassist_keep_prob` set to the other run's kept fractions, epoch by epoch.
"""

import torch

from ..selection import sample_keep_mask
from .base import Selection, SelectionStrategy


def keep_probability_for_epoch(keep_probs: list[float], selecting_epoch: int) -> float:
    """One value for every shrunk epoch, or one per shrunk epoch with the last one repeating.

    Example:
        >>> [keep_probability_for_epoch([0.9, 0.6, 0.5], e) for e in range(5)]
        [0.9, 0.6, 0.5, 0.5, 0.5]
    """
    return keep_probs[min(selecting_epoch, len(keep_probs) - 1)]


class RandomSelection(SelectionStrategy):
    """Keeps each candidate with `keep_prob`.

    Args:
        keep_prob (`list[float]`, *optional*, defaults to `[0.5]`): in (0, 1], `autoassist_keep_prob`; several
            values give one per epoch after the warmup, the last one repeating (to replay another run's kept
            fractions epoch by epoch).
    """

    name = "random"

    def __init__(self, keep_prob: float | list[float] = (0.5,)):
        keep_prob = [float(keep_prob)] if isinstance(keep_prob, (int, float)) else [float(p) for p in keep_prob]
        if not keep_prob or not all(0.0 < p <= 1.0 for p in keep_prob):
            raise ValueError(
                f"`autoassist_keep_prob` must be one or more values in (0, 1], got {keep_prob}. "
                "Use 1.0 to keep every instance."
            )
        self.keep_prob = keep_prob

    @classmethod
    def from_args(cls, args):
        return cls(keep_prob=args.autoassist_keep_prob)

    def select(self, candidates, selecting_epoch, generator):
        prob = keep_probability_for_epoch(self.keep_prob, selecting_epoch)
        return Selection(sample_keep_mask(torch.full((len(candidates),), prob), generator))
