"""The Assistant for any training set: one bias per class label, and nothing read from the inputs.

With the loss memory around it (`WithLossMemory`, `autoassist_assistant="loss_memory"`) every feature it learns
from comes from the training step itself (each instance's last loss and its age), so it needs no modality.
"""

import torch
from torch import nn

from .base import Assistant


class LabelBiasAssistant(Assistant):
    """`logit = b[label]`, or one bias `b` when the set has no class ids.

    Args:
        num_instances (`int`): size of the training set.
        labels (`torch.Tensor`, *optional*): `(num_instances,)` class ids.
    """

    def __init__(self, num_instances: int, labels: torch.Tensor | None = None):
        super().__init__()
        if labels is not None and labels.shape != (num_instances,):
            raise ValueError(
                f"`labels` needs one class id per instance, shape ({num_instances},), got {tuple(labels.shape)}."
            )
        self.num_instances = num_instances
        labels = torch.zeros(num_instances, dtype=torch.long) if labels is None else labels.long()
        self.register_buffer("labels", labels, persistent=False)
        self.label_bias = nn.Embedding(int(labels.max()) + 1 if num_instances else 1, 1)
        nn.init.zeros_(self.label_bias.weight)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.label_bias.weight[self.labels[indices], 0]

    @torch.no_grad()
    def descend(self, indices: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        self.label_bias.weight[:, 0].index_add_(0, self.labels[indices], logit_grads, alpha=-lr)
