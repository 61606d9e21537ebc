"""Time series as the detectors read them: rows in time order, one column per channel.

``SeriesAdapter`` takes a table (CSV/Parquet path or DataFrame) with an optional time column,
or an array ``[T]`` / ``[T, C]``, and returns the channels scaled by their training mean and
standard deviation, ``[T, C]``. What it refuses, each in one line: a time column that is
missing or unreadable; rows out of time order; NaN or inf values; non-numbers in a channel;
a training series where every channel is constant. What it accepts with a notice
(``notices_``): gaps longer than ``GAP_FACTOR`` training intervals (rows are taken in order,
as if consecutive), a real clock's few slips (repeated times, a step back of at most an
hour; rows are read in file order) and channels constant in training.
"""
from __future__ import annotations

import os
import re
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from ..errors import DataError, ModelFileError
from .adapter_base import DataAdapter
from .preprocess import FLOAT32_MAX
from .tables import as_frame

GAP_FACTOR = 3.0  # a step longer than this many typical intervals is a gap (a notice, not an error)
MAX_CLOCK_SLIP_S = 3600.0  # a date-time clock set back by at most this much is read on, with a notice


def _has_offsets(column: pd.Series) -> bool:
    """Whether a time column's first value carries a UTC offset or zone (``...-05:00``, ``Z``)."""
    first = str(column.dropna().iloc[0]) if column.notna().any() else ""
    return bool(re.search(r"(?:Z|[+-]\d\d:?\d\d)$", first.strip()))


def _day_first_if_in_order(column: pd.Series, month_first: pd.Series, utc: bool) -> pd.Series:
    """The times read day first (``01/02/2014``: 1 February), where that reading is in order
    and pandas' month-first one is not: a European file, whose 12/01 would else be read as
    1 December and refused as going back in time."""
    try:
        day_first = pd.to_datetime(column, format="mixed", dayfirst=True, utc=utc)
    except (ValueError, TypeError, OverflowError):
        return month_first
    return day_first if day_first.is_monotonic_increasing else month_first


class SeriesAdapter(DataAdapter):
    """Rows of a time series -> channels scaled by their training mean and standard
    deviation (see the module docstring). ``time_col`` names the time column (ISO times or
    numbers); without one, rows are taken in file order."""

    kind: ClassVar[str] = "series"

    def __init__(self, time_col: str | None = None) -> None:
        self.time_col = time_col
        self.notices_: list[str] = []

    # ------------------------------------------------------------------ reading
    def read(self, X: Any, fit: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values [T, C] float64, times [T] float64 seconds or None)``, checked."""
        if isinstance(X, (pd.DataFrame, str, os.PathLike)):
            frame = as_frame(X)
        else:
            arr = np.asarray(X)
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise DataError(f"expected a series [T] or [T, channels], got an array of shape {arr.shape}")
            if self.time_col is not None:
                raise DataError(f"this model reads its times from column {self.time_col!r}: pass a table, not an array")
            names = [f"x{i}" for i in range(arr.shape[1])] if fit else self.channels_
            if len(names) != arr.shape[1]:
                raise DataError(f"the series has {arr.shape[1]} channels, the model was trained on {len(names)}")
            frame = pd.DataFrame(arr, columns=names)
        if not len(frame):
            raise DataError("the series has no rows")
        frame = frame.rename(columns=str)
        times = self._times(frame)
        channels = self._channels(frame, fit)
        if fit:
            self.channels_ = channels
        return self._values(frame[channels], times), times

    def times(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The time column of ``frame`` in seconds (None without one), checked for holes."""
        return self._times(frame.rename(columns=str))

    def _times(self, frame: pd.DataFrame) -> np.ndarray | None:
        if self.time_col is None:
            return None
        if self.time_col not in frame.columns:
            raise DataError(f"no time column {self.time_col!r} (columns: {list(frame.columns)[:10]})")
        column = frame[self.time_col]
        self._datetimes = not pd.api.types.is_numeric_dtype(column)
        if not self._datetimes:
            seconds = column.to_numpy(dtype=np.float64)
        else:
            try:
                try:  # ISO 8601 (the common case) parses three times faster than "mixed"
                    stamps = pd.to_datetime(column, format="ISO8601")
                except (ValueError, TypeError):
                    # UTC offsets that change (a local clock's summer time, written as -05:00 then
                    # -04:00) are exact instants: read them in UTC, where they run on without a slip
                    utc = _has_offsets(column)
                    stamps = pd.to_datetime(column, format="mixed", utc=utc)
                    if not stamps.is_monotonic_increasing:  # 13/01/2014: day first, where month first goes back
                        stamps = _day_first_if_in_order(column, stamps, utc)
            except (ValueError, TypeError, OverflowError) as exc:
                raise DataError(f"column {self.time_col!r} holds a value that is not a time "
                                f"({str(exc).splitlines()[0][:120]})") from None
            if getattr(stamps.dt, "tz", None) is not None:
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            seconds = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
            seconds[stamps.isna().to_numpy()] = np.nan
        missing = np.flatnonzero(~np.isfinite(seconds))
        if len(missing):
            raise DataError(f"column {self.time_col!r} has an empty or unreadable time at data row {missing[0] + 1}")
        return seconds

    def _channels(self, frame: pd.DataFrame, fit: bool) -> list[str]:
        if fit:
            channels = [c for c in frame.columns if c != self.time_col]
            if not channels:
                raise DataError("the table has no value columns besides the time column")
            return channels
        missing = [c for c in self.channels_ if c not in frame.columns]
        if missing:
            raise DataError(f"missing channel column(s) {missing[:10]}; the model was trained on {self.channels_[:10]}")
        return self.channels_

    def _values(self, frame: pd.DataFrame, times: np.ndarray | None) -> np.ndarray:
        for name in frame.columns:
            column = frame[name]
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                bad = pd.to_numeric(column, errors="coerce").isna() & column.notna()
                example = column[bad].iloc[0] if bad.any() else column.iloc[0]
                hint = " (is it the time column? name it with time_col / --time-col)" if self.time_col is None else ""
                raise DataError(f"column {name!r} should be numeric but holds a non-number ({example!r}){hint}")
        values = frame.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
        if bad.any():
            rows, cols = np.nonzero(bad)
            j = cols[np.argmin(rows)]
            count = int(bad[:, j].sum())
            raise DataError(f"column {frame.columns[j]!r} has {count} missing, infinite or out-of-range value(s), "
                            f"the first at data row {rows.min() + 1}{self._when(times, rows.min())}: "
                            "fill or drop them first")
        return values

    def _when(self, times: np.ndarray | None, row: int) -> str:
        return f" (time {self._format_time(times[row])})" if times is not None else ""

    def _format_time(self, seconds: float) -> str:
        """A time as the user wrote it: a date and time, or the number of a numeric column."""
        return str(pd.Timestamp(round(seconds * 1e9))) if getattr(self, "_datetimes", True) else f"{seconds:g}"

    def check_order(self, times: np.ndarray | None, previous: float | None = None, offset: int = 0) -> None:
        """Refuse rows out of time order (``previous``: the last time of the rows before, for a
        file read in chunks; ``offset``: those rows' count); note gaps, and the few slips a real
        clock makes (see ``_slips``)."""
        if times is None:
            return
        full = np.concatenate([[previous], times]) if previous is not None else times
        steps = np.diff(full)
        first = offset - (1 if previous is not None else 0)  # the data row index of full[0], 0-based
        back = np.flatnonzero(steps <= 0)
        if len(back):
            i = back[0] + 1  # index into full of the first row that does not go forward
            row, when, before = first + i + 1, self._format_time(full[i]), self._format_time(full[i - 1])
            if self._slips(steps[back], len(steps)):
                self.notices_.append(f"{len(back)} row(s) repeat the time before or go back at most an hour (the "
                                     f"first at data row {row}, {when} after {before}): rows are read in file order")
            elif steps[back[0]] == 0:
                raise DataError(f"time {when} repeats at data row {row} (column {self.time_col!r}): "
                                "aggregate or drop repeated times first")
            else:
                raise DataError(f"times go back at data row {row} ({when} after {before}): sort the rows by "
                                f"{self.time_col!r} first")
        interval = getattr(self, "interval_", None)
        if interval and len(steps):
            gaps = steps > GAP_FACTOR * interval
            if gaps.any():
                self.notices_.append(f"{int(gaps.sum())} gap(s) longer than {GAP_FACTOR:g} sampling intervals "
                                     f"(the longest {steps.max() / interval:.0f} intervals, at "
                                     f"{self._format_time(full[np.argmax(steps) + 1])}): rows are read in order, "
                                     "as if consecutive")

    def _slips(self, back_steps: np.ndarray, steps: int) -> bool:
        """Whether steps that do not go forward are a real clock's slips, read in file order
        with a notice: at most 1% of the steps (at least one), each a repeated time or, for
        date-times, a step back of at most an hour (a clock set back, as at the end of summer
        time). Eight of NAB's 58 series hold such slips. More, or a longer step back (rows
        sorted by another column, two series one after the other), is a file out of order."""
        if len(back_steps) > max(1, steps // 100):
            return False
        longest_back = -float(back_steps.min())
        return longest_back == 0 or (getattr(self, "_datetimes", False) and longest_back <= MAX_CLOCK_SLIP_S)

    # ------------------------------------------------------------------ the adapter
    def fit_transform(self, X: Any) -> torch.Tensor:
        self.notices_ = []
        self.interval_ = None
        values, times = self.read(X, fit=True)
        if times is not None and len(times) > 1:
            # the typical step first: check_order refuses disorder before it notes any gap
            self.interval_ = float(np.median(np.diff(times)))
            self.check_order(times)
        centre, spread = values.mean(0), values.std(0)
        constant = spread <= 1e-9 * (np.abs(centre) + 1)
        if constant.all():
            raise DataError("every channel of the training series is constant: there is nothing to learn")
        if constant.any():
            names = [self.channels_[j] for j in np.flatnonzero(constant)]
            self.notices_.append(f"channel(s) {names[:10]} are constant in training: any change there will score high")
        self.center_ = centre.tolist()
        self.scale_ = np.where(constant, np.maximum(np.abs(centre), 1.0), spread).tolist()
        self.sample_shape = (len(self.channels_),)
        return self.scale(values)

    def transform(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        values, times = self.read(X)
        self.check_order(times)
        return self.scale(values)

    def scale(self, values: np.ndarray) -> torch.Tensor:
        """Raw channel values ``[T, C]`` -> the scaled float32 tensor the networks read."""
        scaled = (values - np.asarray(self.center_)) / np.asarray(self.scale_)
        return torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))

    def describe(self) -> str:
        names = ", ".join(self.channels_[:5]) + (" ..." if len(self.channels_) > 5 else "")
        return f"a series of {len(self.channels_)} channel(s) ({names})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "time_col": self.time_col, "channels": self.channels_, "center": self.center_,
                "scale": self.scale_, "interval": self.interval_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesAdapter:
        adapter = cls(d["time_col"])
        channels, center, scale, interval = d["channels"], d["center"], d["scale"], d["interval"]
        if adapter.time_col is not None and not isinstance(adapter.time_col, str):
            raise ModelFileError("config.json: the series' time column must be a name")
        if not isinstance(channels, list) or not channels or not all(isinstance(c, str) for c in channels):
            raise ModelFileError("config.json: the series' channels must be a list of names")
        numbers = [center, scale]
        if any(not isinstance(v, list) or len(v) != len(channels) for v in numbers):
            raise ModelFileError("config.json: the series needs one centre and one scale per channel")
        flat = np.asarray(center + scale, dtype=object)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in flat) \
                or min(scale) <= 0:
            raise ModelFileError("config.json: the series' centre and scale must be finite numbers, scale > 0")
        if interval is not None and (not isinstance(interval, (int, float)) or not np.isfinite(interval)
                                     or interval <= 0):
            raise ModelFileError("config.json: the series' sampling interval must be a positive number")
        adapter.channels_, adapter.center_, adapter.scale_, adapter.interval_ = channels, center, scale, interval
        adapter.sample_shape = (len(channels),)
        return adapter
