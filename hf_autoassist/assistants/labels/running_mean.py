"""`running_mean`: the paper's label, the Boss loss above the running mean of Boss losses."""

from .base import LabelRule


class RunningMeanLabel(LabelRule):
    """Loss above an exponential moving average (momentum `momentum`) of the batches' mean losses, updated with
    each batch before it is labelled. Mostly 0 for right-skewed losses, and lagging while the loss falls.

    Args:
        momentum (`float`, *optional*, defaults to `0.99`): in [0, 1); `autoassist_loss_momentum`.
    """

    name = "running_mean"

    def __init__(self, momentum: float = 0.99):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(
                f"`autoassist_loss_momentum` must be in [0, 1), got {momentum}; 0 compares each loss with its own "
                "batch's mean."
            )
        self.momentum = momentum
        self.running_loss: float | None = None

    def label(self, indices, losses, assistant):
        batch_mean = float(losses.mean())
        if self.running_loss is None:
            self.running_loss = batch_mean
        else:
            self.running_loss = self.momentum * self.running_loss + (1 - self.momentum) * batch_mean
        return indices, (losses > self.running_loss).float()

    def state_dict(self):
        return {"running_loss": self.running_loss}

    def load_state_dict(self, state):
        self.running_loss = state.get("running_loss")
