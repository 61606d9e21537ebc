"""Images as a grid of codebook tokens, and an autoregressive prior over such grids.

``TokenAutoEncoder`` is a VQ-VAE (van den Oord et al. 2017) whose code keeps the image's
layout: convolutions shrink the image by 2 per stage to an ``h x w`` grid, each cell is
quantized to the nearest of ``codebook_size`` vectors (``VectorQuantizer``: EMA codebook,
k-means start, dead-code restart), and transposed convolutions draw the image back. A
token holds a small patch, so the decoder is sharp where a Gaussian VAE's is blurred.

``TokenPrior`` is a small causal transformer over the grid read row by row: it learns
``p(token_t | tokens before t)``, and sampling it (with a key/value cache) gives new grids
for the decoder, the "prior over VQ tokens" of VQ-VAE's second stage.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import MAX_IMAGE_SIDE, MAX_WIDTH, check_choice, check_float, check_int, check_sizes
from ..errors import ParameterError
from .conv import grid_side
from .discrete import VectorQuantizer

RECONSTRUCTIONS = ("bce", "mse")
MAX_TOKENS = 4096  # grid cells a prior may model


class TokenAutoEncoder(nn.Module):
    """``[N, C, H, W]`` in [0, 1] -> token grid ``[N, h, w]`` -> ``[N, C, H, W]``.

    ``reconstruction`` is the training loss: ``"bce"`` (pixels as probabilities; sharp
    strokes) or ``"mse"``. ``loss`` is that loss per pixel plus the codebook's commitment
    term (per token, scaled to the same per-pixel units)."""

    def __init__(self, in_channels: int, height: int, width: int, codebook_size: int = 64, dim: int = 16,
                 channels: Sequence[int] = (32, 64), reconstruction: str = "bce", commitment: float = 0.25,
                 dead_after: int = 200) -> None:
        super().__init__()
        check_int(in_channels, "image channels", 1, 4)
        check_int(height, "image height", 1, MAX_IMAGE_SIDE)
        check_int(width, "image width", 1, MAX_IMAGE_SIDE)
        channels = check_sizes(channels, "channels")
        if not channels:
            raise ParameterError("channels needs at least one stage")
        check_choice(reconstruction, "reconstruction", RECONSTRUCTIONS)
        self.config = dict(in_channels=in_channels, height=height, width=width, codebook_size=codebook_size, dim=dim,
                           channels=list(channels), reconstruction=reconstruction, commitment=commitment,
                           dead_after=dead_after)
        self.grid = (grid_side(height, len(channels)), grid_side(width, len(channels)))
        self.height, self.width, self.reconstruction = height, width, reconstruction
        down: list[nn.Module] = []
        c = in_channels
        for out_c in channels:
            down += [nn.Conv2d(c, out_c, 3, stride=2, padding=1), nn.ReLU()]
            c = out_c
        # a stride-1 layer at the grid's resolution lets each token see its neighbours
        self.encoder = nn.Sequential(*down, nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, dim, 1))
        self.quantizer = VectorQuantizer(codebook_size, dim, commitment=commitment, dead_after=dead_after)
        up: list[nn.Module] = [nn.Conv2d(dim, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU()]
        stages = [*reversed(channels), in_channels]
        for i, (c_in, c_out) in enumerate(zip(stages[:-1], stages[1:], strict=True)):
            up.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if i < len(stages) - 2:  # the output layer stays linear (logits or values)
                up.append(nn.ReLU())
        self.decoder = nn.Sequential(*up)

    # ------------------------------------------------------------------ persistence
    def spec(self) -> dict[str, Any]:
        return dict(self.config)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TokenAutoEncoder:
        return cls(**spec)

    # ------------------------------------------------------------------ the code
    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def features(self, x: Tensor) -> Tensor:
        """The encoder's continuous output ``[N, dim, h, w]`` (before quantization)."""
        return self.encoder(x)

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``z [N, dim, h, w]`` -> (quantized ``[N, dim, h, w]``, tokens ``[N, h, w]``,
        commitment loss per image ``[N]``)."""
        n, d, h, w = z.shape
        q, idx, loss = self.quantizer.quantize(z.permute(0, 2, 3, 1).reshape(-1, d))
        return q.view(n, h, w, d).permute(0, 3, 1, 2), idx.view(n, h, w), loss.view(n, -1).sum(1)

    def encode_indices(self, x: Tensor) -> Tensor:
        """Token grids ``[N, h, w]`` of images ``x``."""
        return self.quantize(self.features(x))[1]

    def logits(self, q: Tensor) -> Tensor:
        """The decoder's output before the squashing, cropped to the image size."""
        return self.decoder(q)[:, :, :self.height, :self.width]

    def squash(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out) if self.reconstruction == "bce" else out.clamp(0, 1)

    def decode_indices(self, tokens: Tensor) -> Tensor:
        """Images ``[N, C, H, W]`` in [0, 1] from token grids ``[N, h, w]``."""
        if tokens.ndim != 3 or tuple(tokens.shape[1:]) != self.grid:
            raise ParameterError(f"token grids must have shape [N, {self.grid[0]}, {self.grid[1]}], "
                                 f"got {tuple(tokens.shape)}")
        if len(tokens) and (int(tokens.min()) < 0 or int(tokens.max()) >= self.codebook_size):
            raise ParameterError(f"tokens must lie in 0..{self.codebook_size - 1}")
        return self.decode_quantized(self.quantizer.embed[tokens].permute(0, 3, 1, 2))

    def decode_quantized(self, q: Tensor) -> Tensor:
        return self.squash(self.logits(q))

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode_quantized(self.quantize(self.features(x))[0])

    def loss(self, x: Tensor, progress: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        q, _, commit = self.quantize(self.features(x))
        out = self.logits(q)
        if self.reconstruction == "bce":
            rec = F.binary_cross_entropy_with_logits(out, x)
        else:
            rec = (out - x).pow(2).mean()
        commit = commit.mean() / x[0].numel()
        return rec + commit, {"reconstruction": rec.detach(), "commitment": commit.detach()}


class _Block(nn.Module):
    """Pre-norm transformer block; with a ``cache`` dict it attends to the cached keys and
    values of earlier positions (one new position at a time, when sampling)."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, cache: dict[str, Tensor] | None = None) -> Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is None:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=self.dropout if self.training else 0.0)
        else:
            if cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
            a = F.scaled_dot_product_attention(q, k, v)
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(n, t, d)))
        return x + self.drop(self.mlp(self.norm2(x)))


class TokenPrior(nn.Module):
    """A causal transformer over sequences of ``length`` tokens from ``vocab_size``:
    ``loss(tokens [N, length])`` is the mean cross-entropy of each token given the ones
    before it; ``sample`` draws new sequences."""

    def __init__(self, vocab_size: int, length: int, width: int = 128, layers: int = 4, heads: int = 4,
                 dropout: float = 0.1) -> None:
        super().__init__()
        check_int(vocab_size, "vocab_size", 2, MAX_WIDTH)
        check_int(length, "length", 1, MAX_TOKENS)
        check_int(width, "prior width", 8, MAX_WIDTH)
        check_int(layers, "prior layers", 1, 64)
        check_int(heads, "prior heads", 1, width)
        check_float(dropout, "dropout", 0, 1, high_open=True)
        if width % heads:
            raise ParameterError(f"the prior width ({width}) must be a multiple of its heads ({heads})")
        self.config = dict(vocab_size=vocab_size, length=length, width=width, layers=layers, heads=heads,
                           dropout=dropout)
        self.vocab_size, self.length = vocab_size, length
        self.embed = nn.Embedding(vocab_size + 1, width)  # the extra token starts every sequence
        self.position = nn.Parameter(torch.randn(length, width) * 0.02)
        self.blocks = nn.ModuleList(_Block(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab_size)

    def spec(self) -> dict[str, Any]:
        return dict(self.config)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TokenPrior:
        return cls(**spec)

    def logits(self, tokens: Tensor) -> Tensor:
        """``[N, L, V]``: at each position, the scores of its token given the ones before."""
        start = torch.full((len(tokens), 1), self.vocab_size, dtype=torch.long, device=tokens.device)
        x = self.embed(torch.cat([start, tokens[:, :-1]], 1)) + self.position[:tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def loss(self, tokens: Tensor, progress: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        nll = F.cross_entropy(self.logits(tokens).flatten(0, 1), tokens.flatten())
        return nll, {"nll": nll.detach()}

    def log_prob(self, tokens: Tensor) -> Tensor:
        """``log p(tokens)`` per sequence ``[N]`` (nats)."""
        logp = torch.log_softmax(self.logits(tokens), -1)
        return logp.gather(2, tokens.unsqueeze(2)).squeeze(2).sum(1)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> Tensor:
        """``n`` sequences ``[n, length]``, each token drawn from ``p(. | tokens before) ^ (1 /
        temperature)``, renormalised."""
        caches: list[dict[str, Tensor]] = [{} for _ in self.blocks]
        prev = torch.full((n, 1), self.vocab_size, dtype=torch.long)
        out = []
        for t in range(self.length):
            x = self.embed(prev) + self.position[t]
            for block, cache in zip(self.blocks, caches, strict=True):
                x = block(x, cache)
            probs = torch.softmax(self.head(self.norm(x[:, -1])) / temperature, -1)
            prev = torch.multinomial(probs, 1, generator=generator)
            out.append(prev)
        return torch.cat(out, 1)


class TokenModel(nn.Module):
    """A ``TokenAutoEncoder`` and the ``TokenPrior`` over its grids, saved as one network."""

    def __init__(self, autoencoder: TokenAutoEncoder, prior: TokenPrior) -> None:
        super().__init__()
        h, w = autoencoder.grid
        if prior.vocab_size != autoencoder.codebook_size or prior.length != h * w:
            raise ParameterError("the prior's vocabulary and length must match the autoencoder's codebook and grid")
        self.autoencoder, self.prior = autoencoder, prior

    def spec(self) -> dict[str, Any]:
        return {"autoencoder": self.autoencoder.spec(), "prior": self.prior.spec()}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> TokenModel:
        if not isinstance(spec, dict) or set(spec) != {"autoencoder", "prior"}:
            raise ParameterError("a token model spec needs exactly 'autoencoder' and 'prior'")
        return cls(TokenAutoEncoder.from_spec(spec["autoencoder"]), TokenPrior.from_spec(spec["prior"]))
