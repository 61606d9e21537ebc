"""What every reconstruction-based detector shares, whatever its data: the seed ensemble,
the score (standardised reconstruction error plus a density term on the code), thresholds,
the PyOD / scikit-learn surface, and the model directory.

A subclass supplies the data side through four hooks: ``_fit_inputs`` (fit the data
adapter on training data and return a tensor ``[N, ...]``), ``_inputs`` (the same
conversion for new data), ``_build_model`` (an AutoEncoder for one sample's shape) and
``_adapter_config`` / ``_load_adapter`` (the fitted adapter as JSON).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.special import erf
from sklearn.base import BaseEstimator

from ...autoencoder import AutoEncoder
from ...errors import DataError, NotFittedError
from ...io import load_model_dir, save_model_dir
from ...training import TrainConfig, train
from .thresholds import ThresholdRule, parse_threshold, resolve_threshold

MIN_TRAIN_ROWS = 8
FEATURE_WEIGHTINGS = ("standardize", "global", "relative", "none")
# "relative": a sample's error is divided by its own variance across features plus this floor
# (in squared data units; images are in [0, 1], so 1e-3 is a standard deviation of ~8 grey levels)
VARIANCE_FLOOR = 1e-3
SCORE_BLOCK = 16_384  # rows per forward pass when scoring (fastest of 4k-64k on 2 cores)


def check_train_rows(n: int) -> None:
    if n < MIN_TRAIN_ROWS:
        raise DataError(f"need at least {MIN_TRAIN_ROWS} rows to train, got {n}")


class ReconstructionDetector(BaseEstimator):
    """Base class; see ``AnomalyDetector`` for the parameters and the score."""

    _kind: str = ""
    _bottleneck = "continuous"
    _score_block = SCORE_BLOCK

    # ------------------------------------------------------------------ hooks
    def _fit_inputs(self, X: Any) -> torch.Tensor:
        raise NotImplementedError

    def _inputs(self, X: Any) -> torch.Tensor:
        raise NotImplementedError

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        raise NotImplementedError

    def _adapter_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_adapter(self, config: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> ReconstructionDetector:
        """Fit on ``X`` (assumed mostly normal). ``y`` is ignored (unsupervised, as in PyOD)."""
        self._check_params()
        rule = parse_threshold(self.threshold, self.contamination)
        Z = self._fit_inputs(X)
        n = len(Z)
        check_train_rows(n)
        perm = np.random.default_rng(self.random_state).permutation(n)
        n_val = int(round(self.validation_fraction * n)) if n >= 20 else 0
        val_idx, train_idx = perm[:n_val], perm[n_val:]
        Z_train, Z_val = Z[train_idx], (Z[val_idx] if n_val else None)

        self.models_: list[AutoEncoder] = []
        self.feature_weights_: list[torch.Tensor] = []
        self.latent_stats_: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.training_history_: list[list[dict[str, float]]] = []
        for k in range(self.n_estimators):
            seed = self.random_state + k
            torch.manual_seed(seed)
            model = self._build_model(tuple(Z.shape[1:]))
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
        if self.feature_weighting not in FEATURE_WEIGHTINGS:
            raise ValueError(f"feature_weighting must be one of {FEATURE_WEIGHTINGS}, got {self.feature_weighting!r}")

    @torch.inference_mode()
    def _feature_weights(self, model: AutoEncoder, Z: torch.Tensor) -> torch.Tensor:
        """How each feature's squared error counts in the score, from held-out normal rows.

        ``standardize``: 1 / (that feature's typical error), so each feature (column, or
        pixel) counts by its usual difficulty; ``global``: 1 / (the typical error over all
        features), plain mean squared error in units of its normal level; ``relative``: the
        same for the error divided by the sample's own variance (``_sample_scale``), so a
        flat image must be rebuilt as closely, relative to its contrast, as a detailed one;
        ``none``: plain mean squared error. All but ``none`` make the term about 1 for
        normal rows, on the same scale as the latent term."""
        d = Z[0].numel()
        if self.feature_weighting == "none":
            return torch.full(Z.shape[1:], 1.0 / d)
        errors = self._reconstruction_errors(model, Z)[0]
        if self.feature_weighting == "relative":
            typical = float((errors.flatten(1).mean(1) / self._sample_scale(Z)).mean())
            return torch.full(Z.shape[1:], 1.0 / (typical + 1e-12) / d)
        mse = errors.mean(0)
        if self.feature_weighting == "global":
            return torch.full(Z.shape[1:], 1.0 / (float(mse.mean()) + 1e-12) / d)
        # A floor keeps features that are reconstructed perfectly (e.g. constant in training)
        # from turning any tiny deviation into an enormous score.
        floor = 0.05 * float(mse.mean()) + 1e-6
        return 1.0 / (torch.clamp(mse, min=floor) * d)

    @torch.inference_mode()
    def _latent_stats(self, model: AutoEncoder, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (Ledoit-Wolf shrunk) precision of the training codes."""
        from sklearn.covariance import LedoitWolf

        codes = torch.cat([model.encode(Z[s:s + self._score_block]) for s in range(0, len(Z), self._score_block)])
        lw = LedoitWolf().fit(codes.double().numpy())
        return torch.from_numpy(lw.location_).float(), torch.from_numpy(lw.precision_).float()

    def _sample_scale(self, Z: torch.Tensor) -> torch.Tensor:
        """Per-sample divisor of the squared errors under ``feature_weighting="relative"``:
        the sample's variance across its features plus ``VARIANCE_FLOOR``.

        Why: a detector trained on detailed images (faces) rebuilds a smooth image (sky, a
        wall) with a small absolute error, so plain error ranks such anomalies as very normal;
        relative to their own small contrast the same error is large (faces vs non-faces
        AUC 0.82 -> 0.95 alone, 0.997 with the latent term; benchmarks/anomaly_images.py)."""
        return Z.flatten(1).var(1, unbiased=False).add_(VARIANCE_FLOOR)

    # ------------------------------------------------------------------ scoring
    def _reconstruction_errors(self, model: AutoEncoder, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared reconstruction errors (the shape of ``Z``) and the codes."""
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
        sums are the reconstruction part of the score; ensemble means, in one pass."""
        scores = np.empty(len(Z), dtype=np.float64)
        contrib = np.empty(Z.shape, dtype=np.float64) if per_feature else None
        n_models = len(self.models_)
        for start in range(0, len(Z), self._score_block):
            block = Z[start:start + self._score_block]
            acc = torch.zeros_like(block) if per_feature else None
            total = torch.zeros(len(block))
            inv_scale = (self._sample_scale(block).reciprocal_().view(-1, *([1] * (block.dim() - 1)))
                         if self.feature_weighting == "relative" else None)
            for k, (model, weights) in enumerate(zip(self.models_, self.feature_weights_, strict=True)):
                errors, code = self._reconstruction_errors(model, block)
                if inv_scale is not None:
                    errors.mul_(inv_scale)
                if acc is not None:
                    acc.add_(errors.mul_(weights))
                else:  # row sums only: one matrix-vector product instead of a weighted copy
                    total.add_(errors.flatten(1) @ weights.flatten())
                member_extra = self._member_extra(k, block, code)
                if member_extra is not None:
                    total.add_(member_extra)
            if acc is not None:
                acc.div_(n_models)
                total.add_(acc.flatten(1).sum(1), alpha=n_models)
                contrib[start:start + len(block)] = acc.numpy()
            scores[start:start + len(block)] = total.div_(n_models).numpy()
        return scores, contrib

    def decision_function(self, X: Any) -> np.ndarray:
        """Anomaly score of each row: higher = more anomalous (PyOD's convention)."""
        self._check_fitted()
        return self._score_blocks(self._inputs(X), per_feature=False)[0]

    def score_samples(self, X: Any) -> np.ndarray:
        """Same as ``decision_function`` (higher = more anomalous; note that scikit-learn's
        own outlier detectors use the opposite sign for this name)."""
        return self.decision_function(X)

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

    def set_threshold(self, threshold: str | float, X_clean: Any = None) -> ReconstructionDetector:
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
            **self._adapter_config(),
            "threshold": {"method": self.threshold_rule_.method, "value": self.threshold_rule_.value,
                          "threshold": self.threshold_},
            "training": [{"epochs_run": len(h), "best_val_loss": min((r.get("val_loss", r["train_loss"]) for r in h),
                                                                     default=None)} for h in self.training_history_],
        }
        return save_model_dir(path, self._kind, config, tensors)

    @classmethod
    def load(cls, path: str | Path) -> ReconstructionDetector:
        """Read a model directory written by ``save`` (never unpickles anything)."""
        config, tensors = load_model_dir(path, (cls._kind,))
        return cls._from_loaded(config, tensors)

    @classmethod
    def _from_loaded(cls, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> ReconstructionDetector:
        det = cls(**config["params"])
        det._load_adapter(config)
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
        return det


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    out = dict(params)
    out["verbose"], out["checkpoint_dir"], out["resume"] = 0, None, False  # run-time only
    return out
