"""Scoring data larger than one machine: Dask (``aekit anomaly score --engine dask``) and
Spark functions (``mapInPandas`` for tables and for image files read by Spark's
``binaryFile`` source, ``groupBy(ID).applyInPandas`` for series).

The model travels as the bytes of its two files (``io.read_model_files``), verified on the
client, broadcast once to every worker and loaded there once per process
(``detector_from_bytes``, checksums and all): workers need not see the model folder, and
nothing is unpickled. Each partition is scored by the same ``score_frame`` as
``aekit anomaly score``, so a row's result does not depend on the engine.

A time-series model of several series (``--id-col`` and ``--time-col``) scores on Dask too:
the table is shuffled on the ID so that each series lies whole in one partition, and each
is sorted by time and scored as ``aekit anomaly score`` scores it. The output comes series
by series, each in time order.

An image model scores a folder on Dask: the files are listed here, dealt out
``IMAGE_PARTITION`` to a task in their sorted order, and each worker reads its files (at
the same path: a shared file system) and scores them; the output has the columns and rows
``aekit anomaly score`` writes. The heat maps of the highest-scoring flagged images are
drawn on the client once the scores are in: the same images and pictures as the local
command's (tested).
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...checks import check_int
from ...data.images import SKIP_HINT, decode_files, decode_readable, image_files, unreadable_error
from ...data.preprocess import NUMBER_CATEGORY
from ...data.tables import SEPARATORS, check_csv_header, compressed, csv_dialect, format_by_name, stripped_names
from ...errors import DataError, DataNotice, OutputError, first_line
from ...parquet_folders import parquet_parts
from ... import marks
from ...io import atomic_dir, atomic_path, check_output_dir, check_output_file, claim_output_dir, read_model_files
from . import detector_classes, detector_from_bytes
from .image_scoring import (HEATMAPS, check_image_options, check_no_image_options, check_some_read, draw_heatmaps,
                            heatmap_folder, unreadable_notes)
from .light import ScoreSummary, score_frame, unused_columns
from .records import image_request
from .series_jobs import SeriesScores, check_series_id, scores_table
from .thresholds import expected_share

DATA_ROW = re.compile(r"data row (\d+)")  # as the preprocessor names a row at fault
IMAGE_PARTITION = 1024  # images a Dask task reads and scores: the local command's chunk
CONNECT_TIMEOUT = 5  # seconds to reach a --scheduler before giving up (Dask's default is 30)
PARQUET_KIND = "anomaly scores (Parquet)"  # the marker of a Parquet folder aekit wrote, the only kind it replaces
_LOADED: dict[str, Any] = {}  # per worker process: the detector of the model last seen


def model_files(model: str | os.PathLike[str], series: bool = False, images: bool = False) -> tuple[bytes, bytes]:
    """The model directory's verified bytes: a table model, with ``series`` also a model of
    several series with a time column (each series then goes whole to one worker), with
    ``images`` also an image model."""
    files = read_model_files(model, tuple(detector_classes()))
    det = _detector(files)
    adapter = det.adapter_
    if adapter.kind == "series" and series:
        if adapter.id_col is None or adapter.time_col is None:
            raise DataError(f"{model} is a time-series model of one series or without a time column; on Dask a "
                            "series model scores a table of several series in time (train with --id-col and "
                            "--time-col), each series on one worker")
    elif adapter.kind != "table" and not (adapter.kind == "image" and images):
        raise DataError(f"{model} was trained on {adapter.describe()}; distributed scoring takes tables"
                        + (" (and Dask, tables of several series)" if adapter.kind == "series" else ""))
    return files


def _detector(files: tuple[bytes, bytes]) -> Any:
    key = hashlib.sha256(files[0]).hexdigest()
    if key not in _LOADED:
        _LOADED.clear()  # one model per process at a time: memory stays bounded
        _LOADED[key] = detector_from_bytes(*files)[0]
    return _LOADED[key]


def score_partition(chunk: pd.DataFrame, files: tuple[bytes, bytes], id_col: str | None, label_col: str | None,
                    top_k: int) -> pd.DataFrame:
    """One partition scored on a worker (the model is loaded there once). Its rows are
    numbered from 0 within it (Dask's blocks of a file, Spark's batches), so an error's
    "data row N" is said to count within the partition."""
    try:
        return score_frame(_detector(files), chunk, id_col=id_col, label_col=label_col, top_k=top_k)
    except DataError as exc:
        said = DATA_ROW.sub(r"row \1 of a partition (--engine local names the file's row)", str(exc))
        raise DataError(said) from None


def _dask_partition(chunk: pd.DataFrame, files: tuple[bytes, bytes], id_col: str | None, label_col: str | None,
                    top_k: int) -> pd.DataFrame:
    # a string dtype, as in the meta: Parquet's schema comes from it
    return score_partition(chunk, files, id_col, label_col, top_k).astype({"top_features": "string"})


def score_series_partition(part: pd.DataFrame, files: tuple[bytes, bytes], label_col: str | None,
                           top_k: int) -> pd.DataFrame:
    """The series of one partition (each whole there: Dask shuffled the table on the ID, or
    Spark's ``groupBy``), each sorted by time and scored as ``aekit anomaly score`` scores it;
    out series by series (as their IDs first appear), each in time order. The partition is
    sorted and scored whole: series by series cost about 5 ms each (2,000 series of 200 rows
    took 10 s)."""
    det = _detector(files)
    adapter = det.series_adapter_
    if not len(part):
        return _series_meta(part.dtypes, det, label_col)
    part = part.reset_index(drop=True)
    codes, _ = adapter.series_codes(part)  # an empty ID: refused
    rows = part.iloc[np.lexsort((adapter.times(part), codes))].reset_index(drop=True)
    scores, parts = det.score_explain(rows)
    return scores_table(SeriesScores(rows, scores, parts.to_numpy()), det, label_col, top_k
                        ).astype({"top_channels": "string"})


def image_table(data: str | os.PathLike[str]) -> pd.DataFrame:
    """A folder's image files as the local command lists them: ``image`` (the path under the
    folder), ``path``, and ``class`` (the subfolder) where there are subfolders."""
    files, classes, labels = image_files(data)
    root = Path(data)
    table = pd.DataFrame({"image": [f.relative_to(root).as_posix() for f in files], "path": [str(f) for f in files]})
    if classes:
        table["class"] = [classes[i] if i >= 0 else "" for i in labels]
    return table


def score_image_partition(part: pd.DataFrame, files: tuple[bytes, bytes], skip_unreadable: bool = False
                          ) -> pd.DataFrame:
    """One partition of ``image_table``'s rows: each file read as the local command reads it
    and scored; ``image``, ``score``, ``is_anomaly`` (and ``class``). A file that cannot be
    read is an error, or with ``skip_unreadable`` a row without a score whose ``problem``
    says why (a column of that case only, empty on the scored rows)."""
    det = _detector(files)
    images, unreadable = decode_readable(list(part["path"]), det.image_spec_)
    if unreadable and not skip_unreadable:
        raise unreadable_error({part["path"].iloc[i]: why for i, why in unreadable.items()},
                               f"{len(unreadable)} images", SKIP_HINT)
    scores = np.full(len(part), np.nan)
    if len(images):
        scores[np.delete(np.arange(len(part)), list(unreadable))] = det.decision_function(images)
    out = pd.DataFrame({"image": part["image"].to_numpy(), "score": scores,
                        "is_anomaly": (scores > det.threshold_).astype(np.int64)})
    if "class" in part.columns:
        out["class"] = part["class"].to_numpy()
    if skip_unreadable:
        out["problem"] = pd.Series([unreadable.get(i) for i in range(len(part))], dtype="string")
    return out.astype({"image": "string", **({"class": "string"} if "class" in out.columns else {})})


def _image_result(table: pd.DataFrame, shared: Any, skip_unreadable: bool) -> Any:
    """The scores of an image folder's files (``image_table``), ``IMAGE_PARTITION`` to a task."""
    import dask.dataframe as dd

    parts = dd.from_pandas(table, npartitions=-(-len(table) // IMAGE_PARTITION), sort=False)
    meta = _image_meta("class" in table.columns, skip_unreadable)
    return parts.map_partitions(score_image_partition, shared, skip_unreadable, meta=meta, align_dataframes=False)


def _image_meta(classes: bool, problem: bool = False) -> pd.DataFrame:
    columns = {"image": pd.Series(dtype="string"), "score": pd.Series(dtype="float64"),
               "is_anomaly": pd.Series(dtype="int64")}
    if classes:
        columns["class"] = pd.Series(dtype="string")
    if problem:
        columns["problem"] = pd.Series(dtype="string")
    return pd.DataFrame(columns)


def _series_meta(dtypes: pd.Series, det: Any, label_col: str | None) -> pd.DataFrame:
    """The empty frame of a series model's output (Dask's ``meta``)."""
    adapter = det.series_adapter_
    columns = {name: pd.Series(dtype=dtypes[name]) for name in (adapter.id_col, adapter.time_col)}
    columns.update(score=pd.Series(dtype="float64"), is_anomaly=pd.Series(dtype="int64"),
                   top_channels=pd.Series(dtype="string"))
    if label_col is not None:
        columns[label_col] = pd.Series(dtype=dtypes[label_col])
    return pd.DataFrame(columns)


def _check_series_columns(ddf: Any, det: Any, id_col: str | None, label_col: str | None) -> None:
    """A table of several series must have the model's ID, time and channel columns (said
    here, not by every worker)."""
    adapter = det.series_adapter_
    check_series_id(det, id_col)
    missing = [c for c in (adapter.id_col, adapter.time_col, *adapter.channels_, label_col)
               if c is not None and c not in ddf.columns]
    if missing:
        raise DataError(f"column(s) {missing[:10]} not found in the data (columns: {list(ddf.columns)[:10]})")


def _series_result(ddf: Any, shared: Any, det: Any, label_col: str | None, top_k: int) -> Any:
    """The scores of a table of several series: shuffled so that each series lies whole in
    one partition, then each partition's series scored on its worker."""
    meta = _series_meta(ddf.dtypes, det, label_col)
    return ddf.shuffle(on=det.series_adapter_.id_col).map_partitions(
        score_series_partition, shared, label_col, top_k, meta=meta, align_dataframes=False)


def _output_meta(ddf: Any, id_col: str | None, label_col: str | None) -> pd.DataFrame:
    """The empty frame with the output's columns and types (Dask's ``meta``)."""
    meta = pd.DataFrame({"score": pd.Series(dtype="float64"), "is_anomaly": pd.Series(dtype="int64"),
                         "top_features": pd.Series(dtype="string")})
    for col in (id_col, label_col):
        if col is not None and col not in ddf.columns:
            raise DataError(f"column {col!r} not found in the data (columns: {list(ddf.columns)[:10]})")
    if id_col is not None:
        meta.insert(0, id_col, pd.Series(dtype=ddf.dtypes[id_col]))
    if label_col is not None:
        meta[label_col] = pd.Series(dtype=ddf.dtypes[label_col])
    return meta


def read_as_numbers(pre: Any) -> list[str]:
    """The columns a table model reads from CSV as float64 under Dask: its number columns,
    and its categorical columns whose categories are all numbers (a category reads 1.0 as 1,
    so a column of whole numbers with an empty field, read as floats, keeps them)."""
    numbers = []
    for column, values in pre.categories_.items():
        kept = values[:-1] if column in pre.pooled_ else values  # a pool's "(other)" is no value read
        if kept and all(map(NUMBER_CATEGORY.fullmatch, kept)):
            numbers.append(column)
    return [*pre.numeric_, *numbers]


def read_dask_table(data: str, numbers: list[str] | tuple[str, ...] = (), na_values: list[str] | None = None) -> Any:
    """A Dask DataFrame of CSV or Parquet files: a path, a glob, a folder of Parquet files or
    an fsspec URL (``s3://...``, where fsspec and its driver are installed).

    ``numbers``: the columns read from CSV as float64 (``read_as_numbers``). Dask guesses each
    column's type from the file's first block and refuses a later block that reads
    otherwise, so a column of whole numbers with an empty field further down stopped the
    run (``float64`` found, ``int64`` expected); the scorer reads them as floats anyway.
    ``na_values``: text a CSV marks missing values with (the model's), read as NaN."""
    import dask.dataframe as dd

    name = str(data).rstrip("/").lower()
    sep, decimal = _text_separator(name), "."
    if "://" not in str(data):
        sep, decimal = _check_local_files(str(data)) or (sep, decimal)
    try:
        if name.endswith((".parquet", ".pq")) or ("://" not in str(data) and parquet_parts(data) is not None):
            return dd.read_parquet(data)
        if sep is not None:
            # a compressed file is read whole by one task: its blocks cannot be found without decompressing
            ddf = dd.read_csv(data, sep=sep, decimal=decimal, blocksize=None if compressed(name) else "64MB",
                              dtype=dict.fromkeys(numbers, "float64"), skipinitialspace=True, na_values=na_values)
            names = stripped_names(ddf.columns)  # 'x , y': as the local reader names them
            return ddf if names == list(ddf.columns) else ddf.rename(columns=dict(zip(ddf.columns, names)))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {data}: {_cause(exc)}") from None
    raise DataError(f"{data}: the Dask engine reads .csv, .tsv (either may end .gz, .bz2 or .xz) or .parquet files "
                    "(paths, globs or URLs)")


def _text_separator(name: str) -> str | None:
    """The field separator of a CSV or TSV file by its name (a tab for .tsv), compressed or
    not (``rows.tsv.gz``); None for other files."""
    return SEPARATORS.get(format_by_name(name) or "")


def _check_local_files(data: str) -> tuple[str, str] | None:
    """A local path or glob must name files, none of them empty (Dask's own errors about
    them name its pandas backend, not the file). Returns the CSV files' ``(separator,
    decimal mark)`` (``tables.csv_dialect``, one for all of them), None for other files."""
    files = sorted(glob.glob(data)) if glob.has_magic(data) else [data]
    if not files:
        raise DataError(f"{data} matches no file")
    first, dialect = None, None  # Dask reads every file of a pattern alike: the first one's way
    for f in files:
        path = Path(f)
        if not path.exists():
            raise DataError(f"{f} does not exist")
        if path.is_file() and path.stat().st_size == 0:
            raise DataError(f"{f} is empty")
        sep = _text_separator(f)
        if path.is_file() and sep is not None:
            with warnings.catch_warnings():
                if dialect is not None:  # the first file's note said it
                    warnings.simplefilter("ignore", DataNotice)
                own = csv_dialect(f, sep)
            if dialect is None:
                first, dialect = f, own
            elif own != dialect:
                raise DataError(f"{f} separates its fields by {own[0]!r} with {own[1]!r} decimals, {first} by "
                                f"{dialect[0]!r} with {dialect[1]!r}: the files of one pattern are read alike; "
                                "score them apart")
            check_csv_header(f, own[0])
    return dialect


def _unreadable(exc: BaseException, numbers: list[str]) -> str:
    """Why a worker could not read a block of a CSV, in one line: the columns whose type
    differs from the first block's (which Dask names in a table below its first line), or
    the innermost cause and the model's ``numbers`` columns, which the reader parses as
    numbers (a value there that is not one fails so)."""
    mismatched = re.findall(r"^\|\s*([^|]+?)\s*\|\s*(\w+)\s*\|\s*(\w+)\s*\|$", str(exc), re.MULTILINE)[1:]
    if not mismatched:
        return (f"{_cause(exc)}; if one of the number columns {numbers[:10]} holds text, --engine local names the "
                "column and the value")
    found = ", ".join(f"{col!r} reads as {got} where the first block read as {want}" for col, got, want in mismatched)
    return (f"{found}: give each such column one type through the file (text in a number column, or empty "
            "fields in a column of whole numbers or of text), or score it with --engine local")


def _cause(exc: BaseException) -> str:
    """The first line of the innermost cause: what went wrong, not which layer passed it on."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return first_line(exc, 200)


def _connect(scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler``, or a one-line error within ``CONNECT_TIMEOUT``."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, ValueError, TypeError) as exc:
        reason = _cause(exc)
        if reason in ("OSError", "TimeoutError") or "timed out" in reason.lower():
            reason = f"nothing answered within {CONNECT_TIMEOUT} s"
        raise DataError(f"cannot reach the Dask scheduler {scheduler!r}: {reason}") from None


def score_dask(data: str, model: str | os.PathLike[str], out: str | os.PathLike[str], *,
               scheduler: str | None = None, workers: int = 2, id_col: str | None = None,
               label_col: str | None = None, top_k: int = 3, heatmap_dir: str | os.PathLike[str] | None = None,
               heatmaps: int = HEATMAPS, skip_unreadable: bool = False) -> ScoreSummary:
    """Score ``data`` on a Dask cluster (``scheduler`` address, or a new ``LocalCluster`` of
    ``workers`` processes) and write ``out``: one CSV file, or a Parquet folder
    (``.parquet``). The output appears whole when every partition is done. An image folder's
    ``heatmaps`` highest-scoring flagged images are then drawn here, as the local command draws
    them (``image_scoring.draw_heatmaps``); ``skip_unreadable`` leaves out its files that cannot
    be read, and names them in the summary's notices."""
    import dask
    from distributed import Client, LocalCluster

    check_int(heatmaps, "--heatmaps", 0)
    out = Path(out)
    parquet = out.suffix.lower() == ".parquet"
    if parquet:
        _check_parquet_output(out, data)
    else:
        check_output_file(out, marks.ANOMALY_SCORES, inputs=[data], suffixes=(".csv",))
    files = model_files(model, series=True, images=True)
    det = _detector(files)
    kind = det.adapter_.kind
    if kind == "image":
        check_image_options(id_col, label_col)
        images = image_table(data)  # a folder that is missing, or holds no images, said before a cluster starts
        heat_dir = heatmap_folder(data, out, heatmap_dir, heatmaps)
    else:
        check_no_image_options(kind, heatmap_dir, skip_unreadable)
        heat_dir = None
        numbers = read_as_numbers(det.preprocessor_) if kind == "table" else det.series_adapter_.channels_
        ddf = read_dask_table(data, numbers, det.preprocessor_.na_values if kind == "table" else None)
    if kind == "table":
        meta = _output_meta(ddf, id_col, label_col)
        det.preprocessor_.check_columns(ddf.columns)  # said here, not by every worker
    elif kind == "series":
        _check_series_columns(ddf, det, id_col, label_col)
    client = _connect(scheduler) if scheduler else None
    # a partition's error (NaN, say) comes back as one line: the workers' own log of it stays quiet
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None, silence_logs=logging.CRITICAL)
    try:
        with client or Client(cluster) as client:
            shared = client.scatter([files], broadcast=True)[0]  # a list: the pair is one object
            left_out = None
            if kind == "image":
                result = _image_result(images, shared, skip_unreadable)
                if skip_unreadable:  # the rows without a score, reported; the others written
                    scored = result["problem"].isna()  # a Dask series has no notna
                    left_out = result[~scored][["image", "problem"]]
                    result = result[scored].drop(columns="problem")
            elif kind == "series":
                result = _series_result(ddf, shared, det, label_col, top_k)
            else:
                result = ddf.map_partitions(_dask_partition, shared, id_col, label_col, top_k, meta=meta,
                                            align_dataframes=False)
            with (atomic_dir(out, recheck=lambda: _check_parquet_output(out, data)) if parquet
                  else atomic_path(out)) as tmp:
                if parquet:
                    claim_output_dir(tmp, PARQUET_KIND)  # what lets a later run replace this folder
                    write = result.to_parquet(str(tmp), write_index=False, compute=False, schema="infer")
                else:
                    write = result.to_csv(str(tmp), single_file=True, index=False, compute=False)
                wanted = [write, result.shape[0], result["is_anomaly"].sum()]
                if heat_dir is not None:  # the images to draw: the flagged ones' highest scores
                    wanted.append(result[result["is_anomaly"] == 1][["image", "score"]].nlargest(heatmaps, "score"))
                elif kind == "table":  # the flagged rows' leading columns, and the unseen categories
                    flagged_top = result[result["is_anomaly"] == 1]["top_features"]
                    wanted.append(flagged_top.map_partitions(_leading_column, meta=("top_features", "string"))
                                  .value_counts())
                    categorical = list(det.preprocessor_.categories_)
                    if categorical:
                        wanted.append(ddf[categorical].map_partitions(_unseen_partition, shared, meta=UNSEEN_META,
                                                                      align_dataframes=False))
                if left_out is not None:  # last: what the notes name
                    wanted.append(left_out)
                # one pass: the write, the counts and the top share the scored partitions (Dask
                # warns that it materialises the expressions to do so: that is the point)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    try:
                        _, rows, flagged, *top = dask.compute(*wanted)
                    except DataError:
                        raise
                    except ValueError as exc:  # Dask's reader, in a worker: a block it cannot read as typed
                        raise DataError(f"cannot read {data}: {_unreadable(exc, numbers)}") from None
                left = top.pop() if left_out is not None else None
                unreadable = {} if left is None else dict(zip(left["image"], left["problem"], strict=True))
                check_some_read(data, int(rows), unreadable)  # before the empty output appears
    finally:
        if cluster is not None:
            cluster.close()
    summary = ScoreSummary(rows=int(rows), flagged=int(flagged), unit="images" if kind == "image" else "rows",
                           notices=unreadable_notes(unreadable))
    if kind == "table":
        summary.leaders = {str(c): int(n) for c, n in top[0].sort_values(ascending=False, kind="stable").items()}
        summary.expected_share = expected_share(det.threshold_rule_)
        summary.notices = unused_columns(ddf.columns, det.preprocessor_.columns_, id_col, label_col)
        if len(top) > 1:  # each partition's unseen categories, in the file's order
            for row in top[1].itertuples(index=False):
                summary.add_unseen({row.column: int(row.count)}, {row.column: row.examples.split(EXAMPLES_SEP)})
            summary.known_categories = {c: det.preprocessor_.categories_[c] for c in summary.unseen_categories}
    if heat_dir is not None:
        summary.heatmap_dir = str(heat_dir)
        summary.heatmaps = _draw_top(det, images, top[0], heat_dir)
    return summary


UNSEEN_META = pd.DataFrame({"column": pd.Series(dtype=object), "count": pd.Series(dtype="int64"),
                            "examples": pd.Series(dtype=object)})
EXAMPLES_SEP = "\x1f"  # between a partition's unseen examples of a column: a character no CSV value holds


def _unseen_partition(chunk: pd.DataFrame, files: tuple[bytes, bytes]) -> pd.DataFrame:
    """A partition's unseen categories as ``UNSEEN_META`` rows (one per column that has some),
    counted as the scoring of it counts them (``TabularPreprocessor.count_unseen``)."""
    counts, examples = _detector(files).preprocessor_.count_unseen(chunk)
    return pd.DataFrame({"column": list(counts), "count": list(counts.values()),
                         "examples": [EXAMPLES_SEP.join(examples[c]) for c in counts]},
                        columns=list(UNSEEN_META)).astype({"count": "int64"})


def _leading_column(top_features: pd.Series) -> pd.Series:
    """The first column each ``top_features`` value names (``"b (97%); a (2%)"``: ``b``; the
    last `` (`` of the first part ends the name, which may hold one itself)."""
    return top_features.str.split("; ").str[0].str.rsplit(" (", n=1).str[0].astype("string")


def _draw_top(det: Any, images: pd.DataFrame, top: pd.DataFrame, heat_dir: Path) -> int:
    """Heat maps of the images ``top`` names (``image``, ``score``), highest score first and,
    among equal scores, in the folder's order, as the local command picks them."""
    position = pd.Series(np.arange(len(images)), index=images["image"].to_numpy())
    top = top.assign(position=position.loc[top["image"].to_numpy()].to_numpy())
    top = top.sort_values(["score", "position"], ascending=[False, True], kind="stable")
    paths = images["path"].to_numpy()[top["position"].to_numpy()]
    decoded = decode_files(list(paths), det.image_spec_) if len(top) else None
    return draw_heatmaps(heat_dir, list(top["image"]), top["score"].to_numpy(), decoded, det.anomaly_map)


def _check_parquet_output(out: Path, data: str) -> None:
    """A Parquet output folder may replace only an earlier aekit output, never the input."""
    if Path(data).exists() and Path(data).resolve() == out.resolve():
        raise OutputError(f"--out {out} is also an input; write the output elsewhere")
    check_output_dir(out, PARQUET_KIND, inputs=[data], option="--out")


def spark_scorer(model: str | os.PathLike[str], *, id_col: str | None = None, label_col: str | None = None,
                 top_k: int = 3) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A function for Spark's ``DataFrame.mapInPandas``: it carries the model's bytes (read and
    verified here, once) and scores each batch of rows on the executors::

        scored = df.mapInPandas(spark_scorer("model_dir", id_col="id"),
                                schema="id long, score double, is_anomaly int, top_features string")
    """
    files = model_files(model)

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield score_partition(batch, files, id_col, label_col, top_k)

    return score_batches


def spark_image_scorer(model: str | os.PathLike[str]) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A function for Spark's ``DataFrame.mapInPandas`` over image files read by Spark's
    ``binaryFile`` source (columns ``path`` and ``content``: no shared file system needed):
    each file read as ``aekit anomaly score`` reads it and scored on the executors::

        files = spark.read.format("binaryFile").option("pathGlobFilter", "*.png").load("s3://bucket/parts/")
        scored = files.mapInPandas(spark_image_scorer("img_model"),
                                   schema="path string, score double, is_anomaly long")
    """
    files = model_files(model, images=True)
    if _detector(files).adapter_.kind != "image":
        raise DataError(f"{model} is not an image model: score tables with spark_scorer and mapInPandas")

    def score_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield score_image_bytes(batch, files)

    return score_batches


def score_image_bytes(batch: pd.DataFrame, files: tuple[bytes, bytes]) -> pd.DataFrame:
    """A batch of ``binaryFile`` rows (``path``, ``content``) scored: ``path``, ``score``, ``is_anomaly``."""
    missing = [c for c in ("path", "content") if c not in batch.columns]
    if missing:
        raise DataError(f"the image batches need columns 'path' and 'content', as spark.read.format('binaryFile') "
                        f"gives them; {missing} missing")
    det = _detector(files)
    images = image_request(det.image_spec_, [bytes(data) for data in batch["content"]],
                           [str(path) for path in batch["path"]]).images if len(batch) else None
    return _scored_images(det, images, path=batch["path"].to_numpy())


def _scored_images(det: Any, images: np.ndarray | None, **leading: Any) -> pd.DataFrame:
    """``leading`` columns, then each image's ``score`` and ``is_anomaly`` (None: no images)."""
    scores = det.decision_function(images) if images is not None else np.zeros(0)
    return pd.DataFrame({**leading, "score": scores, "is_anomaly": (scores > det.threshold_).astype(np.int64)})


def spark_series_scorer(model: str | os.PathLike[str], *, label_col: str | None = None,
                        top_k: int = 3) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A function for Spark's ``groupBy(ID).applyInPandas`` with a time-series model of several
    series (``--id-col`` and ``--time-col``): each call gets one whole series, sorts it by time
    and scores it on an executor::

        scored = df.groupBy("machine").applyInPandas(
            spark_series_scorer("fleet_model"),
            schema="machine string, timestamp string, score double, is_anomaly long, top_channels string")
    """
    files = model_files(model, series=True)
    if _detector(files).adapter_.kind != "series":
        raise DataError(f"{model} is a table model: score it with spark_scorer and mapInPandas")

    def score_group(series: pd.DataFrame) -> pd.DataFrame:
        return score_series_partition(series, files, label_col, top_k)

    return score_group
