"""``AutoEncoder = encoder -> bottleneck -> decoder``: the one model every application uses."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import MAX_WIDTH, check_choice, check_int
from .errors import ParameterError
from .nn import MLP, Bottleneck, BottleneckOutput, ConvDecoder, ConvEncoder, GaussianBottleneck, build, build_bottleneck, describe
from .nn.conv import SeriesConvDecoder, SeriesConvEncoder

RECONSTRUCTIONS = ("mse", "gaussian", "gaussian_sigma", "bernoulli")


def _bottleneck(kind: str, in_features: int, code_size: int, options: dict[str, Any]) -> Bottleneck:
    """A bottleneck by name (``registry.BOTTLENECKS``) whose code has ``code_size`` numbers."""
    return build_bottleneck(in_features, {"type": kind, "code_size": code_size, **options})


@dataclass
class AEOutput:
    reconstruction: Tensor
    code: Tensor
    aux_losses: dict[str, Tensor] = field(default_factory=dict)
    indices: Tensor | None = None
    rate: Tensor | None = None


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

    ``condition_size > 0`` makes the decoder conditional: ``decode(code, condition)`` reads
    the code and a condition vector per sample (a speaker embedding, a rate level),
    concatenated; ``forward``, ``loss`` and ``reconstruct`` then take the condition too.
    """

    def __init__(self, encoder: nn.Module, bottleneck: Bottleneck, decoder: nn.Module, reconstruction: str = "mse",
                 condition_size: int = 0) -> None:
        super().__init__()
        check_choice(reconstruction, "reconstruction", RECONSTRUCTIONS)
        self.condition_size = check_int(condition_size, "condition_size", 0, MAX_WIDTH)
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
        condition_size: int = 0,
        **bottleneck_options: Any,
    ) -> AutoEncoder:
        """A symmetric MLP autoencoder: ``n_features -> hidden -> code -> reversed(hidden) -> n_features``.
        ``out_shape`` gives samples of more than one dimension (images): the encoder flattens
        them and the decoder's output is reshaped to ``out_shape``."""
        hidden = list(hidden)
        condition_size = check_int(condition_size, "condition_size", 0, MAX_WIDTH)
        enc_out = hidden[-1] if hidden else n_features
        # the encoder ends with its activation: the bottleneck's own projection is linear
        encoder = (MLP(n_features, enc_out, hidden[:-1], activation, dropout, batch_norm, activate_output=True)
                   if hidden else nn.Identity())
        neck = _bottleneck(bottleneck, enc_out, code_size, bottleneck_options)
        decoder = MLP(neck.code_size + condition_size, n_features, hidden[::-1], activation, dropout, batch_norm,
                      out_shape=out_shape)
        if reconstruction is None:
            reconstruction = "gaussian" if bottleneck == "gaussian" else "mse"
        return cls(encoder, neck, decoder, reconstruction, condition_size)

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
        condition_size: int = 0,
        **bottleneck_options: Any,
    ) -> AutoEncoder:
        """A convolutional autoencoder for images of ``shape = (C, H, W)`` in [0, 1]; the
        decoder mirrors the encoder. Default loss: Bernoulli (binary cross-entropy on logits)."""
        c, h, w = (int(v) for v in shape)
        condition_size = check_int(condition_size, "condition_size", 0, MAX_WIDTH)
        encoder = ConvEncoder(c, h, w, hidden, channels, activation, batch_norm)
        neck = _bottleneck(bottleneck, hidden, code_size, bottleneck_options)
        decoder = ConvDecoder(neck.code_size + condition_size, c, h, w, list(channels)[::-1], activation, batch_norm)
        return cls(encoder, neck, decoder, reconstruction or "bernoulli", condition_size)

    @classmethod
    def series_conv(
        cls,
        channels_in: int,
        length: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 64,
        code_size: int = 16,
        bottleneck: str = "continuous",
        activation: str = "relu",
        **bottleneck_options: Any,
    ) -> AutoEncoder:
        """A 1-D convolutional autoencoder for windows of a series with ``channels_in``
        channels and ``length`` steps, flattened channel after channel ``[N, C * length]``;
        the decoder mirrors the encoder. Loss: mean squared error."""
        encoder = SeriesConvEncoder(channels_in, length, hidden, channels, activation)
        neck = _bottleneck(bottleneck, hidden, code_size, bottleneck_options)
        decoder = SeriesConvDecoder(neck.code_size, channels_in, length, list(channels)[::-1], activation)
        return cls(encoder, neck, decoder, "mse")

    @classmethod
    def for_shape(
        cls,
        shape: Sequence[int],
        code_size: int,
        bottleneck: str = "continuous",
        *,
        hidden: int = 128,
        channels: Sequence[int] = (32, 64),
        mlp_hidden: Sequence[int] | None = None,
        reconstruction: str | None = None,
        **options: Any,
    ) -> AutoEncoder:
        """The default network for samples of ``shape``: ``conv`` for images ``(C, H, W)``
        (``channels``, then ``hidden`` units), ``mlp`` for vectors ``(D,)`` (``mlp_hidden``,
        by default ``(2 * hidden, hidden)``). ``options`` go to both constructors."""
        shape = tuple(int(v) for v in shape)
        if len(shape) == 3:
            return cls.conv(shape, channels=channels, hidden=hidden, code_size=code_size, bottleneck=bottleneck,
                            reconstruction=reconstruction, **options)
        if len(shape) != 1:
            raise ParameterError(f"samples must be vectors (D,) or images (C, H, W), got shape {shape}")
        layers = list(mlp_hidden) if mlp_hidden is not None else [hidden * 2, hidden]
        return cls.mlp(shape[0], layers, code_size, bottleneck=bottleneck, reconstruction=reconstruction, **options)

    def spec(self) -> dict[str, Any]:
        """JSON description from which ``from_spec`` rebuilds the same architecture."""
        return {
            "encoder": describe(self.encoder),
            "bottleneck": describe(self.bottleneck),
            "decoder": describe(self.decoder),
            "reconstruction": self.reconstruction,
            "condition_size": self.condition_size,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> AutoEncoder:
        if not isinstance(spec, dict):
            raise ParameterError(f"a network spec must be a JSON object, got {type(spec).__name__}")
        neck = build(spec["bottleneck"])
        if not isinstance(neck, Bottleneck):
            raise ParameterError(f"{spec['bottleneck'].get('type')!r} is not a bottleneck")
        return cls(build(spec["encoder"]), neck, build(spec["decoder"]), spec["reconstruction"],
                   spec.get("condition_size", 0))

    # -- forward --------------------------------------------------------------------------
    def code_output(self, x: Tensor) -> BottleneckOutput:
        """Everything the bottleneck says of ``x``: code, aux losses, symbols, rate."""
        return self.bottleneck(self.encoder(x))

    def encode(self, x: Tensor) -> Tensor:
        return self.code_output(x).code

    def encode_indices(self, x: Tensor) -> Tensor:
        """The discrete symbols of ``x`` (bits, classes or codebook indices) of a discrete
        bottleneck."""
        indices = self.code_output(x).indices
        if indices is None:
            raise ParameterError(f"a {type(self.bottleneck).__name__} has no discrete symbols")
        return indices

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)`` of ``q(z|x)`` for a Gaussian code."""
        if not isinstance(self.bottleneck, GaussianBottleneck):
            raise ParameterError(f"a {type(self.bottleneck).__name__} has no posterior distribution")
        return self.bottleneck.distribution(self.encoder(x))

    def _decoder_input(self, code: Tensor, condition: Tensor | None) -> Tensor:
        if not self.condition_size:
            if condition is not None:
                raise ParameterError("this autoencoder's decoder takes no condition")
            return code
        if condition is None or condition.shape != (len(code), self.condition_size):
            got = None if condition is None else tuple(condition.shape)
            raise ParameterError(f"the decoder needs a condition of shape [N, {self.condition_size}], got {got}")
        return torch.cat([code, condition.to(code.dtype)], dim=1)

    def decode(self, code: Tensor, condition: Tensor | None = None) -> Tensor:
        out = self.decoder(self._decoder_input(code, condition))
        return torch.sigmoid(out) if self.reconstruction == "bernoulli" else out

    def decode_indices(self, indices: Tensor, condition: Tensor | None = None) -> Tensor:
        """Decode discrete symbols (as ``encode_indices`` gives them) of a discrete bottleneck."""
        return self.decode(self.bottleneck.decode_indices(indices), condition)

    def forward(self, x: Tensor, condition: Tensor | None = None) -> AEOutput:
        b = self.bottleneck(self.encoder(x))
        return AEOutput(self.decoder(self._decoder_input(b.code, condition)), b.code, b.aux_losses, b.indices, b.rate)

    def reconstruct(self, x: Tensor, condition: Tensor | None = None) -> Tensor:
        out = self.forward(x, condition).reconstruction
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
            raise ParameterError("reconstruction='mse' has no likelihood; use 'gaussian', 'gaussian_sigma' or 'bernoulli'")
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

    def loss(self, x: Tensor, progress: float = 1.0, condition: Tensor | None = None,
             trim: float = 0.0) -> tuple[Tensor, dict[str, Tensor]]:
        """The training objective, averaged over the batch, and its parts (unweighted means,
        detached). ``trim``: the fraction of the batch's rows with the largest reconstruction
        loss left out of it (robust training; 0 keeps every row)."""
        if self.training:
            self.bottleneck.set_progress(progress)
        out = self.forward(x, condition)
        per_row = self.reconstruction_loss(x, out.reconstruction)
        if trim > 0 and len(per_row) > 1:
            per_row = torch.topk(per_row, max(1, math.ceil((1 - trim) * len(per_row))), largest=False).values
        rec = per_row.mean()
        total = rec
        parts = {"reconstruction": rec.detach()}
        for name, value in out.aux_losses.items():
            v = value.mean()
            total = total + self.bottleneck.aux_weight(name, progress) * v
            parts[name] = v.detach()
        return total, parts
