"""The window of a series detector with ``window="auto"``: two cycles of the series' dominant
period where its autocorrelation shows one, else ``FALLBACK_WINDOW`` rows.

On NAB (BENCHMARKS.md, "A window from the series' own cycle") it ranks rows better than the
fixed 64 rows on both halves, but a longer window spreads an anomaly's score over a window's
rows on each side (256 rows of 5-minute data: 21 hours), so it is an option, not the default.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FALLBACK_WINDOW = 64  # rows, where no cycle stands out (the detector's default window)
CYCLES_PER_WINDOW = 2
WINDOW_RANGE = (16, 256)  # the automatic window's bounds, in rows
MIN_PERIOD, MAX_PERIOD = 4, 512  # the lags searched for a cycle
MIN_PEAK = 0.2  # the autocorrelation a cycle's lag must reach
MIN_CYCLES_SEEN = 3  # a period is looked for only up to a third of the series' length
TRAIN_SHARE = 4  # the window is at most a quarter of a (typical) training series


def autocorrelation(values: np.ndarray, lags: int) -> np.ndarray:
    """The mean over the channels of ``values [T, C]`` of each channel's autocorrelation at
    lags ``0..lags-1`` (through the FFT: O(T log T)); a constant channel counts as none."""
    centred = values - values.mean(0)
    n = len(centred)
    spectrum = np.fft.rfft(centred, 2 * n, axis=0)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), axis=0)[:lags]
    live = acov[0] > 1e-12 * n
    if not live.any():
        return np.zeros(lags)
    return (acov[:, live] / acov[0, live]).mean(1)


def dominant_period(values: np.ndarray) -> int | None:
    """The lag of the highest autocorrelation peak of ``values [T, C]`` after its first dip
    below zero, where that peak reaches ``MIN_PEAK``; None where no cycle stands out."""
    lags = min(MAX_PERIOD, len(values) // MIN_CYCLES_SEEN)
    if lags <= MIN_PERIOD + 1:
        return None
    tail = autocorrelation(np.asarray(values, np.float64), lags)[MIN_PERIOD:]
    below = np.flatnonzero(tail < 0)
    if not len(below):
        return None
    peak = below[0] + int(np.argmax(tail[below[0]:]))
    return MIN_PERIOD + int(peak) if tail[peak] >= MIN_PEAK else None


def fleet_period(series: Sequence[np.ndarray]) -> int | None:
    """The period of several series: the median of their own periods where at least half of
    them show one (machines of one kind share a cycle, not its phase, so their mean
    autocorrelation would blur it), else None."""
    found = [p for p in (dominant_period(s) for s in series) if p is not None]
    return int(np.median(found)) if found and 2 * len(found) >= len(series) else None


def auto_window(series: Sequence[np.ndarray]) -> tuple[int, str]:
    """``(window, why)`` for training series ``[T, C]`` each: ``CYCLES_PER_WINDOW`` cycles of
    the dominant period within ``WINDOW_RANGE`` (``FALLBACK_WINDOW`` without one), and at
    most a ``TRAIN_SHARE``-th of the median series' length, so that training has windows;
    ``why`` says which, for a note."""
    period = fleet_period(series)
    low, high = WINDOW_RANGE
    if period is None:
        window, why = FALLBACK_WINDOW, "no cycle stands out"
    else:
        window = int(np.clip(CYCLES_PER_WINDOW * period, low, high))
        why = f"{CYCLES_PER_WINDOW} cycles of {period} rows" + (
            "" if window == CYCLES_PER_WINDOW * period else f", within {low}-{high} rows")
    typical = int(np.median([len(s) for s in series]))
    most = max(8, typical // TRAIN_SHARE)
    if window > most:
        window, why = most, f"{why}; at most a quarter of a {typical}-row training series"
    return window, why
