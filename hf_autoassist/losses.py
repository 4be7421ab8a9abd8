"""Per-instance Boss losses, computed from the logits of the training forward pass (no second forward)."""

import torch
import torch.nn.functional as F


def per_instance_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    shift_labels: bool = False,
) -> torch.Tensor:
    """One loss per example, shape `(batch,)`.

    Args:
        logits (`torch.Tensor`): `(B, C)` class logits or `(B, T, V)` token logits.
        labels (`torch.Tensor`): `(B,)` class ids or `(B, T)` token ids, `ignore_index` where not a target.
        label_smoothing (`float`, *optional*, defaults to `0.0`): as `TrainingArguments.label_smoothing_factor`;
            PyTorch's formula is the one of the Trainer's `LabelSmoother`.
        shift_labels (`bool`, *optional*, defaults to `False`): causal LMs predict token `t+1` at position `t`.

    For sequences the loss of a row is the mean over its counted (non-`ignore_index`) tokens, so that the
    token-weighted mean of the rows equals the model's own loss. A row with no target token gets 0.

    Example:
        >>> logits = torch.zeros(2, 3, 4); labels = torch.tensor([[1, 2, -100], [-100, -100, -100]])
        >>> per_instance_loss(logits, labels)  # log(4) for the first row, nothing to learn in the second
        tensor([1.3863, 0.0000])
    """
    sums, counts = per_instance_loss_terms(logits.detach(), labels, ignore_index, label_smoothing, shift_labels)
    return sums / counts.clamp(min=1)


def per_instance_loss_terms(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    shift_labels: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each instance's summed loss and its number of loss terms, both `(batch,)`: counted target tokens for
    sequences, 1 for a class label. Differentiable through `logits`, so a weighted loss can be built from them.
    Arguments as in [`per_instance_loss`]."""
    logits = logits.float()
    if logits.dim() == 2:
        losses = F.cross_entropy(logits, labels, reduction="none", label_smoothing=label_smoothing)
        return losses, torch.ones_like(losses)
    if logits.dim() != 3 or labels.dim() != 2:
        raise ValueError(
            f"per_instance_loss expects (B, C) logits with (B,) labels or (B, T, V) logits with (B, T) labels, "
            f"got logits {tuple(logits.shape)} and labels {tuple(labels.shape)}."
        )
    if shift_labels:  # the labels move, not the logits: slicing those would copy a (B, T, V) tensor
        labels = F.pad(labels[:, 1:], (0, 1), value=ignore_index)
    # (B * T, V) rows as the models' own loss reads them: the class dimension contiguous (a transposed (B, V, T)
    # input made the per-token cross entropy and its backward half as slow again as the model's)
    token_loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=ignore_index, reduction="none",
        label_smoothing=label_smoothing,
    ).view(labels.shape)  # fmt: skip
    return token_loss.sum(-1), labels.ne(ignore_index).sum(-1).to(token_loss.dtype)


def count_loss_terms(labels: torch.Tensor, ignore_index: int = -100, shift_labels: bool = False) -> torch.Tensor:
    """How many loss terms a batch's labels make, as [`per_instance_loss_terms`] counts them: one per class label,
    one per target token (after the shift of a causal LM).

    Example:
        >>> count_loss_terms(torch.tensor([[5, 6, -100], [7, -100, -100]]), shift_labels=True)
        tensor(1)
    """
    if labels.dim() == 1:
        return torch.tensor(len(labels))
    if shift_labels:
        labels = labels[:, 1:]
    return labels.ne(ignore_index).sum()


def reweighted_loss(loss: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The Trainer's `loss` with each instance's terms weighted by `weights`, shape `(batch,)`.

    The weighted mean `sum(w * sums) / sum(counts)` equals the model's own mean loss when every weight is 1. The
    Trainer may have scaled that mean by a constant (`num_items_in_batch`, gradient accumulation): the result keeps
    that scale, `c`, by returning `loss + c * (weighted - unweighted)`, whose value is `c * weighted` and whose
    gradient is the weighted one.

    Example:
        >>> sums, counts = torch.tensor([1.0, 3.0]), torch.ones(2)
        >>> reweighted_loss(sums.mean(), sums, counts, torch.tensor([2.0, 0.0]))
        tensor(1.)
    """
    total = counts.sum().clamp(min=1)
    unweighted = sums.sum() / total
    weighted = (weights.to(sums.dtype) * sums).sum() / total
    scale = loss.detach() / unweighted.detach() if unweighted.detach() != 0 else torch.ones_like(loss)
    return loss + scale * (weighted - unweighted)
