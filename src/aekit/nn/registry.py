"""Rebuild networks from JSON: the one name table of every building block.

A model directory stores each part as ``{"type": name, **module.config}``; ``build`` turns
that back into a module, so loading a model never runs pickled code. ``BOTTLENECKS`` is the
part of the table that can sit in the middle of an autoencoder.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ParameterError
from .bottlenecks import Bottleneck, ContinuousBottleneck, GaussianBottleneck
from .conv import ConvDecoder, ConvEncoder, SeriesConvDecoder, SeriesConvEncoder
from .discrete import BinaryBottleneck, OneHotBottleneck, VQBottleneck
from .mlp import MLP
from .sequence import AdaINDecoder, ContentEncoder, StyleEncoder
from .split import SplitBottleneck

BOTTLENECKS: dict[str, type[Bottleneck]] = {
    "continuous": ContinuousBottleneck,
    "gaussian": GaussianBottleneck,
    "binary": BinaryBottleneck,
    "onehot": OneHotBottleneck,
    "vq": VQBottleneck,
    "split": SplitBottleneck,
}
MODULES: dict[str, type[nn.Module]] = {
    "identity": nn.Identity,
    "mlp": MLP,
    "conv_encoder": ConvEncoder,
    "conv_decoder": ConvDecoder,
    "series_conv_encoder": SeriesConvEncoder,
    "series_conv_decoder": SeriesConvDecoder,
    "content_encoder": ContentEncoder,
    "style_encoder": StyleEncoder,
    "adain_decoder": AdaINDecoder,
    **BOTTLENECKS,
}
_NAMES = {cls: name for name, cls in MODULES.items()}


def describe(module: nn.Module) -> dict[str, Any]:
    """The JSON spec of a registered module: its type name and constructor arguments."""
    try:
        name = _NAMES[type(module)]
    except KeyError:
        raise TypeError(f"{type(module).__name__} is not a registered aekit module") from None
    return {"type": name, **getattr(module, "config", {})}


def build(spec: dict[str, Any]) -> nn.Module:
    """Inverse of ``describe``."""
    if not isinstance(spec, dict):
        raise ParameterError(f"a module spec must be a JSON object, got {type(spec).__name__}")
    spec = dict(spec)
    name = spec.pop("type", None)
    if name not in MODULES:
        raise ParameterError(f"unknown module type {name!r}; known: {sorted(MODULES)}")
    return MODULES[name](**spec)


def build_bottleneck(in_features: int, spec: dict[str, Any], role: str = "bottleneck") -> Bottleneck:
    """A bottleneck from ``{"type": kind, "code_size": n, **options}`` reading ``in_features``."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind not in BOTTLENECKS:
        raise ParameterError(f"{role} must be one of {sorted(BOTTLENECKS)}, got {kind!r}")
    return BOTTLENECKS[kind](in_features, **spec)
