"""How a codec is judged: PSNR, bits per pixel from file bytes, and the Bjontegaard delta rate.

``bd_rate(anchor, test)`` is the average difference in bitrate, in percent, between two
rate-distortion curves over the PSNR range they share (Bjontegaard, VCEG-M33, 2001): each
curve's log-rate is fitted as a cubic polynomial of PSNR, and the integrals of the two fits
over the common interval are compared. Negative: ``test`` needs fewer bits than ``anchor``.
"""
from __future__ import annotations

import numpy as np

from ...errors import DataError


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB, peak 255, over every pixel and channel."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def bpp(n_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a file of ``n_bytes`` for an image of ``height`` x ``width``."""
    return 8.0 * n_bytes / (height * width)


def _curve(points: list[tuple[float, float]], name: str) -> tuple[np.ndarray, np.ndarray]:
    rate, quality = (np.asarray(v, np.float64) for v in zip(*sorted(points, key=lambda p: p[1])))
    if len(rate) < 4:
        raise DataError(f"the {name} curve needs at least 4 (bpp, PSNR) points for a cubic fit, got {len(rate)}")
    if not (np.all(rate > 0) and np.all(np.isfinite(quality))):
        raise DataError(f"the {name} curve needs positive rates and finite PSNRs")
    return np.log(rate), quality


def bd_rate(anchor: list[tuple[float, float]], test: list[tuple[float, float]]) -> float:
    """Bjontegaard delta rate of ``test`` against ``anchor`` in percent; each curve is a list
    of ``(bpp, psnr)`` points."""
    log_ra, qa = _curve(anchor, "anchor")
    log_rt, qt = _curve(test, "test")
    low, high = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    if not low < high:
        raise DataError(f"the curves share no PSNR range (anchor {qa.min():.2f}-{qa.max():.2f} dB, "
                        f"test {qt.min():.2f}-{qt.max():.2f} dB)")
    fit_a, fit_t = np.polyint(np.polyfit(qa, log_ra, 3)), np.polyint(np.polyfit(qt, log_rt, 3))
    mean_a = (np.polyval(fit_a, high) - np.polyval(fit_a, low)) / (high - low)
    mean_t = (np.polyval(fit_t, high) - np.polyval(fit_t, low)) / (high - low)
    return float((np.exp(mean_t - mean_a) - 1) * 100)
