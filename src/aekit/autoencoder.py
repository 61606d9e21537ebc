"""``AutoEncoder = encoder -> bottleneck -> decoder``: the one model every application uses."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .nn import (
    MLP,
    BinaryBottleneck,
    Bottleneck,
    ContinuousBottleneck,
    ConvDecoder,
    ConvEncoder,
    GaussianBottleneck,
    OneHotBottleneck,
    VQBottleneck,
    build,
    describe,
)

RECONSTRUCTIONS = ("mse", "gaussian", "gaussian_sigma", "bernoulli")
BOTTLENECKS: dict[str, type[Bottleneck]] = {
    "continuous": ContinuousBottleneck, "gaussian": GaussianBottleneck, "binary": BinaryBottleneck,
    "onehot": OneHotBottleneck, "vq": VQBottleneck,
}


def _bottleneck(kind: str, in_features: int, code_size: int, options: dict[str, Any]) -> Bottleneck:
    """A bottleneck by name. ``code_size`` is the number of bits (binary), classes (one-hot)
    or codebook entries (vq: its vectors' size is the ``dim`` option)."""
    if kind not in BOTTLENECKS:
        raise ValueError(f"bottleneck must be one of {sorted(BOTTLENECKS)}, got {kind!r}")
    if kind == "vq":
        return VQBottleneck(in_features, codebook_size=code_size, **options)
    return BOTTLENECKS[kind](in_features, code_size, **options)


@dataclass
class AEOutput:
    reconstruction: Tensor
    code: Tensor
    aux_losses: dict[str, Tensor] = field(default_factory=dict)


class AutoEncoder(nn.Module):
    """An encoder, a bottleneck (the representation) and a decoder.

    ``reconstruction`` names the per-sample reconstruction loss:
    ``"mse"`` (mean squared error over features), ``"gaussian"`` (unit-variance Gaussian
    negative log-likelihood, summed over features: the ELBO's term for real data),
    ``"gaussian_sigma"`` (the same with one noise level sigma, set while training to its
    optimum for each batch, the root mean squared error, so that reconstruction and KL balance
    by themselves: the "optimal sigma-VAE" of Rybkin et al. 2021; a running mean of it is kept
    for evaluation) or
    ``"bernoulli"`` (binary cross-entropy on logits, summed: for data in [0, 1]; the decoder
    then outputs logits and ``reconstruct`` applies the sigmoid).
    """

    def __init__(self, encoder: nn.Module, bottleneck: Bottleneck, decoder: nn.Module, reconstruction: str = "mse") -> None:
        super().__init__()
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}, got {reconstruction!r}")
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder
        self.reconstruction = reconstruction
        if reconstruction == "gaussian_sigma":
            # the noise level used outside training: a running mean of the per-batch optimum
            self.register_buffer("log_sigma", torch.zeros(()))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def mlp(
        cls,
        n_features: int,
        hidden: Sequence[int] = (64, 32),
        code_size: int = 8,
        bottleneck: str = "continuous",
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        reconstruction: str | None = None,
        out_shape: Sequence[int] | None = None,
        **bottleneck_options: Any,
    ) -> AutoEncoder:
        """A symmetric MLP autoencoder: ``n_features -> hidden -> code -> reversed(hidden) -> n_features``.
        ``out_shape`` gives samples of more than one dimension (images): the encoder flattens
        them and the decoder's output is reshaped to ``out_shape``."""
        hidden = list(hidden)
        enc_out = hidden[-1] if hidden else n_features
        # the encoder ends with its activation: the bottleneck's own projection is linear
        encoder = (MLP(n_features, enc_out, hidden[:-1], activation, dropout, batch_norm, activate_output=True)
                   if hidden else nn.Identity())
        neck = _bottleneck(bottleneck, enc_out, code_size, bottleneck_options)
        decoder = MLP(neck.code_size, n_features, hidden[::-1], activation, dropout, batch_norm, out_shape=out_shape)
        if reconstruction is None:
            reconstruction = "gaussian" if bottleneck == "gaussian" else "mse"
        return cls(encoder, neck, decoder, reconstruction)

    @classmethod
    def conv(
        cls,
        shape: Sequence[int],
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        code_size: int = 16,
        bottleneck: str = "continuous",
        activation: str = "relu",
        batch_norm: bool = False,
        reconstruction: str | None = None,
        **bottleneck_options: Any,
    ) -> AutoEncoder:
        """A convolutional autoencoder for images of ``shape = (C, H, W)`` in [0, 1]; the
        decoder mirrors the encoder. Default loss: Bernoulli (binary cross-entropy on logits)."""
        c, h, w = (int(v) for v in shape)
        encoder = ConvEncoder(c, h, w, hidden, channels, activation, batch_norm)
        neck = _bottleneck(bottleneck, hidden, code_size, bottleneck_options)
        decoder = ConvDecoder(neck.code_size, c, h, w, list(channels)[::-1], activation, batch_norm)
        return cls(encoder, neck, decoder, reconstruction or "bernoulli")

    def spec(self) -> dict[str, Any]:
        """JSON description from which ``from_spec`` rebuilds the same architecture."""
        enc = {"type": "identity"} if isinstance(self.encoder, nn.Identity) else describe(self.encoder)
        return {
            "encoder": enc,
            "bottleneck": describe(self.bottleneck),
            "decoder": describe(self.decoder),
            "reconstruction": self.reconstruction,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> AutoEncoder:
        enc = nn.Identity() if spec["encoder"].get("type") == "identity" else build(spec["encoder"])
        return cls(enc, build(spec["bottleneck"]), build(spec["decoder"]), spec["reconstruction"])

    # -- forward --------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        return self.bottleneck(self.encoder(x)).code

    def encode_indices(self, x: Tensor) -> Tensor:
        """The discrete symbols of ``x`` (bits, classes or codebook indices) of a discrete
        bottleneck."""
        indices = self.bottleneck(self.encoder(x)).indices
        if indices is None:
            raise ValueError(f"a {type(self.bottleneck).__name__} has no discrete symbols")
        return indices

    def decode(self, code: Tensor) -> Tensor:
        out = self.decoder(code)
        return torch.sigmoid(out) if self.reconstruction == "bernoulli" else out

    def forward(self, x: Tensor) -> AEOutput:
        b = self.bottleneck(self.encoder(x))
        return AEOutput(self.decoder(b.code), b.code, b.aux_losses)

    def reconstruct(self, x: Tensor) -> Tensor:
        out = self.forward(x).reconstruction
        return torch.sigmoid(out) if self.reconstruction == "bernoulli" else out

    def reconstruction_loss(self, x: Tensor, raw_reconstruction: Tensor) -> Tensor:
        """Per-sample reconstruction loss (shape ``[batch]``)."""
        if self.reconstruction == "mse":
            return (raw_reconstruction - x).pow(2).flatten(1).mean(1)
        if self.reconstruction == "gaussian":  # the constant 0.5 log(2 pi) per feature is left out
            return 0.5 * (raw_reconstruction - x).pow(2).flatten(1).sum(1)
        return -self.log_likelihood(x, raw_reconstruction)

    def log_likelihood(self, x: Tensor, raw_reconstruction: Tensor) -> Tensor:
        """``log p(x | z)`` per sample in nats, from the decoder's raw output (logits for
        ``bernoulli``). Not defined for ``mse``, which is not a likelihood."""
        if self.reconstruction == "bernoulli":
            return -F.binary_cross_entropy_with_logits(raw_reconstruction, x, reduction="none").flatten(1).sum(1)
        if self.reconstruction == "mse":
            raise ValueError("reconstruction='mse' has no likelihood; use 'gaussian', 'gaussian_sigma' or 'bernoulli'")
        sq = (raw_reconstruction - x).pow(2).flatten(1)
        log_sigma = torch.zeros(())
        if self.reconstruction == "gaussian_sigma":
            if self.training:
                log_sigma = 0.5 * torch.log(sq.detach().mean() + 1e-6)
                with torch.no_grad():
                    self.log_sigma.lerp_(log_sigma, 0.05)
            else:
                log_sigma = self.log_sigma
        return -(0.5 * sq / torch.exp(2 * log_sigma) + log_sigma + 0.5 * math.log(2 * math.pi)).sum(1)

    def loss(self, x: Tensor, progress: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        """The training objective, averaged over the batch, and its parts (unweighted means,
        detached)."""
        if self.training:
            self.bottleneck.set_progress(progress)
        out = self.forward(x)
        rec = self.reconstruction_loss(x, out.reconstruction).mean()
        total = rec
        parts = {"reconstruction": rec.detach()}
        for name, value in out.aux_losses.items():
            v = value.mean()
            total = total + self.bottleneck.aux_weight(name, progress) * v
            parts[name] = v.detach()
        return total, parts
