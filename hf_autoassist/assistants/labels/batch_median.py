"""`batch_median`: the Boss loss above its own batch's median (the default)."""

from .base import LabelRule, above_median


class BatchMedianLabel(LabelRule):
    """Balanced by construction, and never lagging a falling loss (the paper's running mean does both)."""

    name = "batch_median"

    def label(self, indices, losses, assistant):
        return indices, above_median(losses)
