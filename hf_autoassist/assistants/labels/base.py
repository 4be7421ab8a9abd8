"""What every labelling rule is: from one batch of Boss losses, which instances get a label and which label
(1: "still worth training on", 0: "learned"), for the Assistant to learn to predict before it sees them."""

import torch


class LabelRule:
    """Base class of the rules behind `autoassist_label`, one module each.

    The worker calls `check(assistant)` once (a rule may need what only some Assistants keep: past losses,
    irreducible losses), then `label(indices, losses, assistant)` for every batch of Boss losses, under the lock
    that guards the Assistant. A rule with a state (the running mean) saves it with the worker's checkpoint.
    """

    name: str = ""
    # whether the rule reads each instance's irreducible loss (the trainer then trains the models that give them)
    reads_irreducible: bool = False
    # whether the rule reads each instance's past losses (it needs the loss memory)
    reads_memory: bool = False

    def check(self, assistant) -> None:
        """Raises, naming the fix, when `assistant` cannot give what the rule reads."""

    def label(self, indices: torch.Tensor, losses: torch.Tensor, assistant) -> tuple[torch.Tensor, torch.Tensor]:
        """`(labelled indices, their float labels)` from `(B,)` indices and Boss losses."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def above_median(scores: torch.Tensor) -> torch.Tensor:
    """1.0 where a score is above its batch's median, else 0.0: balanced by construction.

    Example:
        >>> above_median(torch.tensor([0.1, 3.0, 2.0]))
        tensor([0., 1., 0.])
    """
    return (scores > scores.median()).float()


def batch_ranks(values: torch.Tensor) -> torch.Tensor:
    """Each value's rank in its batch, scaled to [0, 1] (0: the smallest).

    Example:
        >>> batch_ranks(torch.tensor([0.3, 5.0, 0.1]))
        tensor([0.5000, 1.0000, 0.0000])
    """
    return values.argsort().argsort().float() / max(1, len(values) - 1)


class IrreducibleLabelRule(LabelRule):
    """A rule that reads each instance's irreducible loss, which the loss-memory Assistant holds."""

    reads_irreducible = True
    reads_memory = True

    def check(self, assistant):
        if getattr(assistant, "irreducible", None) is None:
            raise ValueError(
                f"`label={self.name!r}` needs each instance's irreducible loss: wrap the Assistant in "
                "`WithLossMemory(assistant, irreducible=losses)` (the trainer computes them with "
                f"`autoassist_label={self.name!r}`)."
            )
