"""Metrics and the PNG report of an anomaly detector on a labelled (or unlabelled) table."""
from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ... import plots
from ...data.preprocess import BOOLEAN_SPELLINGS, category_text, label_text
from ...errors import DataError
from ...io import atomic_write_text, claim_output_dir

REPORT_KIND = "anomaly report"  # the marker of a report folder: a later report may replace it
MAX_CLASSES = 100  # label values broken down one by one at most (class_breakdown)


@dataclass
class Metrics:
    rows: int
    anomalies_true: int
    anomalies_flagged: int
    auc_roc: float
    auc_pr: float
    threshold: float
    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    def lines(self, unit: str = "rows") -> list[str]:
        return [
            f"{unit} {self.rows}, true anomalies {self.anomalies_true}, flagged {self.anomalies_flagged}",
            f"AUC-ROC   {self.auc_roc:.4f}",
            f"AUC-PR    {self.auc_pr:.4f}",
            f"threshold {self.threshold:.4g}  (precision {self.precision:.3f}, recall {self.recall:.3f})",
            f"false alarms {self.fp} of {self.tn + self.fp} normal {unit}"
            + (f" ({self.fp / (self.tn + self.fp):.1%})" if self.tn + self.fp else ""),
            "confusion matrix (rows: true normal/anomaly, columns: predicted normal/anomaly)",
            f"  normal   {self.tn:6d} {self.fp:6d}",
            f"  anomaly  {self.fn:6d} {self.tp:6d}",
        ]


def binary_labels(labels: pd.Series | np.ndarray, normal_value: Any = None) -> np.ndarray:
    """1 = anomaly. With ``normal_value``, every other value is an anomaly; without it the
    labels must already be 0/1 (or booleans)."""
    s = pd.Series(labels)
    missing = int(s.isna().sum())
    if missing:
        raise DataError(f"the label column has {missing} missing value(s); every evaluated row needs a label")
    if normal_value is not None:
        return (~is_normal_value(s, normal_value)).astype(int)
    values = set(pd.unique(s.dropna()))
    if values <= {0, 1}:  # True and False compare equal to 1 and 0
        return s.astype(int).to_numpy()
    raise DataError(f"labels are not 0/1 (saw {sorted(map(str, values))[:5]}); name the normal value "
                    "(--normal-value)")


# a boolean label's spellings, as a boolean feature column reads them (t/f, yes/no, 1/0, ...)
BOOLEAN_TEXT = {spelling.lower(): value == "True" for value, spellings in BOOLEAN_SPELLINGS.items()
                for spelling in (value, *spellings)}


def is_normal_value(labels: pd.Series | np.ndarray, normal_value: Any) -> np.ndarray:
    """Which labels are ``normal_value``, compared as text (stripped); in a number column,
    0, 0.0 and '0' alike (a label column with a gap reads as floats: `--normal-value 0` found
    no row among 0.0 and 1.0); in a boolean column, false, False, 0 and no alike."""
    s = pd.Series(labels)
    wanted = str(normal_value).strip()
    if pd.api.types.is_bool_dtype(s) and wanted.lower() in BOOLEAN_TEXT:  # true, TRUE, 1 and yes alike
        return np.asarray(s == BOOLEAN_TEXT[wanted.lower()], dtype=bool)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        number = pd.to_numeric(pd.Series([wanted]), errors="coerce").iloc[0]
        wanted = label_text(float(number)) if pd.notna(number) else wanted
    return np.asarray(label_classes(s) == wanted, dtype=bool)


def label_classes(labels: pd.Series | np.ndarray) -> pd.Categorical:
    """The labels' values as ``binary_labels`` compares them (text, stripped; a number as
    ``label_text`` writes it, 1 for 1.0), as categories."""
    return pd.Categorical(category_text(pd.Series(labels)).astype(str).str.strip())


def class_breakdown(scores: np.ndarray, classes: pd.Categorical, y: np.ndarray, threshold: float,
                    unit: str = "rows") -> list[dict[str, Any]]:
    """Per label value (``classes``, one per score): how many ``unit`` it has, the share
    flagged, and for an anomalous value its AUC-ROC against the normal ones (None for the
    normal value): which kinds of anomaly a model misses. Empty for more than
    ``MAX_CLASSES`` values, which are no kinds to read one by one (an ID, a measurement)."""
    if len(classes.categories) > MAX_CLASSES:
        return []
    normal = np.sort(scores[y == 0])  # sorted once: each value's AUC-ROC is then two binary searches
    codes = np.asarray(classes.codes)
    found = []
    for code, name in sorted(enumerate(classes.categories), key=lambda pair: str(pair[1])):
        here = codes == code
        if not here.any():
            continue
        mine, anomalous = scores[here], bool(y[here][0])
        auc = _auc_against(normal, mine) if anomalous and len(normal) else None
        found.append({"class": str(name), "normal": not anomalous, unit: int(here.sum()),
                      "flagged": float((mine > threshold).mean()), "auc_roc": auc})
    return found


def _auc_against(normal_sorted: np.ndarray, anomalous: np.ndarray) -> float:
    """AUC-ROC of ``anomalous`` scores against ``normal_sorted`` ones: the chance that an
    anomaly scores above a normal row, ties counting half (``roc_auc_score``'s value)."""
    below = np.searchsorted(normal_sorted, anomalous, side="left")
    tied = np.searchsorted(normal_sorted, anomalous, side="right") - below
    return float((below + 0.5 * tied).sum() / (len(anomalous) * len(normal_sorted)))


def class_summary(scores: np.ndarray, chunks: list[pd.Categorical], y: np.ndarray | None, threshold: float,
                  unit: str = "rows") -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    """``class_breakdown`` of label values gathered chunk by chunk (``label_classes`` of each),
    as a table (one row per value, what eval prints) and as ``metrics.json``'s entry
    ``{"classes": {value: {...}}}``; ``(None, None)`` without values, or with too many."""
    found = class_breakdown(scores, union_categoricals(chunks), y, threshold, unit) if chunks else []
    if not found:
        return None, None
    return pd.DataFrame(found), {"classes": {c["class"]: {k: v for k, v in c.items() if k != "class"} for c in found}}


def evaluate(scores: np.ndarray, y: np.ndarray, threshold: float) -> Metrics:
    from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score  # labelled runs only

    if len(np.unique(y)) < 2:
        held = "anomalies only: is the normal value right?" if len(y) and y.all() else "normal rows only"
        raise DataError(f"evaluation needs both normal and anomalous rows in the labels; they hold {held}")
    pred = (scores > threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return Metrics(len(y), int(y.sum()), int(pred.sum()), float(roc_auc_score(y, scores)),
                   float(average_precision_score(y, scores)), float(threshold), int(tn), int(fp), int(fn), int(tp))


def write_report(out_dir: str | os.PathLike[str], scores: np.ndarray, threshold: float,
                 top_contributions: pd.DataFrame | None = None, y: np.ndarray | None = None,
                 histories: list[list[dict[str, float]]] | None = None, metrics: Metrics | None = None,
                 more_metrics: dict[str, Any] | None = None, top_scores: pd.Series | None = None) -> list[Path]:
    """Write the PNGs (scores histogram, ROC if labelled, contributions, training curves) and
    ``metrics.json`` (with ``more_metrics`` beside the row metrics). Returns the written paths.
    ``top_scores``: the scores of the rows of ``top_contributions``, written beside their bars."""
    out = claim_output_dir(out_dir, REPORT_KIND)
    paths = [plots.score_histogram(scores, threshold, out / "scores_histogram.png", y)]
    if y is not None:
        paths.append(plots.roc_curve_plot(y, scores, out / "roc_curve.png"))
    if top_contributions is not None and len(top_contributions):
        paths.append(plots.contributions_plot(top_contributions, out / "top_anomalies_contributions.png",
                                              scores=top_scores))
    if histories:
        paths.append(plots.training_curves(histories, out / "training_curves.png"))
    if metrics is not None:
        path = out / "metrics.json"
        atomic_write_text(path, json.dumps({**asdict(metrics), "precision": metrics.precision,
                                            "recall": metrics.recall, **(more_metrics or {})}, indent=2))
        paths.append(path)
    return paths


ARGMAX_PASSES = 8  # up to this many top columns by repeated maxima, more by sorting each row
PACKED_BITS = 10  # columns' positions packed into values (_packed_top) for up to 2 ** PACKED_BITS columns


def top_features(contrib: pd.DataFrame, k: int = 3) -> pd.api.extensions.ExtensionArray:
    """``"V14 (41%); V12 (22%); V10 (9%)"`` per row: the columns that drive each score (pandas'
    Arrow-backed ``str`` array, for a DataFrame column).

    Built by Arrow: each part is looked up in a table of every "column (p%)" string, in one
    take for all rows, and each row's parts are joined in C++ as a list (a Python join per
    row took a third of the time of scoring a CSV, issue 34; numpy's object-array
    concatenation still took 0.5 s per 200,000 rows; a take per rank and an element-wise
    join, 0.052 s per million rows against 0.038)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    order, _, share = _top(contrib.to_numpy(), k)
    tokens = _tokens(tuple(str(c) for c in contrib.columns))
    percent = np.clip(np.rint(share * 100), 0, 100).astype(np.int64)
    rows, ranks = order.shape
    parts = pc.take(tokens, pa.array((order * 101 + percent).reshape(-1)))  # row after row
    starts = pa.array(np.arange(0, rows * ranks + 1, max(ranks, 1), dtype=np.int64))
    joined = pc.binary_join(pa.LargeListArray.from_arrays(starts, parts), "; ")
    return pd.array(joined, dtype="str")  # pandas' own string type, Arrow-backed: no copy


@functools.lru_cache(maxsize=16)
def _tokens(names: tuple[str, ...]) -> Any:
    """Every ``"column (p%)"`` string, column after column (a pyarrow array, immutable: shared
    by every chunk a file is scored in, and by threads)."""
    import pyarrow as pa

    return pa.array([f"{name} ({p}%)" for name in names for p in range(101)])


def top_feature_records(contrib: np.ndarray, columns: list[str], k: int = 3) -> list[list[dict[str, Any]]]:
    """The same as ``top_features`` as JSON-ready lists: ``[{"column", "contribution", "share"}]``."""
    order, values, shares = _top(contrib, k)
    # the k picked values as Python lists, not numpy scalars: this runs for every row served
    values, shares = values.tolist(), shares.tolist()
    return [[{"column": columns[j], "contribution": v, "share": s} for j, v, s in zip(row, vs, ss, strict=True)]
            for row, vs, ss in zip(order.tolist(), values, shares, strict=True)]


def _top(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, largest first: the indices of the ``k`` largest contributions (the first
    column wins a tie), their values and their shares of the row's total.

    Contributions are >= 0, so each pass takes a packed maximum down the columns
    (``_packed_top``); otherwise ``k`` passes of ``argmax`` for the few columns usually asked
    for (4x faster than a partition and a sort of the candidates, issue 34), and for more,
    one stable sort of each row."""
    k = min(k, values.shape[1])
    if k > ARGMAX_PASSES:
        order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    elif values.shape[1] <= 1 << PACKED_BITS and len(values) and values.min() >= 0:
        order = _packed_top(values, k)
    else:
        rows = np.arange(len(values))
        order = np.empty((len(values), k), dtype=np.int64)
        work = values.astype(np.float64)  # a copy, masked as the largest are taken
        for j in range(k):
            order[:, j] = pick = work.argmax(1)
            work[rows, pick] = -np.inf
    top = np.take_along_axis(values, order, 1).astype(np.float64)
    total = row_sums(values).astype(np.float64)[:, None]
    return order, top, top / np.where(total > 0, total, 1)


def row_sums(values: np.ndarray) -> np.ndarray:
    """``values.sum(1)`` as a product with ones: 8x faster for 30 columns (numpy's sum along
    a short contiguous axis runs row by row)."""
    return values @ np.ones(values.shape[1], dtype=values.dtype)


def position_bits(n: int) -> int:
    """Bits that hold a position among ``n`` (``pack_positions``)."""
    return max(1, (n - 1).bit_length())


def pack_positions(values: np.ndarray, positions: np.ndarray, bits: int) -> np.ndarray:
    """``values`` (float32 >= 0, overwritten) as int32s with their low ``bits`` bits replaced
    by ``positions`` (broadcast). A float32 >= 0 orders as its bits read as an int32 do, so
    one int32 minimum or maximum over them gives the extreme and where it is, taken down
    contiguous rows in SIMD, where numpy's arg-extremes along a short axis run once per row
    (issue 34: the table search's minima, ``light._CellSearch``, and the top columns).
    Values within 2^-(23 - bits) relative of each other compare by position."""
    packed = values.view(np.int32)
    packed &= ~np.int32((1 << bits) - 1)
    packed |= positions
    return packed


def _packed_top(values: np.ndarray, k: int) -> np.ndarray:
    """``_top``'s order for values >= 0, by ``k`` maxima over the columns of the values with
    the columns' positions packed in (``pack_positions``): 0.10 s against 0.25 for ``argmax``
    passes per million rows of 30 columns. Values within 2^-18 relative of each other (30
    columns; 2^-13 at 1,024) count as a tie, which the first column wins."""
    rows, columns = values.shape
    bits = position_bits(columns)
    low = (1 << bits) - 1
    first_highest = (low - np.arange(columns, dtype=np.int32))[:, None]  # the first column packs highest
    packed = pack_positions(np.array(values.T, dtype=np.float32, order="C"), first_highest, bits)  # a copy: overwritten
    order, everyone = np.empty((rows, k), dtype=np.int64), np.arange(rows)
    for j in range(k):
        order[:, j] = pick = low - (packed.max(0) & low)
        packed[pick, everyone] = -1
    return order
