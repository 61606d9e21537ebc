"""Anomaly detection: train on normal data, score by reconstruction error."""
from .detector import AnomalyDetector
from .thresholds import ThresholdRule, parse_threshold
from .vae import VAEAnomalyDetector

__all__ = ["AnomalyDetector", "VAEAnomalyDetector", "ThresholdRule", "parse_threshold"]
