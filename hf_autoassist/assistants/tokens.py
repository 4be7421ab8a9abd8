"""The text Assistant of the paper's NMT experiments: summed per-token weights of source and target."""

import torch
from torch import nn

from .base import Assistant


def _flatten(sequences: list[list[int]], ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged token lists -> (flat ids, offsets) for `nn.EmbeddingBag`; `ignore_index` entries are dropped."""
    lengths, flat = [], []
    for seq in sequences:
        ids = [t for t in seq if t != ignore_index]
        lengths.append(len(ids))
        flat.extend(ids)
    offsets = torch.zeros(len(sequences) + 1, dtype=torch.long)
    offsets[1:] = torch.tensor(lengths, dtype=torch.long).cumsum(0)
    return torch.tensor(flat, dtype=torch.long), offsets


class BagOfTokensAssistant(Assistant):
    """`logit = sum_{t in source} u[t] + sum_{t in target} v[t] + b`.

    Args:
        input_ids (`list[list[int]]`): tokenized sources of the whole training set.
        labels (`list[list[int]]`, *optional*): tokenized targets (`-100` is skipped); absent for classification.
        vocab_size (`int`, *optional*): defaults to the largest id seen plus one.
    """

    def __init__(self, input_ids: list[list[int]], labels: list[list[int]] | None = None, vocab_size: int | None = None):
        super().__init__()
        self.num_instances = len(input_ids)
        src, src_offsets = _flatten(input_ids, -100)
        tgt, tgt_offsets = _flatten(labels if labels is not None else [[] for _ in input_ids], -100)
        if vocab_size is None:
            vocab_size = int(max(src.max() if len(src) else 0, tgt.max() if len(tgt) else 0)) + 1
        for name, tensor in [("src", src), ("src_offsets", src_offsets), ("tgt", tgt), ("tgt_offsets", tgt_offsets)]:
            self.register_buffer(name, tensor, persistent=False)
        self.source_weights = nn.EmbeddingBag(vocab_size, 1, mode="sum")
        self.target_weights = nn.EmbeddingBag(vocab_size, 1, mode="sum")
        self.bias = nn.Parameter(torch.zeros(1))
        nn.init.zeros_(self.source_weights.weight)
        nn.init.zeros_(self.target_weights.weight)

    def _bag(self, bag: nn.EmbeddingBag, flat: torch.Tensor, offsets: torch.Tensor, indices: torch.Tensor):
        starts, ends = offsets[indices], offsets[indices + 1]
        lengths = ends - starts
        # gather the selected rows' ids into one flat tensor with their own offsets
        positions = torch.repeat_interleave(starts - torch.cumsum(lengths, 0) + lengths, lengths)
        positions = positions + torch.arange(int(lengths.sum()))
        new_offsets = torch.cumsum(lengths, 0) - lengths
        return bag(flat[positions], new_offsets).squeeze(-1)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return (
            self._bag(self.source_weights, self.src, self.src_offsets, indices)
            + self._bag(self.target_weights, self.tgt, self.tgt_offsets, indices)
            + self.bias
        )
