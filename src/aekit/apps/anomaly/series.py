"""Anomaly detection on time series: the tables' detector over sliding windows.

A window of ``window`` consecutive rows of every channel is one sample. The detector scores
windows exactly as the table detector scores rows (an autoencoder's standardised
reconstruction error, the Mahalanobis distance of its code, the distance to the nearest
training windows), and a row's score is the mean score of the windows that cover it, so every
row is scored, the first ones included. Windows start at every ``stride``-th row from the
first, plus one that ends at the last row; a row's score depends only on the series, never on
how a file was cut into chunks (``SeriesStream`` carries the state across them).

A table may hold several series (``id_col``: a machine, a sensor), each in time order: windows
never cross from one series to the next, one model serves them all (each series scaled by its
own statistics), and each series is scored as if it were alone (``SeriesTableStream`` keeps
the table's row order). A series of such a table shorter than one window is left out of
training and not scored: its rows' scores are NaN, with a note.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch

from ...autoencoder import AutoEncoder
from ...checks import MAX_WIDTH, check_choice, check_int, check_sizes
from ...data.series import IMPUTES, SCALINGS, SeriesAdapter, condensed, series_note, split_by_code
from ...errors import AekitError, DataError, DataNotice, ModelFileError, ParameterError
from ...estimator import MIN_TRAIN_ROWS, MIN_VALIDATION_ROWS
from .base import ReconstructionDetector
from .thresholds import ThresholdRule
from .detector import mlp_sizes
from .periods import auto_window

MAX_WINDOW = 4096
MAX_TRAIN_WINDOWS = 50_000  # longer training series are windowed with a stride that keeps about this many
MIN_BOUND_WINDOWS = 4  # held-out windows an fpr bound wants (t at 3 degrees of freedom: 4.5, twice z's 2.3)
AUTO_STRIDE_DIVISOR = 8  # stride="auto": a row is covered by about 8 scored windows
NETWORKS = ("mlp", "conv")


class SeriesAnomalyDetector(ReconstructionDetector):
    """Autoencoder anomaly detector for time series (one or many aligned channels), trained
    on a normal stretch.

    ``X`` is a table (a CSV/Parquet path or a DataFrame) whose columns are the channels, plus
    the time column ``time_col`` if given (ISO times or numbers; rows must be in time order,
    without repeats), or an array ``[T]`` / ``[T, C]``. Channels are scaled by their training
    mean and standard deviation. With ``id_col`` the table holds several series, one per value
    of that column (a machine, a sensor), each in time order, one after the other or
    interleaved: windows never cross from one to the next, and each is scored on its own. Each
    series is scaled by its own training mean and deviation (``series_scaling="each"``; a
    series not seen in training by those of all of them, with a note), or all alike
    (``"shared"``: where one machine's level against the others' is itself a sign). With each
    NAB category taken as one fleet (one model for all its series), "each" keeps the AUC-PR of
    one model per series (held-out categories 0.392 against 0.397), where "shared" loses it
    on series of unlike scales (0.295).

    ``decision_function(X)`` returns one score per row, higher = more anomalous: the mean over
    the windows of ``window`` rows that cover it of the window's score, which has the table
    detector's three terms (each about 1 on held-out normal windows): the reconstruction error
    of each (channel, lag) in units of its typical error, the code's Mahalanobis distance
    (``latent_weight``), and the distance to the nearest of 5 random groups of training
    windows (``local_weight``, 4 by default). Scored windows start every ``stride`` rows
    (``"auto"``: ``window // 8``); training uses every window (at most ``MAX_TRAIN_WINDOWS``).
    ``network``: ``"mlp"`` (dense layers over the whole window) or ``"conv"`` (1-D convolutions
    along time); on NAB's development categories they tie (AUC-PR 0.550 and 0.551) and the MLP
    trains four times faster, so it is the default.

    ``impute``: ``None`` (a missing or infinite value is an error naming its row) or
    ``"ffill"``: each takes the last value before it in its series (the series' training
    mean where none comes before), with a note; the same whether a file is read whole or in
    chunks.

    ``window``: 64 rows, or ``"auto"``: two cycles of the training series' own period
    (``periods.auto_window``; the chosen ``window_`` is saved, and a note says why). A row's
    score spreads over a window's rows on each side of an anomaly, so a longer window flags
    longer stretches; ``"auto"`` ranks NAB's rows better but is not the default.

    Training holds out the last ``validation_fraction`` of the series (of each series; a
    contiguous stretch, not random windows: neighbouring windows overlap) for early stopping and for the
    threshold: ``"fpr:0.01"`` (the default) is the score a new normal row exceeds 1% of the
    time, bounded from the held-out rows read as one sample per window (neighbouring rows
    share windows; ``thresholds.prediction_bound``); ``contamination`` and explicit scores
    work as for tables. ``explain(X)`` attributes each row's score to the
    channels.
    """

    _kind = "anomaly.SeriesAnomalyDetector"
    data: ClassVar[str] = "series"  # always a series (not a parameter)

    def __init__(
        self,
        *,
        time_col: str | None = None,
        id_col: str | None = None,
        series_scaling: str = "each",
        impute: str | None = None,
        window: int | str = 64,
        stride: int | str = "auto",
        network: str = "mlp",
        hidden: str | list[int] = "auto",
        code_size: str | int = "auto",
        n_estimators: int = 1,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        validation_fraction: float = 0.15,
        activation: str = "relu",
        feature_weighting: str = "standardize",
        latent_weight: float = 1.0,
        local_weight: float | str = "auto",
        contamination: float = 0.1,
        threshold: str | float | None = "fpr:0.01",
        random_state: int = 0,
        verbose: int = 0,
        checkpoint_dir: str | None = None,
        resume: bool = False,
    ) -> None:
        self.time_col = time_col
        self.id_col = id_col
        self.series_scaling = series_scaling
        self.impute = impute
        self.window = window
        self.stride = stride
        self.network = network
        self.hidden = hidden
        self.code_size = code_size
        self.n_estimators = n_estimators
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.activation = activation
        self.feature_weighting = feature_weighting
        self.latent_weight = latent_weight
        self.local_weight = local_weight
        self.contamination = contamination
        self.threshold = threshold
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        super()._check_params()
        for name in ("time_col", "id_col"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise DataError(f"{name} must be a column name, got {value!r}")
        if self.id_col is not None and self.id_col == self.time_col:
            raise DataError(f"id_col and time_col are both {self.id_col!r}: the series ID and the time are two columns")
        check_choice(self.series_scaling, "series_scaling", SCALINGS)
        if self.impute not in IMPUTES:
            raise ParameterError(f"impute must be one of {IMPUTES} for a time series (each missing value takes "
                                 f"the value before it), got {self.impute!r}")
        if self.window != "auto":
            check_int(self.window, "window", 2, MAX_WINDOW)
        check_choice(self.network, "network", NETWORKS)
        if self.stride != "auto":
            check_int(self.stride, "stride", 1, MAX_WINDOW if self.window == "auto" else self.window)
        if self.hidden != "auto":
            check_sizes(self.hidden, "hidden")
        if self.code_size != "auto":
            check_int(self.code_size, "code_size", 1, MAX_WIDTH)

    @property
    def stride_(self) -> int:
        """The rows between the starts of two scored windows."""
        return max(1, self.window_ // AUTO_STRIDE_DIVISOR) if self.stride == "auto" else min(int(self.stride),
                                                                                             self.window_)

    @property
    def channels_(self) -> list[str]:
        """The channel names, in the order of ``explain``'s columns."""
        self._check_fitted()
        return list(self.adapter_.channels_)

    def _member_input_shape(self) -> tuple[int, ...]:
        return (self.adapter_.sample_shape[0] * self.window_,)

    # ------------------------------------------------------------------ fitting
    def _fit_adapter(self, X: Any) -> torch.Tensor:
        """The training series scaled (kept for the training scores), as windows: every
        ``train_stride_``-th window of each series, each flattened channel after channel."""
        values, series = self._new_adapter(X).fit_series(X)
        self._enough_samples(values)
        pieces = list(torch.split(values, [rows for _, _, rows in series]))
        self._choose_window(pieces)
        if len(series) == 1 and len(values) < self.window_ + MIN_TRAIN_ROWS - 1:
            raise DataError(f"the series has {len(values)} rows, too few for {MIN_TRAIN_ROWS} windows of "
                            f"{self.window_} rows: use a smaller window")
        # a series of a table of several shorter than one window is left out, with a note
        # (its rows' decision_scores_ are NaN): one new machine must not stop a fleet's training
        kept = [len(piece) >= self.window_ for piece in pieces]
        for (key, _, rows), keep in zip(series, kept, strict=True):
            if not keep:
                self.adapter_.notices_.append(series_note(key, _too_short(rows, self.window_, "left out of training")))
        self.adapter_.n_series_ = sum(kept)  # the series learned from (the model card's and the summary's count)
        n_windows = sum(len(piece) - self.window_ + 1 for piece, keep in zip(pieces, kept, strict=True) if keep)
        if n_windows < MIN_TRAIN_ROWS:
            raise DataError(f"the {len(pieces)} series hold {n_windows} windows of {self.window_} rows in all, "
                            f"too few to train ({MIN_TRAIN_ROWS}): use a smaller window")
        self.train_stride_ = max(1, math.ceil(n_windows / MAX_TRAIN_WINDOWS))
        windows = [_windows(piece, self.window_, self.train_stride_) for piece, keep in zip(pieces, kept, strict=True)
                   if keep]
        # (row positions, scaled rows or None where left out): the training scores' rows
        self._training_series = [(positions, piece if keep else None)
                                 for (_, positions, _), piece, keep in zip(series, pieces, kept, strict=True)]
        self._window_counts = [len(w) for w in windows]
        return torch.cat(windows)

    def _choose_window(self, pieces: list[torch.Tensor]) -> None:
        """``window_``: ``window``, or with ``"auto"`` two cycles of the training series' own
        period (``periods.auto_window``), said in a note."""
        if self.window != "auto":
            self.window_ = int(self.window)
            return
        self.window_, why = auto_window([piece.numpy() for piece in pieces])
        self.adapter_.notices_.append(f"window {self.window_} rows ({why}; --window N to choose)")

    def _spanned(self, rule: ThresholdRule, clean: np.ndarray) -> ThresholdRule:
        """An ``fpr`` rule reads a window's rows as one sample: they share windows. Clean rows
        of fewer than ``MIN_BOUND_WINDOWS`` windows make a wide bound, with a note."""
        if rule.method != "fpr":
            return rule
        rows = int(np.isfinite(clean).sum())
        if rows < MIN_BOUND_WINDOWS * self.window_:
            needed = math.ceil(MIN_BOUND_WINDOWS * self.window_ / self.validation_fraction)
            warnings.warn(f"the threshold fpr:{rule.value:g} reads {rows} clean rows, under {MIN_BOUND_WINDOWS} "
                          f"windows of {self.window_}: a bound from so few is wide, so new rows are flagged only far "
                          f"above it; train on a longer stretch (about {needed:,} rows or more), or give the threshold "
                          "as a score (threshold=, --threshold)", DataNotice, stacklevel=3)
        return dataclasses.replace(rule, span=self.window_)

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(training, validation)`` windows: the validation windows are the last
        ``validation_fraction`` of each series, and its training windows end before they begin
        (neighbouring windows share rows, so a random split would validate on training rows)."""
        overlap = math.ceil(self.window_ / self.train_stride_) - 1
        train, val, offset = [], [], 0
        self._validation_starts = []  # each series' first held-out window (None: none held out)
        for count in self._window_counts:
            n_val = int(round(self.validation_fraction * count)) if n >= MIN_VALIDATION_ROWS else 0
            n_train = count - n_val - overlap
            if n_val and n_train > 0:
                train.append(np.arange(offset, offset + n_train))
                val.append(np.arange(offset + count - n_val, offset + count))
                self._validation_starts.append(count - n_val)
            else:
                train.append(np.arange(offset, offset + count))
                self._validation_starts.append(None)
            offset += count
        train_idx, val_idx = np.concatenate(train), np.concatenate(val) if val else np.arange(0)
        if not len(val_idx) or len(train_idx) < MIN_TRAIN_ROWS:
            self._validation_starts = [None] * len(self._window_counts)
            return np.arange(n), np.arange(0)
        return train_idx, val_idx

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        (n_features,) = shape
        hidden, code = mlp_sizes(n_features, self.hidden, self.code_size)
        if self.network == "conv":  # the first hidden width is the conv encoder's linear layer
            return AutoEncoder.series_conv(self.adapter_.sample_shape[0], self.window_, hidden=hidden[0],
                                           code_size=code, bottleneck=self._bottleneck, activation=self.activation)
        return AutoEncoder.mlp(n_features, hidden, code, bottleneck=self._bottleneck, activation=self.activation)

    def _training_scores(self, Z: torch.Tensor, val_idx: np.ndarray, train_idx: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Row scores of the training table, in its row order; the clean ones are the held-out
        stretches' rows (all rows where none was held out). (Not leave-one-out: a row's score
        comes from several overlapping windows, whose neighbours a step away are near copies
        of them anyway.)"""
        series, self._training_series, self._reference_rows = self._training_series, [], None
        scored = [(positions, piece) for positions, piece in series if piece is not None]
        scores = np.full(sum(len(piece) if positions is None else len(positions) for positions, piece in series),
                         np.nan)
        clean = []
        for (positions, piece), start in zip(scored, self._validation_starts, strict=True):
            own = self._row_scores(piece)[0]
            scores[slice(None) if positions is None else positions] = own
            if start is not None:
                clean.append(own[start * self.train_stride_:])
        return scores, (np.concatenate(clean) if clean else scores[np.isfinite(scores)])

    # ------------------------------------------------------------------ scoring
    def _row_scores(self, values: torch.Tensor, per_channel: bool = False, key: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows' scores of one series (``key``: its ID, in a table of several)."""
        stream = SeriesStream(self, per_channel, key)
        return _joined([stream.feed_scaled(values), stream.finish()], per_channel)

    def decision_function(self, X: Any) -> np.ndarray:
        """One anomaly score per row of ``X``: higher = more anomalous (NaN for the rows of a
        series, in a table of several, shorter than one window)."""
        self._check_fitted()
        return self._table_scores(X, per_channel=False)[0]

    def score_explain(self, X: Any) -> tuple[np.ndarray, pd.DataFrame]:
        """``decision_function(X)`` and each row's score split over the channels (the parts
        the reconstruction and local terms attribute to each; the code term is in no channel)."""
        self._check_fitted()
        scores, parts = self._table_scores(X, per_channel=True)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return scores, pd.DataFrame(parts, columns=self.channels_, index=index)

    def score_with_notes(self, X: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``score_explain(X)`` as arrays, with what scoring noticed (a series too short to
        score, gaps in time, filled values, a series not in training) as lines rather than
        warnings: what a service answers a request with. The notes are collected on the
        model, so one thread at a time."""
        result = self.score_requests([X])[0]
        if isinstance(result, AekitError):
            raise result
        return result

    def score_requests(self, tables: list[Any]) -> list[tuple[np.ndarray, np.ndarray, list[str]] | AekitError]:
        """``score_with_notes`` of each table, each scored alone (a table's error comes back in
        its place), and every table's windows due before its end in one pass: what the
        service does with the requests queued when its scoring thread is free."""
        self._check_fitted()
        adapter = self.series_adapter_
        jobs: list[Any] = []
        for table in tables:
            adapter.notices_ = notes = []
            stream = self.stream(per_channel=True)
            try:
                jobs.append((stream, stream.queue_rows(adapter.as_table(table) if self.id_col else table), notes))
            except AekitError as exc:
                jobs.append(exc)
        queued = [job for job in jobs if not isinstance(job, AekitError)]
        windows = [stream.windows_of(pending) for stream, pending, _ in queued]
        if windows:
            scores, contrib = _scored(self, torch.cat(windows) if len(windows) > 1 else windows[0], True)
            bounds = np.cumsum([len(w) for w in windows])[:-1]
            shares = iter(zip(np.split(scores, bounds), np.split(contrib, bounds), strict=True))
        results: list[Any] = []
        for job in jobs:
            if isinstance(job, AekitError):
                results.append(job)
                continue
            (stream, pending, notes), (own, own_contrib) = job, next(shares)
            adapter.notices_ = notes
            try:
                done = [stream.settle(pending, own, own_contrib), stream.finish()]
            except AekitError as exc:
                results.append(exc)
                continue
            results.append((*_joined(done, True), condensed(notes)))
        return results

    def _table_scores(self, X: Any, per_channel: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows' scores (and channel parts), each series scored on its own, in ``X``'s row
        order; a ``DataNotice`` for the series too short to score."""
        adapter = self.series_adapter_
        if adapter.id_col is None:  # one series
            return self._row_scores(adapter.transform(X), per_channel)
        frame = adapter.as_table(X)
        stream = SeriesTableStream(self, per_channel)  # every series' windows scored in one pass
        scores, parts = _joined([stream.feed(frame), stream.finish()], per_channel)
        short = pd.unique(frame[adapter.id_col][np.isnan(scores)].astype(str)).tolist()
        if short:
            warnings.warn(f"{len(short)} series not scored, each shorter than one window ({self.window_} rows): "
                          f"their rows' scores are NaN (series {short[:5]})", DataNotice, stacklevel=3)
        return scores, parts

    def explain(self, X: Any) -> pd.DataFrame:
        """Per-channel contributions to each row's score (see ``score_explain``)."""
        return self.score_explain(X)[1]

    def stream(self, per_channel: bool = True, last_rows: dict[str, int] | None = None
               ) -> SeriesStream | SeriesTableStream:
        """A scorer for a table that arrives in pieces: ``SeriesStream`` for one series,
        ``SeriesTableStream`` for a model with ``id_col`` (``last_rows``: see there)."""
        self._check_fitted()
        return SeriesTableStream(self, per_channel, last_rows) if self.id_col else SeriesStream(self, per_channel)

    def _state(self) -> tuple[dict[str, Any], Any]:
        state, groups = super()._state()
        return {**state, "window": self.window_}, groups

    def _set_state(self, networks: dict[str, AutoEncoder], state: dict[str, Any], groups: Any) -> None:
        window = state.get("window", self.window)  # models made before 0.9.5: the parameter, a number
        if isinstance(window, bool) or not isinstance(window, int) or not 2 <= window <= MAX_WINDOW:
            raise ModelFileError(f"config.json: the series window must be a number of rows in [2, {MAX_WINDOW}], "
                                 f"got {window!r}")
        self.window_ = window  # before the networks are checked against it
        super()._set_state(networks, state, groups)

    @property
    def series_adapter_(self) -> SeriesAdapter:
        self._check_fitted()
        return self.adapter_


class Due(NamedTuple):
    """Windows a ``SeriesStream`` has queued to be scored, their offsets in its running sums,
    and the rows final once they are."""

    windows: torch.Tensor
    offsets: np.ndarray
    final: int


class SeriesStream:
    """Scores a series fed in pieces of any size, with the scores ``decision_function`` gives
    the whole series: ``feed(rows)`` (the next rows, as ``decision_function`` takes them: a
    table with the model's time column and channels, or an array ``[n, C]``) returns the rows
    whose windows are all scored so far, ``finish()`` the rest. Times are checked across
    pieces as within one.

    Rows come out up to a window later than they go in: a row's score waits for the last
    window that covers it, and the last ``window`` rows for the end of the series."""

    def __init__(self, det: SeriesAnomalyDetector, per_channel: bool = False, key: str | None = None) -> None:
        self.det, self.per_channel, self.key = det, per_channel, key  # key: the series' ID, in a table of several
        self.window, self.stride = det.window_, det.stride_
        self.channels = det.adapter_.sample_shape[0]
        self.buffer = torch.zeros(0, self.channels)  # the rows from `base` on
        self.base = 0
        self.next_start = 0  # the next window that starts on a multiple of the stride
        self.emitted = 0  # rows before this are returned; sums and counts start here
        self.total = 0
        self.sums = np.zeros(0)
        self.counts = np.zeros(0)
        self.parts = np.zeros((0, self.channels))
        self.last_time: float | None = None  # of the rows fed so far, for the order check
        self.last_row: np.ndarray | None = None  # the last row fed, filled: what the next missing value takes

    def feed(self, rows: Any, positions: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Add the next rows; the scores (and per-channel parts, ``[n, C]``) of the rows now
        final, in order from the first row not returned yet. ``positions``: the rows' 0-based
        data rows in a file (for errors), where they are not the series' rows so far."""
        return self._settled(self.queue_rows(rows, positions))

    def queue_rows(self, rows: Any, positions: np.ndarray | None = None) -> Due:
        """``feed``'s first half: the rows read, checked and queued; their windows due
        (``settle`` takes their scores)."""
        if positions is None:
            positions = self.total + np.arange(len(rows))
        return self.queue_read(*self.det.series_adapter_.read(rows, positions=positions), positions)

    def feed_scaled(self, values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``feed`` for rows already read and scaled (``adapter_.scale``), ``[n, C]``."""
        return self._settled(self.queue(values))

    # feeding in two steps, so that a table of many series scores the windows of all in one call
    def queue_read(self, values: np.ndarray, times: np.ndarray | None, positions: np.ndarray) -> Due:
        """``queue`` for rows already read: filled (``impute``), checked in time order and scaled first."""
        adapter = self.det.series_adapter_
        values = adapter.fill(values, self.key, self.last_row)
        self.last_row = values[-1:].copy()  # not a view that keeps the chunk alive
        scaled = adapter.checked_scaled(self.key, values, times, positions, self.last_time, first=self.total == 0)
        if times is not None:
            self.last_time = float(times[-1])
        return self.queue(scaled)

    def queue(self, values: torch.Tensor) -> Due:
        """Add scaled rows ``[n, C]``; the windows now due to be scored (``settle`` takes their scores)."""
        if values.dim() != 2 or values.shape[1] != self.channels:
            raise DataError(f"expected rows of {self.channels} channel(s), got shape {tuple(values.shape)}")
        self.buffer = torch.cat([self.buffer, values.float()])
        self.total += len(values)
        self._grow()
        last = self.total - self.window  # the last window start that fits so far
        windows, offsets = torch.zeros(0, self.channels * self.window), np.zeros(0, np.int64)
        if last >= self.next_start:
            count = (last - self.next_start) // self.stride + 1
            windows, offsets = self._due(self.next_start, count)
            self.next_start += count * self.stride
        # a row is final once no later window can cover it: not one on the stride, and not
        # the window that will end the series (it starts at or after total - window)
        final = max(0, min(self.next_start, self.total - self.window))
        self.buffer, self.base = self.buffer[final - self.base:], final
        return Due(windows, offsets, final)

    @staticmethod
    def windows_of(due: Due) -> torch.Tensor:
        return due.windows

    def settle(self, due: Due, scores: np.ndarray, contrib: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The scores (and per-feature parts) of ``due``'s windows into the rows they cover; the
        rows now final."""
        self._accumulate(due.offsets, scores, contrib)
        return self._take(due.final)

    def _settled(self, due: Due) -> tuple[np.ndarray, np.ndarray]:
        """``settle`` with ``due``'s windows scored here."""
        return self.settle(due, *_scored(self.det, due.windows, self.per_channel))

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The end of the series: the window that ends on its last row, and every row left.
        A series of a table of several that is shorter than one window is not scored (NaN),
        with a note: one new machine must not stop the scoring of a fleet."""
        if self.key is not None and self.total < self.window:
            note = _too_short(self.total, self.window, "not scored, its scores left empty (NaN)")
            self.det.series_adapter_.notices_.append(note)
            return self._take_unscored()
        if self.total < self.window:  # the window is the model's now: a hint to train with a smaller one is no help
            raise DataError(f"the series has {self.total} rows, too few for one window of this model "
                            f"({self.window} rows): score at least {self.window} rows")
        if self.key is None:  # a series alone (a table's streams are noted at the table's end)
            self.det.adapter_.note_filled()
        end = self.total - self.window
        if end % self.stride:
            windows, offsets = self._due(end, 1)
            self._accumulate(offsets, *_scored(self.det, windows, self.per_channel))
        return self._take(self.total)

    def _grow(self) -> None:
        extra = self.total - self.emitted - len(self.sums)
        self.sums = np.concatenate([self.sums, np.zeros(extra)])
        self.counts = np.concatenate([self.counts, np.zeros(extra)])
        if self.per_channel:
            self.parts = np.concatenate([self.parts, np.zeros((extra, self.channels))])

    def _due(self, start: int, count: int) -> tuple[torch.Tensor, np.ndarray]:
        """``count`` windows from row ``start`` on, a stride apart, and their offsets in ``sums``."""
        rows = self.buffer[start - self.base:start - self.base + (count - 1) * self.stride + self.window]
        return _windows(rows, self.window, self.stride), start - self.emitted + np.arange(count) * self.stride

    def _accumulate(self, offsets: np.ndarray, scores: np.ndarray, contrib: np.ndarray | None) -> None:
        """Every row of a window gets the window's score: prefix sums make it O(rows), not O(rows x window)."""
        if not len(offsets):
            return
        delta = np.zeros(len(self.sums) + 1)
        np.add.at(delta, offsets, scores)
        np.add.at(delta, offsets + self.window, -scores)
        self.sums += np.cumsum(delta)[:-1]
        hits = np.zeros(len(self.sums) + 1)
        np.add.at(hits, offsets, 1)
        np.add.at(hits, offsets + self.window, -1)
        self.counts += np.cumsum(hits)[:-1]
        if self.per_channel:
            channel = contrib.reshape(len(offsets), self.channels, self.window).sum(2)
            step = np.zeros((len(self.sums) + 1, self.channels))
            np.add.at(step, offsets, channel)
            np.add.at(step, offsets + self.window, -channel)
            self.parts += np.cumsum(step, axis=0)[:-1]

    def _take_unscored(self) -> tuple[np.ndarray, np.ndarray]:
        """Every row left, with NaN scores and parts."""
        n = self.total - self.emitted
        self.sums, self.counts, self.parts, self.emitted = self.sums[n:], self.counts[n:], self.parts[n:], self.total
        return np.full(n, np.nan), np.full((n, self.channels if self.per_channel else 0), np.nan)

    def _take(self, final: int) -> tuple[np.ndarray, np.ndarray]:
        n = final - self.emitted
        scores = self.sums[:n] / self.counts[:n]
        parts = self.parts[:n] / self.counts[:n, None] if self.per_channel else np.zeros((n, 0))
        self.sums, self.counts, self.parts = self.sums[n:], self.counts[n:], self.parts[n:]
        self.emitted = final
        return scores, parts


class SeriesTableStream:
    """Scores a table of several series (a model with ``id_col``) fed in chunks, each series
    as ``SeriesStream`` scores it alone; ``feed(chunk)`` returns the scores (and channel parts)
    of the next rows in the table's order, ``finish()`` the rest.

    A row's score waits for the last window of its own series, and every later row waits with
    it (rows come out in order). A series' last window is known when the series ends: at
    ``finish()``, at ``end(key)``, or at its last row where ``last_rows`` (``{ID: its last data
    row, 0-based}``, as ``aekit anomaly score`` reads it in a first pass over the file) gives
    it. With them memory holds about a window of rows per open series, whether the series come
    one after the other or interleaved; without, series one after the other are held until
    the end."""

    def __init__(self, det: SeriesAnomalyDetector, per_channel: bool = False,
                 last_rows: dict[str, int] | None = None) -> None:
        self.det, self.per_channel, self.last_rows = det, per_channel, last_rows or {}
        self.adapter = det.series_adapter_
        self.streams: dict[str, SeriesStream] = {}  # the open series
        self.ended: set[str] = set()
        self.waiting: dict[str, np.ndarray] = {}  # each open series' rows (data rows) not yet scored
        self.rows = 0  # rows fed
        self.emitted = 0  # rows returned
        self.scores = np.zeros(0)  # of the rows from `emitted` on
        self.scored = np.zeros(0, bool)
        self.parts = np.zeros((0, len(det.channels_)))

    def feed(self, chunk: Any) -> tuple[np.ndarray, np.ndarray]:
        """Add the next rows (a table with the ID column); the scores of the rows now final,
        in order from the first row not returned yet. Every series' due windows are scored
        in one call (a call per series cost about 1 ms each)."""
        queued = self.queue_rows(chunk)
        return self.settle(queued, *_scored(self.det, self.windows_of(queued), self.per_channel))

    def queue_rows(self, chunk: Any) -> list[tuple[str, Due, int]]:
        """``feed``'s first half: the rows read, checked and queued, series by series (each
        series' ID, its due windows, its last data row here); ``settle`` takes the scores."""
        frame = self.adapter.as_table(chunk)  # the ID and time columns, also from an index
        codes, keys = self.adapter.series_codes(frame, self.rows)
        positions = self.rows + np.arange(len(frame))
        # the whole chunk read at once: a time parsed per series costs more than its scoring
        values, times = self.adapter.read(frame, positions=positions)  # the ID column is not a channel
        self._grow(len(frame))
        queued = []
        for group in split_by_code(codes):
            key = keys[codes[group[0]]]
            if key in self.ended:
                raise DataError(f"series {key!r} has a row at data row {positions[group[0]] + 1}, after its end")
            if key not in self.streams:
                self.streams[key], self.waiting[key] = SeriesStream(self.det, self.per_channel, key), positions[:0]
            self.waiting[key] = np.concatenate([self.waiting[key], positions[group]])
            due = self.streams[key].queue_read(values[group], None if times is None else times[group], positions[group])
            queued.append((key, due, positions[group[-1]]))
        return queued

    def windows_of(self, queued: list[tuple[str, Due, int]]) -> torch.Tensor:
        windows = [due.windows for _, due, _ in queued]
        if not windows:
            return torch.zeros(0, len(self.det.channels_) * self.det.window_)
        return torch.cat(windows) if len(windows) > 1 else windows[0]

    def settle(self, queued: list[tuple[str, Due, int]], scores: np.ndarray, contrib: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``feed``'s second half: the scores (and parts) of ``windows_of(queued)`` into their
        rows; the rows now final, in the table's order."""
        bounds = np.cumsum([len(due.windows) for _, due, _ in queued])[:-1]
        contribs = np.split(contrib, bounds) if contrib is not None else [None] * len(queued)
        for (key, due, last), own, own_contrib in zip(queued, np.split(scores, bounds), contribs, strict=True):
            self._place(key, self.streams[key].settle(due, own, own_contrib))
            if self.last_rows.get(key) == last:
                self.end(key)
        return self._take()

    def end(self, key: str) -> None:
        """The series ``key`` has no more rows: score its last windows."""
        if key in self.streams:
            self._place(key, self.adapter.in_series(key, self.streams.pop(key).finish))
            del self.waiting[key]
        self.ended.add(key)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The end of the table: every open series ends; the rows left."""
        for key in list(self.streams):
            self.end(key)
        self.adapter.note_filled()
        return self._take()

    def _place(self, key: str, result: tuple[np.ndarray, np.ndarray]) -> None:
        scores, parts = result
        where = self.waiting[key][:len(scores)] - self.emitted
        self.waiting[key] = self.waiting[key][len(scores):]
        self.scores[where], self.scored[where] = scores, True
        if self.per_channel:
            self.parts[where] = parts

    def _grow(self, rows: int) -> None:
        self.rows += rows
        self.scores = np.concatenate([self.scores, np.zeros(rows)])
        self.scored = np.concatenate([self.scored, np.zeros(rows, bool)])
        if self.per_channel:
            self.parts = np.concatenate([self.parts, np.zeros((rows, self.parts.shape[1]))])

    def _take(self) -> tuple[np.ndarray, np.ndarray]:
        """The scored rows up to the first one still waiting."""
        n = int(np.argmin(self.scored)) if not self.scored.all() else len(self.scored)
        scores, parts = self.scores[:n], self.parts[:n] if self.per_channel else np.zeros((n, 0))
        self.scores, self.scored = self.scores[n:], self.scored[n:]
        if self.per_channel:
            self.parts = self.parts[n:]
        self.emitted += n
        return scores, parts


def _joined(pieces: list[tuple[np.ndarray, np.ndarray]], per_channel: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """A stream's pieces (scores, channel parts) as one: the scores, and the parts (None
    without ``per_channel``)."""
    scores = np.concatenate([p[0] for p in pieces])
    return scores, (np.concatenate([p[1] for p in pieces]) if per_channel else None)


def _too_short(rows: int, window: int, what: str) -> str:
    return f"{rows} row(s), fewer than one window ({window} rows): {what}"


def _scored(det: SeriesAnomalyDetector, windows: torch.Tensor, per_channel: bool
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """The windows' scores (and per-feature parts), none scored for none."""
    if not len(windows):
        return np.zeros(0), np.zeros(windows.shape) if per_channel else None
    return det._score_blocks(windows, per_feature=per_channel)


def _windows(values: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Windows ``[n, C * window]`` of rows ``[T, C]``: each one channel after channel."""
    return values.unfold(0, window, stride).flatten(1).contiguous()
