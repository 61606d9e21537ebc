"""The decoder as a generator: a VAE whose decoder turns prior samples into new images."""
from __future__ import annotations

from .generator import VAEGenerator
from .metrics import class_histogram_entropy, copy_ratio, frechet_distance, pca_frechet_distance

__all__ = ["VAEGenerator", "frechet_distance", "pca_frechet_distance", "class_histogram_entropy", "copy_ratio"]
