"""aekit: one autoencoder core, and the applications built on it."""
from ._version import __version__
from .apps.anomaly import AnomalyDetector, VAEAnomalyDetector, load_detector
from .autoencoder import AutoEncoder
from .errors import AekitError, DataError, ModelFileError, NotFittedError

__all__ = [
    "__version__", "AutoEncoder", "AnomalyDetector", "VAEAnomalyDetector", "load_detector",
    "AekitError", "DataError", "ModelFileError", "NotFittedError",
]
