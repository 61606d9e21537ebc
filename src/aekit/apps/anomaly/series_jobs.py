"""File-level jobs of the time-series detector: train from a table, stream-score a table of
any length (the scores do not depend on the chunk size), and the report with the series plot."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ... import plots
from ...data import iter_table, read_table
from ...data.series import condensed
from ...data.table_output import table_output
from ...data.tables import check_dropped
from ...errors import DataError
from ...io import atomic_write_text, check_model_output, check_output_dir
from ...marks import ANOMALY_SCORES
from .report import REPORT_KIND, Metrics, binary_labels, evaluate, top_features, write_report
from .series import SeriesAnomalyDetector
from .thresholds import expected_share


@dataclass
class SeriesScores:
    """One piece of a scored series: the rows' own columns (time, label), scores, channel parts."""

    rows: pd.DataFrame
    scores: np.ndarray
    parts: np.ndarray


@dataclass
class SeriesSummary:
    rows: int = 0
    flagged: int = 0
    notices: list[str] = field(default_factory=list)
    by_series: pd.DataFrame | None = None  # a table of several series: one row per series, most flagged first
    expected_share: float | None = None  # the share of normal rows the threshold flags, where it says


def train_series(data: str | os.PathLike[str], out: str | os.PathLike[str], *, time_col: str | None = None,
                 label_col: str | None = None, id_col: str | None = None, drop_cols: list[str] | None = None,
                 resume: bool = False, **params: Any) -> SeriesAnomalyDetector:
    """Train a series detector on a whole table (a normal stretch: every channel column,
    in time order; with ``id_col``, one series per value of that column) and save it at
    ``out``; the label and ID columns, and ``drop_cols``, are not channels."""
    check_model_output(out, SeriesAnomalyDetector._kind, inputs=[data])
    frame = read_table(data)
    missing = [c for c in (label_col, id_col) if c is not None and c not in frame.columns]
    if missing:
        raise DataError(f"column(s) {missing} not found (columns: {list(frame.columns)[:10]})")
    check_dropped(frame, drop_cols)
    det = SeriesAnomalyDetector(time_col=time_col, id_col=id_col, **params)
    return det.fit_to(frame.drop(columns=[c for c in (label_col, *(drop_cols or [])) if c]), out, resume=resume,
                      inputs=[data])


def scored_pieces(det: SeriesAnomalyDetector, data: str | os.PathLike[str], chunksize: int,
                  keep: list[str], verbose: int = 1, per_channel: bool = True) -> Iterator[SeriesScores]:
    """Score a table chunk by chunk; yield each run of rows as soon as its scores are final,
    with the columns ``keep`` of those rows (and, with ``per_channel``, each row's score split
    over the channels). Times are checked across chunk boundaries; a model with an ID column
    scores each series on its own, the rows in the file's order."""
    det.series_adapter_.notices_ = []  # this file's notices only
    stream = det.stream(per_channel, last_rows_of_series(det, data, chunksize) if det.id_col else None)
    waiting: list[pd.DataFrame] = []  # rows read but not yet scored
    for chunk in tqdm(iter_table(data, chunksize), desc="scoring", unit="chunk", leave=False,
                      disable=True if verbose <= 0 else None):
        scored = stream.feed(chunk)  # reads (naming a missing time column), checks times across chunks, scales
        absent = [c for c in keep if c not in chunk.columns]
        if absent:
            raise DataError(f"column(s) {absent} not found in {data}")
        waiting.append(chunk[keep].reset_index(drop=True))
        yield from _pieces(scored, waiting)
    yield from _pieces(stream.finish(), waiting)


def last_rows_of_series(det: SeriesAnomalyDetector, data: str | os.PathLike[str], chunksize: int) -> dict[str, int]:
    """Each series' last data row (0-based) in the file: a first pass over it, so that a series
    is scored to its end, and its rows let go, where it ends rather than at the end of the file."""
    last: dict[str, int] = {}
    offset = 0
    for chunk in iter_table(data, chunksize, columns=[det.series_adapter_.id_col]):
        codes, keys = det.series_adapter_.series_codes(chunk, offset)  # a file's column names are text
        ends = np.full(len(keys), -1)
        np.maximum.at(ends, codes, np.arange(len(codes)))
        last.update(zip(keys, (offset + ends).tolist(), strict=True))
        offset += len(chunk)
    return last


def _pieces(result: tuple[np.ndarray, np.ndarray], waiting: list[pd.DataFrame]) -> Iterator[SeriesScores]:
    scores, parts = result
    if not len(scores):
        return
    rows = pd.concat(waiting, ignore_index=True) if len(waiting) > 1 else waiting[0]
    waiting[:] = [rows.iloc[len(scores):].reset_index(drop=True)]
    yield SeriesScores(rows.iloc[:len(scores)], scores, parts)


def score_series(data: str | os.PathLike[str], det: SeriesAnomalyDetector, out: Path | BinaryIO, *,
                 label_col: str | None = None, id_col: str | None = None, top_k: int = 3,
                 chunksize: int = 100_000, verbose: int = 1) -> SeriesSummary:
    """Write ``out`` (CSV or Parquet: the model's ID and time columns if it has them, ``score``,
    ``is_anomaly``, ``top_channels``, the label column if named), streaming; it appears
    atomically at the end. ``id_col`` may only repeat the model's own."""
    check_series_id(det, id_col)
    time_col, model_id = det.series_adapter_.time_col, det.series_adapter_.id_col
    keep = [c for c in (model_id, time_col, label_col) if c is not None]
    summary = SeriesSummary(expected_share=expected_share(det.threshold_rule_))
    # one channel takes the whole score: no per-channel pass (a third of the scoring time)
    single = len(det.channels_) == 1
    with table_output(out, ANOMALY_SCORES) as output:
        for piece in scored_pieces(det, data, chunksize, keep, verbose, per_channel=not single):
            table = scores_table(piece, det, label_col, top_k)
            output.write_frame(table)
            summary.rows += len(table)
            summary.flagged += int(table["is_anomaly"].sum())
            if model_id is not None:  # each series' counts so far: memory grows with the series, not the rows
                counts = _series_counts(piece.rows, piece.scores, det, _series_of(piece.rows, det))
                summary.by_series = counts if summary.by_series is None else _merged(summary.by_series, counts)
    summary.notices = condensed(det.series_adapter_.notices_)
    if summary.by_series is not None:
        summary.by_series = _ranked(summary.by_series)
    return summary


def scores_table(piece: SeriesScores, det: SeriesAnomalyDetector, label_col: str | None, top_k: int
                 ) -> pd.DataFrame:
    """The output rows of scored rows: the model's ID and time columns if it has them,
    ``score``, ``is_anomaly``, ``top_channels``, the label column if named."""
    adapter = det.series_adapter_
    table = pd.DataFrame(index=piece.rows.index)
    for name in (adapter.id_col, adapter.time_col):
        if name is not None:
            table[name] = piece.rows[name]
    table["score"] = piece.scores
    table["is_anomaly"] = (piece.scores > det.threshold_).astype(int)
    table["top_channels"] = _top_channels(piece, det.channels_, top_k)
    if label_col is not None:
        table[label_col] = piece.rows[label_col]
    return table


def _top_channels(piece: SeriesScores, channels: list[str], top_k: int) -> Any:
    """Each row's top channels; empty for a row not scored (its series shorter than a window)."""
    unscored = np.isnan(piece.scores)
    if len(channels) == 1:  # one channel takes the whole score
        whole = f"{channels[0]} (100%)"
        return pd.array(np.where(unscored, None, whole), dtype="str") if unscored.any() else whole
    if not unscored.any():
        return top_features(pd.DataFrame(piece.parts, columns=channels), top_k)
    parts = np.where(unscored[:, None], 0.0, piece.parts)
    return pd.Series(top_features(pd.DataFrame(parts, columns=channels), top_k)).mask(unscored).array


def check_series_id(det: SeriesAnomalyDetector, id_col: str | None) -> None:
    """Refuse an ID column the model was not trained with: its series are the model's own."""
    model_id = det.series_adapter_.id_col
    if id_col is not None and id_col != model_id:
        raise DataError(f"--id-col {id_col!r}: this model was trained " + (
            f"with the series ID column {model_id!r}" if model_id else
            "on one series (train with --id-col to score a table of several)"))


@dataclass
class SeriesAnalysis:
    scores: np.ndarray
    metrics: Metrics | None
    report_paths: list[Path]
    threshold: float
    threshold_rule: str
    notices: list[str]
    by_series: pd.DataFrame | None = None  # a table of several series: one row per series, most flagged first
    events: pd.DataFrame | None = None  # one row per run of flagged rows, the highest-scoring first
    event_metrics: EventMetrics | None = None  # with labels: labelled events found, flagged ones false


SUMMARY_FILE = "series_summary.csv"
EVENTS_FILE = "events.csv"
FLEET_SHOWN = 20  # series in the fleet plot: the most flagged
FLEET_BINS = 100  # stretches of time across it


def analyse_series(data: str | os.PathLike[str], det: SeriesAnomalyDetector, report_dir: str | os.PathLike[str],
                   *, label_col: str | None = None, normal_value: str | None = None, chunksize: int = 100_000,
                   verbose: int = 1) -> SeriesAnalysis:
    """Score the series, compute metrics against a label column (1 = anomaly, or every value
    but ``normal_value``), and write the report: the series plot (``series.png``) with its
    score, the threshold and the flagged stretches, plus the tables' histogram, ROC curve and
    training curves. The plot needs the whole table in memory (its values and scores); of a
    table of several series it shows the one with the most flagged rows, and
    ``series_summary.csv`` lists every series, most flagged first. ``events.csv`` lists each
    run of consecutive flagged rows of a series (``flagged_events``)."""
    check_output_dir(report_dir, REPORT_KIND, inputs=[data])
    adapter = det.series_adapter_
    keep = list(dict.fromkeys([c for c in (adapter.id_col, adapter.time_col, label_col) if c is not None]
                              + adapter.channels_))
    pieces = list(scored_pieces(det, data, chunksize, keep, verbose))
    rows = pd.concat([p.rows for p in pieces], ignore_index=True)
    scores = np.concatenate([p.scores for p in pieces])
    values = rows[adapter.channels_].to_numpy(dtype=np.float64)
    y = binary_labels(rows[label_col], normal_value) if label_col is not None else None
    scored = np.isfinite(scores)  # not the rows of a series shorter than one window
    y_scored = None if y is None else y[scored]
    metrics = evaluate(scores[scored], y_scored, det.threshold_) if y is not None else None
    ids = _series_of(rows, det)  # the IDs factorized once, for every part of the report below
    series = ids[0]
    by_events = event_metrics(series[scored], scores[scored], y_scored, det) if y is not None else None
    times = adapter.times(rows)
    paths = write_report(report_dir, scores[scored], det.threshold_, None, y_scored, det.training_history_ or None,
                         metrics, None if by_events is None else {"events": asdict(by_events)})
    order = _channels_by_share(pieces, det)
    by_series = _ranked(_series_counts(rows, scores, det, ids)) if adapter.id_col else None
    if by_series is not None:
        path = Path(report_dir) / SUMMARY_FILE
        atomic_write_text(path, by_series.to_csv(index=False))
        paths.append(path)
        paths.append(_fleet_plot(ids, scores, times, by_series, det, Path(report_dir) / "fleet.png"))
    events = flagged_events(rows, series, scores, np.concatenate([p.parts for p in pieces]), det)
    path = Path(report_dir) / EVENTS_FILE
    atomic_write_text(path, events.to_csv(index=False))
    paths.append(path)
    shown, title = _shown_series(ids, by_series, adapter.id_col)
    paths.insert(0, plots.series_plot(values[shown][:, order], [adapter.channels_[j] for j in order], scores[shown],
                                      det.threshold_, Path(report_dir) / "series.png",
                                      None if y is None else y[shown],
                                      None if times is None else (times[shown] * 1e9).astype(np.int64), title))
    return SeriesAnalysis(scores, metrics, paths, det.threshold_, det.threshold_rule_.describe(),
                          condensed(adapter.notices_), by_series, events, by_events)


def _fleet_plot(ids: tuple[np.ndarray, pd.Index], scores: np.ndarray, times: np.ndarray | None,
                by_series: pd.DataFrame, det: SeriesAnomalyDetector, path: Path) -> Path:
    """``plots.fleet_plot`` of the ``FLEET_SHOWN`` most flagged series (``ids``: each row's
    series, ``_series_of``): the share of each one's rows flagged in each of ``FLEET_BINS``
    stretches of the table's time (of each series' own rows, without a time column)."""
    id_col = det.series_adapter_.id_col
    series, keys = ids
    shown = by_series[id_col].head(FLEET_SHOWN).tolist()
    place = np.full(len(keys), -1)
    place[keys.get_indexer(shown)] = np.arange(len(shown))
    codes = place[series]  # each row's place among the series shown, -1: not shown
    keep = codes >= 0
    if times is not None:
        position = times[keep]
    else:  # each row's place in its own series
        position = pd.Series(series[keep]).groupby(series[keep], sort=False).cumcount().to_numpy(dtype=np.float64)
    edges = np.linspace(position.min(), position.max() + 1e-9, FLEET_BINS + 1)
    column = np.clip(np.searchsorted(edges, position, side="right") - 1, 0, FLEET_BINS - 1)
    cell = codes[keep] * FLEET_BINS + column
    total = np.bincount(cell, minlength=len(shown) * FLEET_BINS)
    flagged = np.bincount(cell, weights=scores[keep] > det.threshold_, minlength=len(shown) * FLEET_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = (flagged / total).reshape(len(shown), FLEET_BINS)
    if times is not None:
        edges = (edges * 1e9).astype("int64").astype("datetime64[ns]")
    title = (f"The {len(shown)} most flagged of {len(by_series)} series ({id_col!r}): share of rows flagged"
             if len(by_series) > len(shown) else f"{len(shown)} series ({id_col!r}): share of rows flagged")
    return plots.fleet_plot(shares, [str(k) for k in shown], edges, path, title, times=times is not None)


def flagged_events(rows: pd.DataFrame, series: np.ndarray, scores: np.ndarray, parts: np.ndarray,
                   det: SeriesAnomalyDetector) -> pd.DataFrame:
    """One row per event, a run of consecutive flagged rows of one series (``series``: each
    row's, ``_series_of``): its series (a
    table of several), ``start`` and ``end`` (times, or 1-based data rows without a time
    column), ``rows``, the ``peak`` row and its ``max_score``, and ``top_channel``, the channel
    with the largest share of the event's scores; the highest-scoring event first. Monitoring
    thinks in incidents: a flagged stretch is one, not its rows."""
    adapter = det.series_adapter_
    stamps = rows[adapter.time_col].to_numpy() if adapter.time_col else np.arange(1, len(rows) + 1)
    records = []
    for where in _runs(scores > det.threshold_, series):
        peak = where[int(np.argmax(scores[where]))]
        share = parts[where].sum(0)
        records.append({**({adapter.id_col: str(rows[adapter.id_col].iloc[where[0]])} if adapter.id_col else {}),
                        "start": stamps[where[0]], "end": stamps[where[-1]], "rows": len(where), "peak": stamps[peak],
                        "max_score": float(scores[peak]), "top_channel": adapter.channels_[int(np.argmax(share))]})
    columns = [*([adapter.id_col] if adapter.id_col else []), "start", "end", "rows", "peak", "max_score", "top_channel"]
    events = pd.DataFrame(records, columns=columns)
    return events.sort_values("max_score", ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class EventMetrics:
    """Labelled events (runs of labelled rows of a series) against flagged ones: how many of
    the first have a flagged row, how many of the second have no labelled row."""

    labelled: int
    found: int
    flagged: int
    false: int

    def lines(self) -> list[str]:
        return [f"labelled events found: {self.found} of {self.labelled}; flagged events with no labelled row: "
                f"{self.false} of {self.flagged}"]


def event_metrics(series: np.ndarray, scores: np.ndarray, y: np.ndarray, det: SeriesAnomalyDetector) -> EventMetrics:
    """``EventMetrics`` of scored rows (``series``: each one's, ``_series_of``) against the
    labels ``y`` (1 = anomaly): an incident is found when any of its rows is flagged, as an
    operator would count it."""
    flagged = scores > det.threshold_
    labelled = _runs(y.astype(bool), series)
    events = _runs(flagged, series)
    return EventMetrics(len(labelled), sum(bool(flagged[run].any()) for run in labelled), len(events),
                        sum(not y[run].any() for run in events))


def _series_of(rows: pd.DataFrame, det: SeriesAnomalyDetector) -> tuple[np.ndarray, pd.Index]:
    """Each row's series as a number, and the IDs (as text) the numbers stand for, in the
    order they first appear (all 0, and no IDs, for a model of one series)."""
    id_col = det.series_adapter_.id_col
    if id_col is None:
        return np.zeros(len(rows), np.int64), pd.Index([])
    return pd.factorize(rows[id_col].astype(str), sort=False)


def _runs(mask: np.ndarray, series: np.ndarray) -> list[np.ndarray]:
    """The row positions of each run of consecutive ``mask`` rows of one series (a series'
    rows in file order), series after series."""
    order = np.argsort(series, kind="stable")
    hit, code = mask[order], series[order]
    same = code[1:] == code[:-1]
    starts = np.flatnonzero(hit & ~np.r_[False, hit[:-1] & same])
    ends = np.flatnonzero(hit & ~np.r_[hit[1:] & same, False])
    return [order[first:last + 1] for first, last in zip(starts, ends, strict=True)]


def _series_counts(rows: pd.DataFrame, scores: np.ndarray, det: SeriesAnomalyDetector,
                   ids: tuple[np.ndarray, pd.Index]) -> pd.DataFrame:
    """One row per series of ``rows`` (``ids``: each row's, ``_series_of``): its ID, rows,
    flagged rows, highest score, and with a time column the time of its first flagged row;
    in the order the series first appear."""
    adapter = det.series_adapter_
    flagged = scores > det.threshold_
    # in numpy over the IDs' codes: pandas' groupby took 0.04 s per 100,000 rows, 0.15 s of a 2.7 s job
    codes, keys = ids
    n = len(keys)
    highest = np.full(n, np.nan)
    scored = np.flatnonzero(np.isfinite(scores))  # not the rows of a series shorter than a window
    np.fmax.at(highest, codes[scored], scores[scored])
    table = pd.DataFrame({adapter.id_col: np.asarray(keys, dtype=object), "rows": np.bincount(codes, minlength=n),
                          "flagged": np.bincount(codes, weights=flagged, minlength=n).astype(np.int64),
                          "max_score": highest})
    if adapter.time_col is not None:
        first = np.full(n, -1)
        hit = np.flatnonzero(flagged)
        series, at = np.unique(codes[hit], return_index=True)  # each flagged series' first flagged row
        first[series] = hit[at]
        picked = rows[adapter.time_col].iloc[np.maximum(first, 0)].reset_index(drop=True)
        table["first_flagged"] = picked.where(first >= 0)
    return table


def _merged(before: pd.DataFrame, more: pd.DataFrame) -> pd.DataFrame:
    """The per-series counts of the rows before and of more rows after them, as one table:
    rows and flagged rows summed, the highest score, the first flagged time."""
    frame = pd.concat([before, more], ignore_index=True)
    return frame.groupby(frame.columns[0], sort=False).agg(
        rows=("rows", "sum"), flagged=("flagged", "sum"), max_score=("max_score", "max"),
        **({"first_flagged": ("first_flagged", "first")} if "first_flagged" in frame else {})).reset_index()


def _ranked(by_series: pd.DataFrame) -> pd.DataFrame:
    """The most flagged series first, then the highest score."""
    return by_series.sort_values(["flagged", "max_score"], ascending=False, kind="stable").reset_index(drop=True)


def _shown_series(ids: tuple[np.ndarray, pd.Index], by_series: pd.DataFrame | None,
                  id_col: str | None) -> tuple[np.ndarray, str]:
    """The rows of the series the report plots (all rows, for a model of one series) and the
    plot's title: of several, the most flagged (``by_series``' first; ``ids``: ``_series_of``)."""
    series, keys = ids
    if by_series is None or id_col is None:
        return np.ones(len(series), bool), "Series and anomaly score"
    key = by_series[id_col].iloc[0]
    return series == keys.get_loc(key), f"Series {key!r}, the most flagged of {len(by_series)} by {id_col!r}"


def _channels_by_share(pieces: list[SeriesScores], det: SeriesAnomalyDetector) -> list[int]:
    """Channel indices, the ones that contribute most to the flagged rows' scores first."""
    total = sum((p.parts[p.scores > det.threshold_].sum(0) for p in pieces), np.zeros(len(det.channels_)))
    return list(np.argsort(-total, kind="stable"))
