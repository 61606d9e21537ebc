"""Sequence autoencoders with a split code: content frames and one style vector (AdaIN-VC).

A sequence ``x`` of shape ``[N, F, T]`` (e.g. log-mel frames) is encoded twice:

- ``ContentEncoder``: 1-D convolutions, each followed by instance normalisation *without*
  affine parameters, down to a narrow code ``[N, C, T]``. Instance normalisation removes
  every channel's mean and spread over the utterance: the global colour of a voice, which is
  what the style vector is there to carry.
- ``StyleEncoder``: 1-D convolutions and a (masked) mean over time: one vector ``[N, S]``
  per utterance (the speaker).
- ``AdaINDecoder``: rebuilds the frames from the content code, each layer normalised and then
  scaled and shifted by a projection of the style vector (adaptive instance normalisation,
  Chou et al. 2019, arXiv 1904.05742).

``SplitSequenceAutoEncoder`` joins them; ``convert(content_of, style_of)`` decodes the
content of one utterance with the style of another. Every part is a registered module, so a
model directory rebuilds it from JSON (``spec`` / ``from_spec``).
"""
from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ..checks import MAX_WIDTH, check_int
from ..errors import ParameterError

KERNEL = 5


def _check(name: str, value: int, low: int = 1, high: int = MAX_WIDTH) -> int:
    return check_int(value, name, low, high)


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over time ``[N, C, T] -> [N, C]``, counting only frames where ``mask`` is True."""
    if mask is None:
        return x.mean(dim=2)
    weights = mask.to(x.dtype).unsqueeze(1)
    return (x * weights).sum(dim=2) / weights.sum(dim=2).clamp(min=1.0)


class ContentEncoder(nn.Module):
    def __init__(self, in_channels: int, hidden: int, code_channels: int, layers: int = 3) -> None:
        super().__init__()
        self.config = dict(in_channels=_check("in_channels", in_channels), hidden=_check("hidden", hidden),
                           code_channels=_check("code_channels", code_channels), layers=_check("layers", layers, 1, 32))
        blocks: list[nn.Module] = []
        channels = in_channels
        for _ in range(layers):
            blocks += [nn.Conv1d(channels, hidden, KERNEL, padding=KERNEL // 2), nn.InstanceNorm1d(hidden),
                       nn.LeakyReLU(0.2)]
            channels = hidden
        self.body = nn.Sequential(*blocks)
        self.out = nn.Conv1d(hidden, code_channels, 1)
        self.norm = nn.InstanceNorm1d(code_channels)  # the code itself carries no per-utterance offset

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.out(self.body(x)))


class StyleEncoder(nn.Module):
    def __init__(self, in_channels: int, hidden: int, style_size: int, layers: int = 3) -> None:
        super().__init__()
        self.config = dict(in_channels=_check("in_channels", in_channels), hidden=_check("hidden", hidden),
                           style_size=_check("style_size", style_size), layers=_check("layers", layers, 1, 32))
        self.convs = nn.ModuleList(nn.Conv1d(in_channels if i == 0 else hidden, hidden, KERNEL, padding=KERNEL // 2)
                                   for i in range(layers))
        self.act = nn.LeakyReLU(0.2)
        self.out = nn.Linear(hidden, style_size)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        keep = None if mask is None else mask.to(x.dtype).unsqueeze(1)
        h = x if keep is None else x * keep
        for conv in self.convs:
            h = self.act(conv(h))
            if keep is not None:  # padding stays zero, so it cannot leak into the real frames' features
                h = h * keep
        return self.out(masked_mean(h, mask))


class AdaINDecoder(nn.Module):
    def __init__(self, code_channels: int, style_size: int, hidden: int, out_channels: int, layers: int = 3) -> None:
        super().__init__()
        self.config = dict(code_channels=_check("code_channels", code_channels),
                           style_size=_check("style_size", style_size), hidden=_check("hidden", hidden),
                           out_channels=_check("out_channels", out_channels), layers=_check("layers", layers, 1, 32))
        self.inp = nn.Conv1d(code_channels, hidden, 1)
        self.convs = nn.ModuleList(nn.Conv1d(hidden, hidden, KERNEL, padding=KERNEL // 2) for _ in range(layers))
        self.norm = nn.InstanceNorm1d(hidden)
        self.affine = nn.ModuleList(nn.Linear(style_size, 2 * hidden) for _ in range(layers))
        self.act = nn.LeakyReLU(0.2)
        self.out = nn.Conv1d(hidden, out_channels, 1)

    def forward(self, code: Tensor, style: Tensor) -> Tensor:
        h = self.inp(code)
        for conv, affine in zip(self.convs, self.affine, strict=True):
            scale, shift = affine(style).unsqueeze(2).chunk(2, dim=1)
            h = h + self.act(self.norm(conv(h)) * (1 + scale) + shift)  # residual: deep stacks still train
        return self.out(h)


class SplitSequenceAutoEncoder(nn.Module):
    """``x [N, F, T] -> (content [N, C, T], style [N, S]) -> x'``; see the module docstring."""

    def __init__(self, content: nn.Module, style: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.content, self.style, self.decoder = content, style, decoder

    @classmethod
    def build(cls, n_features: int, hidden: int = 192, code_channels: int = 8, style_size: int = 64,
              layers: int = 3) -> SplitSequenceAutoEncoder:
        return cls(ContentEncoder(n_features, hidden, code_channels, layers),
                   StyleEncoder(n_features, hidden, style_size, layers),
                   AdaINDecoder(code_channels, style_size, hidden, n_features, layers))

    def spec(self) -> dict[str, Any]:
        from .registry import describe

        return {"content": describe(self.content), "style": describe(self.style), "decoder": describe(self.decoder)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SplitSequenceAutoEncoder:
        from .registry import build

        if not isinstance(spec, dict) or set(spec) != {"content", "style", "decoder"}:
            raise ParameterError("a sequence autoencoder spec needs exactly content, style and decoder")
        parts = {k: build(spec[k]) for k in ("content", "style", "decoder")}
        for name, kind in (("content", ContentEncoder), ("style", StyleEncoder), ("decoder", AdaINDecoder)):
            if not isinstance(parts[name], kind):
                raise ParameterError(f"the {name} part must be a {kind.__name__}")
        return cls(parts["content"], parts["style"], parts["decoder"])

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.decoder(self.content(x), self.style(x, mask))

    def convert(self, content_of: Tensor, style_of: Tensor, style_mask: Tensor | None = None) -> Tensor:
        """The frames of ``content_of`` said in the style (voice) of ``style_of``."""
        return self.decoder(self.content(content_of), self.style(style_of, style_mask))

    def loss(self, x: Tensor, progress: float = 1.0, mask: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean absolute reconstruction error over real frames (L1, as AdaIN-VC)."""
        error = (self.forward(x, mask) - x).abs()
        if mask is not None:
            weights = mask.to(x.dtype).unsqueeze(1)
            rec = (error * weights).sum() / (weights.sum() * x.shape[1]).clamp(min=1.0)
        else:
            rec = error.mean()
        return rec, {"reconstruction": rec.detach()}
