"""Image anomaly detection: the same detector, with a convolutional autoencoder and a
per-pixel anomaly map."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ...autoencoder import AutoEncoder
from ...data.images import ImageSpec, as_image_array, fit_image_spec, images_for
from .base import ReconstructionDetector, check_train_rows


class ImageAnomalyDetector(ReconstructionDetector):
    """Convolutional-autoencoder anomaly detector for images, trained on normal images.

    ``X`` is an array ``[N, H, W]`` / ``[N, C, H, W]`` in [0, 1], an ``ImageSet``, or a source
    for ``load_images``: a folder of PNG/JPEG files, an ``.npz`` file, or a bundled set name.
    ``image_size=(H, W)`` resizes every image; by default the training images' size is kept.
    The size and channel count are saved with the model and applied to scored images.

    The score has two terms, each about 1 for normal images: the mean squared pixel error
    divided by the image's own pixel variance, in units of its typical value on held-out
    normal images (``feature_weighting="relative"``), and the density of the code under the
    training codes (``latent_weight``). Relative error matters because an anomaly that is
    smoother than the normal images (a wall, sky) reconstructs with a small absolute error
    (faces vs non-faces: plain error 0.82 AUC, relative error + code density 0.996; see
    benchmarks/anomaly_images.py). ``anomaly_map(X)`` shows where the reconstruction fails.
    """

    _kind = "anomaly.ImageAnomalyDetector"

    def __init__(
        self,
        *,
        image_size: Sequence[int] | None = None,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        code_size: int = 16,
        n_estimators: int = 3,
        epochs: int = 100,
        batch_size: int = 64,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        validation_fraction: float = 0.15,
        activation: str = "relu",
        batch_norm: bool = False,
        feature_weighting: str = "relative",
        latent_weight: float = 1.0,
        contamination: float = 0.1,
        threshold: str | float | None = None,
        random_state: int = 0,
        verbose: int = 0,
        checkpoint_dir: str | None = None,
        resume: bool = False,
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.hidden = hidden
        self.code_size = code_size
        self.n_estimators = n_estimators
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.activation = activation
        self.batch_norm = batch_norm
        self.feature_weighting = feature_weighting
        self.latent_weight = latent_weight
        self.contamination = contamination
        self.threshold = threshold
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    # ------------------------------------------------------------------ data hooks
    def _fit_inputs(self, X: Any) -> torch.Tensor:
        images = as_image_array(X)
        check_train_rows(len(images))
        images, self.image_spec_ = fit_image_spec(images, self.image_size)
        return torch.from_numpy(images)

    def _inputs(self, X: Any) -> torch.Tensor:
        return torch.from_numpy(images_for(X, self.image_spec_))

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        return AutoEncoder.conv(shape, channels=self.channels, hidden=self.hidden, code_size=self.code_size,
                                bottleneck=self._bottleneck, activation=self.activation, batch_norm=self.batch_norm)

    def _adapter_config(self) -> dict[str, Any]:
        return {"image_spec": self.image_spec_.to_dict()}

    def _load_adapter(self, config: dict[str, Any]) -> None:
        self.image_spec_ = ImageSpec.from_dict(config["image_spec"])

    # ------------------------------------------------------------------ maps
    def anomaly_map(self, X: Any) -> np.ndarray:
        """Per-pixel contributions to the score, ``[N, H, W]`` (channels summed), >= 0:
        where the reconstruction fails, relative to how well that pixel is usually rebuilt."""
        return self.score_maps(X)[1]

    def score_maps(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``decision_function(X)`` and ``anomaly_map(X)`` from one pass."""
        self._check_fitted()
        scores, contrib = self._score_blocks(self._inputs(X), per_feature=True)
        return scores, contrib.sum(1)

