"""The strategies behind `autoassist_strategy`, one module each; the sampler and the Trainer hooks are shared."""

from .autoassist import AutoAssistSelection
from .base import Selection, SelectionStrategy
from .infobatch import InfoBatchSelection, infobatch_selection
from .none import NoSelection
from .random_skip import RandomSelection, keep_probability_for_epoch

STRATEGY_CLASSES: dict[str, type[SelectionStrategy]] = {
    cls.name: cls for cls in (AutoAssistSelection, RandomSelection, InfoBatchSelection, NoSelection)
}


# the default `autoassist_strategy`: decided per run by `resolve_strategy`
AUTO = "auto"


def resolve_strategy(name: str, check: str | None, reads_irreducible: bool = False) -> str:
    """The strategy a run uses: `name`, except `"auto"`, which is `"none"` (the plausibility check alone) when the run
    checks pairs (`check == "pairs"`: a seq2seq set, see `plausibility.check.resolve_method`) and no option reads the
    irreducible losses only the Assistant uses, else `"autoassist"`. Why (benchmarks/results, 3 seeds): on translation
    the Assistant's choice of pairs did no better than random skipping at the same kept fractions (behind on two of
    three seeds of each task) and ended below the check alone on misaligned pairs, while the check alone won back half
    of what misalignment costs the full plain run and flagged nothing on clean pairs."""
    if name != AUTO:
        return name
    return "none" if check == "pairs" and not reads_irreducible else "autoassist"


def build_strategy(args, name: str | None = None) -> SelectionStrategy:
    """The strategy `name` (default: `args.autoassist_strategy`), configured from the other `autoassist_*` options."""
    name = args.autoassist_strategy if name is None else name
    if name == AUTO:
        raise ValueError("`autoassist_strategy='auto'` is decided per run: pass `resolve_strategy(...)`'s answer.")
    if name not in STRATEGY_CLASSES:
        raise ValueError(f"Unknown `autoassist_strategy` {name!r}; choose one of {sorted(STRATEGY_CLASSES)}.")
    return STRATEGY_CLASSES[name].from_args(args)


__all__ = [
    "AUTO",
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
    "resolve_strategy",
]
