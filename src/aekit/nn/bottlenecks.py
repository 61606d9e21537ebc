"""Bottlenecks: the representation in the middle of an autoencoder.

A bottleneck maps the encoder's output ``h`` to a code and returns
``BottleneckOutput(code, aux_losses)``. ``aux_losses`` are unweighted extra loss terms
(the KL of a Gaussian code, the commitment loss of a codebook, ...); ``aux_weight(name,
progress)`` gives each one's weight at a point of training (``progress`` runs from 0 to 1),
which is how schedules such as KL warm-up are expressed.

Continuous and Gaussian codes live here now; binary, one-hot, vector-quantized and split
codes are further subclasses of ``Bottleneck`` with the same contract.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn


@dataclass
class BottleneckOutput:
    code: Tensor
    aux_losses: dict[str, Tensor] = field(default_factory=dict)


class Bottleneck(nn.Module):
    """Base class. Subclasses set ``self.config`` (JSON-able constructor arguments)."""

    in_features: int
    code_size: int

    def aux_weight(self, name: str, progress: float) -> float:
        return 1.0


class ContinuousBottleneck(Bottleneck):
    """A real-valued code: a linear map from ``h`` to ``code_size`` numbers."""

    def __init__(self, in_features: int, code_size: int) -> None:
        super().__init__()
        if code_size < 1:
            raise ValueError(f"code_size must be >= 1, got {code_size}")
        self.config = dict(in_features=in_features, code_size=code_size)
        self.in_features, self.code_size = in_features, code_size
        self.proj = nn.Linear(in_features, code_size)

    def forward(self, h: Tensor) -> BottleneckOutput:
        return BottleneckOutput(self.proj(h))


class GaussianBottleneck(Bottleneck):
    """A VAE code: ``q(z|x) = N(mu, diag(sigma^2))`` sampled with the reparameterisation trick
    while training, its mean at inference. The KL to N(0, I) is the ``kl`` aux loss, weighted
    by ``beta`` ramped linearly from 0 over the first ``kl_warmup`` fraction of training.

    log-variance is clamped to [-8, 8] so that hard data (huge or constant features) cannot
    produce inf/NaN through ``exp``.
    """

    LOGVAR_RANGE = (-8.0, 8.0)

    def __init__(self, in_features: int, code_size: int, beta: float = 1.0, kl_warmup: float = 0.3) -> None:
        super().__init__()
        if code_size < 1:
            raise ValueError(f"code_size must be >= 1, got {code_size}")
        if beta < 0 or not 0 <= kl_warmup <= 1:
            raise ValueError(f"need beta >= 0 and 0 <= kl_warmup <= 1, got {beta}, {kl_warmup}")
        self.config = dict(in_features=in_features, code_size=code_size, beta=beta, kl_warmup=kl_warmup)
        self.in_features, self.code_size = in_features, code_size
        self.beta, self.kl_warmup = beta, kl_warmup
        self.mu = nn.Linear(in_features, code_size)
        self.logvar = nn.Linear(in_features, code_size)
        self.sample_in_eval = False  # set True to draw codes at inference (e.g. for ELBO scoring)

    def distribution(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.logvar(h).clamp(*self.LOGVAR_RANGE)

    def forward(self, h: Tensor) -> BottleneckOutput:
        mu, logvar = self.distribution(h)
        if self.training or self.sample_in_eval:
            code = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            code = mu
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return BottleneckOutput(code, {"kl": kl})

    def aux_weight(self, name: str, progress: float) -> float:
        if name != "kl":
            return 1.0
        if self.kl_warmup <= 0:
            return self.beta
        return self.beta * min(1.0, progress / self.kl_warmup)
