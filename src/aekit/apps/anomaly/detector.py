"""Autoencoder anomaly detectors with the PyOD / scikit-learn surface.

Train on (mostly) normal rows; a row's anomaly score is how badly the autoencoders
reconstruct it. Higher score = more anomalous (PyOD's convention).

What makes the default hold across data sets (measured in benchmarks/anomaly_tabular.py,
see BENCHMARKS.md): robust input scaling; a small ensemble of seeds whose scores are
averaged; early stopping on a held-out validation split; feature-wise error standardisation
(each feature's squared error is divided by its typical error on held-out normal rows, so a
feature that is always hard to reconstruct does not drown the others); and a density term on
the code (its Mahalanobis distance to the training codes), which flags rows that reconstruct
well but sit where normal codes are rare.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import erf
from sklearn.base import BaseEstimator

from ...autoencoder import AutoEncoder
from ...data import TabularPreprocessor, as_frame
from ...errors import DataError, NotFittedError
from ...io import load_model_dir, save_model_dir
from ...training import TrainConfig, train
from .thresholds import ThresholdRule, parse_threshold, resolve_threshold

MIN_TRAIN_ROWS = 8
SCORE_BLOCK = 16_384  # rows per forward pass when scoring (fastest of 4k-64k on 2 cores)


def default_architecture(n_features: int) -> tuple[list[int], int]:
    """Hidden widths and code size from the (encoded) number of features.

    The first layer is the next power of two >= n_features (16..128), the second half that,
    and the code a quarter of the features (2..32): narrow enough that the network cannot
    learn the identity, wide enough for the main structure of normal data.
    """
    h1 = int(min(128, max(16, 2 ** math.ceil(math.log2(max(n_features, 2))))))
    code = int(min(32, max(2, math.ceil(n_features / 4))))
    return [h1, max(h1 // 2, code)], code


class AnomalyDetector(BaseEstimator):
    """Autoencoder anomaly detector (continuous code), trained on normal data.

    Scores: ``decision_function(X)`` returns anomaly scores, **higher = more anomalous**:
    the mean over features of each feature's squared reconstruction error divided by its
    typical error on held-out normal rows, plus ``latent_weight`` times the squared
    Mahalanobis distance of the row's code to the training codes over the code size (each
    term is about 1 for normal rows), averaged over an ensemble of ``n_estimators``
    autoencoders trained from different seeds. ``explain`` attributes the reconstruction
    part to columns; ``latent_weight=0`` makes the score exactly the sum of ``explain``.

    Threshold: ``threshold=None`` uses ``contamination`` (PyOD's way); ``"fpr:0.01"`` sets a
    1% false-alarm rate on held-out clean rows; a number is used as the threshold itself.

    Inputs are numpy arrays or pandas DataFrames; categorical columns are one-hot encoded and
    folded back into their column by ``explain``.
    """

    _kind = "anomaly.AnomalyDetector"
    _bottleneck = "continuous"

    def __init__(
        self,
        *,
        hidden: str | list[int] = "auto",
        code_size: str | int = "auto",
        n_estimators: int = 3,
        epochs: int = 100,
        batch_size: int = 128,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        validation_fraction: float = 0.15,
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        feature_weighting: str = "standardize",
        latent_weight: float = 1.0,
        contamination: float = 0.1,
        threshold: str | float | None = None,
        categorical: str | list[str] = "auto",
        log_columns: list[str] | None = None,
        impute: str | None = None,
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
        self.contamination = contamination
        self.threshold = threshold
        self.categorical = categorical
        self.log_columns = log_columns
        self.impute = impute
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> AnomalyDetector:
        """Fit on ``X`` (assumed mostly normal). ``y`` is ignored (unsupervised, as in PyOD)."""
        self._check_params()
        rule = parse_threshold(self.threshold, self.contamination)
        df = as_frame(X)
        if len(df) < MIN_TRAIN_ROWS:
            raise DataError(f"need at least {MIN_TRAIN_ROWS} rows to train, got {len(df)}")
        self.preprocessor_ = TabularPreprocessor(self.categorical, self.log_columns or [], self.impute).fit(df)
        Z = torch.from_numpy(self.preprocessor_.transform(df))
        n = len(Z)
        perm = np.random.default_rng(self.random_state).permutation(n)
        n_val = int(round(self.validation_fraction * n)) if n >= 20 else 0
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        Z_train, Z_val = Z[train_idx], (Z[val_idx] if n_val else None)
        hidden, code = self._architecture(Z.shape[1])

        self.models_: list[AutoEncoder] = []
        self.feature_weights_: list[torch.Tensor] = []
        self.latent_stats_: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.training_history_: list[list[dict[str, float]]] = []
        for k in range(self.n_estimators):
            seed = self.random_state + k
            torch.manual_seed(seed)
            model = self._build_model(Z.shape[1], hidden, code)
            cfg = TrainConfig(
                epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                patience=self.patience, seed=seed, verbose=self.verbose,
                checkpoint_dir=str(Path(self.checkpoint_dir) / f"member{k}") if self.checkpoint_dir else None,
                resume=self.resume, desc=f"autoencoder {k + 1}/{self.n_estimators}",
            )
            result = train(model, Z_train, Z_val, cfg)
            self.models_.append(model)
            self.training_history_.append(result.history)
            ref = Z_val if Z_val is not None and len(Z_val) >= 10 else Z_train
            self.feature_weights_.append(self._feature_weights(model, ref))
            self.latent_stats_.append(self._latent_stats(model, Z_train))
        self.n_features_in_ = df.shape[1]
        self.feature_names_in_ = np.asarray(self.preprocessor_.columns_, dtype=object)

        self.decision_scores_ = self._score_blocks(Z, per_feature=False)[0]
        clean = self.decision_scores_[val_idx] if n_val else self.decision_scores_
        self.threshold_rule_ = rule
        self.threshold_ = resolve_threshold(rule, self.decision_scores_, clean)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _check_params(self) -> None:
        if not isinstance(self.n_estimators, int) or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be an int >= 1, got {self.n_estimators!r}")
        if not 0.0 <= self.validation_fraction < 0.9:
            raise ValueError(f"validation_fraction must be in [0, 0.9), got {self.validation_fraction}")
        if self.feature_weighting not in ("standardize", "none"):
            raise ValueError(f"feature_weighting must be 'standardize' or 'none', got {self.feature_weighting!r}")

    def _architecture(self, n_features: int) -> tuple[list[int], int]:
        auto_hidden, auto_code = default_architecture(n_features)
        hidden = auto_hidden if self.hidden == "auto" else [int(h) for h in self.hidden]
        code = auto_code if self.code_size == "auto" else int(self.code_size)
        if code < 1:
            raise ValueError(f"code_size must be >= 1, got {code}")
        return hidden, code

    def _build_model(self, n_features: int, hidden: list[int], code: int) -> AutoEncoder:
        return AutoEncoder.mlp(n_features, hidden, code, bottleneck=self._bottleneck, activation=self.activation,
                               dropout=self.dropout, batch_norm=self.batch_norm)

    @torch.inference_mode()
    def _feature_weights(self, model: AutoEncoder, Z: torch.Tensor) -> torch.Tensor:
        """1 / (typical squared error of each feature on held-out normal rows), over n_features."""
        d = Z.shape[1]
        if self.feature_weighting == "none":
            return torch.full((d,), 1.0 / d)
        mse = self._reconstruction_errors(model, Z)[0].mean(0)
        # A floor keeps features that are reconstructed perfectly (e.g. constant in training)
        # from turning any tiny deviation into an enormous score.
        floor = 0.05 * float(mse.mean()) + 1e-6
        return 1.0 / (torch.clamp(mse, min=floor) * d)

    @torch.inference_mode()
    def _latent_stats(self, model: AutoEncoder, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (Ledoit-Wolf shrunk) precision of the training codes."""
        from sklearn.covariance import LedoitWolf

        codes = model.encode(Z).double().numpy()
        lw = LedoitWolf().fit(codes)
        return torch.from_numpy(lw.location_).float(), torch.from_numpy(lw.precision_).float()

    # ------------------------------------------------------------------ scoring
    def _reconstruction_errors(self, model: AutoEncoder, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature squared reconstruction errors ``[rows, features]`` and the codes."""
        code = model.encode(Z)
        return model.decode(code).sub_(Z).pow_(2), code

    def _member_extra(self, k: int, Z: torch.Tensor, code: torch.Tensor) -> torch.Tensor | None:
        """Score terms of member ``k`` not attributable to single features: ``latent_weight``
        times the squared Mahalanobis distance of the code to the training codes, over the
        code size (about 1 for normal rows). It catches rows that reconstruct well but whose
        code lies where normal codes are rare: extreme values along the normal manifold."""
        if not self.latent_weight:
            return None
        mean, precision = self.latent_stats_[k]
        diff = code - mean
        return ((diff @ precision) * diff).sum(1).mul_(self.latent_weight / len(mean))

    @torch.inference_mode()
    def _score_blocks(self, Z: torch.Tensor, per_feature: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Scores of every row, and (if ``per_feature``) the weighted per-feature errors whose
        row sums are the reconstruction part of the score; ensemble means, in one pass."""
        scores = np.empty(len(Z), dtype=np.float64)
        contrib = np.empty(Z.shape, dtype=np.float64) if per_feature else None
        n_models = len(self.models_)
        for start in range(0, len(Z), SCORE_BLOCK):
            block = Z[start:start + SCORE_BLOCK]
            acc = torch.zeros_like(block) if per_feature else None
            total = torch.zeros(len(block))
            for k, (model, weights) in enumerate(zip(self.models_, self.feature_weights_, strict=True)):
                errors, code = self._reconstruction_errors(model, block)
                if acc is not None:
                    acc.add_(errors.mul_(weights))
                else:  # row sums only: one matrix-vector product instead of a weighted copy
                    total.add_(errors @ weights)
                member_extra = self._member_extra(k, block, code)
                if member_extra is not None:
                    total.add_(member_extra)
            if acc is not None:
                acc.div_(n_models)
                total.add_(acc.sum(1), alpha=n_models)
                contrib[start:start + len(block)] = acc.numpy()
            scores[start:start + len(block)] = total.div_(n_models).numpy()
        return scores, contrib

    def _transform(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        if isinstance(X, pd.DataFrame):
            return torch.from_numpy(self.preprocessor_.transform(as_frame(X)))
        # arrays carry no names: columns are taken in training order
        width = np.shape(X)[-1] if np.ndim(X) == 2 else None
        if width is not None and width != self.n_features_in_:
            raise DataError(f"X has {width} columns, the model was trained on {self.n_features_in_}")
        if not self.preprocessor_.categories_ and isinstance(X, np.ndarray) and X.dtype.kind in "fiub":
            return torch.from_numpy(self.preprocessor_.transform_array(X))
        return torch.from_numpy(self.preprocessor_.transform(as_frame(X, columns=list(self.preprocessor_.columns_))))

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each row: higher = more anomalous (PyOD's convention)."""
        return self._score_blocks(self._transform(X), per_feature=False)[0]

    def score_explain(self, X: Any) -> tuple[np.ndarray, pd.DataFrame]:
        """``decision_function(X)`` and ``explain(X)`` from one pass over the data."""
        scores, contrib = self._score_blocks(self._transform(X), per_feature=True)
        frame = pd.DataFrame(contrib, columns=self.preprocessor_.feature_groups_)
        folded = frame.T.groupby(level=0, sort=False).sum().T
        folded = folded[[c for c in self.preprocessor_.columns_ if c in folded.columns]]
        if isinstance(X, pd.DataFrame):
            folded.index = X.index
        return scores, folded

    score_samples = decision_function  # the scikit-learn name; note: sklearn's own use lower = abnormal

    def predict(self, X: Any) -> np.ndarray:
        """1 for anomalies (score above ``threshold_``), 0 for normal rows."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_

    def predict_proba(self, X: Any, method: str = "linear") -> np.ndarray:
        """``[P(normal), P(anomaly)]`` per row, scaled against the training scores.

        ``linear``: min-max against ``decision_scores_`` (PyOD's default);
        ``unify``: Gaussian scaling (Kriegel et al. 2011)."""
        s = self.decision_function(X)
        ref = self.decision_scores_
        if method == "linear":
            lo, hi = ref.min(), ref.max()
            p = np.clip((s - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        elif method == "unify":
            p = np.clip(erf((s - ref.mean()) / (ref.std() * np.sqrt(2) + 1e-12)), 0, 1)
        else:
            raise ValueError(f"method must be 'linear' or 'unify', got {method!r}")
        return np.column_stack([1 - p, p])

    def explain(self, X: Any) -> pd.DataFrame:
        """Per-column contributions to each row's score (rows sum to ``decision_function``,
        less any term not attributable to features, such as a VAE's KL).

        Columns are the user's original column names; one-hot categories are summed back
        into their column."""
        return self.score_explain(X)[1]

    def set_threshold(self, threshold: str | float, X_clean: Any = None) -> AnomalyDetector:
        """Re-threshold a fitted model: ``"fpr:R"`` on ``X_clean`` (known-clean rows), a
        contamination share on the training scores, or an explicit score."""
        self._check_fitted()
        rule = parse_threshold(threshold, self.contamination)
        if rule.method == "fpr" and X_clean is None:
            raise ValueError("an 'fpr:' threshold needs X_clean, rows known to be normal")
        clean = self.decision_function(X_clean) if X_clean is not None else self.decision_scores_
        self.threshold_rule_, self.threshold_ = rule, resolve_threshold(rule, self.decision_scores_, clean)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the model directory (config.json + model.safetensors), atomically."""
        self._check_fitted()
        tensors: dict[str, torch.Tensor] = {"decision_scores": torch.from_numpy(self.decision_scores_)}
        for k, (model, w) in enumerate(zip(self.models_, self.feature_weights_, strict=True)):
            tensors.update({f"member{k}.{name}": t for name, t in model.state_dict().items()})
            tensors[f"member{k}.feature_weights"] = w
            tensors[f"member{k}.latent_mean"], tensors[f"member{k}.latent_precision"] = self.latent_stats_[k]
        config = {
            "params": _json_params(self.get_params()),
            "members": [m.spec() for m in self.models_],
            "preprocessor": self.preprocessor_.to_dict(),
            "threshold": {"method": self.threshold_rule_.method, "value": self.threshold_rule_.value,
                          "threshold": self.threshold_},
            "training": [{"epochs_run": len(h), "best_val_loss": min((r.get("val_loss", r["train_loss"]) for r in h),
                                                                     default=None)} for h in self.training_history_],
        }
        return save_model_dir(path, self._kind, config, tensors)

    @classmethod
    def load(cls, path: str | Path) -> AnomalyDetector:
        """Read a model directory written by ``save`` (never unpickles anything)."""
        config, tensors = load_model_dir(path, (cls._kind,))
        return cls._from_loaded(config, tensors)

    @classmethod
    def _from_loaded(cls, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> AnomalyDetector:
        det = cls(**config["params"])
        det.preprocessor_ = TabularPreprocessor.from_dict(config["preprocessor"])
        det.models_, det.feature_weights_, det.latent_stats_ = [], [], []
        extras = ("feature_weights", "latent_mean", "latent_precision")
        for k, spec in enumerate(config["members"]):
            model = AutoEncoder.from_spec(spec)
            prefix = f"member{k}."
            state = {name[len(prefix):]: t for name, t in tensors.items()
                     if name.startswith(prefix) and name[len(prefix):] not in extras}
            model.load_state_dict(state)
            model.eval()
            det.models_.append(model)
            det.feature_weights_.append(tensors[prefix + "feature_weights"])
            det.latent_stats_.append((tensors[prefix + "latent_mean"], tensors[prefix + "latent_precision"]))
        det.training_history_ = []
        det.decision_scores_ = tensors["decision_scores"].numpy()
        t = config["threshold"]
        det.threshold_rule_, det.threshold_ = ThresholdRule(t["method"], t["value"]), float(t["threshold"])
        det.labels_ = (det.decision_scores_ > det.threshold_).astype(int)
        det.n_features_in_ = len(det.preprocessor_.columns_)
        det.feature_names_in_ = np.asarray(det.preprocessor_.columns_, dtype=object)
        return det


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out["verbose"], out["checkpoint_dir"], out["resume"] = 0, None, False  # run-time only
    return out
