"""The histogram term of the table detectors: how rare each of a row's values is in its own
column of the training rows, summed over the columns (HBOS's idea: Goldstein and Dengel,
2012).

Why (issue 33): trained on rows that hold anomalies, the autoencoder and the local term learn
a tight group of them as normal, since those rows are each other's neighbours and are rebuilt
well. Column by column the same anomalies are still rare values: a group of 3% of the rows
is a thin bar of a column's histogram, and a column's histogram is what IsolationForest's
axis-aligned splits read. Added to the default with weight 2, contaminated development sets
scored 0.681 -> 0.760 AUC-ROC on the digit sets and 0.833 -> 0.840 on group A; clean ones
moved by +0.002 (A) and -0.002 (B) (BENCHMARKS.md).

Each column's histogram has ``BINS`` bins of about equal counts of training rows (its
quantiles), or a bin per value where it holds at most ``BINS`` values (a one-hot category,
whose rare value the quantiles would merge with the common one). The bins are snapped to a
grid of ``CELLS`` equal cells that spans the training range and half a bin's width beyond
each end (PyOD's tolerance), so a value's cell is one multiplication and one addition away,
in torch, numpy and the ONNX graph alike. A cell's rarity is the log of how much denser the
column's densest bin is than the cell's bin (each bin's count plus one half, over its
width), so the commonest values cost 0. Below and above the grid, a value is as rare as a
bin of average width that holds half a row, or as the rarest cell inside if that is rarer.
The term is the sum of the columns' rarities less its median on held-out rows, floored at 0,
in units of their 90th percentile less the median; its per-column parts are each column's
share of the sum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .report import row_sums

BINS = 10  # bins per column, of about equal counts (10 and 20 equal-width bins measured, BENCHMARKS.md)
CELLS = 256  # cells of the grid a column's bins are snapped to
FLOOR_COUNT = 0.5  # added to each bin's count: an empty bin is as rare as half a row makes it
MIN_UNIT = 0.1  # nats: the term's unit at least (held-out rows of equal rarity would make it 0)
TENSORS = ("scale", "shift", "table")  # the model directory's "histogram" group


@dataclass
class ColumnHistograms:
    """Fitted histograms of ``d`` columns: a value ``z`` of column ``j`` falls in cell
    ``floor(clip(z * scale[j] + shift[j], 0, CELLS + 1))`` of row ``j`` of ``table``
    (cells 0 and ``CELLS + 1``: below and above the grid); ``median`` and ``unit``: the
    held-out rows' summed rarity's median and 90th percentile less it."""

    scale: np.ndarray  # [d] float32
    shift: np.ndarray  # [d] float32
    table: np.ndarray  # [d, cells + 2] float32, >= 0
    median: float = 0.0
    unit: float = 1.0

    @property
    def width(self) -> int:
        return len(self.scale)

    def cells(self, z: np.ndarray) -> np.ndarray:
        """``[rows, d]``: each value's cell, as an index into ``table.reshape(-1)``."""
        x = z * self.scale
        x += self.shift
        np.clip(x, 0, self.table.shape[1] - 1, out=x)
        index = x.astype(np.intp)  # truncated: the floor, once clipped at 0
        index += np.arange(self.width, dtype=np.intp) * self.table.shape[1]
        return index

    def rarity(self, z: np.ndarray) -> np.ndarray:
        """``[rows, d]`` float32: each value's rarity in its column (``z`` float32)."""
        return self.table.reshape(-1).take(self.cells(z))

    def term(self, total: np.ndarray, weight: float) -> np.ndarray:
        """The term of rows whose rarities sum to ``total``."""
        return np.maximum(total - np.float32(self.median), 0) * np.float32(weight / self.unit)

    def term_and_parts(self, z: np.ndarray, weight: float) -> tuple[np.ndarray, np.ndarray]:
        """``[rows]`` the term of rows ``z`` (float32) and ``[rows, d]`` each column's share of
        it (its rarity over the row's summed rarity): what the torch scorer's
        ``_histogram_term`` computes."""
        rarity = self.rarity(z)
        total = row_sums(rarity)
        term = self.term(total, weight)
        rarity *= (term / np.maximum(total, np.float32(1e-30)))[:, None]
        return term, rarity

    def locate(self, z: np.ndarray) -> None:
        """Set ``median`` and ``unit`` from held-out rows ``z``."""
        total = self.rarity(np.asarray(z, dtype=np.float32)).sum(1, dtype=np.float64)
        self.median = float(np.median(total))
        self.unit = max(float(np.quantile(total, 0.9)) - self.median, MIN_UNIT)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"scale": self.scale, "shift": self.shift, "table": self.table}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], width: int, median: object, unit: object
                    ) -> ColumnHistograms:
        """The histograms a model directory holds; ``ValueError`` naming what is wrong."""
        if any(arrays.get(name) is None for name in TENSORS):
            raise ValueError(f"the histogram term needs the tensors {list(TENSORS)}")
        scale, shift, table = (np.asarray(arrays[name], dtype=np.float32) for name in TENSORS)
        if scale.shape != (width,) or shift.shape != (width,) or table.ndim != 2 or table.shape[0] != width \
                or table.shape[1] < 3:
            raise ValueError(f"the histogram term's tensors do not match the data's {width} columns")
        numbers = [median, unit]
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers) \
                or not np.isfinite(numbers).all() or unit <= 0:
            raise ValueError(f"the histogram term's median and unit must be finite (unit > 0), got {numbers}")
        if not all(np.isfinite(a).all() for a in (scale, shift, table)) or (table < 0).any() or (scale <= 0).any():
            raise ValueError("the histogram term's tensors hold NaN, inf, negative rarities or scales")
        return cls(scale, shift, table, float(median), float(unit))


def fit_histograms(Z: np.ndarray, bins: int = BINS, cells: int = CELLS) -> ColumnHistograms:
    """The histograms of the columns of training rows ``Z [n, d]`` (not yet located)."""
    Z = np.asarray(Z, dtype=np.float32)
    n, d = Z.shape
    lo, hi = Z.min(0).astype(np.float64), Z.max(0).astype(np.float64)
    margin = 0.5 * (hi - lo) / bins
    # a constant column's grid is a sliver around its value: any other value falls outside
    span = np.maximum(hi - lo + 2 * margin, 1e-6 * np.maximum(1.0, np.abs(lo)))
    start = (lo + hi) / 2 - span / 2
    scale = (cells / span).astype(np.float32)
    shift = (1 - start * scale.astype(np.float64)).astype(np.float32)
    table = np.empty((d, cells + 2), dtype=np.float32)
    outside = -np.log(FLOOR_COUNT * bins / n)  # a bin of average width holding half a row
    grid = ColumnHistograms(scale, shift, table)
    index = grid.cells(Z) - np.arange(d) * (cells + 2)  # each training value's cell, 1..cells
    for j in range(d):
        values = np.unique(index[:, j])
        if len(values) <= bins:  # a discrete column (a one-hot category, a small count): a bin per value
            inner = np.concatenate([values, values + 1])
        else:  # runs of cells between the column's quantiles (as cells), each at least one cell
            inner = np.quantile(index[:, j], np.arange(1, bins) / bins, method="inverted_cdf")
        bounds = np.unique(np.concatenate([[1], np.clip(inner, 1, cells + 1), [cells + 1]])).astype(np.intp)
        counts = np.bincount(np.searchsorted(bounds, index[:, j], side="right") - 1, minlength=len(bounds) - 1)
        widths = np.diff(bounds)
        log_density = np.log((counts[:len(widths)] + FLOOR_COUNT) / (n * widths / cells))
        cell_log_density = np.repeat(log_density, widths)
        densest = log_density.max()
        table[j, 1:cells + 1] = densest - cell_log_density
        # outside the range at least as rare as the rarest cell inside it (a wide empty bin)
        table[j, [0, cells + 1]] = max(densest + outside, table[j, 1:cells + 1].max())
    return grid
