"""The labelling rules behind `autoassist_label`: what the Assistant learns to predict, one module each."""

from .base import LabelRule, above_median, batch_ranks
from .batch_median import BatchMedianLabel
from .decline import DeclineLabel
from .learnable import LearnableLabel
from .reducible import ReducibleLabel
from .running_mean import RunningMeanLabel

LABEL_RULES: dict[str, type[LabelRule]] = {
    rule.name: rule for rule in (RunningMeanLabel, BatchMedianLabel, DeclineLabel, ReducibleLabel, LearnableLabel)
}


def build_label_rule(name: str, loss_momentum: float = 0.99) -> LabelRule:
    """The rule named `name` (`autoassist_label`), with its options."""
    if name not in LABEL_RULES:
        raise ValueError(f"`autoassist_label` must be one of {list(LABEL_RULES)}, got {name!r}.")
    running_mean = RunningMeanLabel(loss_momentum)  # its option is checked whichever rule is asked for
    return running_mean if name == RunningMeanLabel.name else LABEL_RULES[name]()


__all__ = [
    "LABEL_RULES", "BatchMedianLabel", "DeclineLabel", "LabelRule", "LearnableLabel", "ReducibleLabel",
    "RunningMeanLabel", "above_median", "batch_ranks", "build_label_rule",
]  # fmt: skip
