"""Unsupervised classification with an autoencoder: cluster the codes, never the labels."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin

from ...errors import DataError
from .common import FittedAutoEncoderModel, as_samples, batched, build_autoencoder, check_shape, fit_autoencoder

EMBEDDINGS = ("tsne", "none")


class AutoEncoderClustering(FittedAutoEncoderModel, ClusterMixin, BaseEstimator):
    """Cluster images or feature vectors into ``n_clusters`` groups, scikit-learn style
    (``fit``, ``predict``, ``fit_predict``, ``labels_``).

    The recipe (what worked in benchmarks/discrete_codes.py; a plain one-hot autoencoder
    does not get past k-means on pixels): train an autoencoder with a continuous code of
    ``code_size`` numbers; lay the codes out with t-SNE (``embedding="tsne"``, 2-D, as
    N2D does with UMAP; McConville et al. 2020); k-means there gives ``labels_``.
    t-SNE has no out-of-sample map, so ``predict`` on new data takes the majority cluster of
    the ``n_neighbors`` nearest training codes. ``embedding="none"`` runs k-means on the
    codes themselves (faster on large data, less accurate).
    """

    _kind = "codes.AutoEncoderClustering"
    _extras = ("train_codes_", "labels_")

    def __init__(self, n_clusters: int = 10, *, code_size: int = 32, hidden: int = 128,
                 channels: tuple[int, ...] = (32, 64), epochs: int = 100, batch_size: int = 64, lr: float = 2e-3,
                 embedding: str = "tsne", perplexity: float = 30.0, n_neighbors: int = 10,
                 random_state: int = 0, verbose: int = 0) -> None:
        self.n_clusters = n_clusters
        self.code_size = code_size
        self.hidden = hidden
        self.channels = channels
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.embedding = embedding
        self.perplexity = perplexity
        self.n_neighbors = n_neighbors
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X: Any, y: Any = None) -> AutoEncoderClustering:
        """Learn the clusters of ``X`` (``y`` is ignored: labels are never used)."""
        if not isinstance(self.n_clusters, (int, np.integer)) or self.n_clusters < 2:
            raise ValueError(f"n_clusters must be an int >= 2, got {self.n_clusters!r}")
        if self.code_size < 1:
            raise ValueError(f"code_size must be >= 1, got {self.code_size}")
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {self.embedding!r}")
        x = as_samples(X)
        if len(x) < 2 * self.n_clusters:
            raise DataError(f"need at least {2 * self.n_clusters} samples for {self.n_clusters} clusters, got {len(x)}")
        self.input_shape_ = tuple(x.shape[1:])
        self.model_ = build_autoencoder(self.input_shape_, "continuous", self.code_size, self.hidden, tuple(self.channels))
        self.training_history_ = fit_autoencoder(self.model_, x, epochs=self.epochs, batch_size=self.batch_size,
                                                 lr=self.lr, seed=self.random_state, verbose=self.verbose).history
        self.train_codes_ = batched(self.model_.encode, x).numpy()
        self.labels_ = self._cluster(self.train_codes_)
        return self

    def _cluster(self, codes: np.ndarray) -> np.ndarray:
        from sklearn.cluster import KMeans

        space = codes
        if self.embedding == "tsne":
            from sklearn.manifold import TSNE

            perplexity = min(self.perplexity, (len(codes) - 1) / 3)  # t-SNE needs perplexity < N
            space = TSNE(2, perplexity=perplexity, init="pca", random_state=self.random_state).fit_transform(codes)
        return KMeans(self.n_clusters, n_init=10, random_state=self.random_state).fit_predict(space).astype(np.int64)

    def transform(self, X: Any) -> np.ndarray:
        """The codes ``[N, code_size]`` of ``X``."""
        self._check_fitted()
        return batched(self.model_.encode, check_shape(as_samples(X), self.input_shape_)).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The cluster of each sample: the majority among its nearest training codes."""
        codes = torch.from_numpy(self.transform(X))
        train = torch.from_numpy(np.asarray(self.train_codes_))
        labels = torch.from_numpy(np.asarray(self.labels_))
        k = min(self.n_neighbors, len(train))
        out = []
        for block in codes.split(4096):
            nearest = torch.cdist(block, train).topk(k, largest=False).indices
            votes = torch.zeros(len(block), self.n_clusters).scatter_add_(1, labels[nearest], torch.ones(nearest.shape))
            out.append(votes.argmax(1))
        return torch.cat(out).numpy()

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        return self.fit(X).labels_


def matched_accuracy(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes (Hungarian)."""
    from scipy.optimize import linear_sum_assignment

    labels, clusters = np.asarray(labels), np.asarray(clusters)
    _, y = np.unique(labels, return_inverse=True)
    _, c = np.unique(clusters, return_inverse=True)
    table = np.zeros((c.max() + 1, y.max() + 1))
    np.add.at(table, (c, y), 1)
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(labels))
