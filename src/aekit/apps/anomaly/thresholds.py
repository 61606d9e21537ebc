"""Three ways to turn anomaly scores into a decision, all stored with the model.

- contamination (PyOD's way): the expected share of anomalies in the training data; the
  threshold is that upper quantile of the training scores (image detectors: of the held-out
  training images' scores, ``ThresholdRule.held_out``).
- ``"fpr:0.01"``: a false-alarm rate on held-out clean data (the validation split, never
  used for gradient steps): the usual need when the anomaly share is unknown.
- an explicit score (a number, or ``"score:3.5"``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import ParameterError


@dataclass(frozen=True)
class ThresholdRule:
    method: str  # "contamination" | "fpr" | "score"
    value: float
    held_out: bool = False  # a contamination quantile of the held-out training samples' scores

    def describe(self) -> str:
        where = "held-out training" if self.held_out else "training"
        return {"contamination": f"contamination {self.value:g} of the {where} scores",
                "fpr": f"false-alarm rate {self.value:g} on held-out clean data",
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
    # nanquantile: a series too short to score has NaN training scores (apps/anomaly/series.py)
    return float(np.nanquantile(scores, 1.0 - rule.value))


def expected_share(rule: ThresholdRule) -> float | None:
    """The share of rows like the training ones that ``rule`` flags (its contamination or
    false-alarm rate); None for an explicit score."""
    return rule.value if rule.method in ("contamination", "fpr") else None
