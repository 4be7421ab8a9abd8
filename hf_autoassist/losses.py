"""Per-instance Boss losses, computed from the logits of the training forward pass (no second forward).

Every head the Trainer trains has one: cross entropy for class labels, multiple choice and token labels (per
target token, averaged over the instance's), squared error for regression, binary cross entropy for multi-label
classification, each read the way transformers' own heads read their labels (`problem_type`).
"""

import math

import torch
import torch.nn.functional as F

PROBLEM_TYPES = ("single_label_classification", "multi_label_classification", "regression")


def infer_problem_type(logits: torch.Tensor, labels: torch.Tensor, num_labels: int | None = None) -> str:
    """What a head's labels ask for, decided as transformers' sequence-classification heads decide it when their
    config leaves `problem_type` unset: one output per label value is a regression, integer labels are classes, and
    float labels shaped like the logits of a head with `num_labels > 1` are several binary labels. Float labels of
    any other model (no config, or outputs that are not class logits) are regression targets.

    Example:
        >>> infer_problem_type(torch.zeros(4, 3), torch.tensor([0, 2, 1, 1]))
        'single_label_classification'
        >>> infer_problem_type(torch.zeros(4), torch.randn(4))
        'regression'
        >>> infer_problem_type(torch.zeros(4, 3), torch.ones(4, 3), num_labels=3)
        'multi_label_classification'
    """
    if not labels.is_floating_point():  # class ids, unless there is one output per label value (`num_labels=1`)
        return "regression" if logits.numel() == labels.numel() else "single_label_classification"
    columns = logits.shape[-1] if logits.dim() >= 2 else 1
    multi_label = num_labels is not None and num_labels == columns > 1 and logits.shape == labels.shape
    return "multi_label_classification" if multi_label else "regression"


def per_instance_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    shift_labels: bool = False,
    problem_type: str | None = None,
) -> torch.Tensor:
    """One loss per example, shape `(batch,)`.

    Args:
        logits (`torch.Tensor`): `(B, C)` class logits, `(B, T, V)` token logits, or a regression head's outputs.
        labels (`torch.Tensor`): `(B,)` class ids or `(B, T)` token ids, `ignore_index` where not a target; float
            targets for regression (any shape with the outputs' number of values) or `(B, C)` multi-label targets.
        label_smoothing (`float`, *optional*, defaults to `0.0`): as `TrainingArguments.label_smoothing_factor`;
            PyTorch's formula is the one of the Trainer's `LabelSmoother`.
        shift_labels (`bool`, *optional*, defaults to `False`): causal LMs predict token `t+1` at position `t`.
        problem_type (`str`, *optional*): one of `PROBLEM_TYPES`, as in a transformers config; by default
            [`infer_problem_type`] reads it from the shapes and dtypes.

    A regression instance's loss is its mean squared error, a multi-label one its mean binary cross entropy. For
    sequences the loss of a row is the mean over its counted (non-`ignore_index`) tokens, so that the
    token-weighted mean of the rows equals the model's own loss. A row with no target token gets 0.

    Example:
        >>> logits = torch.zeros(2, 3, 4); labels = torch.tensor([[1, 2, -100], [-100, -100, -100]])
        >>> per_instance_loss(logits, labels)  # log(4) for the first row, nothing to learn in the second
        tensor([1.3863, 0.0000])
    """
    sums, counts = per_instance_loss_terms(
        logits.detach(), labels, ignore_index, label_smoothing, shift_labels, problem_type
    )
    return sums / counts.clamp(min=1)


def per_instance_loss_terms(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    shift_labels: bool = False,
    problem_type: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each instance's summed loss and its number of loss terms, both `(batch,)`: counted target tokens for
    sequences, 1 for a class label, a regression target or a row of binary labels. Differentiable through `logits`,
    so a weighted loss can be built from them. Arguments as in [`per_instance_loss`]."""
    logits = logits.float()
    problem_type = problem_type or infer_problem_type(logits, labels)
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"Unknown `problem_type` {problem_type!r}; transformers' heads know {PROBLEM_TYPES}.")
    if problem_type != "single_label_classification":
        return _elementwise_terms(logits, labels, problem_type)
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


def per_instance_token_misses(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100, shift_labels: bool = False
) -> torch.Tensor:
    """`(batch,)` the share of each row's target tokens whose argmax is not the target (0 for a row without one),
    from `(B, T, V)` token logits and `(B, T)` labels: what greedy decoding would still get wrong with the reference
    prefix given. Label smoothing and dropout raise the loss of a sequence the model fits more than its argmax misses.

    Example:
        >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [0.0, 2.0]], [[2.0, 0.0], [2.0, 0.0], [0.0, 0.0]]])
        >>> per_instance_token_misses(logits, torch.tensor([[0, 1, 0], [1, -100, -100]]))
        tensor([0.3333, 1.0000])
    """
    if shift_labels:
        labels = F.pad(labels[:, 1:], (0, 1), value=ignore_index)
    counted = labels.ne(ignore_index)
    missed = logits.detach().argmax(-1).ne(labels) & counted
    return missed.sum(-1).float() / counted.sum(-1).clamp(min=1)


def smoothed_target_entropy(label_smoothing: float, num_classes: int) -> float:
    """The smallest cross entropy under `label_smoothing` over `num_classes`: the entropy of the smoothed target,
    which a model that fits an instance exactly still loses on it (0 without smoothing).

    Example:
        >>> round(smoothed_target_entropy(0.1, 2000), 4), smoothed_target_entropy(0.0, 2000)
        (1.0846, 0.0)
    """
    if label_smoothing <= 0 or num_classes < 2:
        return 0.0
    own, other = 1 - label_smoothing + label_smoothing / num_classes, label_smoothing / num_classes
    return -(own * math.log(own) + (num_classes - 1) * other * math.log(other))


def count_loss_terms(labels: torch.Tensor, ignore_index: int = -100, shift_labels: bool = False) -> torch.Tensor:
    """How many loss terms a batch's labels make, as [`per_instance_loss_terms`] counts them: one per class label,
    one per target token (after the shift of a causal LM).

    Example:
        >>> count_loss_terms(torch.tensor([[5, 6, -100], [7, -100, -100]]), shift_labels=True)
        tensor(1)
    """
    if labels.dim() == 1 or labels.is_floating_point():  # a class id, a regression target, a row of binary labels
        return torch.tensor(len(labels))
    if shift_labels:
        labels = labels[:, 1:]
    return labels.ne(ignore_index).sum()


def _elementwise_terms(logits: torch.Tensor, labels: torch.Tensor, problem_type: str):
    """Regression (squared error) and multi-label (binary cross entropy) terms: one mean per instance over its
    values, so that the batch's mean of them is the mean `MSELoss` / `BCEWithLogitsLoss` of transformers' heads."""
    if logits.numel() != labels.numel() or len(logits) != len(labels):
        raise ValueError(
            f"A {problem_type.replace('_', ' ')} loss per instance needs as many outputs as label values per "
            f"instance, got outputs {tuple(logits.shape)} and labels {tuple(labels.shape)}; expected outputs of "
            f"shape {tuple(labels.shape)} (or with one more axis of size 1). Pass `per_instance_loss_fn=` to the "
            "trainer for another loss."
        )
    logits, labels = logits.reshape(len(labels), -1), labels.reshape(len(labels), -1).to(logits.dtype)
    if problem_type == "regression":
        terms = (logits - labels).pow(2)
    else:
        terms = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    return terms.mean(-1), torch.ones(len(labels), dtype=terms.dtype, device=terms.device)


def reweighted_loss(loss: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The Trainer's `loss` with each instance's terms weighted by `weights`, shape `(batch,)`.

    The weighted mean `sum(w * sums) / sum(counts)` equals the model's own mean loss when every weight is 1; an
    instance at weight 0 (one that only tops a thinned batch up) counts in neither sum, so the others' gradient is
    what it would be without it. The
    Trainer may have scaled that mean by a constant (`num_items_in_batch`, gradient accumulation): the result keeps
    that scale, `c`, by returning `loss + c * (weighted - unweighted)`, whose value is `c * weighted` and whose
    gradient is the weighted one.

    Example:
        >>> sums, counts = torch.tensor([1.0, 3.0]), torch.ones(2)
        >>> reweighted_loss(sums.mean(), sums, counts, torch.tensor([2.0, 0.0]))
        tensor(2.)
    """
    weights = weights.to(sums.dtype)
    total = counts.sum().clamp(min=1)
    unweighted = sums.sum() / total
    weighted = (weights * sums).sum() / (counts * (weights != 0)).sum().clamp(min=1)
    scale = loss.detach() / unweighted.detach() if unweighted.detach() != 0 else torch.ones_like(loss)
    return loss + scale * (weighted - unweighted)
