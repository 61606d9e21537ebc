"""Rebuild networks from JSON: every building block is named here with its constructor.

A model directory stores each part as ``{"type": name, **module.config}``; ``build`` turns
that back into a module, so loading a model never runs pickled code.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from .bottlenecks import ContinuousBottleneck, GaussianBottleneck
from .conv import ConvDecoder, ConvEncoder
from .discrete import BinaryBottleneck, OneHotBottleneck, VQBottleneck
from .mlp import MLP

MODULES: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "conv_encoder": ConvEncoder,
    "conv_decoder": ConvDecoder,
    "continuous": ContinuousBottleneck,
    "gaussian": GaussianBottleneck,
    "binary": BinaryBottleneck,
    "onehot": OneHotBottleneck,
    "vq": VQBottleneck,
}
_NAMES = {cls: name for name, cls in MODULES.items()}


def describe(module: nn.Module) -> dict[str, Any]:
    """The JSON spec of a registered module: its type name and constructor arguments."""
    try:
        name = _NAMES[type(module)]
    except KeyError:
        raise TypeError(f"{type(module).__name__} is not a registered aekit module") from None
    return {"type": name, **module.config}


def build(spec: dict[str, Any]) -> nn.Module:
    """Inverse of ``describe``."""
    spec = dict(spec)
    name = spec.pop("type", None)
    if name not in MODULES:
        raise ValueError(f"unknown module type {name!r}; known: {sorted(MODULES)}")
    return MODULES[name](**spec)
