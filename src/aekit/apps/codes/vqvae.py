"""VQ-VAE: images (or vectors) to a few tokens of a learned codebook and back."""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from ...autoencoder import AutoEncoder
from ...checks import MAX_WIDTH, check_choice, check_float, check_int, check_sizes
from ...errors import DataError
from ...estimator import FittedModel
from ...nn import codebook_health
from ...nn.mlp import ACTIVATIONS
from ...training import patience_in_updates

EARLY_STOP_PATIENCE = 15  # epochs, and at least PATIENCE_UPDATES optimizer steps
PATIENCE_UPDATES = 200  # a few hundred images are two or three steps an epoch


class VQAutoEncoder(FittedModel):
    """An autoencoder whose code is ``positions`` tokens from a codebook of ``codebook_size``
    vectors (``VQBottleneck``: EMA codebook, k-means initialisation, dead-code restart;
    ``codebooks > 1`` for residual or product quantization). Each input costs ``bits_``
    = positions x codebooks x log2(codebook_size) bits.

    A codebook entry unused for ``dead_after`` training steps (default: one epoch's steps) is
    restarted on a random encoder output. ``training_history_`` holds, per epoch, the codebook
    health on the held-out share: ``codes_used``, ``perplexity``, ``perplexity_ratio`` and
    ``dead_restarts`` (cumulative). ``impute="median"`` fills a table's NaN/inf with the
    training median (default: an error naming the columns).

    ``activation``: the networks' (``"leaky_relu"`` by default: with ReLU the encoder of
    128x85 colour photos died in the first steps in two seeds of three, every unit at zero,
    and the model drew one image whatever the input; BENCHMARKS.md)."""

    _kind = "codes.VQAutoEncoder"
    _array_adapter = "array"
    _older_defaults: ClassVar[dict[str, Any]] = {"activation": "relu"}  # before 0.9.14

    def __init__(self, codebook_size: int = 64, *, positions: int = 4, dim: int = 16, codebooks: int = 1,
                 combine: str = "residual", commitment: float = 0.25, dead_after: int | None = None, hidden: int = 128,
                 channels: tuple[int, ...] = (32, 64), activation: str = "leaky_relu", epochs: int = 100,
                 batch_size: int = 64, lr: float = 2e-3,
                 validation_fraction: float = 0.1, impute: str | None = None, data: str = "auto",
                 random_state: int = 0, verbose: int = 0, checkpoint_dir: str | None = None,
                 resume: bool = False) -> None:
        self.codebook_size = codebook_size
        self.positions = positions
        self.dim = dim
        self.codebooks = codebooks
        self.combine = combine
        self.commitment = commitment
        self.dead_after = dead_after
        self.hidden = hidden
        self.channels = channels
        self.activation = activation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.impute = impute
        self.data = data
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.codebook_size, "codebook_size", 2, MAX_WIDTH)
        check_int(self.positions, "positions", 1, 4096)
        check_int(self.dim, "dim", 1, 4096)
        check_int(self.codebooks, "codebooks", 1, 64)
        check_choice(self.combine, "combine", ("residual", "product"))
        check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        check_float(self.commitment, "commitment", 0)
        if self.dead_after is not None:
            check_int(self.dead_after, "dead_after", 0)
        check_int(self.hidden, "hidden", 1, MAX_WIDTH)
        check_sizes(self.channels, "channels")

    def fit(self, X: Any, y: Any = None) -> VQAutoEncoder:
        """Learn the codebook and the encoder/decoder from ``X`` (``y`` is ignored)."""
        self._check_params()
        Z = self._fit_adapter(X)
        train_idx, val_idx = self._split(len(Z))
        dead_after = self.dead_after if self.dead_after is not None else max(1, -(-len(train_idx) // self.batch_size))
        torch.manual_seed(self.random_state)
        model = AutoEncoder.for_shape(
            Z.shape[1:], self.positions * self.dim, "vq", hidden=self.hidden, channels=self.channels,
            reconstruction="mse", codebook_size=self.codebook_size, positions=self.positions, codebooks=self.codebooks,
            combine=self.combine, commitment=self.commitment, dead_after=dead_after, activation=self.activation)
        held_out = Z[val_idx] if len(val_idx) else Z

        def health(m: torch.nn.Module, epoch: int) -> dict[str, float]:
            return self._health(m, held_out)

        self.training_history_ = self._train(
            model, Z[train_idx], Z[val_idx] if len(val_idx) else None, seed=self.random_state, name="autoencoder",
            desc="VQ-VAE", patience=patience_in_updates(len(train_idx), self.batch_size, PATIENCE_UPDATES,
                                                        EARLY_STOP_PATIENCE), epoch_callback=health).history
        self.model_ = model
        return self

    @property
    def bits_(self) -> float:
        return self.positions * self.codebooks * math.log2(self.codebook_size)

    def encode(self, X: Any) -> np.ndarray:
        """Token indices ``[N, positions, codebooks]``."""
        return self._batched(self.model_.encode_indices, self._inputs(X)).numpy()

    def decode(self, indices: Any) -> np.ndarray:
        """Reconstructions from token indices ``[N, positions, codebooks]`` (``encode``'s)."""
        self._check_fitted()
        return self._batched(self.model_.decode_indices, torch.from_numpy(self._checked_tokens(indices))).numpy()

    def _checked_tokens(self, indices: Any) -> np.ndarray:
        """``indices`` as int64 ``[N, positions, codebooks]``, or a one-line error naming what
        is wrong (another model's tokens would index past the codebook)."""
        tokens = np.asarray(indices)
        shape = (self.positions, self.codebooks)
        if tokens.ndim == 2 and self.codebooks == 1:
            tokens = tokens[:, :, None]
        if tokens.ndim != 3 or tokens.shape[1:] != shape or not len(tokens):
            raise DataError(f"tokens of shape {tokens.shape} given to a model whose tokens are [N, {shape[0]}, {shape[1]}]")
        if tokens.dtype.kind not in "iu":
            raise DataError(f"tokens must be integers, got {tokens.dtype}")
        if tokens.min() < 0 or tokens.max() >= self.codebook_size:
            raise DataError(f"tokens run from {tokens.min()} to {tokens.max()}; this model's codebook holds "
                            f"0 to {self.codebook_size - 1} (tokens of another model?)")
        return tokens.astype(np.int64)

    def reconstruct(self, X: Any) -> np.ndarray:
        return self._batched(self.model_.reconstruct, self._inputs(X)).numpy()

    def psnr(self, X: Any) -> float:
        """Mean peak signal-to-noise ratio of the reconstructions, in dB (peak 1: images in [0, 1])."""
        Z = self._inputs(X)
        mse = (self._batched(self.model_.reconstruct, Z) - Z).pow(2).flatten(1).mean(1).numpy()
        return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))

    def health(self, X: Any) -> dict[str, float]:
        """Codebook use over ``X``: codes used, perplexity, perplexity / K, dead-code restarts."""
        return self._health(self.model_, self._inputs(X))

    def _health(self, model: AutoEncoder, Z: torch.Tensor) -> dict[str, float]:
        indices = self._batched(model.encode_indices, Z)
        return codebook_health(indices, self.codebook_size, model.bottleneck.restarts)
