"""`learnable`: a high Boss loss that a model which never saw the instance could predict, in ranks."""

from .base import IrreducibleLabelRule, above_median, batch_ranks


class LearnableLabel(IrreducibleLabelRule):
    """The instance's rank by Boss loss in its batch times its rank by irreducible loss counted from the top,
    above the median. Ranks, not losses: a Boss more confident than a briefly trained irreducible-loss model makes
    a wrong label's loss exceed its irreducible loss, and `reducible` then prefers wrong labels (measured on 30%
    flipped labels); a product, so that a learned instance (low loss) and a wrong label (high irreducible loss)
    both rank low."""

    name = "learnable"

    def label(self, indices, losses, assistant):
        priority = batch_ranks(losses) * (1.0 - batch_ranks(assistant.irreducible[indices]))
        return indices, above_median(priority)
