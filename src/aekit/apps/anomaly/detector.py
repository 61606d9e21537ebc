"""Autoencoder anomaly detectors with the PyOD / scikit-learn surface.

Train on (mostly) normal rows; a row's anomaly score is how badly the autoencoders
reconstruct it. Higher score = more anomalous (PyOD's convention).

What makes the default hold across data sets (chosen on half of the development sets and
reported on the other half, benchmarks/anomaly_tabular.py, see BENCHMARKS.md): robust input
scaling; early stopping on a held-out validation split; feature-wise error standardisation
(each feature's squared error is divided by its typical error on held-out normal rows, so a
feature that is always hard to reconstruct does not drown the others); a density term on the
code (the larger of its Mahalanobis distance to the training codes and its rarity under a
Gaussian mixture of them), which flags rows that reconstruct well but sit where normal codes
are rare; and a local density term (the larger of the distance to the nearest training row
and the mean distance to the nearest row of each of 20 random groups of training rows),
which flags rows between clusters of normal data, where the two global terms are blind, and
keeps working when the training rows hold anomalies; and, for tables, a histogram term (how
rare each value is in its own column), which a tight group of anomalies among the training
rows cannot hide from either.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...autoencoder import AutoEncoder
from ...checks import MAX_WIDTH, check_int, check_sizes
from ...data import TabularPreprocessor
from ...data.adapter_base import SpanRows
from ...errors import ParameterError
from ...training import steps_to_epochs
from .base import ReconstructionDetector

# epochs="auto": the tables' 50 epochs, or on a large table as many as make about AUTO_STEPS
# optimizer steps (at least MIN_AUTO_EPOCHS)
AUTO_STEPS, MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 4000, 3, 50

# the network for images (data="image" or an image source): what ImageAnomalyDetector uses
IMAGE_CHANNELS, IMAGE_HIDDEN, IMAGE_CODE = (32, 64), 128, 16


def default_architecture(n_features: int) -> tuple[list[int], int]:
    """Hidden widths and code size from the (encoded) number of features.

    The first layer is the next power of two >= n_features (16..128), the second half that,
    and the code a quarter of the features (2..32): narrow enough that the network cannot
    learn the identity, wide enough for the main structure of normal data.
    """
    h1 = int(min(128, max(16, 2 ** math.ceil(math.log2(max(n_features, 2))))))
    code = int(min(32, max(2, math.ceil(n_features / 4))))
    return [h1, max(h1 // 2, code)], code


def mlp_sizes(n_features: int, hidden: str | list[int], code_size: str | int) -> tuple[list[int], int]:
    """The hidden widths and code size of an MLP autoencoder: the given ones, or
    ``default_architecture``'s where a parameter is ``"auto"``."""
    auto_hidden, auto_code = default_architecture(n_features)
    return (auto_hidden if hidden == "auto" else [int(h) for h in hidden],
            auto_code if code_size == "auto" else int(code_size))


class AnomalyDetector(ReconstructionDetector):
    """Autoencoder anomaly detector (continuous code), trained on normal data.

    Scores: ``decision_function(X)`` returns anomaly scores, **higher = more anomalous**, the
    sum of four terms, each with a median of 1 on held-out training rows (for tables; the
    mean is 1 for images) but the last:

    - reconstruction: the sum over features of each feature's squared reconstruction error
      divided by its typical error on held-out rows;
    - code density: ``latent_weight`` times the squared Mahalanobis distance of the row's code
      to the training codes or, where larger, its negative log density under a Gaussian
      mixture of the training codes (1 to 6 components by BIC; tables only: ``code_mixture``);
    - local density: ``local_weight`` times the larger of two statistics of the squared
      distances to the nearest row of each of 20 random groups of the training rows (up to
      65,536, searched in the 2 nearest of equal cells; in the scaled input space), each in
      its median unit: the smallest (the nearest training row) and the mean over the
      groups (a broader scale that anomalies among the training rows cannot hide in). ``"auto"`` is 4
      for tables (the local term weighs twice the two autoencoder terms together) and 0
      for images. ``decision_scores_`` score each training row without itself;
    - histogram (tables): ``histogram_weight`` times how rare the row's values are, column by
      column, in histograms of the training rows (10 bins of about equal counts per column;
      the summed log density ratios above their held-out median, in units of their 90th
      percentile less it). It keeps a tight group of anomalies among the training rows
      visible, which the autoencoder and the local term learn as normal. ``"auto"`` is 2 for
      tables and 0 for images.

    The autoencoder terms are averaged over ``n_estimators`` autoencoders trained from
    different seeds. ``explain`` attributes the reconstruction, local and histogram terms to
    columns; ``latent_weight=0`` makes the score exactly the sum of ``explain``.

    ``trim``: the fraction of each batch's worst-rebuilt rows left out of the training loss
    after the first 20% of training, for training rows that hold anomalies (0, the default,
    keeps every row; 0.1 measured +0.005 AUC-ROC on contaminated development sets and no
    change on clean ones, BENCHMARKS.md).

    Threshold: ``threshold=None`` uses ``contamination`` (PyOD's way); ``"fpr:0.01"`` sets a
    1% false-alarm rate on clean rows (the held-out rows and the training rows scored
    leave-one-out); a number is used as the threshold itself.

    Inputs are numpy arrays or pandas DataFrames; categorical columns are one-hot encoded and
    folded back into their column by ``explain``. ``na_values``: text that marks a missing
    value in the table (``["?"]``, the UCI archive's), read as NaN in training and scoring
    alike (``impute="median"`` then fills them). ``data="auto"`` also takes images (an
    image source or an array ``[N, C, H, W]``), with a convolutional network and
    ``feature_weighting="relative"`` (what ``feature_weighting="auto"`` means for images);
    the training defaults here are the tables' (one network, 50 epochs): for images,
    ``ImageAnomalyDetector``'s (three networks, 100 epochs, batch 64) are the measured ones.

    ``epochs="auto"``: 50, or on a large table as many as make about 4,000 optimizer steps
    (at least 3). Tables of up to about 20,000 training rows train 50 epochs, as before;
    a 38,000-row MNIST table scored the same after 10, 20 or 50 epochs (clean AUC-ROC 0.837 /
    0.839 / 0.837, contaminated 0.806 / 0.805 / 0.804, BENCHMARKS.md), and 200,000 rows took
    50 epochs of 781 steps each.
    """

    _fpr_reads_training = True  # its training rows score leave-one-out, as new normal rows do
    _kind = "anomaly.AnomalyDetector"
    _bottleneck = "continuous"

    def __init__(
        self,
        *,
        hidden: str | list[int] = "auto",
        code_size: str | int = "auto",
        n_estimators: int = 1,
        epochs: int | str = "auto",
        batch_size: int = 256,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        validation_fraction: float = 0.15,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        feature_weighting: str = "auto",
        latent_weight: float = 1.0,
        local_weight: float | str = "auto",
        histogram_weight: float | str = "auto",
        trim: float = 0.0,
        contamination: float = 0.1,
        threshold: str | float | None = None,
        categorical: str | list[str] = "auto",
        log_columns: list[str] | None = None,
        impute: str | None = None,
        na_values: list[str] | None = None,
        data: str = "auto",
        random_state: int = 0,
        verbose: int = 0,
        checkpoint_dir: str | None = None,
        resume: bool = False,
    ) -> None:
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
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.feature_weighting = feature_weighting
        self.latent_weight = latent_weight
        self.local_weight = local_weight
        self.histogram_weight = histogram_weight
        self.trim = trim
        self.contamination = contamination
        self.threshold = threshold
        self.categorical = categorical
        self.log_columns = log_columns
        self.impute = impute
        self.na_values = na_values
        self.data = data
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    # ------------------------------------------------------------------ the network
    def _train(self, model: torch.nn.Module, train_data: Any, val_data: Any = None, **kw: Any) -> Any:
        """The estimator's training, with ``epochs="auto"`` made a number for these rows."""
        if self.epochs == "auto":
            kw["epochs"] = steps_to_epochs(len(train_data), self.batch_size, AUTO_STEPS, MIN_AUTO_EPOCHS,
                                           MAX_AUTO_EPOCHS)
        return super()._train(model, train_data, val_data, **kw)

    def _check_params(self) -> None:
        super()._check_params()
        if self.hidden != "auto":
            check_sizes(self.hidden, "hidden")
        if self.code_size != "auto":
            check_int(self.code_size, "code_size", 1, MAX_WIDTH)

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        options = self._bottleneck_options()
        if len(shape) == 3:  # images
            code = IMAGE_CODE if self.code_size == "auto" else int(self.code_size)
            return AutoEncoder.conv(shape, channels=IMAGE_CHANNELS, hidden=IMAGE_HIDDEN, code_size=code,
                                    bottleneck=self._bottleneck, activation=self.activation,
                                    batch_norm=self.batch_norm, **options)
        if len(shape) != 1:
            raise ParameterError(f"samples must be rows (D,) or images (C, H, W), got shape {shape}")
        (n_features,) = shape
        hidden, code = mlp_sizes(n_features, self.hidden, self.code_size)
        return AutoEncoder.mlp(n_features, hidden, code, bottleneck=self._bottleneck, activation=self.activation,
                               dropout=self.dropout, batch_norm=self.batch_norm, **options)

    def _bottleneck_options(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ tables
    @property
    def preprocessor_(self) -> TabularPreprocessor:
        """The fitted preprocessor of a detector trained on a table."""
        self._check_fitted()
        if self.adapter_.kind != "table":
            raise ParameterError(f"this detector was trained on {self.adapter_.describe()}, not a table")
        return self.adapter_.preprocessor

    @property
    def n_features_in_(self) -> int:
        """The number of training columns (tables only: AttributeError otherwise, so that
        ``hasattr`` works as scikit-learn expects)."""
        return len(self._table_columns())

    @property
    def feature_names_in_(self) -> np.ndarray:
        return np.asarray(self._table_columns(), dtype=object)

    def _table_columns(self) -> list[str]:
        if not hasattr(self, "adapter_") or self.adapter_.kind != "table":
            raise AttributeError("n_features_in_ and feature_names_in_ exist for detectors fitted on tables")
        return self.adapter_.preprocessor.columns_

    # ------------------------------------------------------------------ explanations
    def score_explain(self, X: Any) -> tuple[np.ndarray, pd.DataFrame]:
        """``decision_function(X)`` and ``explain(X)`` from one pass over the data."""
        self._check_fitted()
        scores, contrib = self.score_explain_inputs(self.adapter_.transform_by_spans(X))
        index = X.index if isinstance(X, pd.DataFrame) else None
        return scores, pd.DataFrame(contrib, columns=self.explained_columns_, index=index)

    def score_explain_inputs(self, Z: torch.Tensor | SpanRows) -> tuple[np.ndarray, np.ndarray]:
        """Scores and per-column contributions ``[N, len(explained_columns_)]`` of rows already
        through the adapter (``self.adapter_.transform``, or ``transform_by_spans``): what a
        server that validated the rows itself scores."""
        scores, contrib = self._score_blocks(Z, per_feature=True)
        groups = self.preprocessor_.feature_groups_
        columns = self.explained_columns_
        # one-hot features summed back into their column: a 0/1 matrix product, not a
        # transpose-and-groupby of the whole chunk
        fold = np.zeros((len(groups), len(columns)))
        fold[np.arange(len(groups)), [columns.index(g) for g in groups]] = 1.0
        return scores, contrib @ fold

    @property
    def explained_columns_(self) -> list[str]:
        """The columns ``explain`` attributes scores to (training columns, in their order)."""
        groups = set(self.preprocessor_.feature_groups_)
        return [c for c in self.preprocessor_.columns_ if c in groups]

    def explain(self, X: Any) -> pd.DataFrame:
        """Per-column contributions to each row's score (rows sum to ``decision_function``
        less the terms not attributable to columns: the latent density term, a VAE's KL).

        Columns are the user's original column names; one-hot categories are summed back
        into their column."""
        return self.score_explain(X)[1]
