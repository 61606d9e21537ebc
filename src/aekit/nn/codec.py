"""Learned image compression: transforms and entropy models (Ballé et al. 2018, as CompressAI).

- ``GDN``: generalized divisive normalization, the analysis transform's nonlinearity
  (``inverse=True``: its approximate inverse, for the synthesis transform).
- ``FactorizedPrior``: a learned density per channel, independent over positions (the
  "entropy bottleneck"): the non-parametric cumulative of Ballé et al. 2018, appendix 6.1.
- ``gaussian_likelihood``: the probability of an integer-rounded value under a Gaussian of a
  given mean and scale, the conditional model of a hyperprior.

``HyperpriorCodec`` joins them: ``y = g_a(x)``, side information ``z = h_a(y)`` under the
factorized prior, ``(mean, scale)`` for ``y`` from ``h_s(z)``, ``x' = g_s(y)``. With
``context="checkerboard"`` (He et al. 2021) the latents are coded in two groups: the anchors
(``(i + j)`` even) from the hyperprior alone, then the others from the hyperprior and a 5 x 5
convolution over the decoded anchors; each group decodes in parallel, so decoding stays two
passes of a small network, not one per position. ``forward`` is for training: additive
uniform noise stands in for rounding in the rate, and the synthesis sees the rounded latents
(straight-through), as the decoder will. ``analyse`` gives the integer ``z`` and the
continuous ``y``; ``hyper`` and ``group_params`` give each group's Gaussian from what the
decoder has by then, and ``synthesise`` turns the decoded latents back into an image.
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
LATENT_STRIDE = 16  # the transforms downsample by 16
STRIDE = 64  # and the hyperprior by 4 more
REFINE_LR = 0.01  # the first step of encode-time refinement, in units of the rounding step
# rate-distortion trade-offs of the quality levels: CompressAI's MSE zoo (qualities 1-7), one
# more step of its ladder below and two above (the ladder's ratio, about 1.93), so that the
# levels span about 0.1-1.5 bits per pixel on full-resolution photos
LAMBDAS = (0.0009, 0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.18, 0.35)


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


CONTEXTS = ("none", "checkerboard")


def anchors(height: int, width: int) -> Tensor:
    """The checkerboard's first group: positions ``(i, j)`` of a latent grid with ``i + j`` even."""
    i, j = torch.arange(height).view(-1, 1), torch.arange(width).view(1, -1)
    return (i + j) % 2 == 0


TILE = 1024  # pixels a side of the tiles the transforms run on at coding time (memory, not results)
HALO = 64  # pixels of context around each tile: twice what either transform reaches (measured: 30)


def tiled(transform: nn.Module, x: Tensor, scale: float, tile: int, halo: int) -> Tensor:
    """``transform(x)`` for ``x [1, C, H, W]``, run on ``tile`` x ``tile`` pieces with ``halo``
    of context each side (all in ``x``'s units) and stitched, so that memory follows the tile
    and not the image (a 24-megapixel photo took 6.5 GB whole). ``scale``: output units per
    input unit (1/16 for ``g_a``, 16 for ``g_s``); ``tile`` and ``halo`` times it must be
    whole. Equal to the whole pass up to float rounding, because each output keeps only the
    part of its tile that the halo gives every input it reads (convolutions and GDN, which
    mixes channels only); at the image's own edges the tile's zero padding is the image's."""
    height, width = x.shape[2:]
    if height <= tile and width <= tile:
        return transform(x)
    rows = []
    for top in range(0, height, tile):
        row = []
        for left in range(0, width, tile):
            t0, l0 = max(0, top - halo), max(0, left - halo)
            part = transform(x[:, :, t0:min(height, top + tile + halo), l0:min(width, left + tile + halo)])
            dt, dl = round((top - t0) * scale), round((left - l0) * scale)
            th, tw = round(min(tile, height - top) * scale), round(min(tile, width - left) * scale)
            row.append(part[:, :, dt:dt + th, dl:dl + tw])
        rows.append(torch.cat(row, dim=3))
    return torch.cat(rows, dim=2)


def _ste_round(v: Tensor) -> Tensor:
    """``round(v)`` forward, identity backward (the straight-through estimator)."""
    return v + (torch.round(v) - v).detach()


class HyperpriorCodec(nn.Module):
    """The mean-scale hyperprior codec with gain units: see the module docstring. ``channels``
    (N) is the transforms' width, ``latent_channels`` (M) that of ``y``; one gain vector per
    quality level, trained at its ``lambdas`` entry (index 0 = quality 1, smallest files);
    ``context``: ``"checkerboard"`` or ``"none"`` (the hyperprior alone, one group)."""

    def __init__(self, channels: int = 96, latent_channels: int = 128,
                 lambdas: tuple[float, ...] = LAMBDAS, context: str = "none") -> None:
        super().__init__()
        n, m = _check("channels", channels), _check("latent_channels", latent_channels)
        lambdas = tuple(float(v) for v in lambdas)
        if not lambdas or any(not (0 < v < 100) for v in lambdas) or list(lambdas) != sorted(lambdas):
            raise ParameterError(f"lambdas must be increasing numbers in (0, 100), got {list(lambdas)}")
        if context not in CONTEXTS:
            raise ParameterError(f"context must be one of {list(CONTEXTS)}, got {context!r}")
        qualities = len(lambdas)
        self.config = dict(channels=n, latent_channels=m, lambdas=list(lambdas), context=context)
        self.g_a = nn.Sequential(_conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))
        self.g_s = nn.Sequential(_deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
                                 _deconv(n, n), GDN(n, inverse=True), _deconv(n, 3))
        self.h_a = nn.Sequential(_conv(m, n, 3, 1), nn.LeakyReLU(0.2), _conv(n, n), nn.LeakyReLU(0.2), _conv(n, n))
        self.h_s = nn.Sequential(_deconv(n, m), nn.LeakyReLU(0.2), _deconv(m, m * 3 // 2), nn.LeakyReLU(0.2),
                                 _conv(m * 3 // 2, 2 * m, 3, 1))
        if context == "checkerboard":
            self.context = _conv(m, 2 * m, 5, 1)
            # a correction to the hyperprior's (mean, scale) from it and the context; the last
            # layer starts at zero, so a hyperprior codec fine-tuned into this one starts unchanged
            self.entropy_parameters = nn.Sequential(
                nn.Conv2d(4 * m, m * 10 // 3, 1), nn.LeakyReLU(0.2), nn.Conv2d(m * 10 // 3, m * 8 // 3, 1),
                nn.LeakyReLU(0.2), nn.Conv2d(m * 8 // 3, 2 * m, 1))
            nn.init.zeros_(self.entropy_parameters[-1].weight)
            nn.init.zeros_(self.entropy_parameters[-1].bias)
        self.prior = FactorizedPrior(n)
        # gains start as a geometric ladder: higher quality, finer rounding of y
        ladder = torch.logspace(math.log10(0.25), math.log10(2.0), qualities)
        self.gain = nn.Parameter(ladder.log().view(qualities, 1).repeat(1, m))
        self.inverse_gain = nn.Parameter(-ladder.log().view(qualities, 1).repeat(1, m))

    @property
    def groups(self) -> int:
        """How many groups the latents are decoded in, one after another."""
        return 2 if self.config["context"] == "checkerboard" else 1

    def group_masks(self, height: int, width: int) -> list[Tensor]:
        """Each group's positions on a ``height x width`` latent grid, in decoding order."""
        if self.groups == 1:
            return [torch.ones(height, width, dtype=torch.bool)]
        first = anchors(height, width)
        return [first, ~first]

    def _gains(self, quality: Tensor | int) -> tuple[Tensor, Tensor]:
        q = torch.as_tensor(quality).long().view(-1)
        if bool(((q < 0) | (q >= len(self.config["lambdas"]))).any()):
            raise ParameterError(f"quality index must be in [0, {len(self.config['lambdas'])}), got {q.tolist()}")
        return self.gain[q].exp()[:, :, None, None], self.inverse_gain[q].exp()[:, :, None, None]

    def hyper(self, z_hat: Tensor) -> Tensor:
        """The hyperprior's raw ``(mean, scale)`` features of ``y`` from the decoded ``z``."""
        return self.h_s(z_hat)

    def group_params(self, hyper: Tensor, y_hat: Tensor, group: int) -> tuple[Tensor, Tensor]:
        """``(mean, scale)`` of ``y`` for the positions of ``group``, from the hyperprior
        features and ``y_hat``, the latents of the groups before it (zero elsewhere)."""
        raw = hyper
        if self.groups > 1:
            ctx = self.context(y_hat) if group > 0 else torch.zeros_like(hyper)
            raw = hyper + self.entropy_parameters(torch.cat([hyper, ctx], dim=1))
        mean, scale = raw.chunk(2, dim=1)
        return mean, F.softplus(scale).clamp(min=SCALE_MIN)

    def coding_params(self, hyper: Tensor, y_hat: Tensor, group: int) -> tuple[Tensor, Tensor]:
        """``group_params`` as coding runs it: in bands of ``TILE`` pixels of rows (with the
        context convolution's 2 rows of halo), so that the entropy model's wide 1 x 1 layers
        hold a band, not the whole latent grid (1 GB for a 24-megapixel photo)."""
        band, halo = TILE // LATENT_STRIDE, 2
        height = hyper.shape[2]
        if height <= band:
            return self.group_params(hyper, y_hat, group)
        means, scales = [], []
        for top in range(0, height, band):
            t0, t1 = max(0, top - halo), min(height, top + band + halo)
            mean, scale = self.group_params(hyper[:, :, t0:t1], y_hat[:, :, t0:t1], group)
            keep = slice(top - t0, top - t0 + min(band, height - top))
            means.append(mean[:, :, keep])
            scales.append(scale[:, :, keep])
        return torch.cat(means, dim=2), torch.cat(scales, dim=2)

    def _latents(self, y: Tensor, z_tilde: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(y_hat, mean, scale)``: every group's Gaussian from the groups before it, and the
        latents rounded around its mean (straight-through, so gradients reach ``y``)."""
        hyper = self.hyper(z_tilde)
        y_hat = torch.zeros_like(y)
        mean = scale = y_hat
        for group, mask in enumerate(self.group_masks(*y.shape[2:])):
            mask = mask.to(y.device)
            g_mean, g_scale = self.group_params(hyper, y_hat, group)
            y_hat = torch.where(mask, _ste_round(y - g_mean) + g_mean, y_hat)
            mean, scale = torch.where(mask, g_mean, mean), torch.where(mask, g_scale, scale)
        return y_hat, mean, scale

    def forward(self, x: Tensor, quality: Tensor | int) -> dict[str, Any]:
        """Training pass on ``x [N, 3, H, W]`` in [0, 1] (H, W multiples of 64): the
        reconstruction from the rounded latents, and the likelihoods of ``y`` and ``z`` (under
        noisy quantization in training, rounding in eval: then they are the coded rate)."""
        gain, inverse = self._gains(quality)
        y = self.g_a(x) * gain
        z = self.h_a(y)
        z_tilde = z + torch.empty_like(z).uniform_(-0.5, 0.5) if self.training else torch.round(z)
        y_hat, mean, scale = self._latents(y, z_tilde)
        y_tilde = y + torch.empty_like(y).uniform_(-0.5, 0.5) if self.training else y_hat
        return {"x_hat": self.g_s(y_hat * inverse),
                "likelihoods": {"y": gaussian_likelihood(y_tilde, mean, scale), "z": self.prior.likelihood(z_tilde)}}

    def refine(self, x: Tensor, quality: int, steps: int, lr: float = REFINE_LR) -> Tensor:
        """Encode-time refinement (Yang et al. 2020): ``steps`` of Adam on the latents ``y`` of
        ``x`` (the network fixed) against this quality's rate + lambda x distortion, rounding
        straight-through so that each step's cost is the coded one. The step size falls from
        ``lr`` to 0 along a half cosine (larger constant steps make straight-through rounding
        oscillate); the cheapest latents seen are returned, for ``analyse``'s ``y``. The
        decoder is unchanged."""
        lam = self.config["lambdas"][quality]
        with torch.no_grad():
            gain, inverse = self._gains(quality)
            y = (self.g_a(x) * gain).requires_grad_(True)
        best, best_cost = y.detach().clone(), math.inf
        frozen = [p for p in self.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            optimizer = torch.optim.Adam([y], lr=lr)
            for step in range(steps + 1):  # the last pass only scores the last step
                optimizer.param_groups[0]["lr"] = lr * (1 + math.cos(math.pi * step / steps)) / 2
                z_hat = _ste_round(self.h_a(y))
                y_hat, mean, scale = self._latents(y, z_hat)
                bits = -(gaussian_likelihood(y_hat, mean, scale).log2().sum()
                         + self.prior.likelihood(z_hat).log2().sum())
                mse = (self.g_s(y_hat * inverse) - x).pow(2).mean()
                cost = bits / (x.shape[2] * x.shape[3]) + lam * 255 ** 2 * mse
                if cost.item() < best_cost:
                    best, best_cost = y.detach().clone(), cost.item()
                optimizer.zero_grad()
                cost.backward()
                optimizer.step()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return best

    def loss(self, x: Tensor, progress: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        """Rate (bits per pixel) + lambda x 255^2 x MSE, each image at a random quality level
        (in eval mode the levels in turn, so a validation loss is the same number every time).
        ``x``: floats in [0, 1] or uint8 bytes."""
        if x.dtype == torch.uint8:  # training crops are kept as bytes: a quarter of the memory
            x = x.float() / 255.0
        levels = len(self.config["lambdas"])
        q = torch.randint(levels, (len(x),)) if self.training else torch.arange(len(x)) % levels
        out = self.forward(x, q.to(x.device))
        pixels = x.shape[2] * x.shape[3]
        bits = sum(-lik.log2().flatten(1).sum(1) for lik in out["likelihoods"].values())
        bpp = bits / pixels
        mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
        lam = torch.tensor(self.config["lambdas"])[q].to(x.device)
        total = (bpp + lam * 255 ** 2 * mse).mean()
        return total, {"bpp": bpp.mean().detach(), "mse": mse.mean().detach()}

    @torch.no_grad()
    def analyse(self, x: Tensor, quality: int, z_support: int, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The integer side information ``z`` (clamped to ``±z_support``) and the gained,
        still continuous latents ``y`` of ``x`` (or of the given ``y``, e.g. ``refine``'s)."""
        if y is None:
            gain, _ = self._gains(quality)
            y = tiled(self.g_a, x, 1 / LATENT_STRIDE, TILE, HALO) * gain
        return torch.round(self.h_a(y)).clamp(-z_support, z_support), y

    @torch.no_grad()
    def synthesise(self, y_hat: Tensor, quality: int) -> Tensor:
        """The image of the decoded latents ``y_hat`` (gained, as coded) at ``quality``."""
        _, inverse = self._gains(quality)
        return tiled(self.g_s, y_hat * inverse, LATENT_STRIDE, TILE // LATENT_STRIDE, HALO // LATENT_STRIDE)

    def spec(self) -> dict[str, Any]:
        return {"codec": dict(self.config)}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> HyperpriorCodec:
        if not isinstance(spec, dict) or set(spec) != {"codec"} or not isinstance(spec["codec"], dict):
            raise ParameterError("a codec spec needs exactly one 'codec' entry")
        extra = set(spec["codec"]) - {"channels", "latent_channels", "lambdas", "context"}
        if extra:
            raise ParameterError(f"unknown codec settings: {sorted(extra)}")
        return cls(**spec["codec"])  # no "context": a codec of an earlier aekit, the hyperprior alone
