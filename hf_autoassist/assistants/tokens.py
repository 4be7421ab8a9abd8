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
    """`logit = sum_{t in source} u[t] + sum_{t in target} v[t] + b` with `dim=1`, the paper's NMT Assistant.

    With `dim > 1` each token gets a `dim`-vector; the two sums are concatenated and read by a linear layer: a little
    more cost for a model that can weigh combinations of tokens.

    Args:
        input_ids (`list[list[int]]`): tokenized sources of the whole training set.
        labels (`list[list[int]]`, *optional*): tokenized targets (`-100` is skipped); absent for classification.
        vocab_size (`int`, *optional*): defaults to the largest id seen plus one.
        dim (`int`, *optional*, defaults to `1`): size of each token's weight vector.
    """

    def __init__(
        self,
        input_ids: list[list[int]],
        labels: list[list[int]] | None = None,
        vocab_size: int | None = None,
        dim: int = 1,
    ):
        super().__init__()
        if dim < 1:
            raise ValueError(f"BagOfTokensAssistant needs dim >= 1, got {dim}.")
        self.num_instances = len(input_ids)
        src, src_offsets = _flatten(input_ids, -100)
        tgt, tgt_offsets = _flatten(labels if labels is not None else [[] for _ in input_ids], -100)
        if vocab_size is None:
            vocab_size = int(max(src.max() if len(src) else 0, tgt.max() if len(tgt) else 0)) + 1
        for name, tensor in [("src", src), ("src_offsets", src_offsets), ("tgt", tgt), ("tgt_offsets", tgt_offsets)]:
            self.register_buffer(name, tensor, persistent=False)
        self.source_weights = nn.EmbeddingBag(vocab_size, dim, mode="sum")
        self.target_weights = nn.EmbeddingBag(vocab_size, dim, mode="sum")
        self.bias = nn.Parameter(torch.zeros(1))
        if dim == 1:
            self.readout = None
            nn.init.zeros_(self.source_weights.weight)
            nn.init.zeros_(self.target_weights.weight)
        else:
            # random token vectors (an all-zero start would never break the symmetry), a zero readout: starts at 0.5
            nn.init.normal_(self.source_weights.weight, std=dim**-0.5)
            nn.init.normal_(self.target_weights.weight, std=dim**-0.5)
            self.readout = nn.Linear(2 * dim, 1, bias=False)
            nn.init.zeros_(self.readout.weight)

    def rebind(self, input_ids: list[list[int]], labels: list[list[int]] | None = None) -> None:
        """Looks up another set of instances (a stream's, as they arrive): their token ids replace the table, the
        learned weights stay. Ids past the vocabulary read its last row."""
        rows = labels if labels is not None else [[] for _ in input_ids]
        for side, (flat, offsets), weights in (
            ("src", _flatten(input_ids, -100), self.source_weights),
            ("tgt", _flatten(rows, -100), self.target_weights),
        ):
            setattr(self, side, flat.clamp_(max=weights.num_embeddings - 1))
            setattr(self, f"{side}_offsets", offsets)
        self.num_instances = len(input_ids)

    @staticmethod
    def _rows(flat: torch.Tensor, offsets: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The token ids of the rows `indices`, flat, and each row's length."""
        starts, lengths = offsets[indices], offsets[indices + 1] - offsets[indices]
        # position of every selected token in `flat`: its row's start plus its place in the row
        positions = torch.repeat_interleave(starts - torch.cumsum(lengths, 0) + lengths, lengths)
        return flat[positions + torch.arange(len(positions))], lengths

    def _bags(self, indices: torch.Tensor):
        """Per side (source, target): its token weights, the rows' token ids and lengths, and the rows' sums."""
        bags = []
        for weights, flat, offsets in (
            (self.source_weights, self.src, self.src_offsets),
            (self.target_weights, self.tgt, self.tgt_offsets),
        ):
            ids, lengths = self._rows(flat, offsets, indices)
            bags.append((weights, ids, lengths, weights(ids, torch.cumsum(lengths, 0) - lengths)))
        return bags

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        (_, _, _, source), (_, _, _, target) = self._bags(indices)
        if self.readout is None:
            return (source + target).squeeze(-1) + self.bias
        return self.readout(torch.cat([source, target], dim=-1)).squeeze(-1) + self.bias

    @torch.no_grad()
    def descend(self, indices: torch.Tensor, logit_grads: torch.Tensor, lr: float) -> None:
        bags = self._bags(indices)
        # d logit / d (a side's sum): 1, or that side's half of the readout (read before the readout's own step)
        reads = [None, None] if self.readout is None else self.readout.weight[0].chunk(2)
        for (weights, ids, lengths, _), read in zip(bags, reads):
            token_grads = torch.repeat_interleave(logit_grads, lengths)[:, None]  # each token gets its row's
            weights.weight.index_add_(0, ids, token_grads if read is None else token_grads * read, alpha=-lr)
        if self.readout is not None:
            sums = torch.cat([bag[3] for bag in bags], dim=-1)
            self.readout.weight[0].sub_(sums.T @ logit_grads, alpha=lr)
        self.bias.sub_(logit_grads.sum(), alpha=lr)
