"""AutoAssist for TRL's `SFTTrainer` (`pip install hf-autoassist[trl]`): one row of the SFT dataset is one instance.

TRL computes its loss with a fused LM head that never builds the logits; its per-token log-probabilities and label
mask are in the outputs, so each row's loss is read from the same forward pass instead of a second one.
"""

from dataclasses import dataclass

import torch

try:
    from trl import SFTConfig, SFTTrainer
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "`hf_autoassist.sft` needs TRL: install it with `pip install hf-autoassist[trl]` (or `pip install trl`)."
    ) from error

from .config import AutoAssistArguments
from .loss_reader import InstanceLossReader
from .mixin import AutoAssistMixin


@dataclass
class AutoAssistSFTConfig(AutoAssistArguments, SFTConfig):
    """[`trl.SFTConfig`] plus the AutoAssist options of [`AutoAssistArguments`], for [`AutoAssistSFTTrainer`].

    Packing and `padding_free` are refused: they merge rows into one sequence, so a row's loss is no longer its own.
    """

    def __post_init__(self):
        if self.packing or self.padding_free:
            raise ValueError(
                "AutoAssist selects rows of the SFT dataset and learns from each row's own loss, but "
                f"`packing={self.packing}` / `padding_free={self.padding_free}` merge rows into shared sequences. "
                "Set `packing=False` and `padding_free=False`, or use `trl.SFTTrainer` for packed training."
            )
        super().__post_init__()


class SFTLossReader(InstanceLossReader):
    """Reads each row's loss from TRL's per-token log-probabilities, in the forward that made the loss."""

    def loss_and_outputs(self, model, inputs, num_items_in_batch):
        # `return_outputs=True` would cost TRL an extra forward pass to build the logits: capture the outputs of the
        # forward that made the loss instead (the first one of the step)
        captured = []

        def capture(module, args, output):
            if not captured:
                captured.append(output)

        handle = model.register_forward_hook(capture)
        try:
            loss = self.trainer_loss(model, inputs, num_items_in_batch=num_items_in_batch)
        finally:
            handle.remove()
        return loss, captured[0]

    def terms(self, model, outputs, labels) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs = getattr(outputs, "log_probs", None)
        if log_probs is None or self.per_instance_loss_fn is not None:
            return super().terms(model, outputs, labels)
        # zero on the positions that carry no loss (prompt, padding)
        return -log_probs.sum(dim=-1), outputs.label_mask.sum(dim=-1)


class AutoAssistSFTTrainer(AutoAssistMixin, SFTTrainer):
    """`trl.SFTTrainer` whose epochs skip the rows a learned Assistant judges already learned.

    Swap it in for `SFTTrainer` and pass an [`AutoAssistSFTConfig`] as `args`; the Assistant reads the tokenized
    `input_ids` (and `labels` when the prompt is masked out).
    """

    config_class = AutoAssistSFTConfig
    loss_reader_class = SFTLossReader
    # TRL's fused loss hands out per-token log-probabilities: the per-row losses cost no second computation already
    single_pass_loss = False
