"""Discrete codes and what they are for: clustering (one cluster per input), binary codes
for retrieval, and vector-quantized tokens."""
from __future__ import annotations

from .cluster import AutoEncoderClustering, matched_accuracy
from .hashing import BinaryHasher, bit_health, hamming_distances, hamming_search, mean_average_precision, ranking_map
from .vqvae import VQAutoEncoder

__all__ = ["AutoEncoderClustering", "matched_accuracy", "BinaryHasher", "bit_health", "hamming_distances", "hamming_search",
           "mean_average_precision", "ranking_map", "VQAutoEncoder"]
