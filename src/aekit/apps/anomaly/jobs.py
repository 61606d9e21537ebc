"""File-level jobs behind ``aekit anomaly ...``: train from a table, stream-score a table,
evaluate and report. The CLI only parses arguments and calls these."""
from __future__ import annotations

import os
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from tqdm.auto import tqdm

from ...checks import check_image_size, check_int
from ...data import iter_table, read_table, split_columns
from ...data.table_output import check_table_output
from ...data.tables import read_ahead
from ...data.images import images_of_class, is_image_source
from ...errors import DataError, DataNotice
from ...io import atomic_path, check_model_output, check_output_dir, claim_output_dir
from ...threads import one_torch_thread
from . import load_detector
from .base import ReconstructionDetector
from .detector import AnomalyDetector
from .images import ImageAnomalyDetector
from .image_scoring import (HEATMAPS, IMAGE_CHUNK, analyse_images, check_image_options, check_no_image_options,
                            write_image_scores)
from .light import CHUNK_ROWS, ScoreSummary, flagged_leaders, leader_counts, write_table_scores
from .report import (REPORT_KIND, Metrics, binary_labels, class_summary, evaluate, is_normal_value, label_classes,
                     write_report)
from .series_jobs import SeriesAnalysis, SeriesSummary, analyse_series, check_series_id, score_series, train_series
from .thresholds import expected_share, parse_threshold
from .vae import VAEAnomalyDetector

TOP_ANOMALIES = 15
DEMO_KIND = "anomaly demo"


def _detector(model: str | os.PathLike[str] | ReconstructionDetector) -> ReconstructionDetector:
    return model if isinstance(model, ReconstructionDetector) else load_detector(model)


def _on_images(det: ReconstructionDetector) -> bool:
    return det.adapter_.kind == "image"


def _scored_chunks(data: str | os.PathLike[str], chunksize: int, verbose: int):  # noqa: ANN202
    """The table in chunks (the next read while one is scored), with a progress bar on a terminal."""
    return tqdm(read_ahead(iter_table(data, chunksize)), desc="scoring", unit="chunk", leave=False,
                disable=True if verbose <= 0 else None)


def train_file(data: str | os.PathLike[str], out: str | os.PathLike[str], *, label_col: str | None = None,
               normal_value: str | None = None, id_col: str | None = None, drop_cols: list[str] | None = None,
               vae: bool = False, resume: bool = False, **params: Any) -> ReconstructionDetector:
    """Train on a CSV/Parquet table (or an image source, see ``_train_images``) and save the
    model directory at ``out``.

    With ``label_col`` and ``normal_value`` only rows whose label equals ``normal_value`` are
    used ("train on normal rows only"); the label and ID columns, and ``drop_cols``, are never
    features.
    ``out`` is checked before anything is read or trained (see ``io.check_model_output``)."""
    cls = VAEAnomalyDetector if vae else AnomalyDetector
    if "window" in params or "time_col" in params:
        return _train_series(data, out, label_col=label_col, normal_value=normal_value, id_col=id_col,
                             drop_cols=drop_cols, vae=vae, resume=resume, **params)
    if is_image_source(data):
        if drop_cols:
            raise DataError("--drop-cols names table columns, not images")
        return _train_images(data, out, normal_value=normal_value, vae=vae, resume=resume, **params)
    if params.get("image_size") is not None:
        raise DataError("--image-size is for images, not tables")
    if params.get("impute") == "ffill":
        raise DataError("--impute ffill is for a time series (give --time-col, or --window for rows in file order); "
                        "a table takes --impute median")
    params.pop("image_size", None)
    check_model_output(out, cls._kind, inputs=[data])
    if normal_value is not None and label_col is None:
        raise DataError("--normal-value needs --label-col")
    df = read_table(data)
    features, labels, _ = split_columns(df, label_col, id_col, drop_cols)
    if normal_value is not None:
        features = features[_normal_rows(labels, label_col, normal_value)]
    elif label_col is not None:
        _note_every_label_trained(labels, label_col)
    return cls(**params).fit_to(features, out, resume=resume, inputs=[data])


def _note_every_label_trained(labels: pd.Series, label_col: str) -> None:
    """A label column without ``--normal-value`` is left out of the features, and every row
    is trained on, anomalies too: say so, with the values that would pick the normal rows
    (training on all rows is a protocol of its own, not an error)."""
    counts = pd.Series(label_classes(labels.dropna())).value_counts()
    values = ", ".join(f"{value!r} ({count} rows)" for value, count in counts.head(5).items())
    more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
    warnings.warn(f"every row is trained on, whatever its {label_col!r} ({values}{more}); to train on the normal rows "
                  f"only, name their label (--label-col {shlex.quote(label_col)} --normal-value VALUE)", DataNotice,
                  stacklevel=3)


TABULAR_ONLY = ("categorical", "log_columns", "na_values")
NOT_FOR_IMAGES = (*TABULAR_ONLY, "impute")  # a table's median or a series' value before: nothing an image has


def _train_series(data: str | os.PathLike[str], out: str | os.PathLike[str], *, label_col: str | None,
                  normal_value: str | None, id_col: str | None, drop_cols: list[str] | None, vae: bool,
                  resume: bool, **params: Any) -> ReconstructionDetector:
    """A time-series detector (``series_jobs.train_series``); what only tables or images take
    is refused, not ignored."""
    if is_image_source(data):
        raise DataError("--time-col and --window are for a time series (a table), not images")
    refused = [flag for flag, given in (("--vae", vae), ("--normal-value", normal_value is not None),
                                        ("--image-size", params.get("image_size") is not None),
                                        *((f"--{k.replace('_', '-')}", params.get(k) not in (None, [], "auto"))
                                          for k in TABULAR_ONLY)) if given]
    if refused:
        raise DataError(f"{refused[0]} is not for time series (a series is trained on a normal stretch, in order)")
    if params.get("impute") not in (None, "ffill"):
        raise DataError(f"--impute {params['impute']} is for tables; a time series takes --impute ffill (each missing "
                        "value takes the value before it)")
    params = {k: v for k, v in params.items() if k not in (*TABULAR_ONLY, "image_size") and v is not None}
    return train_series(data, out, label_col=label_col, id_col=id_col, drop_cols=drop_cols, resume=resume, **params)


def _train_images(data: str | os.PathLike[str], out: str | os.PathLike[str], *, normal_value: str | None,
                  vae: bool, resume: bool, **params: Any) -> ReconstructionDetector:
    """Train on images (a convolutional autoencoder, or with ``vae`` a convolutional VAE);
    with class subfolders, ``normal_value`` names the normal class."""
    given = [k for k in NOT_FOR_IMAGES if params.get(k) not in (None, [], "auto")]
    if given:
        raise DataError(f"options {given} are for tables, not images")
    params = {k: v for k, v in params.items() if k not in NOT_FOR_IMAGES}
    size = check_image_size(params.get("image_size"), "--image-size")
    cls: type[ReconstructionDetector] = ImageAnomalyDetector
    if vae:  # the VAE detector takes its image adapter from the data; it has no image_size of its own
        cls = VAEAnomalyDetector
        params = {k: v for k, v in params.items() if k != "image_size"}
        # its defaults are the tables' (one member, 50 epochs); images get the image detector's
        params.setdefault("n_estimators", 3)
        params.setdefault("epochs", 100)
    check_model_output(out, cls._kind, inputs=[data])
    x = images_of_class(data, normal_value, "--normal-value", size=size)
    return cls(**params).fit_to(x, out, resume=resume, inputs=[data])


def score_images(data: str | os.PathLike[str], det: ReconstructionDetector, out: str | os.PathLike[str] | BinaryIO,
                 heatmap_dir: str | os.PathLike[str] | None = None, heatmaps: int = HEATMAPS,
                 chunk: int = IMAGE_CHUNK, verbose: int = 1, skip_unreadable: bool = False) -> ScoreSummary:
    """Score an image source with ``det`` (``image_scoring.write_image_scores``: the CSV, and
    heat maps of the highest-scoring flagged images)."""
    return write_image_scores(data, det.image_spec_, det.threshold_, det.decision_function, det.anomaly_map, out,
                              heatmap_dir, heatmaps, chunk, verbose, skip_unreadable)


def score_file(data: str | os.PathLike[str], model: str | os.PathLike[str] | ReconstructionDetector,
               out: str | os.PathLike[str] | BinaryIO, *, id_col: str | None = None, label_col: str | None = None,
               top_k: int = 3, chunksize: int = CHUNK_ROWS, verbose: int = 1,
               heatmap_dir: str | os.PathLike[str] | None = None, heatmaps: int = HEATMAPS,
               skip_unreadable: bool = False) -> ScoreSummary | SeriesSummary:
    """Score a table chunk by chunk (bounded memory) and write a CSV with ``score``,
    ``is_anomaly`` and ``top_features`` (plus the ID and label columns when named).
    The output appears atomically when scoring is complete (a binary stream, such as
    ``sys.stdout.buffer``, gets CSV as it is scored). An image model scores an image source
    instead (see ``score_images``; ``skip_unreadable`` leaves out its files that cannot be
    read)."""
    check_int(heatmaps, "--heatmaps", 0)
    check_int(top_k, "--top-k", 1, 1000)
    check_int(chunksize, "--chunk-rows", 1, 100_000_000)
    out = check_table_output(out, inputs=[data])
    det = _detector(model)
    if not _on_images(det):
        check_no_image_options(det.adapter_.kind, heatmap_dir, skip_unreadable)
    if det.adapter_.kind == "series":
        return score_series(data, det, out, label_col=label_col, id_col=id_col, top_k=top_k, chunksize=chunksize,
                            verbose=verbose)
    if _on_images(det):
        check_image_options(id_col, label_col)
        return score_images(data, det, out, heatmap_dir, heatmaps, min(chunksize, IMAGE_CHUNK), verbose,
                            skip_unreadable)
    with one_torch_thread():  # one per core, each scoring whole chunks (write_table_scores)
        return write_table_scores(det, data, out, id_col=id_col, label_col=label_col, top_k=top_k,
                                  chunksize=chunksize, verbose=verbose)


@dataclass
class Analysis:
    scores: np.ndarray
    labels: np.ndarray | None
    top_contributions: pd.DataFrame | None  # tables; None for images
    metrics: Metrics | None
    report_paths: list[Path]
    threshold: float
    threshold_rule: str
    by_class: pd.DataFrame | None = None  # with --normal-value: each label value's (or image class's) counts
    unit: str = "rows"
    leaders: dict[str, int] = field(default_factory=dict)  # tables: flagged rows by their leading column
    expected_share: float | None = None  # the share of normal rows the threshold flags, where it says
    notices: list[str] = field(default_factory=list)  # images: the files left out as unreadable


def analyse_file(data: str | os.PathLike[str], model: str | os.PathLike[str] | ReconstructionDetector,
                 report_dir: str | os.PathLike[str], *, label_col: str | None = None,
                 normal_value: str | None = None, id_col: str | None = None,
                 chunksize: int = CHUNK_ROWS, verbose: int = 1, labelled: bool = False,
                 skip_unreadable: bool = False) -> Analysis | SeriesAnalysis:
    """Score a table (streaming), compute metrics when labels are named, and write the report:
    scores histogram with the threshold, ROC curve, contributions of the top anomalies. An
    image model's images are labelled by their class folders (``image_scoring.analyse_images``).
    ``labelled``: labels are required (``aekit anomaly eval``); ``skip_unreadable``: an image
    source's files that cannot be read are left out (and named), not an error."""
    check_output_dir(report_dir, REPORT_KIND, inputs=[data, model] if isinstance(model, (str, os.PathLike)) else [data])
    det = _detector(model)
    if _on_images(det):
        check_image_options(id_col, label_col)
        found = analyse_images(data, det.image_spec_, det.threshold_, det.decision_function, det.anomaly_map,
                               report_dir, normal_value, labelled, min(chunksize, IMAGE_CHUNK), verbose,
                               skip_unreadable)
        return Analysis(found.scores, found.labels, None, found.metrics, found.report_paths, det.threshold_,
                        det.threshold_rule_.describe(), found.by_class, "images", notices=found.notices)
    check_no_image_options(det.adapter_.kind, skip_unreadable=skip_unreadable)
    if labelled and label_col is None:
        raise DataError("eval needs --label-col, the column of labels (or use 'aekit anomaly report')")
    if det.adapter_.kind == "series":
        check_series_id(det, id_col)
        return analyse_series(data, det, report_dir, label_col=label_col, normal_value=normal_value,
                              chunksize=chunksize, verbose=verbose)
    scores, labels, classes, top = [], [], [], None
    offset = 0
    leaders = np.zeros(len(det.explained_columns_), dtype=np.int64)
    for chunk in _scored_chunks(data, chunksize, verbose):
        features, lab, ids = split_columns(chunk, label_col, id_col)
        s, contrib = det.score_explain(features)
        leaders += flagged_leaders(contrib, s > det.threshold_)
        contrib.index = ids.astype(str).to_numpy() if ids is not None else np.arange(offset, offset + len(chunk))
        offset += len(chunk)
        scores.append(s)
        if lab is not None:
            labels.append(binary_labels(lab, normal_value))
            if normal_value is not None:  # the label's values, for each kind of anomaly's counts
                classes.append(label_classes(lab))
        # keep only the running top anomalies' contributions: memory stays bounded
        contrib["__score"] = s
        top = pd.concat([top, contrib]) if top is not None else contrib
        top = top.nlargest(TOP_ANOMALIES, "__score")
    all_scores = np.concatenate(scores)
    y = np.concatenate(labels) if labels else None
    if classes and y.all():
        seen = sorted(union_categoricals(classes).categories.astype(str))[:10]
        raise DataError(f"no row has {label_col} == {normal_value!r} (values seen: {seen})")
    metrics = evaluate(all_scores, y, det.threshold_) if y is not None else None
    by_class, extra = class_summary(all_scores, classes, y, det.threshold_)
    top_scores = top.pop("__score")
    paths = write_report(report_dir, all_scores, det.threshold_, top, y, det.training_history_ or None, metrics, extra,
                         top_scores=top_scores)
    return Analysis(all_scores, y, top, metrics, paths, det.threshold_, det.threshold_rule_.describe(), by_class,
                    leaders=leader_counts(leaders, det.explained_columns_),
                    expected_share=expected_share(det.threshold_rule_))


def set_model_threshold(model: str | os.PathLike[str], threshold: str | float, *,
                        clean: str | os.PathLike[str] | None = None, out: str | os.PathLike[str] | None = None,
                        label_col: str | None = None, normal_value: str | None = None
                        ) -> tuple[str, ReconstructionDetector]:
    """Set a saved detector's threshold without retraining (``set_threshold``) and write it
    to ``out`` (default: ``model`` itself, replaced atomically); ``clean`` (data known to be
    normal, of the model's kind: a table, a series' CSV, an image folder) is what an
    ``fpr:R`` threshold reads, and only it: with ``label_col`` and ``normal_value`` (an image
    folder's: its normal class) only its normal rows. Returns the old threshold, described,
    and the detector."""
    det = load_detector(model)
    rule = parse_threshold(threshold, det.contamination)
    if rule.method == "fpr" and clean is None:
        raise DataError("an fpr:R threshold reads --clean, data known to be normal; 'contamination:C' and scores "
                        "read none")
    if rule.method != "fpr" and (clean, label_col, normal_value) != (None, None, None):
        raise DataError(f"--clean (and its labels) are read by an fpr:R threshold only, not by {threshold!r}")
    inputs = [clean] if clean is not None else []
    same = out is None or Path(out).resolve() == Path(model).resolve()
    check_model_output(model if same else out, det._kind, inputs=inputs if same else [*inputs, model])
    before = f"{det.threshold_:.4g} ({det.threshold_rule_.describe()})"
    det.set_threshold(threshold, X_clean=None if clean is None else _normal_part(det, clean, label_col, normal_value))
    det.save(model if same else out)
    return before, det


def _normal_part(det: ReconstructionDetector, clean: str | os.PathLike[str], label_col: str | None,
                 normal_value: str | None) -> Any:
    """What ``set_model_threshold`` reads of ``clean``: all of it, or the rows (images) whose
    label is ``normal_value`` (an image folder's class)."""
    if _on_images(det):
        if label_col is not None:
            raise DataError("--label-col is for tables; an image folder's normal class is --normal-value")
        spec = det.image_spec_
        return str(clean) if normal_value is None else images_of_class(clean, normal_value, "--normal-value",
                                                                        size=(spec.height, spec.width))
    if label_col is None:
        if normal_value is not None:
            raise DataError("--normal-value needs --label-col")
        return str(clean)
    if det.adapter_.kind == "series":
        raise DataError("a series' rows are read in order: give --clean a stretch of normal rows, without --label-col")
    df = read_table(clean)
    labels = split_columns(df, label_col)[1]
    return df[_normal_rows(labels, label_col, normal_value, f" of {clean}")].drop(columns=[label_col])


def _normal_rows(labels: pd.Series, label_col: str, normal_value: str | None, where: str = "") -> np.ndarray:
    """Which rows are normal: their label is ``normal_value``, or 0 of 0/1 labels; an error
    naming the values seen where none is."""
    normal = is_normal_value(labels, normal_value) if normal_value is not None else binary_labels(labels) == 0
    if not normal.any():
        seen = sorted(label_classes(labels.dropna()).categories.astype(str))[:8]
        raise DataError(f"no row{where} has {label_col} == {normal_value if normal_value is not None else 0!r} "
                        f"(values seen: {seen})")
    return np.asarray(normal)


def run_demo(out_dir: str | os.PathLike[str] = "demo_output", seed: int = 0, verbose: int = 1) -> Analysis:
    """The bundled demo: breast cancer, benign = normal. Trains on 60% of the benign rows and
    tests on the remaining benign rows plus every malignant one."""
    from ...data import load_breast_cancer_frame

    out = check_output_dir(out_dir, DEMO_KIND, option="--out")
    df = load_breast_cancer_frame()
    benign = np.flatnonzero(df["diagnosis"].to_numpy() == "benign")
    rng = np.random.default_rng(seed)
    train_idx = np.sort(rng.permutation(benign)[: int(0.6 * len(benign))])
    test = df.drop(index=train_idx)
    features = df.drop(columns="diagnosis")
    det = AnomalyDetector(threshold="fpr:0.05", random_state=seed, verbose=verbose)
    det.fit(features.iloc[train_idx])
    claim_output_dir(out, DEMO_KIND)
    det.save(out / "model")
    test_path = out / "test.csv"
    with atomic_path(test_path) as tmp:
        test.to_csv(tmp, index=False)
    return analyse_file(test_path, det, out / "report", label_col="diagnosis", normal_value="benign",
                        verbose=0)
