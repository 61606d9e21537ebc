"""Compression: a learned image codec whose encoder writes a real bitstream (``.aek``) and
whose decoder reads it back. Names are imported on first use."""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"ImageCodec": ".codec", "default_model": ".codec", "bd_rate": ".metrics", "psnr": ".metrics"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
