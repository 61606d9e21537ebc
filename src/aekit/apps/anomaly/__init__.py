"""Anomaly detection: train on normal data, score by reconstruction error."""
from __future__ import annotations

import os

from ...io import load_model_dir
from .detector import AnomalyDetector
from .thresholds import ThresholdRule, parse_threshold
from .vae import VAEAnomalyDetector

DETECTORS: dict[str, type[AnomalyDetector]] = {cls._kind: cls for cls in (AnomalyDetector, VAEAnomalyDetector)}


def load_detector(path: str | os.PathLike[str]) -> AnomalyDetector:
    """Load any anomaly detector's model directory (plain AE or VAE)."""
    config, tensors = load_model_dir(path, tuple(DETECTORS))
    return DETECTORS[config["kind"]]._from_loaded(config, tensors)


__all__ = ["AnomalyDetector", "VAEAnomalyDetector", "ThresholdRule", "parse_threshold", "load_detector", "DETECTORS"]
