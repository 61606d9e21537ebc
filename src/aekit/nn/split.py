"""A code split in two: a content part and a style part, each a bottleneck of any kind.

Both parts read the same encoder output ``h``; the code is their concatenation
``[content | style]``. A typical use is disentanglement: a narrow (often vector-quantized)
content code for *what* is said beside a continuous style vector for *who* says it, so
that swapping the style part changes the speaker and keeps the words.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import ParameterError
from .bottlenecks import Bottleneck, BottleneckOutput

PARTS = ("content", "style")


class SplitBottleneck(Bottleneck):
    """``content`` and ``style`` are specs ``{"type": kind, "code_size": n, **options}`` of
    two bottlenecks (see ``registry.BOTTLENECKS``). Aux losses are prefixed ``content.`` /
    ``style.`` and keep each part's weights and schedules; ``indices`` and ``decode_indices``
    are the content part's; ``rate`` sums the parts that have one."""

    def __init__(self, in_features: int, content: dict[str, Any], style: dict[str, Any],
                 code_size: int | None = None) -> None:
        super().__init__()
        from .registry import build_bottleneck  # the registry imports this module

        if not isinstance(content, dict) or not isinstance(style, dict):
            raise ParameterError("a split bottleneck needs content={...} and style={...} bottleneck specs")
        self.config = dict(in_features=in_features, content=dict(content), style=dict(style))
        self.in_features = in_features
        self.content = build_bottleneck(in_features, content, "content")
        self.style = build_bottleneck(in_features, style, "style")
        self.content_size, self.style_size = self.content.code_size, self.style.code_size
        self.code_size = self.content_size + self.style_size
        if code_size is not None and code_size != self.code_size:
            raise ParameterError(f"code_size {code_size} is not content {self.content_size} + style {self.style_size}")
        self.discrete = self.content.discrete

    def split_code(self, code: Tensor) -> tuple[Tensor, Tensor]:
        """``(content, style)`` parts of a code."""
        return code[:, :self.content_size], code[:, self.content_size:]

    def join(self, content: Tensor, style: Tensor) -> Tensor:
        """The code made of a content part and a style part (e.g. another speaker's style)."""
        if content.shape[1] != self.content_size or style.shape[1] != self.style_size:
            raise ParameterError(f"parts must be [N, {self.content_size}] and [N, {self.style_size}], "
                                 f"got {tuple(content.shape)} and {tuple(style.shape)}")
        return torch.cat([content, style], dim=1)

    def forward(self, h: Tensor) -> BottleneckOutput:
        c, s = self.content(h), self.style(h)
        aux = {f"content.{k}": v for k, v in c.aux_losses.items()}
        aux.update({f"style.{k}": v for k, v in s.aux_losses.items()})
        rates = [r for r in (c.rate, s.rate) if r is not None]
        rate = sum(rates[1:], rates[0]) if rates else None
        return BottleneckOutput(torch.cat([c.code, s.code], dim=1), aux, indices=c.indices, rate=rate)

    def decode_indices(self, indices: Tensor, style: Tensor | None = None) -> Tensor:
        """The code of content symbols, with ``style`` (or zeros) as the style part."""
        content = self.content.decode_indices(indices)
        style = torch.zeros(len(content), self.style_size) if style is None else style
        return self.join(content, style)

    def aux_weight(self, name: str, progress: float) -> float:
        part, _, inner = name.partition(".")
        return getattr(self, part).aux_weight(inner, progress) if part in PARTS else 1.0

    def set_progress(self, progress: float) -> None:
        self.content.set_progress(progress)
        self.style.set_progress(progress)
