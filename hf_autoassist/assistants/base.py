"""What every Assistant is: a small logistic model over features it looked up once, by dataset index."""

import torch
from torch import nn


class Assistant(nn.Module):
    """Predicts, for dataset indices, the probability that the Boss's loss on the instance is above its running
    mean, i.e. that the instance still has something to teach.

    Subclasses precompute cheap features for the whole training set when they are built (token ids, pooled
    pixels), so scoring an instance never calls the dataset's `__getitem__`, its transforms or the collator.
    They implement `forward(indices: LongTensor (B,)) -> logits (B,)`.
    """

    num_instances: int

    @torch.no_grad()
    def score(self, indices: torch.Tensor, chunk_size: int = 8192) -> torch.Tensor:
        """Probabilities for `indices`, shape `(len(indices),)`, computed in chunks to bound memory."""
        return torch.cat([torch.sigmoid(self(chunk)) for chunk in indices.split(chunk_size)])
