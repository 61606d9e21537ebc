"""VQ-VAE: images (or vectors) to a few tokens of a learned codebook and back."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ...nn import codebook_health
from .common import (
    FittedAutoEncoderModel,
    as_samples,
    batched,
    build_autoencoder,
    check_shape,
    fit_autoencoder,
    split_indices,
)


class VQAutoEncoder(FittedAutoEncoderModel, BaseEstimator):
    """An autoencoder whose code is ``positions`` tokens from a codebook of ``codebook_size``
    vectors (``VQBottleneck``: EMA codebook, k-means initialisation, dead-code restart;
    ``codebooks > 1`` for residual or product quantization). Each input costs ``bits_``
    = positions x codebooks x log2(codebook_size) bits.

    A codebook entry unused for ``dead_after`` training steps (default: one epoch's steps) is
    restarted on a random encoder output. ``training_history_`` holds, per epoch, the codebook health on the held-out share:
    ``codes_used``, ``perplexity``, ``perplexity_ratio`` and ``dead_restarts`` (cumulative)."""

    _kind = "codes.VQAutoEncoder"

    def __init__(self, codebook_size: int = 64, *, positions: int = 4, dim: int = 16, codebooks: int = 1,
                 combine: str = "residual", commitment: float = 0.25, dead_after: int | None = None, hidden: int = 128,
                 channels: tuple[int, ...] = (32, 64), epochs: int = 100, batch_size: int = 64, lr: float = 2e-3,
                 validation_fraction: float = 0.1, random_state: int = 0, verbose: int = 0) -> None:
        self.codebook_size = codebook_size
        self.positions = positions
        self.dim = dim
        self.codebooks = codebooks
        self.combine = combine
        self.commitment = commitment
        self.dead_after = dead_after
        self.hidden = hidden
        self.channels = channels
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> VQAutoEncoder:
        """Learn the codebook and the encoder/decoder from ``X`` (``y`` is ignored)."""
        x = as_samples(X)
        self.input_shape_ = tuple(x.shape[1:])
        train_idx, val_idx = split_indices(len(x), self.validation_fraction, self.random_state)
        dead_after = self.dead_after if self.dead_after is not None else max(1, -(-len(train_idx) // self.batch_size))
        self.model_ = build_autoencoder(
            self.input_shape_, "vq", self.codebook_size, self.hidden, tuple(self.channels), dim=self.dim,
            positions=self.positions, codebooks=self.codebooks, combine=self.combine, commitment=self.commitment,
            dead_after=dead_after)
        held_out = x[val_idx.numpy()] if len(val_idx) else x

        def health(model: torch.nn.Module, epoch: int) -> dict[str, float]:
            return self._health(held_out)

        self.training_history_ = fit_autoencoder(
            self.model_, x, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.random_state,
            verbose=self.verbose, validation_fraction=self.validation_fraction, patience=15,
            epoch_callback=health).history
        return self

    @property
    def bits_(self) -> float:
        return self.positions * self.codebooks * math.log2(self.codebook_size)

    def encode(self, X: Any) -> np.ndarray:
        """Token indices ``[N, positions, codebooks]``."""
        self._check_fitted()
        return batched(self.model_.encode_indices, check_shape(as_samples(X), self.input_shape_)).numpy()

    @torch.inference_mode()
    def decode(self, indices: Any) -> np.ndarray:
        """Reconstructions from token indices ``[N, positions, codebooks]``."""
        self._check_fitted()
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        shape = (self.positions, self.codebooks)
        if idx.ndim != 3 or tuple(idx.shape[1:]) != shape or idx.min() < 0 or idx.max() >= self.codebook_size:
            raise ValueError(f"indices must be [N, {shape[0]}, {shape[1]}] in [0, {self.codebook_size}), "
                             f"got shape {tuple(idx.shape)}")
        books = [q.embed for q in self.model_.bottleneck.quantizers]
        if self.combine == "product":
            vectors = torch.cat([book[idx[..., j]] for j, book in enumerate(books)], dim=-1)
        else:
            vectors = sum(book[idx[..., j]] for j, book in enumerate(books))
        return self.model_.decode(vectors.reshape(len(idx), -1)).numpy()

    def reconstruct(self, X: Any) -> np.ndarray:
        self._check_fitted()
        return batched(self.model_.reconstruct, check_shape(as_samples(X), self.input_shape_)).numpy()

    def psnr(self, X: Any) -> float:
        """Mean peak signal-to-noise ratio of the reconstructions, in dB (peak 1: images in [0, 1])."""
        x = as_samples(X)
        mse = ((self.reconstruct(x) - x) ** 2).reshape(len(x), -1).mean(1)
        return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))

    def health(self, X: Any) -> dict[str, float]:
        """Codebook use over ``X``: codes used, perplexity, perplexity / K, dead-code restarts."""
        self._check_fitted()
        return self._health(check_shape(as_samples(X), self.input_shape_))

    def _health(self, x: np.ndarray) -> dict[str, float]:
        indices = batched(self.model_.encode_indices, x)
        return codebook_health(indices, self.codebook_size, self.model_.bottleneck.restarts)
