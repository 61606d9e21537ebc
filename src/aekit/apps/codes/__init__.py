"""Discrete codes and what they are for: clustering (one cluster per input), binary codes
for retrieval, and vector-quantized tokens. Names are imported on first use."""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "AutoEncoderClustering": ".cluster", "matched_accuracy": ".cluster", "BinaryHasher": ".hashing",
    "bit_health": ".hashing", "hamming_distances": ".hashing", "hamming_search": ".hashing",
    "mean_average_precision": ".hashing", "ranking_map": ".hashing", "VQAutoEncoder": ".vqvae",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
