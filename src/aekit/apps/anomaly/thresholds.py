"""Three ways to turn anomaly scores into a decision, all stored with the model.

- contamination (PyOD's way): the expected share of anomalies in the training data; the
  threshold is that upper quantile of the training scores (image detectors: of the held-out
  training images' scores, ``ThresholdRule.held_out``).
- ``"fpr:0.01"``: a false-alarm rate on clean data: the usual need when the anomaly share is
  unknown. Images and series read their held-out samples (the validation split, never used
  for gradient steps); tables read those and their training rows scored leave-one-out,
  which score as new normal rows do (``ThresholdRule.reads``); ``set_threshold`` reads the
  clean samples it is given. The threshold is the quantile at position (n + 1)(1 - R) of the
  n scores (``false_alarm_quantile``), which a new sample like them exceeds about R of the
  time on average. Where runs of neighbouring rows score alike (a series' rows share windows,
  ``ThresholdRule.span``), it is an upper prediction bound over the few independent samples
  the held-out rows hold, where higher (``prediction_bound``).
- an explicit score (a number, or ``"score:3.5"``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import DataNotice, ParameterError

# how closely the scoring paths agree (torch in float64, numpy and ONNX in float32): 1e-5 relative
SCORE_ROUNDING = 1e-5
# what an fpr threshold reads (ThresholdRule.reads): the held-out samples, those and the
# training samples scored leave-one-out, every training sample (none held out), or the clean
# samples given to set_threshold
FPR_READS = {"held-out": "held-out clean data", "held-out and training": "held-out and leave-one-out training data",
             "training": "the training data", "given": "the clean data given"}


@dataclass(frozen=True)
class ThresholdRule:
    method: str  # "contamination" | "fpr" | "score"
    value: float
    held_out: bool = False  # a contamination quantile of the held-out training samples' scores
    span: int = 1  # fpr: rows that score alike, as one sample (a series' window); 1: samples independent
    reads: str = "held-out"  # fpr: which clean scores (FPR_READS)

    def describe(self) -> str:
        where = "held-out training" if self.held_out else "training"
        bound = f", a bound over its windows of {self.span} rows" if self.span > 1 else ""
        return {"contamination": f"contamination {self.value:g} of the {where} scores",
                "fpr": f"false-alarm rate {self.value:g} on {FPR_READS[self.reads]}{bound}",
                "score": f"explicit score {self.value:g}"}[self.method]


def parse_threshold(threshold: Any, contamination: float) -> ThresholdRule:
    """``threshold`` is None (use ``contamination``), a number, or ``"fpr:R"`` /
    ``"contamination:C"`` / ``"score:S"``."""
    if threshold is None:
        rule = ThresholdRule("contamination", float(contamination))
    elif isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        rule = ThresholdRule("score", float(threshold))
    elif isinstance(threshold, str):
        method, _, value = threshold.partition(":")
        if not value:
            method, value = "score", threshold
        try:
            rule = ThresholdRule(method.strip().lower(), float(value))
        except ValueError:
            raise ParameterError(f"threshold {threshold!r} is not 'fpr:RATE', 'contamination:SHARE' or a number") from None
        if rule.method not in ("fpr", "contamination", "score"):
            raise ParameterError(f"threshold method {method!r} unknown: use 'fpr:RATE', 'contamination:SHARE' or a number")
    else:
        raise ParameterError(f"threshold must be None, a number or a string such as 'fpr:0.01', got {threshold!r}")
    if rule.method in ("fpr", "contamination") and not 0.0 < rule.value < 0.5 + 1e-12:
        raise ParameterError(f"{rule.method} must be in (0, 0.5], got {rule.value}")
    if rule.method == "score" and not np.isfinite(rule.value):
        raise ParameterError(f"threshold score must be finite, got {rule.value}")
    return rule


def resolve_threshold(rule: ThresholdRule, train_scores: np.ndarray, clean_scores: np.ndarray) -> float:
    """The score above which a row is called an anomaly."""
    if rule.method == "score":
        return rule.value
    scores = train_scores if rule.method == "contamination" and not rule.held_out else clean_scores
    if rule.method == "contamination":
        # nanquantile: a series too short to score has NaN training scores (apps/anomaly/series.py)
        return float(np.nanquantile(scores, 1.0 - rule.value))
    quantile = false_alarm_quantile(scores, rule.value, warn=rule.span == 1)
    if rule.span > 1:  # never below the rows' own quantile (a heavy tail)
        return max(quantile, prediction_bound(scores, rule.value, rule.span))
    return quantile


def false_alarm_quantile(scores: np.ndarray, rate: float, warn: bool = True) -> float:
    """The score a new sample like ``scores`` exceeds ``rate`` of the time on average (a
    little less between two order statistics): the quantile at position (n + 1)(1 - rate) of
    the n scores (numpy's ``weibull``). The k-th smallest of n is exceeded (n + 1 - k) /
    (n + 1) of the time, so numpy's default position, (n - 1)(1 - rate) + 1, flags more than
    promised near the top (held-out development sets: 7.5% of their new normal rows at
    fpr:0.05, BENCHMARKS.md). Under 1 / rate - 1 scores it is their maximum, exceeded
    1 / (n + 1) of the time, which a note says."""
    finite = scores[np.isfinite(scores)]  # a series too short to score has NaN scores
    if not len(finite):
        return float("nan")
    if warn and (len(finite) + 1) * (1.0 - rate) > len(finite):
        warnings.warn(f"the threshold fpr:{rate:g} reads {len(finite)} clean scores, fewer than the "
                      f"{int(np.ceil(1 / rate - 1))} it needs: it is their maximum, which new normal samples exceed "
                      f"about {1 / (len(finite) + 1):.1%} of the time; give more clean samples, or the threshold as "
                      "a score (threshold=, --threshold)", DataNotice, stacklevel=4)
    quantile = float(np.quantile(finite, 1.0 - rate, method="weibull"))
    # often one of the clean scores itself (their maximum, or an exact position): lifted by the
    # scoring paths' rounding, so that sample is normal whichever path scores it again
    return quantile + SCORE_ROUNDING * abs(quantile)


def prediction_bound(scores: np.ndarray, rate: float, span: int) -> float:
    """The score a new row like ``scores`` exceeds with probability ``rate``, where runs of
    ``span`` neighbouring rows score alike: the upper prediction bound for one new draw of a
    normal sample of ``len / span`` independent draws (Student's t). A quantile of such rows
    reads a handful of draws: the held-out stretch's own 99th percentile flagged a median 17%
    of the later rows of stationary series, not 1% (BENCHMARKS.md)."""
    from scipy.stats import t

    finite = scores[np.isfinite(scores)]
    if len(finite) < 2:  # no spread to bound
        return -np.inf
    draws = max(len(finite) / span, 2.0)
    return float(finite.mean() + t.ppf(1.0 - rate, draws - 1) * finite.std(ddof=1) * np.sqrt(1 + 1 / draws))


def expected_share(rule: ThresholdRule) -> float | None:
    """The share of rows like the training ones that ``rule`` flags (its contamination or
    false-alarm rate); None for an explicit score."""
    return rule.value if rule.method in ("contamination", "fpr") else None
