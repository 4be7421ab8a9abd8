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
    name = "random"

    def select(self, candidates, selecting_epoch, generator):
        prob = keep_probability_for_epoch(self.args.autoassist_keep_prob, selecting_epoch)
        return Selection(sample_keep_mask(torch.full((len(candidates),), prob), generator))
