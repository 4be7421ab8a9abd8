"""Assistants: small models that predict which instances the Boss would still learn from."""

from .base import Assistant
from .boss_features import BossFeatureAssistant
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
    "BossFeatureAssistant",
    "LabelBiasAssistant",
    "PixelAssistant",
    "WithLossMemory",
    "build_assistant",
    "resolve_assistant_name",
]
