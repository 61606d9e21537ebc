"""Bottlenecks: the representation in the middle of an autoencoder.

A bottleneck maps the encoder's output ``h`` to a code of ``code_size`` numbers (what the
decoder receives, for every kind of bottleneck) and returns
``BottleneckOutput(code, aux_losses, indices, rate)``. ``aux_losses`` are unweighted extra loss terms
(the KL of a Gaussian code, the commitment loss of a codebook, ...); ``aux_weight(name,
progress)`` gives each one's weight at a point of training (``progress`` runs from 0 to 1),
which is how schedules such as KL warm-up are expressed.

``rate`` is the code's cost in bits per sample where the bottleneck has one (a discrete
code's bits; a Gaussian code's KL to its prior, in bits), for rate-distortion objectives.
A discrete bottleneck also returns its symbols (``indices``) and maps symbols back to a code
(``decode_indices``), so applications never reach into codebooks or projections.

Continuous and Gaussian codes live here; binary, one-hot and vector-quantized codes in
``discrete.py``, the content/style split in ``split.py``, all with the same contract.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..checks import MAX_WIDTH, check_float, check_int
from ..errors import ParameterError

LN2 = math.log(2.0)


@dataclass
class BottleneckOutput:
    code: Tensor
    aux_losses: dict[str, Tensor] = field(default_factory=dict)
    indices: Tensor | None = None  # the discrete symbols of a discrete code
    rate: Tensor | None = None  # bits per sample, where the bottleneck has a rate


class Bottleneck(nn.Module):
    """Base class. Subclasses set ``self.config`` (JSON-able constructor arguments)."""

    in_features: int
    code_size: int
    discrete = False

    def decode_indices(self, indices: Tensor) -> Tensor:
        """The code of discrete symbols (the inverse of ``indices``), for discrete bottlenecks."""
        raise ParameterError(f"a {type(self).__name__} has no discrete symbols to decode")

    def aux_weight(self, name: str, progress: float) -> float:
        return 1.0

    def set_progress(self, progress: float) -> None:
        """Told the point of training (0 to 1) before each training step; schedules such as a
        Gumbel-softmax temperature read it."""


class ContinuousBottleneck(Bottleneck):
    """A real-valued code: a linear map from ``h`` to ``code_size`` numbers."""

    def __init__(self, in_features: int, code_size: int) -> None:
        super().__init__()
        check_int(code_size, "code_size", 1, MAX_WIDTH)
        self.config = dict(in_features=in_features, code_size=code_size)
        self.in_features, self.code_size = in_features, code_size
        self.proj = nn.Linear(in_features, code_size)

    def forward(self, h: Tensor) -> BottleneckOutput:
        return BottleneckOutput(self.proj(h))


class GaussianBottleneck(Bottleneck):
    """A VAE code: ``q(z|x) = N(mu, diag(sigma^2))`` sampled with the reparameterisation trick
    while training, its mean at inference. The KL to the prior is the ``kl`` aux loss, weighted
    by ``beta`` ramped linearly from 0 over the first ``kl_warmup`` fraction of training.

    The prior is N(0, I) (``prior_components=0``, closed-form KL) or, with
    ``prior_components=K``, a mixture of K diagonal Gaussians learned with the model (the KL is
    then the one-sample estimate ``log q(z|x) - log p(z)``). A learned prior follows the
    codes the encoder actually uses, so fewer prior samples fall in regions the decoder never
    saw ("holes"): on digits it takes the Fréchet distance of samples from 137 to 30
    (benchmarks/generation.py).

    log-variances are clamped to [-8, 8] so that hard data (huge or constant features) cannot
    produce inf/NaN through ``exp``.
    """

    LOGVAR_RANGE = (-8.0, 8.0)

    def __init__(self, in_features: int, code_size: int, beta: float = 1.0, kl_warmup: float = 0.3,
                 prior_components: int = 0) -> None:
        super().__init__()
        check_int(code_size, "code_size", 1, MAX_WIDTH)
        check_float(beta, "beta", 0)
        check_float(kl_warmup, "kl_warmup", 0, 1)
        check_int(prior_components, "prior_components", 0, 10_000)
        self.config = dict(in_features=in_features, code_size=code_size, beta=beta, kl_warmup=kl_warmup,
                           prior_components=prior_components)
        self.in_features, self.code_size = in_features, code_size
        self.beta, self.kl_warmup = beta, kl_warmup
        self.mu = nn.Linear(in_features, code_size)
        self.logvar = nn.Linear(in_features, code_size)
        if prior_components:
            # spread the initial means like N(0, I) samples so every component starts in use
            self.prior_means = nn.Parameter(torch.randn(prior_components, code_size))
            self.prior_logvars = nn.Parameter(torch.zeros(prior_components, code_size))
            self.prior_logits = nn.Parameter(torch.zeros(prior_components))
        self.sample_in_eval = False  # set True to draw codes at inference (e.g. for ELBO scoring)

    @property
    def prior_components(self) -> int:
        return self.config["prior_components"]

    def distribution(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mu(h), self.logvar(h).clamp(*self.LOGVAR_RANGE)

    def log_prior(self, z: Tensor) -> Tensor:
        """``log p(z)`` per row, in nats."""
        if not self.prior_components:
            return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)
        logvars = self.prior_logvars.clamp(*self.LOGVAR_RANGE)
        per_component = -0.5 * ((z[:, None] - self.prior_means).pow(2) / logvars.exp() + logvars
                                + math.log(2 * math.pi)).sum(-1)
        return torch.logsumexp(per_component + torch.log_softmax(self.prior_logits, 0), dim=1)

    @staticmethod
    def log_posterior(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """``log q(z|x)`` per row for ``q = N(mu, exp(logvar))``, in nats."""
        return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(1)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` codes drawn from the prior."""
        eps = torch.randn(n, self.code_size, generator=generator)
        if not self.prior_components:
            return eps
        comp = torch.multinomial(torch.softmax(self.prior_logits.detach(), 0), n, replacement=True, generator=generator)
        std = (0.5 * self.prior_logvars.detach().clamp(*self.LOGVAR_RANGE)[comp]).exp()
        return self.prior_means.detach()[comp] + eps * std

    def forward(self, h: Tensor) -> BottleneckOutput:
        mu, logvar = self.distribution(h)
        sampled = self.training or self.sample_in_eval
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sampled or self.prior_components else mu
        if self.prior_components:
            kl = self.log_posterior(z, mu, logvar) - self.log_prior(z)
        else:
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return BottleneckOutput(z if sampled else mu, {"kl": kl}, rate=kl.detach() / LN2)

    def aux_weight(self, name: str, progress: float) -> float:
        if name != "kl":
            return 1.0
        if self.kl_warmup <= 0:
            return self.beta
        return self.beta * min(1.0, progress / self.kl_warmup)
