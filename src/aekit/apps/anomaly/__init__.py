"""Anomaly detection: train on normal data, score by reconstruction error (tables, images,
time series).

Names are imported on first use, so ``import aekit.apps.anomaly.commands`` (the CLI) stays
free of torch."""
from __future__ import annotations

import os
from importlib import import_module
from typing import Any

_LAZY = {
    "AnomalyDetector": ".detector", "VAEAnomalyDetector": ".vae", "ImageAnomalyDetector": ".images",
    "SeriesAnomalyDetector": ".series",
    "ReconstructionDetector": ".base", "ThresholdRule": ".thresholds", "parse_threshold": ".thresholds",
}
__all__ = [*_LAZY, "load_detector", "read_detector", "detector_from_bytes", "detector_classes"]


def detector_classes() -> dict[str, type]:
    """Every detector class by its model-directory kind."""
    from .detector import AnomalyDetector
    from .images import ImageAnomalyDetector
    from .series import SeriesAnomalyDetector
    from .vae import VAEAnomalyDetector

    return {cls._kind: cls for cls in (AnomalyDetector, VAEAnomalyDetector, ImageAnomalyDetector,
                                       SeriesAnomalyDetector)}


def load_detector(path: str | os.PathLike[str]) -> Any:
    """Load any anomaly detector's model directory (tabular AE or VAE, images)."""
    return read_detector(path)[0]


def read_detector(path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """A detector and its verified ``config.json`` (versions, checksums: the model card)."""
    from ...io import load_model

    return _detector(*load_model(path, tuple(detector_classes())), str(path))


def detector_from_bytes(config_bytes: bytes, weights: bytes, where: str = "model") -> tuple[Any, dict[str, Any]]:
    """A detector from its model directory's two files, as ``read_model_files`` gives them
    (a Dask or Spark worker loads the model this way, without seeing the folder)."""
    from ...io import load_model_bytes

    return _detector(*load_model_bytes(config_bytes, weights, tuple(detector_classes()), where), where)


def _detector(config: dict[str, Any], groups: Any, where: str) -> tuple[Any, dict[str, Any]]:
    return detector_classes()[config["kind"]]._from_config(config, groups, where), config


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
