"""Discrete bottlenecks: binary codes, one-hot codes and vector quantization (VQ-VAE).

Each has the ``Bottleneck`` contract (``forward(h) -> BottleneckOutput``), hard codes at
inference, and straight-through gradients while training. ``BottleneckOutput.indices``
holds the discrete symbols (bits, the class, codebook entries) for health reports.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import MAX_WIDTH, check_choice, check_float, check_int
from ..errors import ParameterError
from .bottlenecks import Bottleneck, BottleneckOutput


class BinaryBottleneck(Bottleneck):
    """``code_size`` bits: ``sigmoid(linear(h))`` rounded to 0/1 with a straight-through
    estimator (the forward pass is hard, the gradient is the sigmoid's). ``noise`` adds
    Gaussian noise of that standard deviation to the logits while training, which pushes
    them away from 0 so that rounding loses little (semantic hashing, Salakhutdinov & Hinton
    2009). ``balance`` weights an aux loss that keeps each bit on for about half the inputs,
    so no bit is wasted on a constant."""

    def __init__(self, in_features: int, code_size: int, noise: float = 0.0, balance: float = 0.0) -> None:
        super().__init__()
        check_int(code_size, "code_size (bits)", 1, MAX_WIDTH)
        check_float(noise, "noise", 0)
        check_float(balance, "balance", 0)
        self.config = dict(in_features=in_features, code_size=code_size, noise=noise, balance=balance)
        self.in_features, self.code_size = in_features, code_size
        self.noise, self.balance = noise, balance
        self.proj = nn.Linear(in_features, code_size)

    def forward(self, h: Tensor) -> BottleneckOutput:
        logits = self.proj(h)
        if self.training and self.noise > 0:
            logits = logits + self.noise * torch.randn_like(logits)
        soft = torch.sigmoid(logits)
        hard = (logits > 0).to(soft.dtype)
        code = hard + soft - soft.detach() if self.training else hard
        aux = {"bit_balance": (soft.mean(0) - 0.5).pow(2).sum().expand(len(h))} if self.balance else {}
        return BottleneckOutput(code, aux, indices=hard.detach().to(torch.uint8),
                                rate=torch.full((len(h),), float(self.code_size)))

    discrete = True

    def bit_probabilities(self, h: Tensor) -> Tensor:
        """P(bit = 1) for each bit, without training noise: soft codes for similarity losses."""
        return torch.sigmoid(self.proj(h))

    def decode_indices(self, indices: Tensor) -> Tensor:
        bits = torch.as_tensor(indices)
        if bits.dim() != 2 or bits.shape[1] != self.code_size or not ((bits == 0) | (bits == 1)).all():
            raise ParameterError(f"bits must be 0/1 of shape [N, {self.code_size}], got {tuple(bits.shape)}")
        return bits.to(torch.float32)

    def aux_weight(self, name: str, progress: float) -> float:
        return self.balance if name == "bit_balance" else 1.0


class OneHotBottleneck(Bottleneck):
    """A one-hot code over ``n_classes = code_size - style_size`` classes, followed by
    ``style_size`` continuous numbers, so the one-hot part is free to carry the class and the
    style part the rest.

    Training samples Gumbel-softmax (Jang et al. 2017) at a temperature annealed
    geometrically from ``tau_start`` to ``tau_end``; ``straight_through`` makes the forward
    pass hard. Inference is ``one_hot(argmax)``. ``balance`` weights an aux loss, the KL of
    the batch's mean class probabilities to uniform, which stops all inputs collapsing onto
    a few classes."""

    discrete = True

    def __init__(self, in_features: int, code_size: int, style_size: int = 0, tau_start: float = 1.0,
                 tau_end: float = 0.3, straight_through: bool = True, balance: float = 1.0) -> None:
        super().__init__()
        check_int(style_size, "style_size", 0, MAX_WIDTH)
        n_classes = check_int(code_size, "code_size", 2, MAX_WIDTH) - style_size
        if n_classes < 2:
            raise ParameterError(f"a one-hot code needs >= 2 classes: code_size {code_size} - style_size {style_size}")
        check_float(tau_end, "tau_end", 0, low_open=True)
        check_float(tau_start, "tau_start", tau_end)
        check_float(balance, "balance", 0)
        self.config = dict(in_features=in_features, code_size=code_size, style_size=style_size, tau_start=tau_start,
                           tau_end=tau_end, straight_through=straight_through, balance=balance)
        self.in_features, self.n_classes, self.style_size = in_features, n_classes, style_size
        self.code_size = code_size
        self.logits = nn.Linear(in_features, n_classes)
        self.style = nn.Linear(in_features, style_size) if style_size else None
        self.progress = 0.0

    def set_progress(self, progress: float) -> None:
        self.progress = progress

    @property
    def temperature(self) -> float:
        start, end = self.config["tau_start"], self.config["tau_end"]
        return start * (end / start) ** min(max(self.progress, 0.0), 1.0)

    def class_logits(self, h: Tensor) -> Tensor:
        return self.logits(h)

    def forward(self, h: Tensor) -> BottleneckOutput:
        logits = self.logits(h)
        if self.training:
            onehot = F.gumbel_softmax(logits, tau=self.temperature, hard=self.config["straight_through"])
        else:
            onehot = F.one_hot(logits.argmax(1), self.n_classes).to(logits.dtype)
        code = onehot if self.style is None else torch.cat([onehot, self.style(h)], dim=1)
        aux = {}
        if self.config["balance"]:
            mean = torch.softmax(logits, 1).mean(0)
            aux["balance"] = (mean * torch.log(mean * self.n_classes + 1e-12)).sum().expand(len(h))
        return BottleneckOutput(code, aux, indices=logits.argmax(1),
                                rate=torch.full((len(h),), math.log2(self.n_classes)))

    def decode_indices(self, indices: Tensor, style: Tensor | None = None) -> Tensor:
        """The code of class ``indices`` ``[N]``; the style part is ``style`` or zeros."""
        idx = torch.as_tensor(indices).long()
        if idx.dim() != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= self.n_classes)):
            raise ParameterError(f"classes must be [N] in [0, {self.n_classes}), got shape {tuple(idx.shape)}")
        onehot = F.one_hot(idx, self.n_classes).float()
        if not self.style_size:
            return onehot
        style = torch.zeros(len(idx), self.style_size) if style is None else style
        return torch.cat([onehot, style], dim=1)

    def aux_weight(self, name: str, progress: float) -> float:
        return self.config["balance"] if name == "balance" else 1.0


class VectorQuantizer(nn.Module):
    """One codebook of ``codebook_size`` vectors of ``dim`` numbers (van den Oord et al. 2017).

    ``quantize(z)`` maps each row of ``z [N, dim]`` to its nearest entry and returns
    ``(quantized, indices, loss)``: ``quantized`` carries straight-through gradients to ``z``;
    ``loss`` is per row, ``commitment * |z - sg(e)|^2`` plus, without EMA, ``|sg(z) - e|^2``.

    Options: ``ema`` (codebook as exponential moving averages of its assigned vectors, decay
    ``decay``, instead of a gradient), ``kmeans_init`` (the codebook starts as k-means
    centroids of the first training batch), and dead-code restart (an entry unused for
    ``dead_after`` training steps is replaced by a random vector of the current batch;
    ``restarts`` counts them)."""

    def __init__(self, codebook_size: int, dim: int, commitment: float = 0.25, ema: bool = True,
                 decay: float = 0.99, kmeans_init: bool = True, dead_after: int = 100) -> None:
        super().__init__()
        check_int(codebook_size, "codebook_size", 2, MAX_WIDTH)
        check_int(dim, "dim", 1, MAX_WIDTH)
        check_float(decay, "decay", 0, 1, low_open=True, high_open=True)
        check_float(commitment, "commitment", 0)
        check_int(dead_after, "dead_after", 0)
        self.codebook_size, self.dim = codebook_size, dim
        self.commitment, self.ema, self.decay = commitment, ema, decay
        self.kmeans_init, self.dead_after = kmeans_init, dead_after
        embed = torch.randn(codebook_size, dim)
        if ema:
            self.register_buffer("embed", embed)
            self.register_buffer("cluster_size", torch.zeros(codebook_size))
            self.register_buffer("embed_sum", embed.clone())
        else:
            self.embed = nn.Parameter(embed)
        self.register_buffer("initialized", torch.tensor(not kmeans_init))
        self.register_buffer("steps_unused", torch.zeros(codebook_size, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    def nearest(self, z: Tensor) -> Tensor:
        e = self.embed
        dist = z.pow(2).sum(1, keepdim=True) - 2 * z @ e.T + e.pow(2).sum(1)
        return dist.argmin(1)

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self._kmeans_init(z.detach())
        idx = self.nearest(z.detach())
        if self.training:
            self._update(z.detach(), idx)
        e = self.embed[idx]
        loss = self.commitment * (z - e.detach()).pow(2).sum(1)
        if not self.ema:
            loss = loss + (z.detach() - e).pow(2).sum(1)
        return z + (e - z).detach(), idx, loss

    @torch.no_grad()
    def _kmeans_init(self, z: Tensor, iters: int = 10) -> None:
        pick = torch.randint(len(z), (self.codebook_size,)) if len(z) < self.codebook_size else torch.randperm(len(z))[:self.codebook_size]
        centers = z[pick].clone()
        for _ in range(iters):
            assign = (z.pow(2).sum(1, keepdim=True) - 2 * z @ centers.T + centers.pow(2).sum(1)).argmin(1)
            counts = torch.bincount(assign, minlength=self.codebook_size).to(z.dtype)
            sums = torch.zeros_like(centers).index_add_(0, assign, z)
            used = counts > 0
            centers[used] = sums[used] / counts[used, None]
        self.embed.data.copy_(centers)
        if self.ema:
            self.cluster_size.fill_(1.0)
            self.embed_sum.copy_(centers)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, z: Tensor, idx: Tensor) -> None:
        counts = torch.bincount(idx, minlength=self.codebook_size).to(z.dtype)
        if self.ema:
            sums = torch.zeros(self.codebook_size, self.dim, dtype=z.dtype).index_add_(0, idx, z)
            self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + 1e-5) / (n + self.codebook_size * 1e-5) * n  # Laplace smoothing
            self.embed.copy_(self.embed_sum / smoothed[:, None])
        self.steps_unused.add_(1).masked_fill_(counts > 0, 0)
        if self.dead_after:
            dead = (self.steps_unused >= self.dead_after).nonzero().flatten()
            if len(dead):
                fresh = z[torch.randint(len(z), (len(dead),))]
                self.embed.data[dead] = fresh
                if self.ema:
                    self.cluster_size[dead] = 1.0
                    self.embed_sum[dead] = fresh
                self.steps_unused[dead] = 0
                self.restarts.add_(len(dead))


class VQBottleneck(Bottleneck):
    """Vector-quantized code: ``h`` is mapped to ``positions`` vectors of
    ``dim = code_size / positions`` numbers, and each is quantized; the code passed on is the
    quantized vectors, flattened (``code_size`` numbers). Each image
    (or row) is then ``positions`` tokens: ``positions * log2(codebook_size)`` bits per
    codebook.

    ``codebooks > 1`` quantizes with several codebooks: ``combine="residual"`` quantizes what
    the previous codebooks left over and sums (residual VQ, as in SoundStream), ``"product"``
    splits each vector into ``codebooks`` parts with a codebook each (product quantization).
    The aux loss ``vq`` is the commitment (and, without EMA, codebook) loss; ``indices`` are
    ``[N, positions, codebooks]``."""

    discrete = True

    def __init__(self, in_features: int, code_size: int = 16, codebook_size: int = 64, positions: int = 1,
                 codebooks: int = 1, combine: str = "residual", commitment: float = 0.25, ema: bool = True,
                 decay: float = 0.99, kmeans_init: bool = True, dead_after: int = 100) -> None:
        super().__init__()
        check_int(code_size, "code_size", 1, MAX_WIDTH)
        check_int(positions, "positions", 1, MAX_WIDTH)
        check_int(codebooks, "codebooks", 1, 64)
        check_choice(combine, "combine", ("residual", "product"))
        if code_size % positions:
            raise ParameterError(f"code_size {code_size} must split into {positions} positions of equal size")
        dim = code_size // positions
        if combine == "product" and dim % codebooks:
            raise ParameterError(f"product quantization splits dim={dim} into {codebooks} equal parts: not divisible")
        self.config = dict(in_features=in_features, code_size=code_size, codebook_size=codebook_size,
                           positions=positions, codebooks=codebooks, combine=combine, commitment=commitment, ema=ema,
                           decay=decay, kmeans_init=kmeans_init, dead_after=dead_after)
        self.in_features, self.positions, self.dim = in_features, positions, dim
        self.codebook_size, self.combine = codebook_size, combine
        self.code_size = positions * dim
        self.proj = nn.Linear(in_features, positions * dim)
        part = dim // codebooks if combine == "product" else dim
        self.quantizers = nn.ModuleList(
            VectorQuantizer(codebook_size, part, commitment, ema, decay, kmeans_init, dead_after)
            for _ in range(codebooks))

    @property
    def bits(self) -> float:
        """Bits per input: positions x codebooks x log2(codebook size)."""
        return self.positions * len(self.quantizers) * math.log2(self.codebook_size)

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``z [M, dim] -> (quantized [M, dim], indices [M, codebooks], loss [M])``."""
        if self.combine == "product":
            parts = [q.quantize(c) for q, c in zip(self.quantizers, z.chunk(len(self.quantizers), dim=1))]
            return (torch.cat([p[0] for p in parts], 1), torch.stack([p[1] for p in parts], 1),
                    torch.stack([p[2] for p in parts]).sum(0))
        residual, total, indices, loss = z, torch.zeros_like(z), [], torch.zeros(len(z))
        for q in self.quantizers:
            quantized, idx, part_loss = q.quantize(residual)
            total = total + quantized
            residual = residual - quantized.detach()
            indices.append(idx)
            loss = loss + part_loss
        # the straight-through estimate of the sum: forward value of the sum, gradient to z
        return z + (total - z).detach(), torch.stack(indices, 1), loss

    def forward(self, h: Tensor) -> BottleneckOutput:
        n = len(h)
        z = self.proj(h).view(n * self.positions, self.dim)
        quantized, idx, loss = self.quantize(z)
        return BottleneckOutput(quantized.view(n, -1), {"vq": loss.view(n, self.positions).sum(1)},
                                indices=idx.view(n, self.positions, -1), rate=torch.full((n,), self.bits))

    def decode_indices(self, indices: Tensor) -> Tensor:
        """The code of token indices ``[N, positions, codebooks]``: the codebook vectors,
        summed (residual) or concatenated (product) per position, flattened."""
        idx = torch.as_tensor(indices).long()
        shape = (self.positions, len(self.quantizers))
        if idx.dim() != 3 or tuple(idx.shape[1:]) != shape or (idx.numel() and (idx.min() < 0 or
                                                                                idx.max() >= self.codebook_size)):
            raise ParameterError(f"indices must be [N, {shape[0]}, {shape[1]}] in [0, {self.codebook_size}), "
                                 f"got shape {tuple(idx.shape)}")
        books = [q.embed for q in self.quantizers]
        if self.combine == "product":
            vectors = torch.cat([book[idx[..., j]] for j, book in enumerate(books)], dim=-1)
        else:
            vectors = sum(book[idx[..., j]] for j, book in enumerate(books))
        return vectors.reshape(len(idx), -1)

    @property
    def restarts(self) -> int:
        return int(sum(int(q.restarts) for q in self.quantizers))


def codebook_health(indices: Tensor, codebook_size: int, restarts: int = 0) -> dict[str, float]:
    """Usage of a discrete code over a pass: ``codes_used`` (distinct symbols seen),
    ``perplexity`` (exp of the entropy of their frequencies; = K when all are used equally),
    ``perplexity_ratio`` (perplexity / K) and ``dead_restarts``."""
    flat = indices.reshape(-1).long()
    counts = torch.bincount(flat, minlength=codebook_size).double()
    p = counts / counts.sum().clamp(min=1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    perplexity = float(entropy.exp())
    return {"codes_used": int((counts > 0).sum()), "perplexity": perplexity,
            "perplexity_ratio": perplexity / codebook_size, "dead_restarts": int(restarts)}
