"""`none`: keeps every instance, through the same data path as the other strategies (to measure its overhead)."""

from .base import SelectionStrategy


class NoSelection(SelectionStrategy):
    name = "none"

    def select(self, candidates, selecting_epoch, generator):
        raise RuntimeError("The 'none' strategy never selects; the trainer should not have asked it to.")
