"""Image anomaly detection: the same detector, with a convolutional autoencoder and a
per-pixel anomaly map."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ...autoencoder import AutoEncoder
from ...checks import MAX_WIDTH, check_image_size, check_int, check_sizes
from ...errors import ModelFileError
from ...estimator import TensorGroups
from ...training import steps_to_epochs
from . import neighbours
from .base import ReconstructionDetector

# epochs="auto": about this many optimizer steps, within [MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS]
# epochs: one MNIST digit (~5,000 images after the validation share) trains ~19 epochs, 60 faces 100
AUTO_STEPS = 1500
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 10, 100
# the local term weighs as much as the two autoencoder terms together: on MNIST digits 5 and 8
# weights 1, 2, 4, 8 gave 0.979, 0.982, 0.984, 0.984 AUC, on faces 4 cost 0.005 against 1
# (benchmarks/image_local_term.py; anomaly_images.py reports all ten digits, faces, 8x8 digits)
IMAGE_LOCAL_WEIGHT = 2.0


class ImageAnomalyDetector(ReconstructionDetector):
    """Convolutional-autoencoder anomaly detector for images, trained on normal images.

    ``X`` is an array ``[N, H, W]`` / ``[N, C, H, W]`` in [0, 1], an ``ImageSet``, or a source
    for ``load_images``: a folder of PNG/JPEG files, an ``.npz`` file, or a bundled set name.
    ``image_size=(H, W)`` resizes every image; by default the training images' size is kept.
    The size and channel count are saved with the model and applied to scored images.

    The score has three terms, each about 1 for normal images (times its weight):
    - reconstruction: the squared pixel error after a mean filter (``error_blur``, its radius
      in pixels; "auto": 1 on 28x28 images, 0 on 8x8, in proportion between), divided by
      the image's own pixel variance, in units of its typical value on held-out normal
      images (``feature_weighting="relative"``). Relative
      error matters because an anomaly smoother than the normal images (a wall, sky)
      reconstructs with a small absolute error (faces vs non-faces: plain error 0.82 AUC);
      the filter forgives a slightly misplaced edge, which is not an anomaly;
    - code density: the Mahalanobis distance of the code to the training codes
      (``latent_weight``);
    - local: ``local_weight`` (2 by default) times the cosine distance to the nearest
      training images after a blur, each allowed a one-pixel shift (``neighbours.py``).
    On one-class MNIST the local term is the strongest of the three and the sum beats each
    (benchmarks/anomaly_images.py). ``anomaly_map(X)`` shows where each image departs.
    ``epochs="auto"`` trains for about 1,500 optimizer steps (10-100 epochs).

    ``contamination`` sets the threshold as PyOD does, but on the scores of the training
    images held out of the gradient steps (when at least 10 were): the network rebuilds the
    images it was trained on better than new ones, and at 0.1 the training images' own scores
    flagged 17% of new normal MNIST zeros (3,000 training zeros), the held-out ones 11%
    (benchmarks/anomaly_thresholds.py). ``labels_`` then flags fewer training images.
    """

    _kind = "anomaly.ImageAnomalyDetector"
    data: ClassVar[str] = "image"  # always images (not a parameter)
    _contamination_held_out = True

    def __init__(
        self,
        *,
        image_size: Sequence[int] | None = None,
        channels: Sequence[int] = (32, 64),
        hidden: int = 128,
        code_size: int = 16,
        n_estimators: int = 2,
        epochs: int | str = "auto",
        batch_size: int = 64,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        validation_fraction: float = 0.15,
        activation: str = "relu",
        batch_norm: bool = False,
        error_blur: int | str = "auto",
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
        self.error_blur = error_blur
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
        if self.error_blur != "auto":
            check_int(self.error_blur, "error_blur", 0, 10)
        super()._check_params()
        check_image_size(self.image_size)
        check_sizes(self.channels, "channels")
        check_int(self.hidden, "hidden", 1, MAX_WIDTH)
        check_int(self.code_size, "code_size", 1, MAX_WIDTH)

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        return AutoEncoder.conv(shape, channels=self.channels, hidden=self.hidden, code_size=self.code_size,
                                bottleneck=self._bottleneck, activation=self.activation, batch_norm=self.batch_norm)

    def _train(self, model: torch.nn.Module, train_data: Any, val_data: Any = None, **kw: Any) -> Any:
        if self.epochs == "auto":
            kw["epochs"] = auto_epochs(len(train_data), self.batch_size)
        return super()._train(model, train_data, val_data, **kw)

    # ------------------------------------------------------------------ the score's terms
    def _reconstruction_errors(self, model: AutoEncoder, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # oneDNN's convolutions run a third faster on channels-last tensors (the same sums:
        # scores agree to 1e-7); a member already in that layout is returned as it is
        model = model.to(memory_format=torch.channels_last)
        Z = Z.contiguous(memory_format=torch.channels_last)
        code = model.encode(Z)
        residual = model.decode(code).sub_(Z)
        radius = neighbours.error_blur_radius(*self._sample_shape()[1:]) if self.error_blur == "auto" else self.error_blur
        if radius:
            residual = F.avg_pool2d(residual, 2 * radius + 1, stride=1, padding=radius, count_include_pad=False)
        return residual.pow_(2), code

    def _local_weight(self) -> float:
        return IMAGE_LOCAL_WEIGHT if self.local_weight == "auto" else float(self.local_weight)

    def _fit_local(self, Z_train: torch.Tensor, Z_val: torch.Tensor | None) -> tuple[torch.Tensor, float]:
        """Reference images (the training images in the comparison space, a random subset
        where they exceed ``MAX_REFERENCE_VALUES``), the basis the search ranks them in, and
        the mean distance of held-out normal images to them (the term's unit)."""
        chosen = Z_train
        n_max = max(1, neighbours.MAX_REFERENCE_VALUES // self._local_width())
        keep = torch.arange(len(chosen))
        if len(chosen) > n_max:  # chosen before the blur: only the kept images are transformed
            keep = torch.from_numpy(np.sort(np.random.default_rng(self.random_state).choice(len(chosen), n_max,
                                                                                            replace=False)))
            chosen = chosen[keep]
        self._reference_rows = keep  # the training image of each reference (for fit only)
        references = neighbours.to_space(chosen, *self._sample_shape()[1:]).flatten(1).contiguous()
        self.local_basis_ = neighbours.principal_directions(references)
        # without held-out images the training images set the unit; each finds itself among
        # its neighbours, so the unit is smaller than it should be and scores come out larger
        ref = self._unit_rows(Z_train, Z_val)
        return references, max(float(self._neighbour_parts(ref, references).sum(1).mean()), 1e-6)

    def _neighbour_parts(self, Z: torch.Tensor, references: torch.Tensor, exclude: torch.Tensor | None = None
                         ) -> torch.Tensor:
        """Per-feature parts of the distance of ``Z`` to ``references`` (``exclude``: as
        ``neighbours.neighbour_parts`` takes it); their search index is made once per
        reference tensor and kept (in an exported graph its parts are constants and the
        references a buffer, so the file holds them once)."""
        c, h, w = self._sample_shape()
        if getattr(self, "_index", None) is None or self._index[0] is not references:
            self._index = (references, neighbours.reference_index(references, (c, *neighbours.space_size(h, w)),
                                                                  self.local_basis_))
        return neighbours.neighbour_parts(neighbours.to_space(Z, h, w), self._index[1], exclude)

    def _local_leaving_out(self, Z: torch.Tensor, own: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """The local term of training images before ``local_weight_``, each compared without
        its own reference. In-sample, an image found itself among its 5 nearest: a threshold
        at 0.1 of those scores flagged 21.7% of new normal MNIST zeros (3,000 training
        zeros), and 17.0% of these (benchmarks/anomaly_thresholds.py)."""
        rows, reference_ids = own
        exclude = torch.full((int(rows.max()) + 1 if len(rows) else 0,), -1, dtype=torch.long)
        exclude[reference_ids] = torch.arange(len(reference_ids))
        return self._neighbour_parts(Z, self.local_references_, exclude[rows]).sum(1) / self.local_scale_

    def _local_term(self, Z: torch.Tensor, per_feature: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        parts = self._neighbour_parts(Z, self.local_references_).mul_(self.local_weight_ / self.local_scale_)
        return parts.sum(1), (neighbours.to_pixels(parts, *self._sample_shape()) if per_feature else None)

    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        state, groups = super()._state()
        if self.local_references_ is not None:
            groups["local"]["basis"] = self.local_basis_
        return state, groups

    def _set_local_state(self, local: Any, tensors: dict[str, torch.Tensor] | None) -> None:
        """``ReconstructionDetector``'s, and the basis of the search (models saved before it
        existed get it computed from their references, as fitting does)."""
        super()._set_local_state(local, tensors)
        self._index = None
        basis = (tensors or {}).get("basis")
        if self.local_references_ is None:
            self.local_basis_ = None
        elif basis is None:
            self.local_basis_ = neighbours.principal_directions(self.local_references_)
        elif (basis.dim() != 2 or basis.shape[0] != self._local_width() or not 1 <= basis.shape[1] <= basis.shape[0]
              or not torch.isfinite(basis).all()):
            raise ModelFileError("the local term's basis is not a finite [width, directions] matrix of its references' width")
        else:
            self.local_basis_ = basis.float()

    def _local_width(self) -> int:
        c, h, w = self._sample_shape()
        return c * math.prod(neighbours.space_size(h, w))

    def _sample_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images the model takes, as plain ints (never traced tensors)."""
        c, h, w = (int(v) for v in self.adapter_.sample_shape)
        return c, h, w


def auto_epochs(n_rows: int, batch_size: int) -> int:
    """``epochs="auto"``: about ``AUTO_STEPS`` optimizer steps, within the epoch bounds."""
    return steps_to_epochs(n_rows, batch_size, AUTO_STEPS, MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS)
