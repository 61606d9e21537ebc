"""Anomaly detection: train on normal data, score by reconstruction error.

Names are imported on first use, so ``import aekit.apps.anomaly.commands`` (the CLI) stays
free of torch."""
from __future__ import annotations

import os
from importlib import import_module
from typing import Any

_LAZY = {
    "AnomalyDetector": ".detector", "VAEAnomalyDetector": ".vae", "ImageAnomalyDetector": ".images",
    "ReconstructionDetector": ".base", "ThresholdRule": ".thresholds", "parse_threshold": ".thresholds",
}
__all__ = [*_LAZY, "load_detector", "detector_classes"]


def detector_classes() -> dict[str, type]:
    """Every detector class by its model-directory kind."""
    from .detector import AnomalyDetector
    from .images import ImageAnomalyDetector
    from .vae import VAEAnomalyDetector

    return {cls._kind: cls for cls in (AnomalyDetector, VAEAnomalyDetector, ImageAnomalyDetector)}


def load_detector(path: str | os.PathLike[str]) -> Any:
    """Load any anomaly detector's model directory (tabular AE or VAE, images)."""
    from ...io import load_model

    classes = detector_classes()
    config, groups = load_model(path, tuple(classes))
    return classes[config["kind"]]._from_config(config, groups, path)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
