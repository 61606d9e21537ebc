"""Anomaly detection: train on normal data, score by reconstruction error."""
from __future__ import annotations

import os

from ...io import load_model_dir
from .base import ReconstructionDetector
from .detector import AnomalyDetector
from .images import ImageAnomalyDetector
from .thresholds import ThresholdRule, parse_threshold
from .vae import VAEAnomalyDetector

DETECTORS: dict[str, type[ReconstructionDetector]] = {
    cls._kind: cls for cls in (AnomalyDetector, VAEAnomalyDetector, ImageAnomalyDetector)}


def load_detector(path: str | os.PathLike[str]) -> ReconstructionDetector:
    """Load any anomaly detector's model directory (tabular AE or VAE, images)."""
    config, tensors = load_model_dir(path, tuple(DETECTORS))
    return DETECTORS[config["kind"]]._from_loaded(config, tensors)


__all__ = ["AnomalyDetector", "VAEAnomalyDetector", "ImageAnomalyDetector", "ReconstructionDetector", "ThresholdRule", "parse_threshold", "load_detector", "DETECTORS"]
