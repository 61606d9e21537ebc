"""Sample-quality measures for generators: the Fréchet distance in a PCA space fit on real
training data, the entropy of a classifier's predicted classes over samples, and how close
samples sit to the training images (a generator can lower its Fréchet distance by copying)."""
from __future__ import annotations

import numpy as np
from scipy import linalg
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors

from ...errors import ParameterError


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fit to the rows of ``a`` and ``b``:
    ``|m_a - m_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2))`` (the FID formula, any feature space)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ParameterError(f"need two [N, D] arrays with the same D and N >= 2, got {a.shape} and {b.shape}")
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(ca @ cb)
    root = root.real if np.iscomplexobj(root) else root  # tiny imaginary parts are rounding noise
    return float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root))


def pca_frechet_distance(train: np.ndarray, real: np.ndarray, generated: np.ndarray,
                         n_components: int = 16, seed: int = 0) -> float:
    """Fréchet distance between ``generated`` and ``real`` images in the PCA space of
    ``train`` (rows flattened). A cheap stand-in for FID where no pretrained network exists."""
    flat = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)  # noqa: E731
    pca = PCA(n_components, random_state=seed).fit(flat(train))
    return frechet_distance(pca.transform(flat(real)), pca.transform(flat(generated)))


def class_histogram_entropy(train: np.ndarray, labels: np.ndarray, generated: np.ndarray,
                            seed: int = 0) -> tuple[float, np.ndarray]:
    """Diversity check: a logistic regression trained on labelled real images classifies the
    generated ones; returns the entropy (nats) of the predicted-class histogram and the
    histogram. Uniform over K classes gives ln K; a collapsed generator gives about 0."""
    flat = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)  # noqa: E731
    clf = LogisticRegression(max_iter=2000, random_state=seed).fit(flat(train), labels)
    classes, counts = np.unique(clf.predict(flat(generated)), return_counts=True)
    hist = np.zeros(len(clf.classes_))
    hist[np.searchsorted(clf.classes_, classes)] = counts
    p = hist / hist.sum()
    return float(-(p[p > 0] * np.log(p[p > 0])).sum()), hist


def copy_ratio(train: np.ndarray, real: np.ndarray, generated: np.ndarray) -> float:
    """Median distance from a generated image to its nearest training image, over the same for
    held-out ``real`` images. About 1: samples are as new as unseen real images; near 0: the
    generator reproduces training images."""
    flat = lambda x: np.asarray(x, np.float64).reshape(len(x), -1)  # noqa: E731
    index = NearestNeighbors(n_neighbors=1).fit(flat(train))
    nearest = lambda x: float(np.median(index.kneighbors(flat(x))[0]))  # noqa: E731
    return nearest(generated) / nearest(real)
