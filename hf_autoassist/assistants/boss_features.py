"""The Assistant that reads the Boss's own representation of each instance, for any modality.

Each instance's features are the Boss's head input from the last step that trained on it (`head_features.py`),
stale by at most an epoch, as the loss memory's losses are; an instance not yet seen reads zeros. Memory: `dim`
floats and one clock per instance (136 bytes at the default 32), no input column read.
"""

import torch
from torch import nn

from ..head_features import FEATURE_DIM, FeatureMemory
from .base import Assistant, logit_gradients


class BossFeatureAssistant(Assistant):
    """`logit = w . standardized(boss features) + b[label]`.

    Args:
        num_instances (`int`): size of the training set.
        labels (`torch.Tensor`, *optional*): `(num_instances,)` class ids for the per-label bias.
        dim (`int`, *optional*, defaults to `FEATURE_DIM`): size of the recorded features.
        momentum (`float`, *optional*, defaults to `0.99`): of the running mean and spread the features are
            standardized with (the Boss's representation drifts as it trains).
    """

    reads_boss_features = True

    def __init__(
        self, num_instances: int, labels: torch.Tensor | None = None, dim: int = FEATURE_DIM, momentum: float = 0.99
    ):
        super().__init__()
        self.num_instances, self.dim, self.momentum = num_instances, dim, momentum
        labels = torch.zeros(num_instances, dtype=torch.long) if labels is None else labels.long()
        self.register_buffer("labels", labels, persistent=False)
        self.memory = FeatureMemory(num_instances, dim)  # saved with the Assistant in every checkpoint
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_square", torch.ones(dim))
        self.linear = nn.Linear(dim, 1, bias=False)
        self.label_bias = nn.Embedding(int(labels.max()) + 1 if num_instances else 1, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.label_bias.weight)

    def standardized(self, indices: torch.Tensor) -> torch.Tensor:
        """`(B, dim)` features of `indices` in units of their running spread; zeros for instances not yet seen."""
        spread = (self.feature_square - self.feature_mean**2).clamp(min=1e-12).sqrt()
        features = (self.memory.features[indices] - self.feature_mean) / spread
        return torch.where(self.memory.seen[indices][:, None], features, 0.0)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self._logits(indices, self.standardized(indices))

    @torch.no_grad()
    def learn(self, indices: torch.Tensor, targets: torch.Tensor, lr: float) -> torch.Tensor:
        features = self.standardized(indices)  # read once, for the prediction and its step
        logits = self._logits(indices, features)
        self._descend(indices, features, logit_gradients(logits, targets), lr)
        return logits

    @torch.no_grad()
    def descend(self, indices: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        self._descend(indices, self.standardized(indices), logit_grads, lr)

    def _logits(self, indices: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return features @ self.linear.weight[0] + self.label_bias.weight[self.labels[indices], 0]

    def _descend(self, indices, features, logit_grads, lr) -> None:
        self.linear.weight[0].sub_(features.T @ logit_grads, alpha=lr)
        self.label_bias.weight[:, 0].index_add_(0, self.labels[indices], logit_grads, alpha=-lr)

    @torch.no_grad()
    def record_features(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """Stores the Boss's features of a trained batch, `(B, dim)`, after the Assistant learned from it."""
        features = features.float()
        first = bool(self.memory.recorded == 0)
        for buffer, value in ((self.feature_mean, features.mean(0)), (self.feature_square, features.pow(2).mean(0))):
            buffer.copy_(value if first else self.momentum * buffer + (1 - self.momentum) * value)
        self.memory.record(indices, features)

    def merge(self, accelerator) -> None:
        self.memory.merge(accelerator)
