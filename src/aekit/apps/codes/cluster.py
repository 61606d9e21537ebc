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
from ...data.preprocess import SCALED_LIMIT, SCALINGS
from ...training import steps_to_epochs

EMBEDDINGS = ("auto", "tsne", "umap", "none")
# embedding="auto": t-SNE below this many samples, UMAP from it on (t-SNE's cost grows faster
# and UMAP's compilation, about 15 s, is paid once per process)
UMAP_FROM = 10_000
CLUSTERERS = ("kmeans", "gmm")
NO_EARLY_STOP = 1_000_000  # without a validation split, train for every epoch
# epochs="auto": 100 epochs for small data (digits: 2,900 steps), about AUTO_STEPS optimizer
# steps for large (MNIST's 70,000 images: 5 epochs), so that a fit stays within minutes on 2 cores
AUTO_STEPS = 5000
MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS = 5, 100


class AutoEncoderClustering(ClusterMixin, FittedModel):
    """Cluster images, tables or feature vectors into ``n_clusters`` groups, scikit-learn
    style (``fit``, ``predict``, ``fit_predict``, ``labels_``).

    The recipe (N2D, McConville et al. 2020; chosen in benchmarks/discrete_codes.py, where a
    plain one-hot autoencoder does not get past k-means on pixels): train an autoencoder with
    a continuous code of ``code_size`` numbers; lay the codes out in 2-D with a neighbour
    embedding; k-means there (or a Gaussian mixture, ``cluster="gmm"``) gives ``labels_``.
    ``embedding="auto"`` uses t-SNE below 10,000 samples and UMAP from there (t-SNE's cost
    grows faster); ``"none"`` clusters the codes themselves (fast, less accurate).
    Neither layout maps new data, so ``predict`` takes the majority cluster of the
    ``n_neighbors`` nearest training codes.

    Tables (DataFrames, CSVs and 2-D arrays alike) are scaled per column by ``scaling``:
    ``"standard"`` (mean and standard deviation) keeps each column's share of the distances;
    ``"robust"`` (the anomaly detector's median and IQR) gives a tiny scale to columns that
    are mostly one value, and their rare other values then swamp the rest (MNIST as a
    784-column table: accuracy 0.35 against 0.70). Scaled values are then clipped to
    ``[-clip, clip]``: a column that is mostly one value (an edge pixel) otherwise gives its
    rare other values ten or more units, and they split the clusters (digits as a 64-column
    table: 0.926 against 0.888). ``impute="median"`` fills a table's NaN/inf with the training
    median (default ``None``: they are an error naming the columns). ``epochs="auto"``: 100
    epochs on small data, about 5,000 optimizer steps on large.
    """

    _kind = "codes.AutoEncoderClustering"

    def __init__(self, n_clusters: int = 10, *, code_size: int = 32, hidden: int = 128,
                 channels: tuple[int, ...] = (32, 64), epochs: int | str = "auto", batch_size: int = 64,
                 lr: float = 2e-3, embedding: str = "auto", perplexity: float = 30.0, n_neighbors: int = 10,
                 cluster: str = "kmeans", scaling: str = "standard", clip: float = 3.0, impute: str | None = None,
                 data: str = "auto", random_state: int = 0, verbose: int = 0, checkpoint_dir: str | None = None,
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
        self.cluster = cluster
        self.scaling = scaling
        self.clip = clip
        self.impute = impute
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
        check_choice(self.cluster, "cluster", CLUSTERERS)
        check_choice(self.scaling, "scaling", SCALINGS)
        check_float(self.clip, "clip", 0, SCALED_LIMIT, low_open=True)

    def fit(self, X: Any, y: Any = None) -> AutoEncoderClustering:
        """Learn the clusters of ``X`` (``y`` is ignored: labels are never used)."""
        self._check_params()
        Z = self._fit_adapter(X)
        if len(Z) < 2 * self.n_clusters:
            raise DataError(f"need at least {2 * self.n_clusters} samples for {self.n_clusters} clusters, got {len(Z)}")
        torch.manual_seed(self.random_state)
        model = AutoEncoder.for_shape(Z.shape[1:], self.code_size, hidden=self.hidden, channels=self.channels,
                                      reconstruction="mse")
        epochs = self.epochs
        if epochs == "auto":
            epochs = steps_to_epochs(len(Z), self.batch_size, AUTO_STEPS, MIN_AUTO_EPOCHS, MAX_AUTO_EPOCHS)
        self.training_history_ = self._train(model, Z, seed=self.random_state, name="autoencoder", desc="autoencoder",
                                             patience=NO_EARLY_STOP, epochs=epochs).history
        self.train_codes_ = self._batched(model.encode, Z).numpy()
        self.labels_ = self._cluster(self.train_codes_)
        self.model_ = model
        return self

    def _embed(self, codes: np.ndarray) -> np.ndarray:
        """The space the clusters are found in: a 2-D neighbour embedding of the codes, or the codes."""
        embedding = self.embedding
        if embedding == "auto":
            embedding = "tsne" if len(codes) < UMAP_FROM else "umap"
        if embedding == "tsne":
            from sklearn.manifold import TSNE

            perplexity = min(self.perplexity, (len(codes) - 1) / 3)  # t-SNE needs perplexity < N
            return TSNE(2, perplexity=perplexity, init="pca", random_state=self.random_state).fit_transform(codes)
        if embedding == "umap":
            import warnings

            import umap

            with warnings.catch_warnings():  # a seed makes UMAP single-threaded, and it says so every time
                warnings.filterwarnings("ignore", message=".*n_jobs.*")
                return umap.UMAP(n_neighbors=min(15, len(codes) - 1), min_dist=0.0, n_components=2,
                                 random_state=self.random_state).fit_transform(codes)
        return codes

    def _cluster(self, codes: np.ndarray) -> np.ndarray:
        space = self._embed(codes)
        if self.cluster == "gmm":
            from sklearn.mixture import GaussianMixture

            return GaussianMixture(self.n_clusters, covariance_type="full", n_init=3, reg_covar=1e-4,
                                   random_state=self.random_state).fit_predict(space).astype(np.int64)
        from sklearn.cluster import KMeans

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
