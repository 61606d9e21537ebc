"""Learned image compression: transforms and entropy models (Ballé et al. 2018, as CompressAI).

- ``GDN``: generalized divisive normalization, the analysis transform's nonlinearity
  (``inverse=True``: its approximate inverse, for the synthesis transform).
- ``FactorizedPrior``: a learned density per channel, independent over positions (the
  "entropy bottleneck"): the non-parametric cumulative of Ballé et al. 2018, appendix 6.1.
- ``gaussian_likelihood``: the probability of an integer-rounded value under a Gaussian of a
  given mean and scale, the conditional model of a hyperprior.

``HyperpriorCodec`` joins them: ``y = g_a(x)``, side information ``z = h_a(y)`` under the
factorized prior, ``(mean, scale) = h_s(z)`` for ``y``, ``x' = g_s(y)``. ``forward`` is for
training (additive uniform noise stands in for rounding; returns likelihoods);
``analyse`` gives the integer symbols and the Gaussian parameters that an entropy coder
writes with; ``side`` recomputes those parameters from the decoded ``z``, and
``synthesise`` turns the decoded symbols back into an image.
Gain units (Cui et al. 2021) scale ``y`` per quality level, so one network spans every
rate: quality ``q`` multiplies ``y`` by ``gain[q]`` before rounding and divides after.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import MAX_WIDTH, check_int
from ..errors import ParameterError

SCALE_MIN = 0.11  # smallest Gaussian scale: below it a symbol's probability is nearly 1 anyway
LIKELIHOOD_MIN = 1e-9
STRIDE = 64  # the transforms downsample by 16, the hyperprior by 4 more
# rate-distortion trade-offs of the quality levels (CompressAI's MSE zoo, qualities 1-6)
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


def _check(name: str, value: int, low: int = 1) -> int:
    return check_int(value, name, low, MAX_WIDTH)


class GDN(nn.Module):
    """``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)`` (``inverse``: times the root).
    ``beta`` and ``gamma`` are squares of the parameters, so they stay positive."""

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_root = nn.Parameter(torch.ones(channels))
        self.gamma_root = nn.Parameter(math.sqrt(0.1) * torch.eye(channels))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta_root.pow(2) + 1e-6
        gamma = self.gamma_root.pow(2).view(c, c, 1, 1)
        norm = F.conv2d(x.pow(2), gamma, beta)
        return x * norm.sqrt() if self.inverse else x * norm.rsqrt()


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, padding=k // 2, output_padding=stride - 1)


class FactorizedPrior(nn.Module):
    """A density per channel: ``cdf(v) = sigmoid(f(v))`` with ``f`` a small monotone network
    (positive matrices, ``tanh`` gates), so each integer bin's probability is
    ``cdf(v + 1/2) - cdf(v - 1/2)``."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def _logits(self, v: Tensor) -> Tensor:
        """``f(v)`` for ``v [C, 1, K]``."""
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            v = torch.matmul(F.softplus(matrix), v) + bias
            if i < len(self.factors):
                v = v + torch.tanh(self.factors[i]) * torch.tanh(v)
        return v

    def likelihood(self, z: Tensor) -> Tensor:
        """Probability of each (rounded or noisy) value of ``z [N, C, H, W]`` under its channel's density."""
        n, c, h, w = z.shape
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower, upper = self._logits(v - 0.5), self._logits(v + 0.5)
        sign = -torch.sign(lower + upper).detach()  # compute in the tail where sigmoids are accurate
        p = (torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).abs()
        return p.clamp(min=LIKELIHOOD_MIN).view(c, n, h, w).permute(1, 0, 2, 3)

    @torch.no_grad()
    def pmf(self, support: int) -> Tensor:
        """Each channel's probabilities of the integers ``-support..support`` ``[C, 2 support + 1]``,
        the two ends also holding the tails beyond them (symbols are clamped into the range)."""
        v = torch.arange(-support, support + 1, dtype=torch.float32).view(1, 1, -1).expand(self.channels, 1, -1)
        edges = torch.sigmoid(self._logits(torch.cat([v - 0.5, v[..., -1:] + 0.5], dim=2)))[:, 0]
        edges[:, 0], edges[:, -1] = 0.0, 1.0
        return (edges[:, 1:] - edges[:, :-1]).clamp(min=LIKELIHOOD_MIN)


def gaussian_likelihood(y: Tensor, mean: Tensor, scale: Tensor) -> Tensor:
    """Probability of the unit bin around each ``y`` under ``N(mean, scale)``."""
    scale = scale.clamp(min=SCALE_MIN)
    centred = (y - mean).abs()  # the lower tail is computed more accurately
    normal = torch.distributions.Normal(0.0, 1.0)
    p = normal.cdf((0.5 - centred) / scale) - normal.cdf((-0.5 - centred) / scale)
    return p.clamp(min=LIKELIHOOD_MIN)


class HyperpriorCodec(nn.Module):
    """The mean-scale hyperprior codec with gain units: see the module docstring. ``channels``
    (N) is the transforms' width, ``latent_channels`` (M) that of ``y``; one gain vector per
    quality level, trained at its ``lambdas`` entry (index 0 = quality 1, smallest files)."""

    def __init__(self, channels: int = 96, latent_channels: int = 128,
                 lambdas: tuple[float, ...] = LAMBDAS) -> None:
        super().__init__()
        n, m = _check("channels", channels), _check("latent_channels", latent_channels)
        lambdas = tuple(float(v) for v in lambdas)
        if not lambdas or any(not (0 < v < 100) for v in lambdas) or list(lambdas) != sorted(lambdas):
            raise ParameterError(f"lambdas must be increasing numbers in (0, 100), got {list(lambdas)}")
        qualities = len(lambdas)
        self.config = dict(channels=n, latent_channels=m, lambdas=list(lambdas))
        self.g_a = nn.Sequential(_conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))
        self.g_s = nn.Sequential(_deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
                                 _deconv(n, n), GDN(n, inverse=True), _deconv(n, 3))
        self.h_a = nn.Sequential(_conv(m, n, 3, 1), nn.LeakyReLU(0.2), _conv(n, n), nn.LeakyReLU(0.2), _conv(n, n))
        self.h_s = nn.Sequential(_deconv(n, m), nn.LeakyReLU(0.2), _deconv(m, m * 3 // 2), nn.LeakyReLU(0.2),
                                 _conv(m * 3 // 2, 2 * m, 3, 1))
        self.prior = FactorizedPrior(n)
        # gains start as a geometric ladder: higher quality, finer rounding of y
        ladder = torch.logspace(math.log10(0.25), math.log10(2.0), qualities)
        self.gain = nn.Parameter(ladder.log().view(qualities, 1).repeat(1, m))
        self.inverse_gain = nn.Parameter(-ladder.log().view(qualities, 1).repeat(1, m))

    def _gains(self, quality: Tensor | int) -> tuple[Tensor, Tensor]:
        q = torch.as_tensor(quality).long().view(-1)
        if bool(((q < 0) | (q >= len(self.config["lambdas"]))).any()):
            raise ParameterError(f"quality index must be in [0, {len(self.config['lambdas'])}), got {q.tolist()}")
        return self.gain[q].exp()[:, :, None, None], self.inverse_gain[q].exp()[:, :, None, None]

    def _params(self, z_hat: Tensor) -> tuple[Tensor, Tensor]:
        mean, scale = self.h_s(z_hat).chunk(2, dim=1)
        return mean, F.softplus(scale)

    def forward(self, x: Tensor, quality: Tensor | int) -> dict[str, Any]:
        """Training pass on ``x [N, 3, H, W]`` in [0, 1] (H, W multiples of 64): the
        reconstruction and the likelihoods of ``y`` and ``z`` under noisy quantization."""
        gain, inverse = self._gains(quality)
        y = self.g_a(x) * gain
        z = self.h_a(y)
        z_tilde = z + torch.empty_like(z).uniform_(-0.5, 0.5) if self.training else torch.round(z)
        mean, scale = self._params(z_tilde)
        y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else torch.round(y - mean) + mean
        x_hat = self.g_s(y_tilde * inverse)
        return {"x_hat": x_hat, "likelihoods": {"y": gaussian_likelihood(y_tilde, mean, scale),
                                                "z": self.prior.likelihood(z_tilde)}}

    def loss(self, x: Tensor, progress: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        """Rate (bits per pixel) + lambda x 255^2 x MSE, each image at a random quality level
        (in eval mode the levels in turn, so a validation loss is the same number every time)."""
        levels = len(self.config["lambdas"])
        q = torch.randint(levels, (len(x),)) if self.training else torch.arange(len(x)) % levels
        out = self.forward(x, q)
        pixels = x.shape[2] * x.shape[3]
        bits = sum(-lik.log2().flatten(1).sum(1) for lik in out["likelihoods"].values())
        bpp = bits / pixels
        mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
        lam = torch.tensor(self.config["lambdas"])[q]
        total = (bpp + lam * 255 ** 2 * mse).mean()
        return total, {"bpp": bpp.mean().detach(), "mse": mse.mean().detach()}

    @torch.no_grad()
    def analyse(self, x: Tensor, quality: int, z_support: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Integer symbols for ``x``: ``z`` (clamped to ``±z_support``) and ``y - mean``
        rounded, with the Gaussian ``mean`` and ``scale`` the decoder will also compute."""
        gain, _ = self._gains(quality)
        y = self.g_a(x) * gain
        z = torch.round(self.h_a(y)).clamp(-z_support, z_support)
        mean, scale = self._params(z)
        return z, torch.round(y - mean), mean, scale.clamp(min=SCALE_MIN)

    @torch.no_grad()
    def side(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, scale)`` of ``y`` from the decoded side information ``z``."""
        mean, scale = self._params(z)
        return mean, scale.clamp(min=SCALE_MIN)

    @torch.no_grad()
    def synthesise(self, residual: Tensor, mean: Tensor, quality: int) -> Tensor:
        _, inverse = self._gains(quality)
        return self.g_s((residual + mean) * inverse)

    def spec(self) -> dict[str, Any]:
        return {"codec": dict(self.config)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> HyperpriorCodec:
        if not isinstance(spec, dict) or set(spec) != {"codec"} or not isinstance(spec["codec"], dict):
            raise ParameterError("a codec spec needs exactly one 'codec' entry")
        extra = set(spec["codec"]) - {"channels", "latent_channels", "lambdas"}
        if extra:
            raise ParameterError(f"unknown codec settings: {sorted(extra)}")
        return cls(**spec["codec"])
