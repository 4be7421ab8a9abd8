"""What every selection strategy is: a decision per epoch, and what it learns from the Boss's per-instance losses."""

from typing import NamedTuple

import torch

from ..loss_memory import LossMemory


class Selection(NamedTuple):
    """An epoch's decision over its shuffled candidates.

    keep (`torch.BoolTensor`): `(len(candidates),)`, the instances the Boss trains on.
    weights (`torch.Tensor`, *optional*): `(len(candidates),)` loss weights of the kept instances; `None` leaves the
        Trainer's loss untouched.
    """

    keep: torch.Tensor
    weights: torch.Tensor | None = None


class SelectionStrategy:
    """Base class of the strategies behind `autoassist_strategy`. Each one takes its own options as constructor
    arguments and checks them there (`from_args` reads them from the flat `autoassist_*` options users type, and the
    config builds every strategy once to check its options when it is made). The trainer calls, in this order:

    - `prepare(dataset, assistant, irreducible, device)` once, when the training DataLoader is built;
    - per epoch that is shrunk, `synchronize(accelerator)` on every rank, then `select(...)` on the main process only
      (its decision is broadcast to the other ranks);
    - `observe(indices, losses, step)` after each training forward pass, with one loss per instance (only if
      `observes_losses`), after `observe_token_misses(indices, misses, step)` where the targets are tokens (only if
      `reads_token_misses`);
    - `state_dict` / `load_state_dict` with each checkpoint, `metrics` with each log, `close` when training ends.

    The decision itself is a plain function of scores or losses in each strategy's module, testable alone.
    """

    name: str = ""
    # fraction of training at its end that keeps everything, when `autoassist_full_data_finish` is not set
    default_full_data_finish: float = 0.0
    # the floor on an instance's chance when `autoassist_base_prob` is not set (the paper's value)
    default_base_prob: float = 0.3
    # whether `observe` needs the per-instance losses of the training step
    observes_losses: bool = False
    # whether `select` may return loss weights (known on every rank, so that they all expect the broadcast)
    reweights: bool = False
    # whether a shrunk epoch keeps the plain run's batches, each thinned to its kept instances, instead of fewer
    # batches (`autoassist_keep_steps` unset)
    keeps_steps: bool = False
    # whether `observe` gets each loss less what label smoothing leaves on an instance the Boss fits exactly
    reads_loss_above_floor: bool = False
    # whether the training step also hands over each instance's share of missed target tokens (token targets only)
    reads_token_misses: bool = False

    @classmethod
    def from_args(cls, args) -> "SelectionStrategy":
        """The strategy configured from the `autoassist_*` options of `args` (an `AutoAssistArguments`)."""
        return cls()

    @classmethod
    def base_prob_from(cls, args) -> float:
        """`autoassist_base_prob`, or this strategy's own floor when it is not set."""
        return cls.default_base_prob if args.autoassist_base_prob is None else args.autoassist_base_prob

    def prepare(self, dataset, assistant=None, irreducible=None, device=None) -> None:
        """Called once per training run with the (column-pruned) training set, the `IrreducibleLosses` when the
        run computes them, and the device the Boss trains on."""

    def synchronize(self, accelerator) -> None:
        """Called on every rank before the main process selects: a place for collective calls."""

    def select(self, candidates: torch.Tensor, selecting_epoch: int, generator: torch.Generator) -> Selection:
        """The decision for one shrunk epoch. `selecting_epoch` counts the shrunk epochs from 0."""
        raise NotImplementedError

    def observe(self, indices: torch.Tensor, losses: torch.Tensor, step: int, features=None) -> None:
        """One Boss loss per trained instance, `(B,)` each, from the step's own forward pass, and the Boss's features
        of them, `(B, F)`, when the run records them (`reads_boss_features`)."""

    def observe_token_misses(self, indices: torch.Tensor, misses: torch.Tensor, step: int) -> None:
        """Each trained instance's share of target tokens whose argmax is not the target, `(B,)`, from the step's own
        forward pass, before `observe`; called only where the targets are tokens."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def metrics(self) -> dict[str, float]:
        return {}

    def close(self) -> None:
        pass


class LossMemorySelection(SelectionStrategy):
    """A strategy that decides from each instance's last Boss loss (`self.memory`, a [`LossMemory`] the training step
    fills for free, merged across ranks before each decision and saved with each checkpoint)."""

    observes_losses = True

    def prepare(self, dataset, assistant=None, irreducible=None, device=None):
        self.memory = LossMemory(len(dataset))

    def synchronize(self, accelerator):
        self.memory.merge(accelerator)

    def observe(self, indices, losses, step, features=None):
        self.memory.update(indices, losses, step)

    def state_dict(self):
        return {"memory": self.memory.state_dict()}

    def load_state_dict(self, state):
        self.memory.load_state_dict(state["memory"])
