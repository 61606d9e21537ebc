"""Image anomaly detection: the same detector, with a convolutional autoencoder and a
per-pixel anomaly map."""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ...autoencoder import AutoEncoder
from ...checks import MAX_WIDTH, check_image_size, check_int, check_sizes
from .base import ReconstructionDetector


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
    The tables' local density term (``local_weight``) is off for images unless set.
    """

    _kind = "anomaly.ImageAnomalyDetector"
    data: ClassVar[str] = "image"  # always images (not a parameter)

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
        local_weight: float | str = "auto",
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
        self.local_weight = local_weight
        self.contamination = contamination
        self.threshold = threshold
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        check_image_size(self.image_size)
        check_sizes(self.channels, "channels")
        check_int(self.hidden, "hidden", 1, MAX_WIDTH)
        check_int(self.code_size, "code_size", 1, MAX_WIDTH)

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        return AutoEncoder.conv(shape, channels=self.channels, hidden=self.hidden, code_size=self.code_size,
                                bottleneck=self._bottleneck, activation=self.activation, batch_norm=self.batch_norm)
