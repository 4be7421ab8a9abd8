"""`autoassist_plausibility`: the options of the plausibility check, checked where they are read, and the check
run once per training run on the main process, its flags shared with every rank."""

import torch
from accelerate.utils import broadcast
from transformers.utils import logging

from . import METHODS, Plausibility, check_pair_columns, plausibility_for

logger = logging.get_logger(__name__)


class PlausibilityCheck:
    """Flags the training instances that do not fit before training starts; the run never trains on them.

    Args (the flat option each comes from in brackets; `from_args` reads them):
        method (`str`, *optional*): `"pairs"` scores whether each seq2seq target fits its own source
            (`autoassist_plausibility`); None checks nothing.
        threshold (`float`, defaults to 0.5): flag an instance whose probability of belonging to the implausible
            component is above this, in (0, 1) (`autoassist_plausibility_threshold`).
        folds (`int`, defaults to 5), passes (`int`, defaults to 32): each instance is scored by an encoder trained
            `passes` times over the other `folds - 1` folds (`autoassist_plausibility_folds`, `_passes`).
    """

    def __init__(self, method: str | None = None, threshold: float = 0.5, folds: int = 5, passes: int = 32):
        if method is not None and method not in METHODS:
            raise ValueError(f"`autoassist_plausibility` must be one of {list(METHODS)} or unset, got {method!r}.")
        if not 0.0 < threshold < 1.0:
            raise ValueError(
                f"`autoassist_plausibility_threshold` must be in (0, 1), got {threshold}: an instance is flagged when "
                "its probability of being implausible is above it (0.5 is the Bayes decision)."
            )
        if folds < 2:
            raise ValueError(
                f"`autoassist_plausibility_folds` must be >= 2, got {folds}: each instance is scored by an encoder "
                "that never trained on it."
            )
        if passes < 1:
            raise ValueError(f"`autoassist_plausibility_passes` must be >= 1, got {passes}.")
        self.method, self.threshold, self.folds, self.passes = method, threshold, folds, passes

    @classmethod
    def from_args(cls, args) -> "PlausibilityCheck":
        return cls(
            args.autoassist_plausibility, args.autoassist_plausibility_threshold, args.autoassist_plausibility_folds,
            args.autoassist_plausibility_passes,
        )

    def run(self, dataset, seed: int, accelerator) -> tuple[Plausibility | None, torch.Tensor | None]:
        """The main process's `Plausibility` (None elsewhere) and the `(N,)` flags every rank receives; (None, None)
        when no method is set."""
        if self.method is None:
            return None, None
        check_pair_columns(dataset)  # on every rank: one that stopped alone would leave the others waiting
        plausibility = None
        flagged = torch.zeros(len(dataset), dtype=torch.bool)
        if accelerator.is_main_process:
            plausibility = plausibility_for(
                dataset, self.method, self.threshold, folds=self.folds, passes=self.passes, seed=seed
            )
            flagged = plausibility.flagged
            summary = plausibility.summary()
            logger.warning(
                f"Plausibility ({self.method}): {summary['flagged']} of {len(dataset)} training instances flagged "
                f"({summary['flagged_fraction']:.1%}; the mixture's implausible share "
                f"{summary['implausible_share']:.1%}); the run does not train on them."
            )
        if accelerator.num_processes > 1:
            flagged = broadcast(flagged.to(torch.uint8).to(accelerator.device), from_process=0).cpu().bool()
        if flagged.all():  # after the broadcast, so that every rank stops
            raise ValueError(
                f"The plausibility check ({self.method}) flagged every one of the {len(dataset)} training instances: "
                "their sides do not match at all (a wrong `labels` column?). Check the data, or unset "
                "`autoassist_plausibility`."
            )
        return plausibility, flagged
