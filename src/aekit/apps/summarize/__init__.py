"""Text as the code: a sentence autoencoder whose code is a short readable sentence
(unsupervised summarization). Names are imported on first use."""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"Summarizer": ".summarizer", "default_model": ".summarizer", "first_words": ".summarizer"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
