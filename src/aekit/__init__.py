"""aekit: one autoencoder core, and the applications built on it.

``import aekit`` is cheap: the estimators are imported on first use (``aekit.AnomalyDetector``),
so ``aekit --help`` never loads torch.
"""
from __future__ import annotations

from importlib import import_module as _import_module
from typing import Any as _Any

from ._version import __version__
from .errors import AekitError, DataError, ModelFileError, NotFittedError, OutputError, ParameterError

_LAZY = {
    "AutoEncoder": "aekit.autoencoder",
    "AnomalyDetector": "aekit.apps.anomaly",
    "VAEAnomalyDetector": "aekit.apps.anomaly",
    "ImageAnomalyDetector": "aekit.apps.anomaly",
    "load_detector": "aekit.apps.anomaly",
}

__all__ = ["__version__", *_LAZY, "AekitError", "DataError", "ModelFileError", "NotFittedError", "OutputError",
           "ParameterError"]


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        return getattr(_import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aekit' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names, the lazy estimators among them (tab completion in IPython)."""
    return sorted(__all__)
