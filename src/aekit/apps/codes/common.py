"""What the discrete-code applications share: inputs (images or feature vectors), the
autoencoder for them, and saving an autoencoder with extra fitted arrays."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...autoencoder import AutoEncoder
from ...data.images import ImageSet, as_image_array
from ...errors import DataError, NotFittedError
from ...io import load_model_dir, save_model_dir
from ...training import TrainConfig, TrainResult, train


def as_samples(X: Any) -> np.ndarray:
    """Float32 samples ``[N, ...]``: images ``[N, C, H, W]`` in [0, 1] from an image source,
    an ``ImageSet`` or an ``[N, H, W]`` / ``[N, C, H, W]`` array; or feature vectors from a
    2-D array (finite numbers)."""
    if isinstance(X, (str, os.PathLike, ImageSet)):
        return as_image_array(X)
    x = np.asarray(X)
    if x.dtype.kind not in "biuf":
        raise DataError(f"expected numbers, got an array of {x.dtype}")
    x = x.astype(np.float32)
    if x.ndim == 2:
        if not np.isfinite(x).all():
            raise DataError("the samples hold NaN or inf")
        return x
    return as_image_array(x)


def check_shape(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"samples of shape {tuple(x.shape[1:])} given to a model fitted on {tuple(shape)}")
    return x


def build_autoencoder(shape: tuple[int, ...], bottleneck: str, code_size: int, hidden: int = 128,
                      channels: tuple[int, ...] = (32, 64), reconstruction: str = "mse", **options: Any) -> AutoEncoder:
    """A conv autoencoder for images ``(C, H, W)``, an MLP for vectors ``(D,)``."""
    if len(shape) == 3:
        return AutoEncoder.conv(shape, channels=channels, hidden=hidden, code_size=code_size, bottleneck=bottleneck,
                                reconstruction=reconstruction, **options)
    return AutoEncoder.mlp(shape[0], hidden=(hidden * 2, hidden), code_size=code_size, bottleneck=bottleneck,
                           reconstruction=reconstruction, **options)


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, held-out) indices of a seeded shuffle."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(validation_fraction * n))
    return perm[n_val:], perm[:n_val]


def fit_autoencoder(model: AutoEncoder, x: np.ndarray, *, epochs: int, batch_size: int, lr: float, seed: int,
                    verbose: int, validation_fraction: float = 0.0, patience: int = 1000,
                    epoch_callback: Any = None) -> TrainResult:
    """Train on ``x`` (shuffled with ``seed``); a validation share enables early stopping."""
    data = torch.from_numpy(x)
    train_idx, val_idx = split_indices(len(data), validation_fraction, seed)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, verbose=verbose, patience=patience,
                      epoch_callback=epoch_callback)
    torch.manual_seed(seed)
    result = train(model, data[train_idx], data[val_idx] if len(val_idx) else None, cfg)
    model.eval()
    return result


@torch.inference_mode()
def batched(fn: Any, x: np.ndarray, block: int = 4096) -> torch.Tensor:
    """``fn`` over ``x`` in blocks, concatenated."""
    data = torch.from_numpy(x)
    return torch.cat([fn(data[s:s + block]) for s in range(0, len(data), block)])


class FittedAutoEncoderModel:
    """Save/load of an estimator holding ``model_`` (an AutoEncoder), its input shape and
    extra fitted tensors. Subclasses set ``_kind`` and list the extras in ``_extras``."""

    _kind = ""
    _extras: tuple[str, ...] = ()

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def save(self, path: str | Path) -> Path:
        """Write the model directory (config.json + model.safetensors), atomically."""
        self._check_fitted()
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in self.get_params().items()}  # type: ignore[attr-defined]
        params["verbose"] = 0
        tensors = {f"model.{k}": v for k, v in self.model_.state_dict().items()}
        tensors.update({f"extra.{name}": torch.as_tensor(np.asarray(getattr(self, name))) for name in self._extras})
        config = {"params": params, "model": self.model_.spec(), "input_shape": list(self.input_shape_)}
        return save_model_dir(path, self._kind, config, tensors)

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read a model directory written by ``save`` (never unpickles anything)."""
        config, tensors = load_model_dir(path, (cls._kind,))
        est = cls(**config["params"])
        est.model_ = AutoEncoder.from_spec(config["model"])
        est.model_.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        est.model_.eval()
        est.input_shape_ = tuple(config["input_shape"])
        for name in cls._extras:
            setattr(est, name, tensors[f"extra.{name}"].numpy())
        return est

