"""Tree as the code: an autoencoder whose code is a binary parse tree, learned without
trees (a neural PCFG). Names are imported on first use."""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"TreeAutoEncoder": ".model", "read_sentences": ".model", "generate": ".grammars", "mean_f1": ".metrics",
         "brackets": ".metrics"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
