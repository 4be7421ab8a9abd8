"""The Boss's own representation of each instance, read in the training forward it runs anyway.

A forward pre-hook on the model's output head (its output embeddings, else its last `nn.Linear`) keeps the head's
input of the step; the loss reader pools it per instance (over tokens, or over a multiple-choice instance's
choices) and projects it to a few dozen dimensions with a fixed random matrix. No second pass, no gradient, and
nothing read from the inputs: it works for any modality whose model ends in a linear head.
"""

import torch
from torch import nn
from transformers.utils import logging

from .loss_memory import latest_across_ranks

logger = logging.get_logger(__name__)

# size of the recorded features: a few dozen dimensions, 128 bytes per instance in float32
FEATURE_DIM = 32


def output_head(model: nn.Module) -> nn.Module | None:
    """The module whose input is the model's last representation: its output embeddings (language models) or its
    last `nn.Linear` (classification and regression heads); None when it has neither."""
    get_output_embeddings = getattr(model, "get_output_embeddings", None)
    head = get_output_embeddings() if get_output_embeddings is not None else None
    if isinstance(head, nn.Linear):
        return head
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    return linears[-1] if linears else None


class HeadInputRecorder:
    """Keeps the input of `model`'s output head from each training forward; `pop` gives it per instance.

    Args:
        dim (`int`, *optional*, defaults to `FEATURE_DIM`): size of the projected features.
        seed (`int`, *optional*, defaults to `0`): of the random projection, so that a resumed run reads the same
            features.
    """

    def __init__(self, dim: int = FEATURE_DIM, seed: int = 0):
        self.dim, self.seed = dim, seed
        self.model: nn.Module | None = None
        self._handle = None
        self._input: torch.Tensor | None = None
        self._projection: torch.Tensor | None = None

    def attach(self, model: nn.Module) -> None:
        """Hooks `model`'s head (once per model; a new model moves the hook)."""
        if model is self.model:
            return
        self.close()
        self.model = model
        head = output_head(model)
        if head is None:
            logger.warning(
                f"{type(model).__name__} has no linear output head to read its representation from: its features stay "
                "unrecorded (an Assistant that reads them learns from its other inputs; the labels check flags none)."
            )
            return
        self._handle = head.register_forward_pre_hook(self._keep)

    def _keep(self, module: nn.Module, args: tuple) -> None:
        if module.training and args and torch.is_tensor(args[0]):
            self._input = args[0].detach()

    def pop(self, batch_size: int) -> torch.Tensor | None:
        """`(batch_size, dim)` features of the last training forward, on the CPU, or None when it recorded nothing
        or its head's input does not split into `batch_size` instances."""
        hidden, self._input = self._input, None
        if hidden is None or hidden.dim() < 2 or hidden.shape[0] % batch_size:
            return None
        # (B, ..., H): a row per instance (tokens, choices) averaged
        pooled = hidden.float().reshape(batch_size, -1, hidden.shape[-1]).mean(1)
        if self._projection is None or self._projection.shape[0] != pooled.shape[1]:
            generator = torch.Generator().manual_seed(self.seed)
            self._projection = torch.randn(pooled.shape[1], self.dim, generator=generator) / pooled.shape[1] ** 0.5
        return (pooled @ self._projection.to(pooled.device)).cpu()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
        self._handle, self.model, self._input = None, None, None


class FeatureMemory(nn.Module):
    """The Boss's features of each instance as last recorded, `(num_instances, dim)`, with when (a count of
    instances recorded before it; -1 until recorded). Buffers, so that they are saved with whatever holds them."""

    def __init__(self, num_instances: int, dim: int = FEATURE_DIM):
        super().__init__()
        self.register_buffer("features", torch.zeros(num_instances, dim))
        self.register_buffer("clock", torch.full((num_instances,), -1.0))
        self.register_buffer("recorded", torch.zeros(()))

    @property
    def seen(self) -> torch.Tensor:
        return self.clock >= 0

    @torch.no_grad()
    def record(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        self.features[indices] = features.float()
        self.clock[indices] = self.recorded
        self.recorded += len(indices)

    @torch.no_grad()
    def merge(self, accelerator) -> None:
        """Per instance, the features of the rank that recorded them last (a collective call)."""
        if accelerator.num_processes > 1:
            features, clocks = latest_across_ranks(accelerator, self.features, self.clock)
            self.features.copy_(features)
            self.clock.copy_(clocks)
