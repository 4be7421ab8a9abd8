"""The AutoAssist trainers: the mixin placed before the Trainer it extends, nothing else."""

from transformers import Seq2SeqTrainer, Trainer

from .config import AutoAssistConfig, AutoAssistSeq2SeqConfig
from .mixin import AutoAssistMixin


class AutoAssistTrainer(AutoAssistMixin, Trainer):
    """`transformers.Trainer` whose epochs skip the instances a learned Assistant judges already learned.

    Swap it in for `Trainer` and pass an [`AutoAssistConfig`] as `args`.
    """

    config_class = AutoAssistConfig


class AutoAssistSeq2SeqTrainer(AutoAssistMixin, Seq2SeqTrainer):
    """`transformers.Seq2SeqTrainer` with AutoAssist; `predict_with_generate` evaluation works as usual."""

    config_class = AutoAssistSeq2SeqConfig
