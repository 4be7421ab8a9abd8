"""What every Assistant is: a small logistic model over features it looked up once, by dataset index."""

import torch
from torch import nn


def logit_gradients(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The gradient of the mean binary cross entropy with respect to the logits: `(sigmoid - target) / B`."""
    return (torch.sigmoid(logits) - targets) / len(targets)


class Assistant(nn.Module):
    """Predicts, for dataset indices, the probability that the Boss's loss on the instance is above its running
    mean, i.e. that the instance still has something to teach.

    Subclasses precompute cheap features for the whole training set when they are built (token ids, pooled
    pixels), so scoring an instance never calls the dataset's `__getitem__`, its transforms or the collator.
    They implement `forward(indices: LongTensor (B,)) -> logits (B,)`.

    They learn by `learn`: a prediction, then one plain SGD step of the mean binary cross entropy, taken by
    `descend` from the gradient with respect to the logits. Here `descend` goes through autograd; the library's
    Assistants, linear in their parameters, override it with the gradient in closed form, which saves most of the
    Assistant's cost per Boss step (the step runs beside the Boss's on the same CPU cores, and each small tensor
    operation costs several microseconds there). A subclass that redefines `forward` and not `descend` learns
    through autograd again (one forward, kept for its backward), so a closed form never meets a forward it was not
    written for.
    """

    num_instances: int
    # whether it learns from the Boss's own features of each trained instance (`record_features(indices, (B, F))`)
    reads_boss_features: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__ and "descend" not in cls.__dict__:
            cls.descend = Assistant.descend
            if "learn" not in cls.__dict__:
                cls.learn = Assistant._learn_through_autograd

    @torch.no_grad()
    def score(self, indices: torch.Tensor, chunk_size: int = 8192) -> torch.Tensor:
        """Probabilities for `indices`, shape `(len(indices),)`, computed in chunks to bound memory."""
        return torch.cat([torch.sigmoid(self(chunk)) for chunk in indices.split(chunk_size)])

    @torch.no_grad()
    def learn(self, indices: torch.Tensor, targets: torch.Tensor, lr: float) -> torch.Tensor:
        """Predicts `indices`, then takes one SGD step towards `targets` (1: still worth training on); returns the
        logits of the prediction, made before the step."""
        logits = self(indices)
        self.descend(indices, logit_gradients(logits, targets), lr)
        return logits

    def descend(self, indices: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        """`parameter -= lr * d loss / d parameter`, where `logit_grads` is `d loss / d self(indices)`, `(B,)`."""
        with torch.enable_grad():
            self._step_through_autograd(self(indices), logit_grads, lr)

    def _learn_through_autograd(self, indices: torch.Tensor, targets: torch.Tensor, lr: float) -> torch.Tensor:
        """`learn` without a closed form: the prediction's own graph gives the step (one forward, not two)."""
        with torch.enable_grad():
            logits = self(indices)
            self._step_through_autograd(logits, logit_gradients(logits.detach(), targets), lr)
        return logits.detach()

    def _step_through_autograd(self, logits: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        parameters = [p for p in self.parameters() if p.requires_grad]
        grads = torch.autograd.grad(logits, parameters, logit_grads, allow_unused=True)
        with torch.no_grad():
            for parameter, grad in zip(parameters, grads):
                if grad is not None:
                    parameter.sub_(grad, alpha=lr)
