"""Convolutional encoders and decoders, sized by the input shape: for images ``[N, C, H, W]``
and (``SeriesConv*``, 1-D along time) for windows of a series.

Each encoder stage halves the resolution (3x3 convolution, stride 2); the decoder mirrors it
with 4x4 transposed convolutions and crops to the exact input size, so odd sizes (25x25)
work without padding the data.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..checks import MAX_IMAGE_SIDE, MAX_WIDTH, check_int, check_sizes
from .mlp import make_activation


def _check_shape(channels_in: int, height: int, width: int, features: int, channels: Sequence[int]) -> list[int]:
    check_int(channels_in, "image channels", 1, 4)
    check_int(height, "image height", 1, MAX_IMAGE_SIDE)
    check_int(width, "image width", 1, MAX_IMAGE_SIDE)
    check_int(features, "hidden", 1, MAX_WIDTH)
    sizes = check_sizes(channels, "channels")
    if not sizes:
        check_int(0, "number of conv channels", 1)
    return sizes


def _halve(n: int) -> int:
    return (n + 1) // 2  # a 3x3 stride-2 convolution with padding 1


def grid_side(side: int, stages: int) -> int:
    """Cells along an image side of ``side`` pixels after ``stages`` stride-2 stages."""
    for _ in range(stages):
        side = _halve(side)
    return side


class ConvEncoder(nn.Module):
    """``[N, C, H, W] -> [N, out_features]``: stride-2 conv stages, then a linear map."""

    def __init__(self, in_channels: int, height: int, width: int, out_features: int,
                 channels: Sequence[int] = (32, 64), activation: str = "relu", batch_norm: bool = False) -> None:
        super().__init__()
        channels = _check_shape(in_channels, height, width, out_features, channels)
        self.config = dict(in_channels=in_channels, height=height, width=width, out_features=out_features,
                           channels=list(channels), activation=activation, batch_norm=batch_norm)
        layers: list[nn.Module] = []
        c, h, w = in_channels, height, width
        for out_c in channels:
            layers.append(nn.Conv2d(c, out_c, 3, stride=2, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_c))
            layers.append(make_activation(activation))
            c, h, w = out_c, _halve(h), _halve(w)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, out_features), make_activation(activation))
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ConvDecoder(nn.Module):
    """``[N, in_features] -> [N, C, H, W]``: a linear map to the smallest feature map, then
    stride-2 transposed convolutions; the last layer is linear (logits or values)."""

    def __init__(self, in_features: int, out_channels: int, height: int, width: int,
                 channels: Sequence[int] = (64, 32), activation: str = "relu", batch_norm: bool = False) -> None:
        super().__init__()
        channels = _check_shape(out_channels, height, width, in_features, channels)
        self.config = dict(in_features=in_features, out_channels=out_channels, height=height, width=width,
                           channels=list(channels), activation=activation, batch_norm=batch_norm)
        h0, w0 = grid_side(height, len(channels)), grid_side(width, len(channels))
        self.start = (channels[0], h0, w0)
        self.head = nn.Sequential(nn.Linear(in_features, channels[0] * h0 * w0), make_activation(activation))
        stages = [*channels, out_channels]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(stages[:-1], stages[1:])):
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(stages) - 2:  # hidden stages; the output layer stays linear
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(make_activation(activation))
        self.upsample = nn.Sequential(*layers)
        self.height, self.width = height, width

    def forward(self, z: Tensor) -> Tensor:
        x = self.head(z).view(-1, *self.start)
        return self.upsample(x)[:, :, : self.height, : self.width]


def _check_series(channels_in: int, length: int, features: int, channels: Sequence[int]) -> list[int]:
    check_int(channels_in, "series channels", 1, MAX_WIDTH)
    check_int(length, "window length", 2, 1 << 16)
    check_int(features, "hidden", 1, MAX_WIDTH)
    sizes = check_sizes(channels, "channels")
    if not sizes:
        check_int(0, "number of conv channels", 1)
    return sizes


class SeriesConvEncoder(nn.Module):
    """Windows of a series, flattened channel after channel ``[N, C * L]``, ``-> [N, out_features]``:
    stride-2 1-D convolutions along time (kernel 5), then a linear map. Flat input keeps the
    detectors' per-feature weights, explanations and local term as they are for rows."""

    def __init__(self, in_channels: int, length: int, out_features: int, channels: Sequence[int] = (32, 64),
                 activation: str = "relu") -> None:
        super().__init__()
        channels = _check_series(in_channels, length, out_features, channels)
        self.config = dict(in_channels=in_channels, length=length, out_features=out_features,
                           channels=list(channels), activation=activation)
        layers: list[nn.Module] = []
        c, n = in_channels, length
        for out_c in channels:
            layers += [nn.Conv1d(c, out_c, 5, stride=2, padding=2), make_activation(activation)]
            c, n = out_c, _halve(n)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * n, out_features), make_activation(activation))
        self.shape = (in_channels, length)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.view(-1, *self.shape)))


class SeriesConvDecoder(nn.Module):
    """``[N, in_features] -> [N, C * L]``: a linear map to the shortest feature sequence, then
    stride-2 transposed 1-D convolutions, cropped to ``length`` and flattened; the last layer
    is linear."""

    def __init__(self, in_features: int, out_channels: int, length: int, channels: Sequence[int] = (64, 32),
                 activation: str = "relu") -> None:
        super().__init__()
        channels = _check_series(out_channels, length, in_features, channels)
        self.config = dict(in_features=in_features, out_channels=out_channels, length=length,
                           channels=list(channels), activation=activation)
        self.start = (channels[0], grid_side(length, len(channels)))
        self.head = nn.Sequential(nn.Linear(in_features, channels[0] * self.start[1]), make_activation(activation))
        stages = [*channels, out_channels]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(stages[:-1], stages[1:])):
            layers.append(nn.ConvTranspose1d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(stages) - 2:
                layers.append(make_activation(activation))
        self.upsample = nn.Sequential(*layers)
        self.length = length

    def forward(self, z: Tensor) -> Tensor:
        return self.upsample(self.head(z).view(-1, *self.start))[:, :, : self.length].flatten(1)
