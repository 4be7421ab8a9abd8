"""One cross entropy per step: the Trainer's loss rebuilt from the per-instance loss terms AutoAssist reads anyway.

AutoAssist needs each instance's loss. Computing it beside the model's own loss doubles the cross entropy, which
on a large vocabulary is not free. Most models' loss is a reduction of the same terms: the mean over counted target
tokens (or examples), or their sum over the Trainer's `num_items_in_batch`. When that is so, the labels are withheld
from the forward pass (the model returns its logits only) and the loss is rebuilt from the terms, with the
Trainer's scaling, so that its value and its gradients are the Trainer's.

Whether it is so is not guessed from the model's class: on the first training batch both are computed and
compared. If they differ (a model with its own loss: auxiliary terms, a regression head, class weights...), or if
the model cannot run without its labels (its forward's `labels` has no default, or the first forward without them
raises: a hand-written forward that computes its loss from them unconditionally), the model keeps computing its loss
and the terms are computed beside it, as before, for the rest of the run. No forward is ever added to find out: a
model may count or record its calls. Whether
the model divides by its batch's count or by the Trainer's `num_items_in_batch` is told only by a batch on which the
two differ (gradient accumulation, several processes); until one comes, each batch counts the same both ways.
"""

import inspect

import torch
from transformers.utils import logging

from .losses import count_loss_terms

logger = logging.get_logger(__name__)


def requires_labels(model) -> bool:
    """Whether `model`'s forward takes `labels` with no default: it cannot be called without them.

    Example:
        >>> class Needs(torch.nn.Module):
        ...     def forward(self, x, labels): ...
        >>> class Optional(torch.nn.Module):
        ...     def forward(self, x, labels=None): ...
        >>> requires_labels(Needs()), requires_labels(Optional())
        (True, False)
    """
    try:
        parameter = inspect.signature(model.forward).parameters.get("labels")
    except (TypeError, ValueError):  # a forward whose signature cannot be read
        return False
    return parameter is not None and parameter.default is inspect.Parameter.empty


class SinglePassLoss:
    """The check, and the loss rebuilt from per-instance terms, for one loss reader.

    Args:
        enabled (`bool`): whether the loss may be rebuilt at all (no custom loss function, no per-instance loss
            function, a trainer whose loss does not already come with its terms).
        process_scale (`int`, *optional*, defaults to 1): the factor the Trainer multiplies a model's loss by
            across processes (`average_tokens_across_devices` with a model that takes `num_items_in_batch`).

    `verified` is None until a batch with labels has been compared, then True (labels withheld from the forward
    from then on) or False (the model's loss is its own). `reduction` is what the model's loss was found to be:
    `"num_items"`, the sum over the Trainer's `num_items_in_batch` (models that take it, such as causal LMs), or
    `"mean"`, the mean over this batch's terms (models that take the keyword and ignore it, such as most
    classifiers), or None while no compared batch has told them apart (both agreed): a batch whose count is not
    its `num_items_in_batch` is then compared again, and any other is rebuilt (both give its loss).
    """

    REDUCTIONS = ("num_items", "mean")

    def __init__(self, enabled: bool, process_scale: int = 1):
        self.enabled = enabled
        self.process_scale = process_scale
        self.verified: bool | None = None
        self.reduction: str | None = None
        # an encoder-decoder's own way to build its decoder inputs from the labels (found once, at the check)
        self._decoder_inputs_from_labels = None
        # whether a forward without labels has run in this run (`withheld_forward`)
        self._forward_ran = False

    def reset(self) -> None:
        """A new `train()` checks again: the model or the arguments may have changed."""
        self.verified, self.reduction, self._decoder_inputs_from_labels = None, None, None
        self._forward_ran = False

    def _possible(self, labels) -> bool:
        return self.enabled and labels is not None

    @staticmethod
    def _reductions_differ(labels, num_items_in_batch, shift_labels: bool) -> bool:
        """Whether "mean" and "num_items" give this batch different losses: its count of loss terms is not the
        Trainer's `num_items_in_batch` (summed over accumulated batches and processes)."""
        if num_items_in_batch is None:
            return False
        return int(count_loss_terms(labels, shift_labels=shift_labels)) != int(num_items_in_batch)

    def applies(self, labels, num_items_in_batch, shift_labels: bool) -> bool:
        """Whether the loss of this batch is rebuilt from its terms: checked, no custom loss, and a reduction known
        or not needed (both give this batch's loss)."""
        if self.verified is not True or not self._possible(labels):
            return False
        return self.reduction is not None or not self._reductions_differ(labels, num_items_in_batch, shift_labels)

    def should_check(self, labels, num_items_in_batch, shift_labels: bool) -> bool:
        """Whether this batch's own loss is compared with the rebuilt ones: the first with labels, then one that
        tells the two reductions apart while they agreed."""
        if not self._possible(labels):
            return False
        if self.verified is None:
            return True
        undecided = self.verified is True and self.reduction is None
        return undecided and self._reductions_differ(labels, num_items_in_batch, shift_labels)

    def forward(self, model, inputs):
        """The model's outputs for `inputs` without their labels: logits, and no loss of its own."""
        labels = inputs["labels"]
        inputs = {k: v for k, v in inputs.items() if k != "labels"}
        if self._decoder_inputs_from_labels is not None and "decoder_input_ids" not in inputs:
            # what the model itself would build from the labels
            inputs["decoder_input_ids"] = self._decoder_inputs_from_labels(labels=labels)
        return model(**inputs)

    def loss(self, sums: torch.Tensor, counts: torch.Tensor, num_items_in_batch, reduction: str | None = None):
        """The Trainer's loss from `(batch,)` summed terms and counts, reduced as the model reduces them (over the
        whole accumulated batch's `num_items_in_batch` when the Trainer passes it and the model uses it, else over
        this batch's count), then scaled across processes as the Trainer scales a model's loss."""
        if num_items_in_batch is None:
            return sums.sum() / counts.sum().clamp(min=1)
        if (reduction or self.reduction) == "mean":
            loss = sums.sum() / counts.sum().clamp(min=1)
        else:
            if torch.is_tensor(num_items_in_batch):
                num_items_in_batch = num_items_in_batch.to(sums.device)
            loss = sums.sum() / num_items_in_batch
        return loss * self.process_scale if self.process_scale != 1 else loss

    def withheld_forward(self, model, inputs):
        """`forward`, the first time in a run ready to fall back: a model that cannot run without its labels (a
        hand-written forward computing its loss from them unconditionally) raises there, once, and from then on keeps
        computing its own loss (returns None). Later failures are the model's own and propagate."""
        if self._forward_ran:
            return self.forward(model, inputs)
        try:
            outputs = self.forward(model, inputs)
        except Exception as error:  # noqa: BLE001 - the same forward with its labels ran at the check
            self.verified = False
            logger.info(
                f"{type(model).__name__} does not run without its labels ({type(error).__name__}: {error}): AutoAssist "
                "lets it compute its own loss and computes the per-instance losses beside it."
            )
            return None
        self._forward_ran = True
        return outputs

    def check(self, base_model, loss: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor, num_items_in_batch):
        """Compares the model's loss with the ones rebuilt from the same batch's terms. When both reductions match
        (its count is `num_items_in_batch`) the loss is verified and the reduction left open. `base_model` is the
        model under its wrappers (an encoder-decoder must be able to build its decoder inputs from the labels; a
        forward whose `labels` has no default cannot run without them)."""
        loss = loss.detach().float()
        matching = []
        for reduction in self.REDUCTIONS:
            rebuilt = self.loss(sums.detach(), counts, num_items_in_batch, reduction).float()
            if rebuilt.shape == loss.shape and torch.allclose(rebuilt, loss, rtol=1e-4, atol=1e-6):
                matching.append(reduction)
        if getattr(getattr(base_model, "config", None), "is_encoder_decoder", False):
            self._decoder_inputs_from_labels = getattr(base_model, "prepare_decoder_input_ids_from_labels", None)
            if self._decoder_inputs_from_labels is None:
                matching = []  # without the labels it could not build its decoder inputs
        if not matching:
            rebuilt = self.loss(sums.detach(), counts, num_items_in_batch, "mean")
            logger.info(
                f"{type(base_model).__name__}'s loss ({float(loss):.6g}) is not the mean of its per-instance cross "
                f"entropies ({float(rebuilt):.6g}): AutoAssist computes them beside it, one more cross entropy per "
                "step."
            )
        if requires_labels(base_model):
            matching = []
        self.verified = bool(matching)
        self.reduction = matching[0] if len(matching) == 1 else None
