"""File-level jobs behind ``aekit cluster ...``, ``aekit hash ...`` and ``aekit vq ...``.
Inputs are image sources (a folder of PNG/JPEG, an ``.npz``, ``digits`` / ``lfw_subset``) or
tables (CSV/TSV/Parquet; every column a feature; a fitted model reads its own columns)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ... import plots
from ...checks import check_int
from ...data.arrays import read_npz
from ...data.images import is_image_source, resolve_image
from ...data.preprocess import some_columns
from ...data.sources import Source, read_source
from ...errors import DataError, DataNotice
from ... import marks
from ...io import atomic_path, check_model_output, check_output_file, write_npz
from .cluster import AutoEncoderClustering, matched_accuracy
from .hashing import HEALTH_PROBE, BinaryHasher, hamming_search
from .vqvae import VQAutoEncoder

GRID_MAX = 256  # images drawn in vq decode's PNG grid (the .npz holds them all)


def _read_for(est: object, data: str, id_col: str | None = None) -> Source:
    """``data`` read as the fitted model's inputs: images at the model's size, or a table
    (rows named by ``id_col``); a source of the other kind is refused, naming what the model
    was trained on."""
    adapter = est.adapter_  # type: ignore[attr-defined]
    on_images = adapter.kind == "image"
    if on_images != is_image_source(data):
        raise DataError(f"this model was trained on {adapter.describe()}; {data} is "
                        f"{'a table' if on_images else 'an image source'}")
    if on_images:
        return read_source(data, (adapter.spec.height, adapter.spec.width), id_col=id_col)
    source = read_source(data, id_col=id_col)
    trained = set(adapter.preprocessor.columns_)
    unread = [c for c in source.X.columns if c not in trained]
    if unread:  # a label, or a column added since training: said, as anomaly scoring says it
        warnings.warn(f"column(s) {some_columns(unread)} are not features of this model: left out", DataNotice,
                      stacklevel=2)
    return source


def _write_csv(frame: pd.DataFrame, out: str | os.PathLike[str]) -> Path:
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(out)


def cluster_fit(data: str, out: str, n_clusters: int, resume: bool = False, image_size: tuple[int, int] | None = None,
                label_col: str | None = None, id_col: str | None = None, drop_cols: list[str] | None = None,
                **params: object) -> tuple[AutoEncoderClustering, dict[str, float]]:
    """Cluster a source and save the model; with labels in the source (class subfolders,
    bundled sets, a table's ``label_col``) also score the clusters against them (never used
    to fit)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    check_model_output(out, AutoEncoderClustering._kind, inputs=[data])
    source = read_source(data, image_size, label_col=label_col, id_col=id_col, drop_cols=drop_cols)
    model = AutoEncoderClustering(n_clusters, **params).fit_to(source.X, out, resume=resume, inputs=[data])
    scores: dict[str, float] = {}
    if source.labels is not None:
        y = source.labels
        scores = {"accuracy": matched_accuracy(y, model.labels_), "nmi": normalized_mutual_info_score(y, model.labels_),
                  "ari": adjusted_rand_score(y, model.labels_)}
    return model, scores


def cluster_predict(data: str, model: str, out: str, id_col: str | None = None) -> np.ndarray:
    """Write a CSV (sample, cluster) for a source (a table's rows named by ``id_col``)."""
    check_output_file(out, marks.CLUSTERS, inputs=[data, model], suffixes=(".csv",))
    est = AutoEncoderClustering.load(model)
    source = _read_for(est, data, id_col)
    labels = est.predict(source.X)
    _write_csv(pd.DataFrame({"sample": source.names, "cluster": labels}), out)
    return labels


def hash_fit(data: str, out: str, health_png: str | None = None, resume: bool = False,
             image_size: tuple[int, int] | None = None, label_col: str | None = None, id_col: str | None = None,
             drop_cols: list[str] | None = None, **params: object) -> BinaryHasher:
    """Learn binary codes of a source and save the model; optionally a PNG of the bit
    health per epoch of the first (reconstruction) stage."""
    check_model_output(out, BinaryHasher._kind, inputs=[data])
    if health_png:
        check_output_file(health_png, marks.FIGURE, inputs=[data], suffixes=(".png",), option="--health-png")
    source = read_source(data, image_size, label_col=label_col, id_col=id_col, drop_cols=drop_cols)
    hasher = BinaryHasher(**params).fit_to(source.X, out, resume=resume, inputs=[data])
    if health_png:
        probe = min(len(source.names), HEALTH_PROBE)
        plots.code_health_plot(hasher.training_history_[:hasher.epochs], {"bits_used": hasher.n_bits, "codes_used": probe},
                               health_png, f"Bit health ({hasher.n_bits} bits, {probe} training images)")
    return hasher


def hash_encode(data: str, model: str, out: str, id_col: str | None = None) -> np.ndarray:
    """Packed codes of a source into an ``.npz`` (``codes`` [N, bytes], ``names``: a table's
    ``id_col``, else row or file names)."""
    check_output_file(out, marks.CODES, inputs=[data, model], suffixes=(".npz",))
    hasher = BinaryHasher.load(model)
    source = _read_for(hasher, data, id_col)
    codes = hasher.hash(source.X)
    write_npz(out, marks.CODES, codes=codes, names=np.array(source.names))
    return codes


def hash_search(queries: str, model: str, database: str, out: str, k: int = 10,
                id_col: str | None = None) -> pd.DataFrame:
    """For each query image, the ``k`` nearest database entries by Hamming distance, as a CSV
    (query, rank, match, distance)."""
    check_int(k, "-k", 1, 100_000)
    check_output_file(out, marks.MATCHES, inputs=[queries, model, database], suffixes=(".csv",))
    hasher = BinaryHasher.load(model)
    codes, names = read_npz(database, ("codes",), ("names",))
    if codes is None or names is None:
        raise DataError(f"{database} is not a code file from 'aekit hash encode' (no 'codes' and 'names' arrays)")
    source = _read_for(hasher, queries, id_col)
    q = hasher.hash(source.X)
    if codes.ndim != 2 or codes.shape[1] != q.shape[1]:
        raise DataError(f"{database} holds {codes.shape[-1]}-byte codes; this model makes {q.shape[1]}-byte codes")
    idx, dist = hamming_search(codes, q, k)
    qnames = source.names
    frame = pd.DataFrame({"query": np.repeat(qnames, idx.shape[1]), "rank": np.tile(np.arange(1, idx.shape[1] + 1), len(q)),
                          "match": names[idx.ravel()], "distance": dist.ravel()})
    _write_csv(frame, out)
    return frame


def hash_bit_flips(model: str, image_ref: str, out: str) -> Path:
    """PNG: an image, its decoded code, and the decode with each bit flipped in turn."""
    check_output_file(out, marks.FIGURE, inputs=[model, image_ref], suffixes=(".png",))
    hasher = BinaryHasher.load(model)
    if hasher.adapter_.kind != "image":
        raise DataError(f"{model} was trained on {hasher.adapter_.describe()}; 'hash bits' draws images")
    image = resolve_image(image_ref, hasher.adapter_.spec)[None]  # at the model's channels and size
    code = hasher.encode(image)
    flips = np.repeat(code, hasher.n_bits, axis=0)
    flips[np.arange(hasher.n_bits), np.arange(hasher.n_bits)] ^= 1
    decoded = hasher.decode_bits(np.concatenate([code, flips]))
    return plots.image_grid(np.concatenate([image, decoded]), out, ncols=min(17, hasher.n_bits + 2),
                            title="input, its decoded code, then each bit flipped")


def vq_train(data: str, out: str, codebook_png: str | None = None, health_png: str | None = None,
             resume: bool = False, image_size: tuple[int, int] | None = None, label_col: str | None = None,
             id_col: str | None = None, drop_cols: list[str] | None = None,
             **params: object) -> tuple[VQAutoEncoder, dict[str, float]]:
    """Train a VQ-VAE on an image source and save it; optionally PNGs of the decoded codebook
    entries (of the first token) and of the codebook health per epoch. Returns the model and
    its summary on the training images (codebook health and ``psnr``)."""
    check_model_output(out, VQAutoEncoder._kind, inputs=[data])
    if codebook_png and not is_image_source(data):
        raise DataError("--codebook-png draws images: the data must be images")
    for png, option in ((codebook_png, "--codebook-png"), (health_png, "--health-png")):
        if png:
            check_output_file(png, marks.FIGURE, inputs=[data], suffixes=(".png",), option=option)
    source = read_source(data, image_size, label_col=label_col, id_col=id_col, drop_cols=drop_cols)
    model = VQAutoEncoder(**params).fit_to(source.X, out, resume=resume, inputs=[data])
    if health_png:
        plots.code_health_plot(model.training_history_, {"codes_used": model.codebook_size, "perplexity": model.codebook_size},
                               health_png, f"Codebook health (K = {model.codebook_size}, held-out images)")
    if codebook_png:
        k, positions, books = model.codebook_size, model.positions, model.codebooks
        indices = np.zeros((k, positions, books), dtype=np.int64)
        indices[:, 0, 0] = np.arange(k)
        plots.image_grid(model.decode(indices), codebook_png, ncols=16, title=f"the {k} entries of token 1, decoded")
    return model, {**model.health(source.X), "psnr": model.psnr(source.X)}


def vq_encode(data: str, model: str, out: str, id_col: str | None = None) -> np.ndarray:
    """The tokens of a source into an ``.npz`` (``tokens`` [N, positions, codebooks] integers,
    ``names``: a table's ``id_col``, else row or file names)."""
    check_output_file(out, marks.TOKENS, inputs=[data, model], suffixes=(".npz",))
    vq = VQAutoEncoder.load(model)
    source = _read_for(vq, data, id_col)
    tokens = vq.encode(source.X)
    smallest = np.uint8 if vq.codebook_size <= 256 else np.uint16 if vq.codebook_size <= 65_536 else np.int32
    write_npz(out, marks.TOKENS, tokens=tokens.astype(smallest), names=np.array(source.names))
    return tokens


def vq_decode(tokens_file: str, model: str, out: str, npz: str | None = None) -> np.ndarray:
    """Decode the tokens of an ``.npz`` from ``vq_encode`` (``tokens``) into images: a PNG
    grid of the first ``GRID_MAX``, and optionally all in an ``.npz`` (``images`` [N, C, H, W]
    in [0, 1])."""
    check_output_file(out, marks.FIGURE, inputs=[tokens_file, model], suffixes=(".png",))
    if npz is not None:
        check_output_file(npz, marks.DECODED_IMAGES, inputs=[tokens_file, model, out], suffixes=(".npz",),
                          option="--npz")
    vq = VQAutoEncoder.load(model)
    if vq.adapter_.kind != "image":
        raise DataError(f"{model} was trained on {vq.adapter_.describe()}; 'vq decode' draws images (a table "
                        "model's decoded rows are in its scaled units: use VQAutoEncoder.decode in Python)")
    (tokens,) = read_npz(tokens_file, ("tokens",))
    if tokens is None:
        raise DataError(f"{tokens_file} is not a token file from 'aekit vq encode' (no 'tokens' array)")
    images = vq.decode(tokens)
    shown = images[:GRID_MAX]
    plots.image_grid(shown, out, ncols=int(np.ceil(np.sqrt(len(shown)))))
    if npz is not None:
        write_npz(npz, marks.DECODED_IMAGES, compressed=True, images=images)
    return images
