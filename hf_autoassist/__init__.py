"""AutoAssist for the Hugging Face Trainer: a learned Assistant shrinks each epoch to the instances the model
still learns from (Zhang, Yu & Dhillon, NeurIPS 2019, arXiv:1905.03381)."""

from .config import AutoAssistArguments, AutoAssistConfig, AutoAssistSeq2SeqConfig
from .mixin import AutoAssistMixin
from .trainer import AutoAssistSeq2SeqTrainer, AutoAssistTrainer

__version__ = "0.1.0"

__all__ = [
    "AutoAssistArguments",
    "AutoAssistConfig",
    "AutoAssistMixin",
    "AutoAssistSeq2SeqConfig",
    "AutoAssistSeq2SeqTrainer",
    "AutoAssistTrainer",
]
