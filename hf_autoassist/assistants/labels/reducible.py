"""`reducible`: RHO-LOSS's label (Mindermann et al., ICML 2022), the loss over the instance's irreducible loss."""

from .base import IrreducibleLabelRule, above_median


class ReducibleLabel(IrreducibleLabelRule):
    """The log of the Boss loss over the instance's irreducible loss (the loss of models that never saw it), above
    the batch's median: what is left to learn, not what cannot be learned. A ratio rather than RHO-LOSS's
    difference, so that a loss varying around a high irreducible loss (a wrong label's) is not read as learnable."""

    name = "reducible"

    def label(self, indices, losses, assistant):
        reducible = losses.clamp(min=1e-8).log() - assistant.irreducible[indices].clamp(min=1e-8).log()
        return indices, above_median(reducible)
