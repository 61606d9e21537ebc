"""Time series as the detectors read them: rows in time order, one column per channel.

``SeriesAdapter`` takes a table (CSV/Parquet path or DataFrame) with an optional time column,
or an array ``[T]`` / ``[T, C]``, and returns the channels scaled by their training mean and
standard deviation, ``[T, C]``. With an ID column (``id_col``: a machine, a sensor) a table
holds several series, each in time order, one after the other or interleaved; ``read_series``
splits it. Each series is scaled by its own training statistics (``scaling="each"``; a series
not seen in training, by all of theirs) or all by the same (``"shared"``).

What it refuses, each in one line: a time column that is missing or unreadable; rows out of
time order; NaN or inf values (unless ``impute="ffill"``: each takes the value before it in
its series, ``fill``); non-numbers in a channel; a training series where every channel is
constant. What it accepts with a notice
(``notices_``): gaps longer than ``GAP_FACTOR`` training intervals (rows are taken in order,
as if consecutive), a real clock's few slips (repeated times, a step back of at most an
hour; rows are read in file order) and channels constant in training.
"""
from __future__ import annotations

import os
import re
import shlex
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from pandas.tseries.api import guess_datetime_format

from ..errors import DataError, ModelFileError, grouped_notes
from .adapter_base import DataAdapter
from .preprocess import FLOAT32_MAX, non_number_error, some_columns
from .tables import EMPTY_UNNAMED_NOTE, array_names, as_frame, empty_unnamed

SCALINGS = ("each", "shared")  # of a table of several series: each by its own statistics, or all alike
IMPUTES = (None, "ffill")  # missing values: refused, or each the value before it in its series
FILL_HINT = "impute='ffill', --impute ffill"
NOTES_SHOWN = 5  # of a table of many series, the notes shown before "... and N more"
GAP_FACTOR = 3.0  # a step longer than this many typical intervals is a gap (a notice, not an error)
# a time that starts with a day and a month, in either order: 01/02/2014, 1.2.14, 01-02-2014 10:00
DAY_AND_MONTH = re.compile(r"\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?!\d)")
SHORT_YEAR = re.compile(r"(\s*\d{1,2}[/.-]\d{1,2}[/.-])(\d{2})(?!\d)")  # ... and a year of two digits
TWELVE_HOUR = re.compile(r"(\d{1,2}:\d{2}(?::\d{2})?)(\s*)[AaPp][Mm]$")  # a time of a 12-hour clock, at the end
MAX_CLOCK_SLIP_S = 3600.0  # a date-time clock set back by at most this much is read on, with a notice
# numbers in a time column that are all Unix times from 1990 to 2099, in seconds or milliseconds:
# a clock, whose slips are read on as a date-time's are (a sample count's step back is an error)
UNIX_SECONDS = (631_152_000.0, 4_102_444_800.0)


def condensed(notes: list[str]) -> list[str]:
    """The notes of a table of many series, short: series with the same note share one line
    (``series 'm2', 'm3', 'm4' and 995 more: not in training: ...``), and past the first
    ``NOTES_SHOWN`` lines one more counts the rest. A table of a thousand series, each with
    a gap at another time, gets six lines, not a thousand."""
    lines = grouped_notes(notes, _SERIES_NOTE, _several)
    if len(lines) <= NOTES_SHOWN + 1:
        return lines
    return [*lines[:NOTES_SHOWN], f"... and {len(lines) - NOTES_SHOWN} more notes like these"]


_SERIES_NOTE = re.compile(r"series ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"): (.*)", re.DOTALL)  # as series_note writes


def series_note(key: str | None, text: str) -> str:
    """``text`` (a note or an error) naming the series ``key`` (None: the only one), in the
    form ``condensed`` reads back."""
    return text if key is None else f"series {key!r}: {text}"


def _several(keys: list[str], text: str) -> str:
    more = f" and {len(keys) - 3} more" if len(keys) > 4 else ""
    return f"series {', '.join(keys[:3] if more else keys)}{more}: {text}"


def _statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each channel's mean, standard deviation, and whether it is constant (to rounding)."""
    centre, spread = values.mean(0), values.std(0)
    return centre, spread, spread <= 1e-9 * (np.abs(centre) + 1)


def split_by_code(codes: np.ndarray) -> list[np.ndarray]:
    """The row positions of each code, codes in increasing order, each one's rows in order."""
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1) if len(order) else []


def _first_text(column: pd.Series) -> str:
    """A time column's first value that is there, as text ('' where none is)."""
    present = column.notna().to_numpy()
    return str(column.iloc[int(np.argmax(present))]).strip() if present.any() else ""


def _has_offsets(column: pd.Series) -> bool:
    """Whether a time column's first value carries a UTC offset or zone (``...-05:00``, ``Z``)."""
    return bool(re.search(r"(?:Z|[+-]\d\d:?\d\d)$", _first_text(column)))


def _day_and_month(column: pd.Series) -> bool:
    """Whether a time column's first value starts with a day and a month in either order
    (``01/02/2014``, ``1.2.14``), which pandas reads month first."""
    return bool(DAY_AND_MONTH.match(_first_text(column)))


def _first_non_time(column: pd.Series, positions: np.ndarray) -> str:
    """`` at data row N`` of the first value no time format reads ('' if none stands out)."""
    try:
        bad = (pd.to_datetime(column, format="mixed", errors="coerce", utc=True).isna() & column.notna()).to_numpy()
    except (ValueError, TypeError, OverflowError):
        return ""
    return f" at data row {positions[np.argmax(bad)] + 1}" if bad.any() else ""


def _one_kind_of_time(column: pd.Series, name: str, positions: np.ndarray) -> pd.Series:
    """A time column of Python objects as numbers (seconds) where it holds only numbers, as
    it is where it holds text; both is refused: read together, the numbers would count
    nanoseconds from 1970."""
    numbers = column.map(lambda v: isinstance(v, (int, float, np.number)) and not isinstance(v, bool)).to_numpy(bool)
    present = column.notna().to_numpy()  # a missing time is said as such, later
    if numbers[present].all():
        return column.astype(np.float64)
    if numbers.any():
        start = int(np.argmax(present))
        first = int(np.argmax(present & (numbers != numbers[start])))
        shown = [repr(v) if isinstance(v, str) else str(v) for v in (column.iloc[first], column.iloc[start])]
        raise DataError(f"column {name!r} holds both numbers and text (data row {positions[first] + 1}: "
                        f"{shown[0]} after {shown[1]}): write every time the same way")
    return column


def _text_times(column: pd.Series, utc: bool, known: bool | None = None
                ) -> tuple[pd.Series, str | None, bool | None]:
    """Times written as text (not ISO 8601), read day first (``01/02/2014``: 1 February) or
    month first as pandas reads them: the reading that is in order, and where both are, the
    one with fewer gaps. A European file's 12/01 was read as 1 December and refused as going
    back in time; and where every day of a file was at most 12 (ten days of 5-minute rows),
    month first was in order too and read each day as a month: ten gaps of 30 days in a
    regular series. With a note where both readings are in order with as few gaps (a monthly
    series, 01/02/2024 then 01/03/2024): month first is taken, and the note says so.

    ``known``: the order the training times were read in (``SeriesAdapter.day_first_``), taken
    alone where the times read in order so: a few rows scored at a time (a service's request,
    23:50 on one day and 00:10 on the next) are in order either way.

    Each reading takes every value in the format pandas infers from the first (0.26 s per
    200,000 times); only where no such reading is in order, each value in its own format
    (``format="mixed"``: 7 s). Returns the times, a note, and the order taken (None where
    the times hold no day and month)."""
    ambiguous = _day_and_month(column)
    if ambiguous and known is not None:
        reading = _times_read(column, utc, known, None)
        if reading is not None and reading.is_monotonic_increasing:
            return reading, None, known
    orders = (False, True) if ambiguous else (False,)
    readings = {dayfirst: _times_read(column, utc, dayfirst, None) for dayfirst in orders}
    readings = {dayfirst: r for dayfirst, r in readings.items() if r is not None}
    if not any(r.is_monotonic_increasing for r in readings.values()):
        month_first = _times_read(column, utc, False, "mixed")
        if month_first is None:  # a value that is no time: pandas' own error says which
            month_first = pd.to_datetime(column, format="mixed", utc=utc)
        readings = {False: month_first}
        day_first = None if month_first.is_monotonic_increasing else _times_read(column, utc, True, "mixed")
        if day_first is not None:
            readings[True] = day_first
    in_order = {dayfirst: r for dayfirst, r in readings.items() if r.is_monotonic_increasing}
    if not in_order:  # out of order either way: the check of order says where
        return next(iter(readings.values())), None, None
    gaps = {dayfirst: _gap_count(r) for dayfirst, r in in_order.items()}
    chosen = min(gaps, key=gaps.get)  # a tie: month first, pandas' reading
    taken = chosen if ambiguous else None
    if len(gaps) < 2 or gaps[True] != gaps[False] or in_order[True].equals(in_order[False]):
        return in_order[chosen], None, taken
    differ = int(np.argmax((in_order[True] != in_order[False]).to_numpy()))
    return in_order[chosen], (
        f"times such as {str(column.iloc[differ]).strip()!r} read month first "
        f"({in_order[False].iloc[differ]:%Y-%m-%d}); read day first ({in_order[True].iloc[differ]:%Y-%m-%d}) they "
        "would be in order too: write the times as ISO 8601 (YYYY-MM-DD) to leave no doubt"), taken


def _times_read(column: pd.Series, utc: bool, dayfirst: bool, form: str | None) -> pd.Series | None:
    """``pd.to_datetime`` of the column in format ``form`` (None: the one its first value
    shows), or None where a value does not read so."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' notes on the format it infers
        if form is None:
            form = _first_format(column, dayfirst)
        try:
            return pd.to_datetime(column, utc=utc, dayfirst=dayfirst, format=form)
        except (ValueError, TypeError, OverflowError):
            return None


def _first_format(column: pd.Series, dayfirst: bool) -> str | None:
    """The format of the column's first value as pandas guesses it, which it does not for a
    year of two digits (``01.02.24 10:00``, a spreadsheet's) nor for a 12-hour clock
    (``Jan 05, 2024 01:30 PM``): guessed with the year in full and without AM/PM, and
    written back as ``%y`` and ``%I ... %p`` (50,000 times in 0.1 s instead of 3-4 s)."""
    first = _first_text(column)
    form = guess_datetime_format(first, dayfirst=dayfirst)
    if form is not None:
        return form
    short, clock = SHORT_YEAR.match(first), TWELVE_HOUR.search(first)
    if not (short or clock):
        return None
    probe = first[:clock.start(2)] if clock else first
    if short:
        probe = f"{short.group(1)}20{short.group(2)}{probe[short.end():]}"
    form = guess_datetime_format(probe, dayfirst=dayfirst)
    if form is None:
        return None
    if short:
        form = form.replace("%Y", "%y", 1)
    return form.replace("%H", "%I", 1) + clock.group(2) + "%p" if clock else form


def _unix_unit(numbers: np.ndarray) -> float | None:
    """Seconds per unit of a numeric time column whose values are all Unix times from 1990
    to 2099 in seconds (1.0) or milliseconds (0.001); None for other numbers (a sample count)."""
    finite = numbers[np.isfinite(numbers)]
    if not len(finite):
        return None
    low, high = float(finite.min()), float(finite.max())
    for scale in (1.0, 1e-3):
        if UNIX_SECONDS[0] <= low * scale and high * scale <= UNIX_SECONDS[1]:
            return scale
    return None


def _gap_count(stamps: pd.Series) -> int:
    """How many steps between times in order are over ``GAP_FACTOR`` typical steps (the notes' gaps)."""
    steps = np.diff(stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64))
    steps = steps[steps > 0]
    return int((steps > GAP_FACTOR * np.median(steps)).sum()) if len(steps) else 0


class SeriesAdapter(DataAdapter):
    """Rows of a time series -> channels scaled by their training mean and standard
    deviation (see the module docstring). ``time_col`` names the time column (ISO times or
    numbers); without one, rows are taken in file order."""

    kind: ClassVar[str] = "series"

    def __init__(self, time_col: str | None = None, id_col: str | None = None, scaling: str = "each",
                 impute: str | None = None) -> None:
        self.time_col = time_col
        self.id_col = id_col
        self.scaling = scaling
        self.impute = impute
        self.notices_: list[str] = []
        self.filled_: dict[str | None, int] = {}  # missing values filled per series, not yet in a note
        # whether the training times (text with a day and a month) were read day first; None:
        # no such times, or a model saved before 0.9.10 (each file then read as it reads best)
        self.day_first_: bool | None = None

    # ------------------------------------------------------------------ several series
    def read_series(self, X: Any, fit: bool = False
                    ) -> list[tuple[str | None, np.ndarray | None, np.ndarray, np.ndarray | None]]:
        """``(ID, row positions, values [n, C], times [n] or None)`` of each series of ``X``,
        in the order their IDs first appear, each series' rows in their order (``read`` once
        for the whole table). Without ``id_col``: one, ``(None, None, values, times)``."""
        if self.id_col is None:
            return [(None, None, *self.read(X, fit))]
        frame = self.as_table(X)
        codes, keys = self.series_codes(frame)
        values, times = self.read(frame, fit)  # the ID column is not a channel
        return [(keys[codes[rows[0]]], rows, values[rows], None if times is None else times[rows])
                for rows in split_by_code(codes)]

    def as_table(self, X: Any) -> pd.DataFrame:
        """``X`` as a table; an array is refused where each row's series is read from ``id_col``."""
        X = self._indexed_series(X)
        if not isinstance(X, (pd.DataFrame, str, os.PathLike)):
            raise DataError(f"this model reads each row's series from column {self.id_col!r}: "
                            "pass a table, not an array")
        return self._frame(X)

    def _indexed_series(self, X: Any) -> Any:
        """A pandas Series indexed by the time (or ID) column, as pandas keeps a series
        (``df.set_index("timestamp")["value"]``), as the one-channel table it came from; it was
        refused as an array without times. Anything else as it is."""
        if isinstance(X, pd.Series) and {self.time_col, self.id_col} & set(X.index.names) - {None}:
            return X.to_frame(name=X.name if X.name is not None else "value")
        return X

    def _frame(self, X: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
        """``as_frame(X)``, with a DataFrame's index as a column where it is the time or ID
        column named (pandas keeps a series' times as its index, ``set_index("timestamp")``)."""
        frame = as_frame(X)
        named = {self.time_col, self.id_col} - {None} - set(frame.columns)
        if named and set(frame.index.names) & named:
            frame = frame.reset_index(level=[n for n in frame.index.names if n in named])
        return frame

    def series_codes(self, frame: pd.DataFrame, row_offset: int = 0) -> tuple[np.ndarray, pd.Index]:
        """Each row's series as a number (``keys[code]`` is its ID, as text), in the order the
        IDs first appear; an empty ID is refused (``row_offset``: the data rows before
        ``frame``). IDs are compared as text: a file read in chunks may read 7 as a number in
        one chunk and as text in the next."""
        if self.id_col not in frame.columns:
            raise DataError(f"no series ID column {self.id_col!r} (columns: {list(frame.columns)[:10]})")
        column = frame[self.id_col]
        empty = column.isna().to_numpy()
        if not empty.any():
            codes, keys = pd.factorize(column.astype(str), sort=False)
            if "" not in keys:  # an empty text, as a table in memory or a JSON request may hold
                return codes, keys
            empty = codes == keys.get_loc("")
        raise DataError(f"column {self.id_col!r} has an empty series ID at data row "
                        f"{row_offset + int(np.argmax(empty)) + 1}")

    # ------------------------------------------------------------------ reading
    def read(self, X: Any, fit: bool = False, positions: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(values [T, C] float64, times [T] float64 seconds or None)``, checked; errors name
        the data row, ``positions`` (0-based) where ``X`` is not a file's first rows."""
        X = self._indexed_series(X)
        if isinstance(X, (pd.DataFrame, str, os.PathLike)):
            frame = self._frame(X)
        else:
            arr = np.asarray(X)
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.ndim != 2:
                raise DataError(f"expected a series [T] or [T, channels], got an array of shape {arr.shape}")
            if self.time_col is not None:
                raise DataError(f"this model reads its times from column {self.time_col!r}: pass a table, not an array")
            names = array_names(arr.shape[1]) if fit else self.channels_
            if len(names) != arr.shape[1]:
                raise DataError(f"the series has {arr.shape[1]} channels, the model was trained on {len(names)}")
            frame = pd.DataFrame(arr, columns=names)
        if not len(frame):
            raise DataError("the series has no rows")
        numbers = np.arange(len(frame)) if positions is None else np.asarray(positions)
        times = self._times(frame, numbers, fit)
        channels = self._channels(frame, fit)
        if fit:
            self.channels_ = channels
        return self._values(frame[channels], times, numbers), times

    def times(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The time column of ``frame`` in seconds (None without one), checked for holes."""
        return self._times(self._frame(frame), np.arange(len(frame)))

    def _times(self, frame: pd.DataFrame, positions: np.ndarray, fit: bool = False) -> np.ndarray | None:
        """The time column in seconds; with ``fit``, the order its text dates read in is kept
        (``day_first_``), and new times are read in it."""
        if fit:
            self.day_first_ = None
        if self.time_col is None:
            return None
        if self.time_col not in frame.columns:
            raise DataError(f"no time column {self.time_col!r} (columns: {list(frame.columns)[:10]})")
        column = frame[self.time_col]
        if column.dtype == object:  # a table in memory or a JSON request: numbers here would be read as nanoseconds
            column = _one_kind_of_time(column, self.time_col, positions)
        self._datetimes = not pd.api.types.is_numeric_dtype(column)
        if not self._datetimes:
            seconds = column.to_numpy(dtype=np.float64)
            self._clock_scale = _unix_unit(seconds)
        else:
            self._clock_scale = 1.0
            try:
                try:  # ISO 8601 (the common case) parses three times faster than "mixed"
                    stamps = pd.to_datetime(column, format="ISO8601")
                except (ValueError, TypeError):
                    # UTC offsets that change (a local clock's summer time, written as -05:00 then
                    # -04:00) are exact instants: read them in UTC, where they run on without a slip
                    stamps, note, order = _text_times(column, _has_offsets(column), self.day_first_)
                    if fit:
                        self.day_first_ = order
                    if note and note not in self.notices_:
                        self.notices_.append(note)
            except (ValueError, TypeError, OverflowError) as exc:
                raise DataError(f"column {self.time_col!r} holds a value that is not a time"
                                f"{_first_non_time(column, positions)} ({str(exc).splitlines()[0][:120]})") from None
            if getattr(stamps.dt, "tz", None) is not None:
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            seconds = stamps.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64) / 1e9
            seconds[stamps.isna().to_numpy()] = np.nan
        missing = np.flatnonzero(~np.isfinite(seconds))
        if len(missing):
            raise DataError(f"column {self.time_col!r} has an empty or unreadable time at data row "
                            f"{positions[missing[0]] + 1}")
        return seconds

    def _channels(self, frame: pd.DataFrame, fit: bool) -> list[str]:
        if fit:
            named = [c for c in (self.time_col, self.id_col) if c is not None]
            blank = empty_unnamed(frame)
            if blank:
                self.notices_.append(f"column(s) {some_columns(blank)} {EMPTY_UNNAMED_NOTE}")
            channels = [c for c in frame.columns if c not in named and c not in blank]
            if not channels:
                besides = f" besides {' and '.join(map(repr, named))}" if named else ""
                raise DataError(f"the table has no value columns{besides}")
            return channels
        missing = [c for c in self.channels_ if c not in frame.columns]
        if missing:
            raise DataError(f"missing channel column(s) {missing[:10]}; the model was trained on {self.channels_[:10]}")
        return self.channels_

    def _values(self, frame: pd.DataFrame, times: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
        for name in frame.columns:
            column = frame[name]
            if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                dropped = shlex.quote(str(name))
                hint = (" (is it the time column? name it with time_col / --time-col)" if self.time_col is None
                        else f": every column but the time is a channel; leave it out (--drop-cols {dropped})")
                raise non_number_error(column, name, fill=FILL_HINT, other_fix=hint, reread=True)
        values = frame.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
        if bad.any() and self.impute is not None:
            values = np.where(bad, np.nan, values)  # filled per series, where the value before each is known (fill)
        elif bad.any():
            rows, cols = np.nonzero(bad)
            j = cols[np.argmin(rows)]
            count = int(bad[:, j].sum())
            raise DataError(f"column {frame.columns[j]!r} has {count} missing, infinite or out-of-range value(s), "
                            f"the first at data row {positions[rows.min()] + 1}{self._when(times, rows.min())}: "
                            "fill or drop them first, or impute='ffill' (--impute ffill)")
        return values

    def fill(self, values: np.ndarray, key: str | None = None, before: np.ndarray | None = None,
             fit: bool = False) -> np.ndarray:
        """With ``impute="ffill"``, the rows ``[n, C]`` of the series ``key`` with each missing
        value replaced by the last value before it (``before``: the series' last row before
        these, for a file read in chunks); one with none before it takes the series' training
        mean (in training, its own mean). The result is the same however a file is chunked.
        Counted per series in ``filled_``, for a note at the end (``note_filled``)."""
        missing = np.isnan(values)
        if self.impute is None or not missing.any():
            return values
        if before is not None:
            values, missing = np.vstack([before, values]), np.vstack([np.isnan(before), missing])
        rows = np.arange(len(values))[:, None]
        last = np.maximum.accumulate(np.where(missing, -1, rows), axis=0)  # each cell's last present row
        filled = np.take_along_axis(values, np.maximum(last, 0), axis=0)
        if fit:
            empty = missing.all(axis=0)
            if empty.any():
                raise DataError(f"channel {self.channels_[int(np.argmax(empty))]!r} has no values in training: "
                                "nothing to fill its gaps with")
            centre = np.nanmean(values, axis=0)
        else:
            centre = self._statistics_of(key)[0]
        filled = np.where(last < 0, centre, filled)
        count = int(missing[1:].sum() if before is not None else missing.sum())
        self.filled_[key] = self.filled_.get(key, 0) + count
        return filled[1:] if before is not None else filled

    def note_filled(self) -> None:
        """One note per series of the missing values ``fill`` has filled since the last one
        (a file read in chunks fills a series' values chunk by chunk)."""
        for key, count in self.filled_.items():
            self.notices_.append(series_note(key, f"{count} missing value(s) filled with the value before each "
                                                  "(impute='ffill')"))
        self.filled_ = {}

    def _when(self, times: np.ndarray | None, row: int) -> str:
        return f" (time {self._format_time(times[row])})" if times is not None else ""

    def _format_time(self, seconds: float) -> str:
        """A time as the user wrote it: a date and time, or the number of a numeric column."""
        if getattr(self, "_datetimes", True):
            return str(pd.Timestamp(round(seconds * 1e9)))
        return f"{seconds:.15g}"  # every digit: Unix times (1386018900) differ in their last ones

    def check_order(self, times: np.ndarray | None, previous: float | None = None,
                    positions: np.ndarray | None = None) -> None:
        """Refuse rows out of time order (``previous``: the last time of the rows before, for a
        file read in chunks; ``positions``: the rows' 0-based data rows, if not the file's
        first); note gaps, and the few slips a real clock makes (see ``_slips``)."""
        if times is None:
            return
        full = np.concatenate([[previous], times]) if previous is not None else times
        steps = np.diff(full)
        back = np.flatnonzero(steps <= 0)
        if len(back):
            i = back[0] + 1  # index into full of the first row that does not go forward
            j = i - (1 if previous is not None else 0)  # ... and into times
            row = (j if positions is None else int(positions[j])) + 1
            when, before = self._format_time(full[i]), self._format_time(full[i - 1])
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
        sorted by another column, two series one after the other), is a file out of order.
        Numbers that are all Unix times (``_unix_unit``) are a clock too."""
        if len(back_steps) > max(1, steps // 100):
            return False
        longest_back = -float(back_steps.min())
        scale = getattr(self, "_clock_scale", None)  # seconds per unit of a clock's times
        return longest_back == 0 or (scale is not None and longest_back * scale <= MAX_CLOCK_SLIP_S)

    # ------------------------------------------------------------------ the adapter
    def fit_transform(self, X: Any) -> torch.Tensor:
        """The training rows scaled, ``[T, C]``: with ``id_col``, series after series."""
        return self.fit_series(X)[0]

    def fit_series(self, X: Any) -> tuple[torch.Tensor, list[tuple[Any, np.ndarray | None, int]]]:
        """``fit_transform``'s rows, and the series they hold in that order: ``(ID, row
        positions in X or None, rows)`` each, what the detector cuts into windows."""
        self.notices_ = []
        self.interval_ = None
        self.filled_ = {}
        read = [(key, positions, self.in_series(key, self.fill, values, key, None, True), times)
                for key, positions, values, times in self.read_series(X, fit=True)]
        self.note_filled()
        self.n_series_ = len(read)
        steps = [np.diff(times) for _, _, _, times in read if times is not None and len(times) > 1]
        if steps:
            # the typical step first: check_order refuses disorder before it notes any gap
            self.interval_ = float(np.median(np.concatenate(steps)))
            for key, positions, _, times in read:
                self.in_series(key, self.check_order, times, None, positions)
        centre, spread, constant = _statistics(np.concatenate([values for _, _, values, _ in read]))
        if constant.all():
            raise DataError("every channel of the training series is constant: there is nothing to learn")
        if constant.any():
            names = [self.channels_[j] for j in np.flatnonzero(constant)]
            self.notices_.append(f"channel(s) {names[:10]} are constant in training: any change there will score high")
        self.center_ = centre.tolist()
        self.scale_ = np.where(constant, np.maximum(np.abs(centre), 1.0), spread).tolist()
        self.sample_shape = (len(self.channels_),)
        self.series_stats_: dict[str, list[list[float]]] | None = None
        if self.id_col is not None and self.scaling == "each":
            self.series_stats_ = {key: self._own_statistics(key, own, constant) for key, _, own, _ in read}
        series = [(key, positions, len(values)) for key, positions, values, _ in read]
        return torch.cat([self.scale(own, key) for key, _, own, _ in read]), series

    def _own_statistics(self, key: str, values: np.ndarray, constant_in_all: np.ndarray) -> list[list[float]]:
        """``[centre, spread]``: a series' own training statistics; where a channel is constant
        in that series, the spread of all the series (noted where it is not constant in all)."""
        centre, spread, constant = _statistics(values)
        alone = np.flatnonzero(constant & ~constant_in_all)
        if len(alone):
            self.notices_.append(series_note(key, f"channel(s) {[self.channels_[j] for j in alone][:10]} are "
                                             "constant in its training rows: scaled by the spread of all the series"))
        return [centre.tolist(), np.where(constant, self.scale_, spread).tolist()]

    def note_if_unknown(self, key: str | None) -> None:
        """A note for a series not seen in training, which ``scale`` scales by all the training
        series' statistics (no note for shared scaling, where every series is)."""
        if key is not None and self.series_stats_ is not None and key not in self.series_stats_:
            self.notices_.append("not in training: scaled by the mean and spread of all the training series")

    def transform(self, X: Any) -> torch.Tensor:
        """One series' rows scaled (a table of several is scored through the detector's
        ``SeriesTableStream``, which reads and scales each series with ``checked_scaled``)."""
        self._check_fitted()
        values, times = self.read(X)
        values = self.fill(values)
        self.note_filled()
        return self.checked_scaled(None, values, times)

    def checked_scaled(self, key: str | None, values: np.ndarray, times: np.ndarray | None,
                       positions: np.ndarray | None = None, previous: float | None = None,
                       first: bool = True) -> torch.Tensor:
        """Rows of the series ``key`` as ``read`` gives them, checked in time order (after the
        time ``previous`` of the rows before) and scaled by the series' statistics; errors and
        notes name the series (a note for a series unseen in training with its ``first`` rows)."""
        def checked() -> torch.Tensor:
            self.check_order(times, previous, positions)
            if first:
                self.note_if_unknown(key)
            return self.scale(values, key)

        return self.in_series(key, checked)

    def in_series(self, key: Any, step: Any, *args: Any) -> Any:
        """``step(*args)`` for the series ``key`` (None: the only one): its errors and new
        notices name the series."""
        if key is None:
            return step(*args)
        before = len(self.notices_)
        try:
            result = step(*args)
        except DataError as exc:
            raise DataError(series_note(key, str(exc))) from None
        self.notices_[before:] = [series_note(key, line) for line in self.notices_[before:]]
        return result

    def scale(self, values: np.ndarray, key: str | None = None) -> torch.Tensor:
        """Raw channel values ``[T, C]`` of the series ``key`` -> the scaled float32 tensor the
        networks read."""
        centre, spread = self._statistics_of(key)
        scaled = (values - centre) / spread
        return torch.from_numpy(np.ascontiguousarray(scaled, dtype=np.float32))

    def _statistics_of(self, key: str | None) -> tuple[np.ndarray, np.ndarray]:
        """``(centre, spread)`` the series ``key`` is scaled by: its own, or all the training
        series' (shared scaling, a series unseen in training, or a model of one series)."""
        own = (self.series_stats_ or {}).get(key) if key is not None else None
        centre, spread = own if own is not None else (self.center_, self.scale_)
        return np.asarray(centre), np.asarray(spread)

    def describe(self) -> str:
        names = ", ".join(self.channels_[:5]) + (" ..." if len(self.channels_) > 5 else "")
        what = f"{self.n_series_} series (by {self.id_col!r})" if self.id_col else "a series"
        return f"{what} of {len(self.channels_)} channel(s) ({names})"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "time_col": self.time_col, "id_col": self.id_col, "channels": self.channels_,
                "center": self.center_, "scale": self.scale_, "interval": self.interval_, "n_series": self.n_series_,
                "scaling": self.scaling, "series_stats": self.series_stats_, "impute": self.impute,
                "day_first": self.day_first_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeriesAdapter:
        # before 0.9.4: one series; before 0.9.5: no imputing
        adapter = cls(d["time_col"], d.get("id_col"), d.get("scaling", "each"), d.get("impute"))
        if adapter.impute not in IMPUTES:
            raise ModelFileError(f"config.json: the series' impute must be one of {IMPUTES}, got {adapter.impute!r}")
        adapter.day_first_ = d.get("day_first")  # before 0.9.10: each file read as it reads best
        if adapter.day_first_ not in (None, True, False):
            raise ModelFileError(f"config.json: the series' day_first must be true, false or null, "
                                 f"got {adapter.day_first_!r}")
        channels, center, scale, interval = d["channels"], d["center"], d["scale"], d["interval"]
        if any(c is not None and not isinstance(c, str) for c in (adapter.time_col, adapter.id_col)):
            raise ModelFileError("config.json: the series' time and ID columns must be names")
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
        n_series = d.get("n_series", 1)
        if not isinstance(n_series, int) or isinstance(n_series, bool) or n_series < 1:
            raise ModelFileError("config.json: the number of training series must be a positive integer")
        adapter.channels_, adapter.center_, adapter.scale_, adapter.interval_ = channels, center, scale, interval
        adapter.n_series_ = n_series
        adapter.series_stats_ = _series_stats(d.get("series_stats"), len(channels))
        adapter.sample_shape = (len(channels),)
        return adapter


def _series_stats(stats: Any, channels: int) -> dict[str, list[list[float]]] | None:
    """A model file's per-series statistics ``{ID: [centre, spread]}``, checked (None: shared scaling)."""
    if stats is None:
        return None
    if not isinstance(stats, dict):
        raise ModelFileError("config.json: the series' own statistics must be a mapping from ID to [centre, spread]")
    out = {}
    for key, pair in stats.items():
        ok = isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, list) and len(v) == channels
                                                                for v in pair)
        numbers = [x for v in pair for x in v] if ok else []
        if not ok or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x)
                             for x in numbers) or min(pair[1]) <= 0:
            raise ModelFileError(f"config.json: series {key!r} needs a finite centre and a positive spread "
                                 "per channel")
        out[key] = pair
    return out
