"""The decoder as a generator: a VAE (or a VQ-VAE with a prior over its token grids) whose
decoder turns prior samples into new images.
Names are imported on first use."""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "VAEGenerator": ".generator", "frechet_distance": ".metrics", "pca_frechet_distance": ".metrics",
    "class_histogram_entropy": ".metrics", "copy_ratio": ".metrics", "TokenGenerator": ".tokens",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
