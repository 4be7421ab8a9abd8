"""The strategies behind `autoassist_strategy`, one module each; the sampler and the Trainer hooks are shared."""

from .autoassist import AutoAssistSelection
from .base import Selection, SelectionStrategy
from .infobatch import InfoBatchSelection, infobatch_selection
from .none import NoSelection
from .random_skip import RandomSelection, keep_probability_for_epoch

STRATEGY_CLASSES: dict[str, type[SelectionStrategy]] = {
    cls.name: cls for cls in (AutoAssistSelection, RandomSelection, InfoBatchSelection, NoSelection)
}


def build_strategy(args) -> SelectionStrategy:
    """The strategy named by `args.autoassist_strategy`, configured from the other `autoassist_*` options."""
    name = args.autoassist_strategy
    if name not in STRATEGY_CLASSES:
        raise ValueError(f"Unknown `autoassist_strategy` {name!r}; choose one of {sorted(STRATEGY_CLASSES)}.")
    return STRATEGY_CLASSES[name].from_args(args)


__all__ = [
    "AutoAssistSelection",
    "InfoBatchSelection",
    "NoSelection",
    "RandomSelection",
    "STRATEGY_CLASSES",
    "Selection",
    "SelectionStrategy",
    "build_strategy",
    "infobatch_selection",
    "keep_probability_for_epoch",
]
