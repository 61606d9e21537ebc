"""aekit: one autoencoder core, and the applications built on it."""
from ._version import __version__
from .apps.anomaly import AnomalyDetector, VAEAnomalyDetector
from .autoencoder import AutoEncoder
from .errors import AekitError, DataError, ModelFileError, NotFittedError

__all__ = [
    "__version__", "AutoEncoder", "AnomalyDetector", "VAEAnomalyDetector",
    "AekitError", "DataError", "ModelFileError", "NotFittedError",
]
