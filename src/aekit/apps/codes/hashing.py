"""Binary codes for retrieval: encode to bits, pack them into bytes, search by Hamming distance."""
from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ...autoencoder import AutoEncoder
from ...checks import MAX_WIDTH, check_choice, check_float, check_int, check_sizes
from ...errors import DataError, DataNotice
from ...estimator import FittedModel
from ...nn.mlp import ACTIVATIONS

NO_EARLY_STOP = 1_000_000  # without a validation split, train for every epoch


HEALTH_PROBE = 1024  # training samples whose codes are checked after each epoch
# the bit-balance loss's weight (each bit on for about half the samples). Without it the codes of
# 80 colour photos collapsed to one (every bit constant: "0 bits in use"); with it, mAP at 32 bits
# (3 seeds; 2 for the photos): digits 0.774 -> 0.796 (chosen there, over 0.1: 0.783 and 1.0, which
# collapsed), then lfw_subset 0.792 -> 0.817 and 40 daisy and 40 sunflower photos 0.588 -> 0.634
BALANCE = 0.03


class _NeighbourObjective(nn.Module):
    """Reconstruction plus a similarity term on the soft codes ``b = 2 sigmoid - 1``: the
    normalised inner product of a sample and one of its input-space neighbours is pushed to
    1, that of a sample and a random other one to 0 (independent bits). Batches are indices."""

    def __init__(self, model: AutoEncoder, x: Tensor, neighbours: Tensor, weight: float) -> None:
        super().__init__()
        self.model, self.x, self.neighbours, self.weight = model, x, neighbours, weight

    def soft_bits(self, x: Tensor) -> Tensor:
        return 2 * self.model.bottleneck.bit_probabilities(self.model.encoder(x)) - 1

    def loss(self, idx: Tensor, progress: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        idx = idx.long()
        rec, parts = self.model.loss(self.x[idx], progress)
        pick = torch.randint(self.neighbours.shape[1], (len(idx),))  # one neighbour per sample
        pos = self.neighbours[idx, pick]
        neg = torch.randint(len(self.x), (len(idx),))
        b, bp, bn = self.soft_bits(self.x[idx]), self.soft_bits(self.x[pos]), self.soft_bits(self.x[neg])
        n = b.shape[1]
        sim = ((b * bp).sum(1) / n - 1).pow(2).mean() + ((b * bn).sum(1) / n).pow(2).mean()
        return rec + self.weight * sim, {**parts, "similarity": sim.detach()}


class BinaryHasher(FittedModel):
    """An autoencoder whose code is ``n_bits`` bits (``BinaryBottleneck``: straight-through
    rounding, logit noise while training, a bit-balance loss). With ``neighbours=k`` a second
    stage fine-tunes the codes so that each sample shares its bits with its ``k`` nearest
    neighbours in input space and not with random others (reconstruction alone makes codes
    that rebuild well, not codes whose Hamming distance ranks neighbours first; digits mAP
    0.52 -> see benchmarks/discrete_codes.py). ``encode`` gives the bits,
    ``hash`` the bits packed into bytes (``n_bits / 8`` per sample), and ``hamming_search``
    ranks a database of packed codes by Hamming distance to each query. ``impute="median"``
    fills a table's NaN/inf with the training median (default: an error naming the columns).
    ``activation``: the networks' (``"leaky_relu"`` by default: with ReLU the encoder of 80
    colour photos died in its first steps in one seed of three, and every photo got the same
    code; BENCHMARKS.md). ``code_health_`` (after ``fit``, not saved): the final codes'
    ``bit_health`` on up to 1,024 training samples; under half the bits in use is a note."""

    _kind = "codes.BinaryHasher"
    _array_adapter = "array"
    _older_defaults: ClassVar[dict[str, Any]] = {"activation": "relu"}  # before 0.9.15

    def __init__(self, n_bits: int = 32, *, hidden: int = 128, channels: tuple[int, ...] = (32, 64),
                 activation: str = "leaky_relu", noise: float = 0.3, balance: float = BALANCE, neighbours: int = 10,
                 similarity_weight: float = 1.0, epochs: int = 100, finetune_epochs: int = 50, batch_size: int = 64,
                 lr: float = 2e-3, impute: str | None = None, data: str = "auto", random_state: int = 0, verbose: int = 0,
                 checkpoint_dir: str | None = None, resume: bool = False) -> None:
        self.n_bits = n_bits
        self.hidden = hidden
        self.channels = channels
        self.activation = activation
        self.noise = noise
        self.balance = balance
        self.neighbours = neighbours
        self.similarity_weight = similarity_weight
        self.epochs = epochs
        self.finetune_epochs = finetune_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.impute = impute
        self.data = data
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.n_bits, "n_bits", 1, 4096)
        check_int(self.hidden, "hidden", 1, MAX_WIDTH)
        check_sizes(self.channels, "channels")
        check_choice(self.activation, "activation", tuple(ACTIVATIONS))
        check_float(self.noise, "noise", 0)
        check_float(self.balance, "balance", 0)
        check_int(self.neighbours, "neighbours", 0, 10_000)
        check_int(self.finetune_epochs, "finetune_epochs", 0, 100_000)
        check_float(self.similarity_weight, "similarity_weight", 0)

    def fit(self, X: Any, y: Any = None) -> BinaryHasher:
        """Learn the codes from ``X`` (``y`` is ignored)."""
        self._check_params()
        Z = self._fit_adapter(X)
        torch.manual_seed(self.random_state)
        model = AutoEncoder.for_shape(Z.shape[1:], self.n_bits, "binary", hidden=self.hidden, channels=self.channels,
                                      activation=self.activation, reconstruction="mse", noise=self.noise,
                                      balance=self.balance)
        probe = Z[:HEALTH_PROBE]
        self.training_history_ = self._train(
            model, Z, seed=self.random_state, name="autoencoder", desc="autoencoder", patience=NO_EARLY_STOP,
            epoch_callback=lambda m, epoch: bit_health(self._batched(m.encode_indices, probe).numpy())).history
        if self.neighbours and self.finetune_epochs:
            self._finetune(model, Z)
        self.model_ = model
        # the final codes' health (the neighbour stage can merge codes: 120 images of one digit
        # kept 7 of 16 bits in use and 9 distinct codes, where the first stage ended with 16)
        self.code_health_ = bit_health(self._batched(model.encode_indices, probe).numpy())
        used = self.code_health_["bits_used"]
        if used < self.n_bits / 2:
            warnings.warn(f"only {used} of {self.n_bits} bits vary over the training samples "
                          f"({self.code_health_['codes_used']} distinct codes among {len(probe)}): train longer "
                          "(epochs), or on more varied samples, or with fewer bits", DataNotice, stacklevel=2)
        return self

    def _finetune(self, model: AutoEncoder, Z: Tensor) -> None:
        from sklearn.neighbors import NearestNeighbors

        flat = Z.reshape(len(Z), -1).numpy()
        k = min(self.neighbours, len(Z) - 1)
        neighbours = NearestNeighbors(n_neighbors=k + 1).fit(flat).kneighbors(flat, return_distance=False)[:, 1:]
        objective = _NeighbourObjective(model, Z, torch.from_numpy(neighbours), self.similarity_weight)
        torch.manual_seed(self.random_state + 1)
        result = self._train(objective, torch.arange(len(Z)), seed=self.random_state + 1, name="neighbours",
                             desc="neighbours", epochs=self.finetune_epochs, lr=self.lr / 2, patience=NO_EARLY_STOP)
        self.training_history_ += result.history
        model.eval()

    def encode(self, X: Any) -> np.ndarray:
        """Bits ``[N, n_bits]`` (uint8 0/1)."""
        return self._batched(self.model_.encode_indices, self._inputs(X)).numpy()

    def hash(self, X: Any) -> np.ndarray:
        """Packed codes ``[N, ceil(n_bits / 8)]`` (uint8), first bit in the high bit."""
        return np.packbits(self.encode(X), axis=1)

    def decode_bits(self, bits: Any) -> np.ndarray:
        """Reconstructions from bit vectors ``[N, n_bits]``."""
        self._check_fitted()
        return self._batched(self.model_.decode_indices, torch.as_tensor(np.asarray(bits))).numpy()


def bit_health(bits: np.ndarray) -> dict[str, float]:
    """Health of binary codes ``[N, n_bits]``: ``bits_used`` (bits on for 5-95% of the
    samples), ``codes_used`` (distinct codes) and ``perplexity`` (exp of the entropy of the
    codes' frequencies; at most N)."""
    on = bits.mean(0)
    _, counts = np.unique(np.packbits(bits, axis=1), axis=0, return_counts=True)
    p = counts / counts.sum()
    return {"bits_used": int(((on > 0.05) & (on < 0.95)).sum()), "codes_used": int(len(counts)),
            "perplexity": float(np.exp(-(p * np.log(p)).sum()))}


def hamming_distances(database: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Hamming distances ``[Q, N]`` between packed codes (uint8 rows of the same width)."""
    database, queries = _words(database), _words(queries)
    return np.bitwise_count(queries[:, None, :] ^ database[None, :, :]).sum(-1, dtype=np.int32)


def hamming_search(database: np.ndarray, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest database rows of each query by Hamming distance: ``(indices,
    distances)``, each ``[Q, k]``, nearest first. Codes are compared as 64-bit words, a query at
    a time, so memory stays at one distance row per query."""
    check_int(k, "k", 1)
    db, qs = _words(database), _words(queries)
    if db.shape[1] != qs.shape[1]:
        raise DataError(f"database codes have {db.shape[1] * 8} bytes, queries {qs.shape[1] * 8}")
    k = min(k, len(db))
    indices = np.empty((len(qs), k), dtype=np.int64)
    distances = np.empty((len(qs), k), dtype=np.int32)
    for i, q in enumerate(qs):
        d = np.bitwise_count(db ^ q).sum(1, dtype=np.int32) if db.shape[1] > 1 else np.bitwise_count(db[:, 0] ^ q[0])
        top = np.argpartition(d, k - 1)[:k] if k < len(d) else np.arange(len(d))
        order = top[np.lexsort((top, d[top]))]  # by distance, ties by index
        indices[i], distances[i] = order, d[order]
    return indices, distances


def _words(packed: np.ndarray) -> np.ndarray:
    """Packed uint8 codes as rows of uint64 words (zero-padded to a multiple of 8 bytes)."""
    packed = np.asarray(packed)
    if packed.dtype != np.uint8 or packed.ndim != 2:
        raise DataError(f"packed codes must be uint8 [N, bytes], got {packed.dtype} of shape {packed.shape}")
    packed = np.ascontiguousarray(packed)
    pad = (-packed.shape[1]) % 8
    if pad:
        packed = np.pad(packed, ((0, 0), (0, pad)))
    return packed.view(np.uint64)


def mean_average_precision(database: np.ndarray, db_labels: np.ndarray, queries: np.ndarray,
                           query_labels: np.ndarray) -> float:
    """Mean average precision of Hamming ranking (relevant = same label), the whole database
    ranked for each query, ties broken by database order."""
    dist = hamming_distances(database, queries)
    return ranking_map(dist, db_labels, query_labels)


def ranking_map(dist: np.ndarray, db_labels: np.ndarray, query_labels: np.ndarray) -> float:
    """Mean average precision of ranking the database by ``dist`` ``[Q, N]`` (smaller first)."""
    order = np.argsort(dist, axis=1, kind="stable")
    relevant = np.asarray(db_labels)[order] == np.asarray(query_labels)[:, None]
    hits = np.cumsum(relevant, axis=1)
    ranks = np.arange(1, dist.shape[1] + 1)
    precision_at_hits = np.where(relevant, hits / ranks, 0.0).sum(1)
    n_relevant = relevant.sum(1)
    return float(np.mean(np.divide(precision_at_hits, n_relevant, out=np.zeros(len(dist)), where=n_relevant > 0)))
