"""`InstanceLossReader`: the training loss and one Boss loss per instance, from the forward the Trainer runs anyway.

It owns everything between a batch and its per-instance losses: the model under its wrappers (accelerate, PEFT),
whether labels are next tokens (a causal LM), the single-pass check (`single_pass.py`), and the terms themselves.
The trainer's `compute_loss` reads with it, weights, and hands the losses on; a trainer whose outputs carry the
terms already (TRL's SFT) subclasses the reader, not the hook.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from .head_features import HeadInputRecorder
from .losses import infer_problem_type, per_instance_loss_terms, per_instance_token_misses, smoothed_target_entropy
from .single_pass import SinglePassLoss


def predictions_of(outputs) -> torch.Tensor | None:
    """The model's predictions in its outputs, as the Trainer's `prediction_step` finds them: `logits`, else the
    first tensor that is not the loss (a dict's `"loss"`, or a tuple's first item when the model computed one).

    Example:
        >>> predictions_of((torch.tensor(0.5), torch.ones(2)))  # (loss, predictions)
        tensor([1., 1.])
        >>> predictions_of({"output": torch.zeros(2), "loss": torch.tensor(1.0)})
        tensor([0., 0.])
    """
    if torch.is_tensor(outputs):
        return outputs
    if isinstance(outputs, dict):  # `ModelOutput` too
        if outputs.get("logits") is not None:
            return outputs["logits"]
        tensors = [value for key, value in outputs.items() if key != "loss" and torch.is_tensor(value)]
    elif isinstance(outputs, (tuple, list)):
        tensors = [value for value in outputs if torch.is_tensor(value)]
        if len(tensors) > 1 and tensors[0].dim() == 0:  # a scalar first: the loss
            tensors = tensors[1:]
    else:
        return None
    return tensors[0] if tensors else None


class InstanceLosses(NamedTuple):
    """What one read gives.

    loss (`torch.Tensor`): the loss the Trainer back-propagates, its value and gradients the plain Trainer's.
    sums, counts (`torch.Tensor`): `(batch,)` each instance's summed loss terms and how many (target tokens; 1 for a
        class label). `sums` keeps its graph only when asked (`keep_graph=True`, to rebuild a weighted loss).
    outputs: the model's outputs of the same forward.
    features (`torch.Tensor`, *optional*): `(batch, F)` the Boss's own features of each instance, when recorded
        (`record_features`).
    floor (`float`): the smallest per-instance loss of these targets, what an instance the Boss fits exactly still
        loses under label smoothing ([`smoothed_target_entropy`]; 0 without it).
    misses (`torch.Tensor`, *optional*): `(batch,)` the share of each instance's target tokens whose argmax is not
        the target, when asked for (`read_token_misses`) and the targets are tokens ([`per_instance_token_misses`]).
    """

    loss: torch.Tensor
    sums: torch.Tensor
    counts: torch.Tensor
    outputs: object
    features: torch.Tensor | None = None
    floor: float = 0.0
    misses: torch.Tensor | None = None

    @property
    def per_instance(self) -> torch.Tensor:
        """`(batch,)` each instance's mean loss, detached."""
        return self.sums.detach() / self.counts.clamp(min=1)


class InstanceLossReader:
    """Reads `(loss, per-instance losses, outputs)` from one forward of the Boss.

    Args:
        trainer_loss (`Callable`): the plain Trainer's `compute_loss(model, inputs, return_outputs, num_items_in_batch)`
            (the next class's in the trainer's MRO), used whenever the loss is not rebuilt from the terms.
        unwrap_model (`Callable`): the model under accelerate's wrappers (`accelerator.unwrap_model`).
        label_smoothing (`float`): the Trainer's `label_smoothing_factor`, for the per-instance terms.
        per_instance_loss_fn (`Callable[[outputs, labels], Tensor]`, *optional*): one loss per instance for models
            whose outputs have no `logits` to derive it from; the model's own loss then trains it.
        single_pass (`bool`): whether the loss may be rebuilt from the terms once checked (no `compute_loss_func`,
            no `per_instance_loss_fn`, and a trainer that allows it).
        process_scale (`int`): the Trainer's scaling of a model's loss across processes (see `SinglePassLoss`).
    """

    def __init__(
        self,
        trainer_loss: Callable,
        unwrap_model: Callable,
        label_smoothing: float = 0.0,
        per_instance_loss_fn: Callable | None = None,
        single_pass: bool = True,
        process_scale: int = 1,
    ):
        self.trainer_loss = trainer_loss
        self.unwrap_model = unwrap_model
        self.label_smoothing = label_smoothing
        self.floor = 0.0  # of the last terms read (`InstanceLosses.floor`)
        self.reads_token_misses, self.misses = False, None  # `InstanceLosses.misses`, when asked for
        self.per_instance_loss_fn = per_instance_loss_fn
        self.single_pass = SinglePassLoss(single_pass and per_instance_loss_fn is None, process_scale)
        # (model, the model under its wrappers, whether it is a causal LM): found once per model, asked every step
        self._model_facts: tuple | None = None
        self.recorder: HeadInputRecorder | None = None  # the Boss's features, for an Assistant that reads them

    def record_features(self, enabled: bool) -> None:
        """Whether each read also gives the Boss's features of its instances (the input of its output head)."""
        if self.recorder is not None:
            self.recorder.close()  # no hook outlives the run that wanted it
        self.recorder = HeadInputRecorder() if enabled else None

    def read_token_misses(self, enabled: bool) -> None:
        """Whether each read also gives each instance's share of missed target tokens (where its targets are tokens)."""
        self.reads_token_misses = enabled

    def reset(self, process_scale: int = 1, single_pass: bool = True) -> None:
        """A new `train()`: the model, the arguments or the trainer's loss function may have changed; the single pass
        is checked again."""
        self.single_pass.reset()
        self.single_pass.enabled = single_pass and self.per_instance_loss_fn is None
        self.single_pass.process_scale = process_scale
        self._model_facts = None

    def __call__(self, model, inputs: dict, num_items_in_batch=None, keep_graph: bool = False) -> InstanceLosses:
        """The step's loss and each instance's terms; `keep_graph` keeps the terms differentiable (to weight them)."""
        labels = inputs.get("labels")  # kept aside: a label smoother or `compute_loss_func` pops it
        shift = labels is not None and self.is_causal_lm(model)
        single_pass = self.single_pass
        if self.recorder is not None:
            self.recorder.attach(self.base_model(model))
        self.misses = None  # `terms` reads them, if the targets are tokens
        if single_pass.applies(labels, num_items_in_batch, shift):  # one cross entropy: the loss from the terms
            outputs = single_pass.withheld_forward(model, inputs)
            if outputs is not None:  # None: the model needs its labels, and computes its own loss from now on
                sums, counts = self.terms(model, outputs, labels)
                loss = single_pass.loss(sums, counts, num_items_in_batch)
                return InstanceLosses(loss, sums, counts, outputs, self._features(labels), self.floor, self.misses)
        loss, outputs = self.loss_and_outputs(model, inputs, num_items_in_batch)
        with torch.set_grad_enabled(keep_graph):  # without weights the terms are only read
            sums, counts = self.terms(model, outputs, labels)
        if single_pass.should_check(labels, num_items_in_batch, shift):
            single_pass.check(self.base_model(model), loss, sums, counts, num_items_in_batch)
        return InstanceLosses(loss, sums, counts, outputs, self._features(labels), self.floor, self.misses)

    def _features(self, labels) -> torch.Tensor | None:
        return None if self.recorder is None or labels is None else self.recorder.pop(len(labels))

    def loss_and_outputs(self, model, inputs: dict, num_items_in_batch):
        """The Trainer's loss and the outputs of the same forward pass."""
        return self.trainer_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)

    def terms(self, model, outputs, labels) -> tuple[torch.Tensor, torch.Tensor]:
        """Each instance's summed loss and its count of loss terms, `(batch,)` each."""
        self.floor = 0.0  # the user's loss, or a head without classes: no smoothing floor known
        if self.per_instance_loss_fn is not None:
            losses = self.per_instance_loss_fn(outputs, labels)
            return losses, torch.ones_like(losses)
        logits = predictions_of(outputs)
        if logits is None or labels is None:
            keys = list(outputs.keys()) if isinstance(outputs, dict) else type(outputs).__name__
            raise ValueError(
                "AutoAssist learns from one Boss loss per instance, computed from the model's predictions (`logits`, "
                "or the first tensor of its outputs other than the loss) and the batch's `labels`, but the model "
                f"returned {keys} and the batch {'has' if labels is not None else 'has no'} `labels`. Pass "
                "`per_instance_loss_fn=` (outputs, labels -> (batch,) losses) to the trainer, or set "
                "`autoassist_strategy='none'`."
            )
        config = getattr(self.base_model(model), "config", None)
        problem_type = getattr(config, "problem_type", None) or infer_problem_type(
            logits, labels, getattr(config, "num_labels", None)
        )
        if problem_type == "single_label_classification":  # class or token cross entropy, smoothed as the Trainer's
            self.floor = smoothed_target_entropy(self.label_smoothing, logits.shape[-1])
            if self.reads_token_misses and logits.dim() == 3:
                self.misses = per_instance_token_misses(logits, labels, shift_labels=self.is_causal_lm(model))
        return per_instance_loss_terms(
            logits, labels, label_smoothing=self.label_smoothing, shift_labels=self.is_causal_lm(model),
            problem_type=problem_type,
        )  # fmt: skip

    def is_causal_lm(self, model) -> bool:
        """Whether labels are next tokens (shifted by one), also for a PEFT model wrapping a causal LM."""
        return self._facts(model)[2]

    def base_model(self, model):
        """The model under accelerate's wrappers and, for a `peft.PeftModel`, under its adapters."""
        return self._facts(model)[1]

    def _facts(self, model) -> tuple:
        """`(model, base model, is causal LM)`, unwrapped once per model (both are asked several times a step)."""
        if self._model_facts is None or self._model_facts[0] is not model:
            base = self.unwrap_model(model)
            base = base.get_base_model() if hasattr(base, "get_base_model") else base
            self._model_facts = (model, base, base._get_name() in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
        return self._model_facts
