"""The image Assistant: logistic regression on average-pooled pixels plus a bias per label."""

import torch
import torch.nn.functional as F
from torch import nn

from .base import Assistant


class PixelAssistant(Assistant):
    """`logit = w . pooled_pixels + b[label]`.

    Args:
        pixels (`torch.Tensor`): `(N, C, H, W)` images of the whole training set (any dtype); they are pooled to
            `(N, C * pool_size**2)` and standardised once, here, then only looked up.
        labels (`torch.Tensor`, *optional*): `(N,)` class ids for the per-label bias; without them one bias.
        pool_size (`int`, *optional*, defaults to `7`): side of the pooled image.
    """

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor | None = None, pool_size: int = 7):
        super().__init__()
        if pixels.dim() == 3:  # (N, H, W) grayscale
            pixels = pixels.unsqueeze(1)
        if pixels.dim() != 4:
            raise ValueError(f"PixelAssistant expects (N, C, H, W) images, got shape {tuple(pixels.shape)}.")
        self.pool_size = pool_size
        pooled = self._pooled(pixels)
        # the standardisation of the first set it looked up, kept for any set it is rebound to (`rebind`)
        self.register_buffer("pooled_mean", pooled.mean(0), persistent=False)
        self.register_buffer("pooled_std", pooled.std(0).clamp(min=1e-6), persistent=False)
        self.register_buffer("features", (pooled - self.pooled_mean) / self.pooled_std, persistent=False)
        if labels is None:
            labels = torch.zeros(len(pixels), dtype=torch.long)
        self.register_buffer("labels", labels.long(), persistent=False)
        self.num_instances = len(pixels)
        self.linear = nn.Linear(self.features.shape[1], 1, bias=False)
        self.label_bias = nn.Embedding(int(self.labels.max()) + 1, 1)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.label_bias.weight)

    def _pooled(self, pixels: torch.Tensor) -> torch.Tensor:
        size = self.pool_size
        return torch.cat([F.adaptive_avg_pool2d(chunk.float(), size).flatten(1) for chunk in pixels.split(4096)])

    def rebind(self, pixels: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Looks up another set of instances (a stream's, as they arrive): their pooled pixels replace the table,
        standardised as the first set was; the learned weights stay. Labels past the first set's read its last."""
        pixels = pixels.unsqueeze(1) if pixels.dim() == 3 else pixels
        self.features = (self._pooled(pixels) - self.pooled_mean) / self.pooled_std
        if labels is None:
            labels = torch.zeros(len(pixels), dtype=torch.long)
        self.labels = labels.long().clamp(0, self.label_bias.num_embeddings - 1)
        self.num_instances = len(pixels)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        # the weights read directly, not through the modules' calls: this runs in every Boss step
        return self.features[indices] @ self.linear.weight[0] + self.label_bias.weight[self.labels[indices], 0]

    @torch.no_grad()
    def descend(self, indices: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        self.linear.weight[0].sub_(self.features[indices].T @ logit_grads, alpha=lr)
        self.label_bias.weight[:, 0].index_add_(0, self.labels[indices], logit_grads, alpha=-lr)
