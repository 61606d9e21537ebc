"""Entropy coding of a codec's integer symbols into bytes, with ``constriction``'s range coder.

Side information ``z`` is coded with each channel's learned factorized pmf (categorical over
``-support..support``); the main latents as ``round(y - mean)`` under a quantized Gaussian of
the hyperprior's scale. Both ends compute the same models from the same integers, so the
decoder gets back exactly the symbols the encoder wrote.
"""
from __future__ import annotations

import numpy as np
import torch

from ...errors import DataError

Y_SUPPORT = 4095  # |round(y - mean)| beyond this is clamped (never reached by trained codecs)


def _coder():
    try:
        import constriction
    except ImportError:  # pragma: no cover - a declared dependency
        raise DataError("compression needs constriction: pip install constriction") from None
    return constriction


def _to_bytes(words: np.ndarray) -> bytes:
    return np.asarray(words, dtype="<u4").tobytes()


def _from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u4").astype(np.uint32)


def _z_models(z_shape: torch.Size, pmf: torch.Tensor) -> np.ndarray:
    """One probability row per z symbol (channel-major order as ``z.flatten()``)."""
    _, c, h, w = z_shape
    rows = pmf.double().numpy()
    rows = rows / rows.sum(axis=1, keepdims=True)
    return np.repeat(rows, h * w, axis=0)


def encode_z(z: torch.Tensor, pmf: torch.Tensor, support: int) -> bytes:
    c = _coder()
    encoder = c.stream.queue.RangeEncoder()
    symbols = (z.flatten().long() + support).numpy().astype(np.int32)
    encoder.encode(symbols, c.stream.model.Categorical(perfect=False), _z_models(z.shape, pmf))
    return _to_bytes(encoder.get_compressed())


def min_z_bits(pmf: torch.Tensor) -> float:
    """The fewest bits one position of ``z`` (every channel's symbol) can be coded in: what a
    payload of a given size can hold at most, known before anything is decoded. The coder's
    24-bit fixed-point probabilities may round each one up a little; that is allowed for."""
    rows = pmf.double() / pmf.double().sum(1, keepdim=True)
    slack = rows.shape[1] * 2.0 ** -24
    best = (rows.max(1).values + slack).clamp_max(1 - (rows.shape[1] - 1) * 2.0 ** -24)
    return float(-torch.log2(best).sum())


def _insist_exhausted(decoder) -> None:  # noqa: ANN001 - constriction's own types
    """Insist that the payload held exactly the symbols decoded: a payload with words left
    over (or one that ran out) was written for another image size."""
    if not decoder.maybe_exhausted():
        raise ValueError("the payload holds more than the header's image")


def decode_z(data: bytes, shape: tuple[int, int, int, int], pmf: torch.Tensor, support: int) -> torch.Tensor:
    c = _coder()
    decoder = c.stream.queue.RangeDecoder(_from_bytes(data))
    symbols = decoder.decode(c.stream.model.Categorical(perfect=False), _z_models(torch.Size(shape), pmf))
    _insist_exhausted(decoder)
    return torch.from_numpy(symbols.astype(np.float32) - support).view(shape)


def encode_y(residuals: torch.Tensor, scales: torch.Tensor) -> bytes:
    """Range-code the integers ``residuals`` (``round(y - mean)``, any shape) under zero-mean
    quantized Gaussians of ``scales``, in ``flatten()`` order."""
    c = _coder()
    encoder = c.stream.queue.RangeEncoder()
    symbols = residuals.flatten().numpy().astype(np.int32)
    stds = scales.flatten().double().numpy()
    encoder.encode(symbols, c.stream.model.QuantizedGaussian(-Y_SUPPORT, Y_SUPPORT), np.zeros_like(stds), stds)
    return _to_bytes(encoder.get_compressed())


class YDecoder:
    """Decodes ``encode_y``'s payload in parts, in the order they were written: ``take``
    each group's residuals once the decoder knows its scales, then ``finish``."""

    def __init__(self, data: bytes) -> None:
        self._coder = _coder()
        self._decoder = self._coder.stream.queue.RangeDecoder(_from_bytes(data))

    def take(self, scales: torch.Tensor) -> torch.Tensor:
        """The next ``scales.numel()`` residuals, shaped as ``scales``."""
        stds = scales.flatten().double().numpy()
        model = self._coder.stream.model.QuantizedGaussian(-Y_SUPPORT, Y_SUPPORT)
        symbols = self._decoder.decode(model, np.zeros_like(stds), stds)
        return torch.from_numpy(symbols.astype(np.float32)).view(scales.shape)

    def finish(self) -> None:
        """Insist that the payload held exactly the symbols taken."""
        _insist_exhausted(self._decoder)
