"""The histogram term's histograms (``histograms``): a value is as rare as its column's bin,
the training range's outside is rarer still, and the model directory's arrays are checked."""
from __future__ import annotations

import numpy as np
import pytest

from aekit.apps.anomaly.histograms import BINS, CELLS, ColumnHistograms, fit_histograms


def test_a_value_is_as_rare_as_its_bin_and_the_outside_rarest():
    rng = np.random.default_rng(0)
    Z = np.column_stack([rng.normal(size=4000), np.full(4000, 3.0), rng.choice([0.0, 1.0], 4000, p=[0.95, 0.05])])
    h = fit_histograms(Z)
    assert h.table.shape == (3, CELLS + 2) and (h.table >= 0).all() and h.table.min(1).max() == 0
    common, tail, outside = h.rarity(np.array([[0.0, 3.0, 0.0], [2.6, 3.0, 1.0], [50.0, 3.1, -7.0]], np.float32))
    # a bell: its middle costs about nothing, a tail value much more, beyond the training range the most
    assert common[0] < 0.3 and tail[0] > common[0] + 1.5 and outside[0] == h.table[0].max() > tail[0]
    # a constant column: its value costs nothing, any other is outside
    assert common[1] == tail[1] == 0 and outside[1] == h.table[1].max() > 0
    # a rare category (one-hot column) costs more than the common one
    assert tail[2] > common[2] + 1 and outside[2] == h.table[2].max()
    # the outside: a bin of average width that holds half a row, against the densest bin, which
    # is at least as dense as a bin of average width holding a tenth of the rows
    assert h.table[0, 0] >= np.log(4000 / BINS / 0.5) - 1e-4


def test_the_unit_puts_half_the_held_out_rows_at_zero():
    rng = np.random.default_rng(1)
    h = fit_histograms(rng.normal(size=(3000, 5)))
    held_out = rng.normal(size=(1000, 5)).astype(np.float32)
    h.locate(held_out)
    term = h.term(h.rarity(held_out).sum(1), weight=2.0)
    assert np.mean(term == 0) == pytest.approx(0.5, abs=0.01)
    assert np.quantile(term, 0.9) == pytest.approx(2.0, rel=1e-2)


def test_stored_arrays_are_checked():
    h = fit_histograms(np.random.default_rng(2).normal(size=(500, 4)))
    arrays = h.arrays()
    assert ColumnHistograms.from_arrays(arrays, 4, 1.0, 2.0).unit == 2.0
    with pytest.raises(ValueError, match="do not match the data's 5 columns"):
        ColumnHistograms.from_arrays(arrays, 5, 1.0, 2.0)
    with pytest.raises(ValueError, match="needs the tensors"):
        ColumnHistograms.from_arrays({"scale": arrays["scale"]}, 4, 1.0, 2.0)
    with pytest.raises(ValueError, match="median and unit must be finite"):
        ColumnHistograms.from_arrays(arrays, 4, 1.0, float("inf"))
    with pytest.raises(ValueError, match="negative rarities or scales"):
        ColumnHistograms.from_arrays({**arrays, "scale": -arrays["scale"]}, 4, 1.0, 2.0)
