"""Assistants: small models that predict which instances the Boss would still learn from."""

from .base import Assistant
from .factory import build_assistant, resolve_assistant_name
from .label_bias import LabelBiasAssistant
from .memory import WithLossMemory
from .pixels import PixelAssistant
from .tokens import BagOfTokensAssistant
from .worker import AssistantWorker

__all__ = [
    "Assistant",
    "AssistantWorker",
    "BagOfTokensAssistant",
    "LabelBiasAssistant",
    "PixelAssistant",
    "WithLossMemory",
    "build_assistant",
    "resolve_assistant_name",
]
