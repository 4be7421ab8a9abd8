"""`infobatch`: InfoBatch (Qin et al., "InfoBatch: Lossless Training Speed Up by Unbiased Dynamic Data Pruning",
ICLR 2024), on the per-instance loss memory that the training step fills for free.

Each shrunk epoch, a fraction `r` of the instances whose last loss is below the mean of the remembered losses is left
out at random; the kept below-mean instances have their loss scaled by `1 / (1 - r)`, which keeps the expected
gradient of that group. Instances never seen are always kept. The last 12.5% of training keeps everything
(`autoassist_full_data_finish`), as in the paper, to remove what bias is left.
"""

import torch

from .base import LossMemorySelection, Selection


def infobatch_selection(
    losses: torch.Tensor, seen: torch.Tensor, prune_ratio: float, generator: torch.Generator
) -> Selection:
    """Prunes `round(prune_ratio * n)` of the `n` seen instances whose loss is below the seen mean.

    Args:
        losses (`torch.Tensor`): `(N,)` last loss of each candidate (any value where not `seen`).
        seen (`torch.BoolTensor`): `(N,)` whether the candidate has a remembered loss.
        prune_ratio (`float`): `r` in [0, 1).

    Returns a [`Selection`] whose weights are `1 / (1 - r)` for the kept below-mean instances and 1 elsewhere.

    Example:
        >>> s = infobatch_selection(torch.tensor([0.1, 0.2, 3.0, 4.0]), torch.ones(4, dtype=torch.bool), 0.5,
        ...                         torch.Generator().manual_seed(0))
        >>> int(s.keep.sum()), sorted(s.weights.tolist())
        (3, [1.0, 1.0, 1.0, 2.0])
    """
    well_learned = torch.zeros_like(seen)
    if seen.any():
        well_learned = seen & (losses < losses[seen].mean())
    candidates = well_learned.nonzero().squeeze(1)
    num_pruned = round(prune_ratio * len(candidates))
    pruned = candidates[torch.randperm(len(candidates), generator=generator)[:num_pruned]]
    keep = torch.ones_like(seen)
    keep[pruned] = False
    weights = torch.ones(len(losses))
    weights[well_learned & keep] = 1.0 / (1.0 - prune_ratio)
    return Selection(keep, weights)


class InfoBatchSelection(LossMemorySelection):
    """InfoBatch on the loss memory.

    Args:
        prune_ratio (`float`, *optional*, defaults to `0.5`): in [0, 1), `autoassist_prune_ratio`: the fraction `r`
            of the below-mean-loss instances left out of an epoch; the kept ones have their loss scaled by
            `1 / (1 - r)`, so that the expected gradient is unchanged.
    """

    name = "infobatch"
    default_full_data_finish = 0.125
    reweights = True

    def __init__(self, prune_ratio: float = 0.5):
        if not 0.0 <= prune_ratio < 1.0:
            raise ValueError(
                f"`autoassist_prune_ratio` must be in [0, 1), got {prune_ratio}: the kept below-mean instances are "
                "scaled by 1 / (1 - ratio). Use 0 to prune nothing."
            )
        self.prune_ratio = prune_ratio

    @classmethod
    def from_args(cls, args):
        return cls(prune_ratio=args.autoassist_prune_ratio)

    def select(self, candidates, selecting_epoch, generator):
        return infobatch_selection(
            self.memory.loss[candidates], self.memory.seen[candidates], self.prune_ratio, generator
        )
