"""Unsupervised classification with an autoencoder: cluster the codes, never the labels."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import ClusterMixin

from ...autoencoder import AutoEncoder
from ...checks import MAX_WIDTH, check_choice, check_float, check_int, check_sizes
from ...errors import DataError, ModelFileError
from ...estimator import FittedModel, TensorGroups

EMBEDDINGS = ("tsne", "none")
NO_EARLY_STOP = 1_000_000  # without a validation split, train for every epoch


class AutoEncoderClustering(ClusterMixin, FittedModel):
    """Cluster images, tables or feature vectors into ``n_clusters`` groups, scikit-learn
    style (``fit``, ``predict``, ``fit_predict``, ``labels_``).

    The recipe (what worked in benchmarks/discrete_codes.py; a plain one-hot autoencoder
    does not get past k-means on pixels): train an autoencoder with a continuous code of
    ``code_size`` numbers; lay the codes out with t-SNE (``embedding="tsne"``, 2-D, as
    N2D does with UMAP; McConville et al. 2020); k-means there gives ``labels_``.
    t-SNE has no out-of-sample map, so ``predict`` on new data takes the majority cluster of
    the ``n_neighbors`` nearest training codes. ``embedding="none"`` runs k-means on the
    codes themselves (faster on large data, less accurate).
    """

    _kind = "codes.AutoEncoderClustering"
    _array_adapter = "array"

    def __init__(self, n_clusters: int = 10, *, code_size: int = 32, hidden: int = 128,
                 channels: tuple[int, ...] = (32, 64), epochs: int = 100, batch_size: int = 64, lr: float = 2e-3,
                 embedding: str = "tsne", perplexity: float = 30.0, n_neighbors: int = 10, data: str = "auto",
                 random_state: int = 0, verbose: int = 0, checkpoint_dir: str | None = None,
                 resume: bool = False) -> None:
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
        self.data = data
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.n_clusters, "n_clusters", 2, 10_000)
        check_int(self.code_size, "code_size", 1, MAX_WIDTH)
        check_int(self.hidden, "hidden", 1, MAX_WIDTH)
        check_sizes(self.channels, "channels")
        check_choice(self.embedding, "embedding", EMBEDDINGS)
        check_float(self.perplexity, "perplexity", 0, low_open=True)
        check_int(self.n_neighbors, "n_neighbors", 1, 10_000)

    def fit(self, X: Any, y: Any = None) -> AutoEncoderClustering:
        """Learn the clusters of ``X`` (``y`` is ignored: labels are never used)."""
        self._check_params()
        Z = self._fit_adapter(X)
        if len(Z) < 2 * self.n_clusters:
            raise DataError(f"need at least {2 * self.n_clusters} samples for {self.n_clusters} clusters, got {len(Z)}")
        torch.manual_seed(self.random_state)
        model = AutoEncoder.for_shape(Z.shape[1:], self.code_size, hidden=self.hidden, channels=self.channels,
                                      reconstruction="mse")
        self.training_history_ = self._train(model, Z, seed=self.random_state, name="autoencoder", desc="autoencoder",
                                             patience=NO_EARLY_STOP).history
        self.train_codes_ = self._batched(model.encode, Z).numpy()
        self.labels_ = self._cluster(self.train_codes_)
        self.model_ = model
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
        return self._batched(self.model_.encode, self._inputs(X)).numpy()

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

    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        return {}, {"clusters": {"train_codes": torch.from_numpy(self.train_codes_),
                                 "labels": torch.from_numpy(np.asarray(self.labels_))}}

    def _set_state(self, networks: dict[str, AutoEncoder], state: dict[str, Any], groups: TensorGroups) -> None:
        self.model_ = networks["model"]
        codes, labels = groups["clusters"]["train_codes"], groups["clusters"]["labels"]
        if codes.ndim != 2 or codes.shape[1] != self.code_size or labels.shape != (len(codes),):
            raise ModelFileError("the stored training codes do not match the network")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.n_clusters):
            raise ModelFileError("the stored cluster labels are out of range")
        self.train_codes_, self.labels_ = codes.numpy(), labels.numpy()


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
