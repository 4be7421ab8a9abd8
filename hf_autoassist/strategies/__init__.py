"""The strategies behind `autoassist_strategy`, one module each; the sampler and the Trainer hooks are shared."""

from .adaptive import AdaptiveSelection
from .autoassist import AutoAssistSelection
from .base import Selection, SelectionStrategy
from .infobatch import InfoBatchSelection, infobatch_selection
from .none import NoSelection
from .random_skip import RandomSelection, keep_probability_for_epoch

STRATEGY_CLASSES: dict[str, type[SelectionStrategy]] = {
    cls.name: cls for cls in (AdaptiveSelection, AutoAssistSelection, RandomSelection, InfoBatchSelection, NoSelection)
}


# the default `autoassist_strategy`: decided per run by `resolve_strategy`
AUTO = "auto"


def resolve_strategy(
    name: str, check: str | None = None, reads_irreducible: bool = False, has_assistant: bool = False
) -> str:
    """The strategy a run uses: `name`, except `"auto"`, which is `"adaptive"` (beside whatever check `check` the
    run makes), or `"autoassist"` when an option reads the irreducible losses only the Assistant uses, or the user
    handed the trainer an Assistant of their own (`has_assistant`).

    Why `"adaptive"` (benchmarks/README.md): it keeps the plain run's optimizer steps and thins each batch to the
    instances the Boss has not yet learned, so its kept share follows learning and its expected gradient is the
    plain run's. The Assistant's shrinking, the default until 2026-12-06, skipped a fixed share of each epoch (about
    0.6) whatever the recipe: on 10,000 test images it lost to the plain run at half length and on wrong labels,
    and tied random skipping of as many instances."""
    if name != AUTO:
        return name
    return "autoassist" if reads_irreducible or has_assistant else "adaptive"


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
    "AdaptiveSelection",
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
