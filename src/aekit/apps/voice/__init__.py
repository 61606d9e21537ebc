"""Feature disentanglement for speech: a code split into content and speaker, and voice
conversion by swapping the speaker part. Names are imported on first use."""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"VoiceConverter": ".converter", "default_model": ".converter", "NeuralVocoder": ".vocoder",
         "default_vocoder": ".vocoder"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
