"""File-level jobs behind ``aekit cluster ...``, ``aekit hash ...`` and ``aekit vq ...``.
Inputs are image sources (a folder of PNG/JPEG, an ``.npz``, ``digits`` / ``lfw_subset``)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ... import plots
from ...data.images import load_images, resolve_image
from ...errors import DataError
from ...io import atomic_path
from .cluster import AutoEncoderClustering, matched_accuracy
from .hashing import HEALTH_PROBE, BinaryHasher, hamming_search
from .vqvae import VQAutoEncoder


def _write_csv(frame: pd.DataFrame, out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    return out


def _names(images: object, n: int) -> list[str]:
    return getattr(images, "names", None) or [f"image_{i}" for i in range(n)]


def cluster_fit(data: str, out: str, n_clusters: int, **params: object) -> tuple[AutoEncoderClustering, dict[str, float]]:
    """Cluster an image source and save the model; with labels in the source (class
    subfolders, bundled sets) also score the clusters against them (never used to fit)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    images = load_images(data)
    model = AutoEncoderClustering(n_clusters, **params).fit(images.images)
    model.save(out)
    scores: dict[str, float] = {}
    if images.labels is not None and (images.labels >= 0).all():
        y = images.labels
        scores = {"accuracy": matched_accuracy(y, model.labels_), "nmi": normalized_mutual_info_score(y, model.labels_),
                  "ari": adjusted_rand_score(y, model.labels_)}
    return model, scores


def cluster_predict(data: str, model: str, out: str) -> np.ndarray:
    """Write a CSV (image, cluster) for an image source."""
    est = AutoEncoderClustering.load(model)
    images = load_images(data)
    labels = est.predict(images.images)
    _write_csv(pd.DataFrame({"image": _names(images, len(labels)), "cluster": labels}), out)
    return labels


def hash_fit(data: str, out: str, health_png: str | None = None, **params: object) -> BinaryHasher:
    """Learn binary codes of an image source and save the model; optionally a PNG of the bit
    health per epoch of the first (reconstruction) stage."""
    images = load_images(data)
    hasher = BinaryHasher(**params).fit(images.images)
    hasher.save(out)
    if health_png:
        probe = min(len(images.images), HEALTH_PROBE)
        plots.code_health_plot(hasher.training_history_[:hasher.epochs], {"bits_used": hasher.n_bits, "codes_used": probe},
                               health_png, f"Bit health ({hasher.n_bits} bits, {probe} training images)")
    return hasher


def hash_encode(data: str, model: str, out: str) -> np.ndarray:
    """Packed codes of an image source into an ``.npz`` (``codes`` [N, bytes], ``names``)."""
    hasher = BinaryHasher.load(model)
    images = load_images(data)
    codes = hasher.hash(images.images)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, codes=codes, names=np.array(_names(images, len(codes))))
    return codes


def hash_search(queries: str, model: str, database: str, out: str, k: int = 10) -> pd.DataFrame:
    """For each query image, the ``k`` nearest database entries by Hamming distance, as a CSV
    (query, rank, match, distance)."""
    hasher = BinaryHasher.load(model)
    try:
        with np.load(database, allow_pickle=False) as db:
            codes, names = db["codes"], db["names"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{database} is not a code file from 'aekit hash encode' ({exc.__class__.__name__})") from None
    images = load_images(queries)
    q = hasher.hash(images.images)
    if codes.ndim != 2 or codes.shape[1] != q.shape[1]:
        raise DataError(f"{database} holds {codes.shape[-1]}-byte codes; this model makes {q.shape[1]}-byte codes")
    idx, dist = hamming_search(codes, q, k)
    qnames = _names(images, len(q))
    frame = pd.DataFrame({"query": np.repeat(qnames, idx.shape[1]), "rank": np.tile(np.arange(1, idx.shape[1] + 1), len(q)),
                          "match": names[idx.ravel()], "distance": dist.ravel()})
    _write_csv(frame, out)
    return frame


def hash_bit_flips(model: str, image_ref: str, out: str) -> Path:
    """PNG: an image, its decoded code, and the decode with each bit flipped in turn."""
    hasher = BinaryHasher.load(model)
    image = resolve_image(image_ref)[None]
    code = hasher.encode(image)
    flips = np.repeat(code, hasher.n_bits, axis=0)
    flips[np.arange(hasher.n_bits), np.arange(hasher.n_bits)] ^= 1
    decoded = hasher.decode_bits(np.concatenate([code, flips]))
    return plots.image_grid(np.concatenate([image, decoded]), out, ncols=min(17, hasher.n_bits + 2),
                            title="input, its decoded code, then each bit flipped")


def vq_train(data: str, out: str, codebook_png: str | None = None, health_png: str | None = None,
             **params: object) -> tuple[VQAutoEncoder, dict[str, float]]:
    """Train a VQ-VAE on an image source and save it; optionally PNGs of the decoded codebook
    entries (of the first token) and of the codebook health per epoch. Returns the model and
    its summary on the training images (codebook health and ``psnr``)."""
    images = load_images(data)
    model = VQAutoEncoder(**params).fit(images.images)
    model.save(out)
    if health_png:
        plots.code_health_plot(model.training_history_, {"codes_used": model.codebook_size, "perplexity": model.codebook_size},
                               health_png, f"Codebook health (K = {model.codebook_size}, held-out images)")
    if codebook_png:
        k, positions, books = model.codebook_size, model.positions, model.codebooks
        indices = np.zeros((k, positions, books), dtype=np.int64)
        indices[:, 0, 0] = np.arange(k)
        plots.image_grid(model.decode(indices), codebook_png, ncols=16, title=f"the {k} entries of token 1, decoded")
    return model, {**model.health(images.images), "psnr": model.psnr(images.images)}
