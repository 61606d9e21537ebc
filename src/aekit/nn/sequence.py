"""Sequence autoencoders with a split code: content frames and one style vector (AdaIN-VC).

A sequence ``x`` of shape ``[N, F, T]`` (e.g. log-mel frames) is encoded twice:

- ``ContentEncoder``: 1-D convolutions, each followed by instance normalisation *without*
  affine parameters, down to a narrow code ``[N, C, T]``. Instance normalisation removes
  every channel's mean and spread over the utterance: the global colour of a voice, which is
  what the style vector is there to carry. With ``codebook_size > 0`` every code frame is
  also vector-quantized (VQVC, Wu & Lee 2020): the content becomes a sequence of discrete
  units, one of ``codebook_size`` per 16 ms frame.
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

import torch
from torch import Tensor, nn

from ..checks import MAX_WIDTH, check_int
from ..errors import ParameterError
from .discrete import VectorQuantizer

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
    def __init__(self, in_channels: int, hidden: int, code_channels: int, layers: int = 3,
                 codebook_size: int = 0) -> None:
        super().__init__()
        self.config = dict(in_channels=_check("in_channels", in_channels), hidden=_check("hidden", hidden),
                           code_channels=_check("code_channels", code_channels), layers=_check("layers", layers, 1, 32),
                           codebook_size=_check("codebook_size", codebook_size, 0))
        if codebook_size == 1:
            raise ParameterError("codebook_size must be 0 (a continuous code) or at least 2")
        blocks: list[nn.Module] = []
        channels = in_channels
        for _ in range(layers):
            blocks += [nn.Conv1d(channels, hidden, KERNEL, padding=KERNEL // 2), nn.InstanceNorm1d(hidden),
                       nn.LeakyReLU(0.2)]
            channels = hidden
        self.body = nn.Sequential(*blocks)
        self.out = nn.Conv1d(hidden, code_channels, 1)
        self.norm = nn.InstanceNorm1d(code_channels)  # the code itself carries no per-utterance offset
        self.quantizer = VectorQuantizer(codebook_size, code_channels) if codebook_size else None

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """``(code [N, C, T], units [N, T] or None, vq loss per frame [N, T])``; without a
        codebook there are no units and the loss is zero."""
        z = self.norm(self.out(self.body(x)))
        if self.quantizer is None:
            return z, None, z.new_zeros(z.shape[0], z.shape[2])
        n, c, t = z.shape
        quantized, idx, loss = self.quantizer.quantize(z.transpose(1, 2).reshape(n * t, c))
        return quantized.view(n, t, c).transpose(1, 2), idx.view(n, t), loss.view(n, t)

    def forward(self, x: Tensor) -> Tensor:
        return self.encode(x)[0]

    def units(self, x: Tensor) -> Tensor:
        """The discrete content units ``[N, T]`` (codebook indices) of ``x``."""
        if self.quantizer is None:
            raise ParameterError("this content encoder has no codebook (codebook_size=0): it has no units")
        return self.encode(x)[1]


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

    def adain(self, style: Tensor) -> Tensor:
        """The voice as the decoder uses it: every layer's AdaIN scale and shift,
        ``[N, layers, 2 * hidden]``, projected from the style vector."""
        return torch.stack([affine(style) for affine in self.affine], dim=1)

    def render(self, code: Tensor, adain: Tensor) -> Tensor:
        """Frames from a content code and AdaIN parameters (``adain``'s output, or fitted ones)."""
        h = self.inp(code)
        for k, conv in enumerate(self.convs):
            scale, shift = adain[:, k].unsqueeze(2).chunk(2, dim=1)
            h = h + self.act(self.norm(conv(h)) * (1 + scale) + shift)  # residual: deep stacks still train
        return self.out(h)

    def forward(self, code: Tensor, style: Tensor) -> Tensor:
        return self.render(code, self.adain(style))


class SplitSequenceAutoEncoder(nn.Module):
    """``x [N, F, T] -> (content [N, C, T], style [N, S]) -> x'``; see the module docstring."""

    def __init__(self, content: nn.Module, style: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.content, self.style, self.decoder = content, style, decoder

    @classmethod
    def build(cls, n_features: int, hidden: int = 192, code_channels: int = 8, style_size: int = 64,
              layers: int = 3, codebook_size: int = 0) -> SplitSequenceAutoEncoder:
        return cls(ContentEncoder(n_features, hidden, code_channels, layers, codebook_size),
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

    def voice(self, x: Tensor, steps: int = 0, lr: float = 0.03, fit_frames: int | None = None) -> Tensor:
        """The voice of the utterances ``x [N, F, T]`` as AdaIN parameters: the style
        encoder's guess, then ``steps`` Adam steps that fit them to rebuild ``x`` (its middle
        ``fit_frames`` frames, to bound the cost) from its own content code: one-shot speaker
        adaptation, the network's weights stay as trained. The guess alone places an unheard
        voice among the few heard in training; the fit reaches the voices between them."""
        with torch.no_grad():
            params = self.decoder.adain(self.style(x))
            if steps <= 0:
                return params
            if fit_frames is not None and x.shape[2] > fit_frames:
                start = (x.shape[2] - fit_frames) // 2
                x = x[:, :, start:start + fit_frames]
            code = self.content(x)
        # callers may be in inference mode, whose tensors autograd refuses: fit on plain copies
        with torch.inference_mode(False), torch.enable_grad():
            x, code, params = x.clone(), code.clone(), params.clone().requires_grad_(True)
            opt = torch.optim.Adam([params], lr=lr)
            for _ in range(steps):
                error = (self.decoder.render(code, params) - x).abs().mean()
                (params.grad,) = torch.autograd.grad(error, [params])  # no gradients for the weights
                opt.step()
        return params.detach()

    def speak(self, content_of: Tensor, voice: Tensor) -> Tensor:
        """The frames of ``content_of`` said in ``voice`` (AdaIN parameters from ``voice``)."""
        return self.decoder.render(self.content(content_of), voice)

    def loss(self, x: Tensor, progress: float = 1.0, mask: Tensor | None = None,
             content_of: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean absolute reconstruction error over real frames (L1, as AdaIN-VC), plus the
        commitment loss of a VQ content code (per frame, in units of one feature's error).
        ``content_of``: a perturbed copy of ``x`` (same frames, another voice) to take the
        content code from, so that what the perturbation changes must come from the style."""
        code, _, vq = self.content.encode(x if content_of is None else content_of)
        error = (self.decoder(code, self.style(x, mask)) - x).abs().mean(dim=1)  # [N, T]
        weights = torch.ones_like(error) if mask is None else mask.to(x.dtype)
        total = weights.sum().clamp(min=1.0)
        rec = (error * weights).sum() / total
        parts = {"reconstruction": rec.detach()}
        if self.content.quantizer is None:
            return rec, parts
        commitment = (vq * weights).sum() / total / code.shape[1]
        parts["vq"] = commitment.detach()
        return rec + commitment, parts
