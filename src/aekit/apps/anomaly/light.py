"""Scoring a table detector with numpy alone: what ``aekit anomaly score`` runs for table
models, so that a new process reaches its first row without importing torch (issue 34: torch's
import is 1.3-2 s of a 2.7 s start).

``LightTableDetector.load`` reads a model directory (verified as every load is) and rebuilds
the score of ``AnomalyDetector`` in numpy: the members' MLPs, the standardised reconstruction
error, the code term (Mahalanobis and mixture), the local term with its per-column parts, and
the histogram term (``histograms``, which both scorers share). It takes
what it knows (MLP members with a continuous code, a table adapter) and answers ``None`` for
anything else, which the torch path then scores, so no model is ever scored differently:
the scores agree with the torch path's to float32 rounding (tested).
"""
from __future__ import annotations

import copy
import itertools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from ...checks import check_int
from ...data import iter_table, split_columns
from ...data.preprocess import UNSEEN_EXAMPLES, TabularPreprocessor, some_columns
from ...data.table_output import check_table_output, table_output
from ...data.tables import map_ahead, usable_cores
from ...errors import ModelFileError
from ... import marks
from ...io import load_model_arrays, model_kind_at
from .histograms import ColumnHistograms
from .report import pack_positions, position_bits, row_sums, top_features
from .thresholds import ThresholdRule, expected_share

KIND = "anomaly.AnomalyDetector"
# Shared with base.py, which imports them from here (this module must not import torch).
FEATURE_WEIGHTINGS = ("auto", "standardize", "global", "relative", "none")
WEIGHTINGS = FEATURE_WEIGHTINGS[1:]  # what a fitted model holds ("auto" resolved)
# "relative": a sample's error is divided by its own variance across features plus this floor
# (in squared data units; images are in [0, 1], so 1e-3 is a standard deviation of ~8 grey levels)
VARIANCE_FLOOR = 1e-3
# a member's code mixture (code_mixture.CodeMixture), stored in its calibration tensors
MIXTURE_TENSORS = ("mixture_factors", "mixture_shift", "mixture_offsets", "mixture_scale")
# the local term's search (local_cells): numbers in a block's largest array, and in one product
SEARCH_VALUES, PRODUCT_VALUES = 1 << 20, 1 << 20
BLOCK_VALUES = 1 << 19  # values of the rows scored at once (_part_scores): 16,384 rows of 32 columns
# ... and a last block of less than 1/SHORT_BLOCK of that joins the one before: each block's
# steps cost the same however few its rows (the search's product per cell), and a CSV's 50,000-row
# chunks ended in a block of 848 rows (issue 34)
SHORT_BLOCK = 4
# rows of the probed cells' choice taken at once (_smallest): 64 cells of 4,096 rows are 1 MB, in
# cache, where a whole 16,384-row block's passes went to memory: 0.23 -> 0.09 s per million rows
SMALLEST_TILE = 4096
MAX_PACKED_BITS = 12  # positions packed into a float32's low bits: compared to 2^-11 relative at worst
MAX_SCORE_THREADS = 8  # threads that score one chunk's rows (at least THREAD_ROWS rows each)
THREAD_ROWS = 1024
# rows per chunk a table is scored in: each core takes whole chunks (map_ahead); 50,000 scored a
# million CSV rows in 2.26-2.38 s against 2.37-2.66 s for 100,000 (and 2.8 s for 25,000)
CHUNK_ROWS = 50_000
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0, out=x),
    "leaky_relu": lambda x: np.where(x > 0, x, np.float32(0.01) * x),
    "tanh": lambda x: np.tanh(x, out=x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
}
KEEPS_ONE = frozenset({"relu", "leaky_relu", "elu"})  # activations that leave 1 as it is


class _Unsupported(Exception):
    """A model the numpy path does not rebuild: the torch path scores it."""


class _MLP:
    """``nn.mlp.MLP`` in eval mode, each layer one product: a layer's input carries a column
    of ones and its matrix a row of biases, and a column that hands the ones on to the next
    layer, so no pass over the rows adds a bias (issue 34: a member's two networks 0.18-0.20
    s -> 0.16 s per million rows, the same numbers here)."""

    def __init__(self, spec: dict[str, Any], tensors: dict[str, np.ndarray], prefix: str) -> None:
        if spec.get("type") != "mlp" or spec.get("out_shape") is not None:
            raise _Unsupported
        act = ACTIVATIONS.get(spec["activation"])
        if act is None:
            raise _Unsupported
        # (matrix [in + 1, out + 1], batch-norm affine over out + 1 or None, activate or None)
        self.layers: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None, Callable | None]] = []
        index, width = 0, spec["in_features"]
        for h in spec["hidden"]:
            weight, bias = _linear(tensors, f"{prefix}.net.{index}", width, h)
            index += 1
            norm = None
            if spec["batch_norm"]:
                a, b = _batch_norm(tensors, f"{prefix}.net.{index}", h)
                norm = np.append(a, np.float32(1)), np.append(b, np.float32(0))  # the ones stay ones
                index += 1
            self.layers.append((_with_bias_row(weight, bias), norm, act))
            index += 1 + (spec["dropout"] > 0)
            width = h
        weight, bias = _linear(tensors, f"{prefix}.net.{index}", width, spec["out_features"])
        self.layers.append((_with_bias_row(weight, bias), None, act if spec["activate_output"] else None))
        self.output = _with_bias_row(weight, bias, hand_on=False)  # the last layer of __call__
        self.reset_ones = spec["activation"] not in KEEPS_ONE

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.with_ones(x, keep=False)

    def with_ones(self, x: np.ndarray, keep: bool = True) -> np.ndarray:
        """The output, with a last column of ones where ``keep`` (the input of a product
        with a row of biases, ``_with_bias_row``)."""
        x = _with_ones(x)
        last = len(self.layers) - 1
        for i, (matrix, norm, act) in enumerate(self.layers):
            ones = keep or i < last
            x = x @ (matrix if ones else self.output)
            if norm is not None:
                x *= norm[0]
                x += norm[1]
            if act is not None:
                x = act(x)
                if ones and self.reset_ones:
                    x[:, -1] = 1
        return x


def _with_ones(x: np.ndarray) -> np.ndarray:
    """``x`` with a last column of ones."""
    out = np.empty((len(x), x.shape[1] + 1), dtype=np.float32)
    out[:, :-1] = x
    out[:, -1] = 1
    return out


def _with_bias_row(weight: np.ndarray, bias: np.ndarray, hand_on: bool = True) -> np.ndarray:
    """``[in + 1, out + 1]`` (``[in + 1, out]`` without ``hand_on``): a row with a last 1
    (``_with_ones``) times it gives ``row @ weight.T + bias``, and a last 1 again."""
    out_width, in_width = weight.shape
    matrix = np.zeros((in_width + 1, out_width + hand_on), dtype=np.float32)
    matrix[:in_width, :out_width] = weight.T
    matrix[in_width, :out_width] = bias
    if hand_on:
        matrix[in_width, out_width] = 1
    return matrix


def _linear(tensors: dict[str, np.ndarray], name: str, width_in: int, width_out: int) -> tuple[np.ndarray, np.ndarray]:
    weight, bias = tensors.get(f"{name}.weight"), tensors.get(f"{name}.bias")
    if weight is None or bias is None or weight.shape != (width_out, width_in) or bias.shape != (width_out,):
        raise _Unsupported
    return _normal_only(weight), _normal_only(bias)


def _normal_only(values: np.ndarray) -> np.ndarray:
    """A float32 copy of ``values`` with subnormal numbers set to zero: models trained before
    0.9.1 may hold some, slow to compute with and too small to matter (``nn.subnormal``)."""
    out = np.array(values, dtype=np.float32, order="C")
    out[np.abs(out) < np.finfo(np.float32).tiny] = 0
    return out


def _batch_norm(tensors: dict[str, np.ndarray], name: str, width: int) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm1d in eval mode as ``x * a + b``."""
    parts = [tensors.get(f"{name}.{k}") for k in ("weight", "bias", "running_mean", "running_var")]
    if any(p is None or p.shape != (width,) for p in parts):
        raise _Unsupported
    weight, bias, mean, var = (_normal_only(p) for p in parts)
    a = weight / np.sqrt(var + np.float32(1e-5))
    return a, bias - mean * a


@dataclass
class _Member:
    encoder: _MLP | None  # None: nn.Identity
    project: np.ndarray  # the code's projection with its row of biases (_with_bias_row)
    decoder: _MLP
    weights: np.ndarray
    latent_mean: np.ndarray
    latent_precision: np.ndarray
    mixture: _CodeMixture | None

    def code(self, z: np.ndarray) -> np.ndarray:
        return (self.encoder.with_ones(z) if self.encoder is not None else _with_ones(z)) @ self.project


@dataclass
class _CodeMixture:
    """``code_mixture.CodeMixture`` in numpy (its docstring says what the arrays are)."""

    factors: np.ndarray
    shift: np.ndarray
    offsets: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_calibration(cls, cal: dict[str, np.ndarray], code: int) -> _CodeMixture | None:
        arrays = [cal.get(n) for n in MIXTURE_TENSORS]
        if all(a is None for a in arrays):
            return None
        if any(a is None for a in arrays) or arrays[2].ndim != 1 or arrays[0].shape != (code, len(arrays[2]) * code) \
                or arrays[1].shape != (len(arrays[2]) * code,) or arrays[3].shape != (1,):
            raise _Unsupported
        return cls(*(a.astype(np.float32) for a in arrays))

    def term(self, code: np.ndarray) -> np.ndarray:
        # components down the rows ([components, rows]), so that each sum and maximum over
        # them runs down contiguous rows: 0.13 s per million rows instead of 0.30 (issue 34)
        white = self.factors.T @ code.T
        white -= self.shift[:, None]
        white *= white
        exponents = white.reshape(len(self.offsets), len(self.factors), -1).sum(1)
        exponents *= np.float32(-0.5)
        exponents += self.offsets[:, None]
        top = exponents.max(0)
        exponents -= top
        np.exp(exponents, out=exponents)
        return -(top + np.log(exponents.sum(0))) * self.scale


class LightTableDetector:
    """An ``AnomalyDetector`` of a table, scored in numpy (see the module docstring)."""

    def __init__(self, config: dict[str, Any], groups: dict[str, dict[str, np.ndarray]]) -> None:
        if config.get("adapter", {}).get("type") != "table":
            raise _Unsupported
        params, state = config["params"], config["state"]
        self.preprocessor_ = TabularPreprocessor.from_dict(config["adapter"])
        width = len(self.preprocessor_.feature_names_out_)
        self.weighting_ = state["weighting"]
        self.latent_weight = float(params["latent_weight"])
        self.members = [self._member(config["networks"].get(f"member{k}"), groups, k, width)
                        for k in range(len(config["networks"]))]
        if not self.members:
            raise _Unsupported
        local = state.get("local") or {}
        self.local_weight = float(local.get("weight", 0.0))
        self.references = None
        if self.local_weight:
            self.search = _CellSearch.from_model(local, groups.get("local", {}), width)
            self.references = self.search.references
            self.local_scale = float(local["scale"])
            nearest = local.get("nearest_scale")  # since 0.8.0 (AnomalyDetector._local_distance)
            self.nearest_scale = None if nearest is None else float(nearest)
        self.histograms: ColumnHistograms | None = None
        self.histogram_weight = 0.0
        histogram = state.get("histogram")  # since 0.9.0
        if histogram is not None:
            self.histogram_weight = float(histogram["weight"])
            self.histograms = ColumnHistograms.from_arrays(groups.get("histogram", {}), width, histogram.get("median"),
                                                           histogram.get("unit"))
        self.threshold_ = float(state["threshold"]["threshold"])
        self.threshold_rule_ = ThresholdRule(str(state["threshold"].get("method", "score")),
                                             float(state["threshold"].get("value", self.threshold_)))
        self.threads: int | None = None  # threads that share one call's rows; None: one per core
        self._check_values()
        groups_of = self.preprocessor_.feature_groups_
        self.explained_columns_ = [c for c in self.preprocessor_.columns_ if c in set(groups_of)]
        # one-hot features summed back into their column; None when every feature is a column
        self.fold = None
        if list(groups_of) != self.explained_columns_:
            self.fold = np.zeros((len(groups_of), len(self.explained_columns_)), dtype=np.float32)
            self.fold[np.arange(len(groups_of)), [self.explained_columns_.index(g) for g in groups_of]] = 1.0

    def _check_values(self) -> None:
        """The settings and arrays the score reads must be what a trained model holds; anything
        else (a config re-signed by hand, say) goes to the torch path, whose checks name it."""
        numbers = [self.latent_weight, self.local_weight, self.threshold_, self.histogram_weight]
        arrays = [a for m in self.members for a in (m.weights, m.latent_mean, m.latent_precision)]
        arrays += [a for m in self.members if m.mixture is not None for a in vars(m.mixture).values()]
        if self.references is not None:
            scales = [self.local_scale] + ([] if self.nearest_scale is None else [self.nearest_scale])
            numbers += scales
            arrays += [self.references, self.search.centres]
        if (self.weighting_ not in WEIGHTINGS or not all(np.isfinite(numbers))
                or min(self.latent_weight, self.local_weight, self.histogram_weight) < 0
                or (self.references is not None and min(scales) <= 0)
                or any(m.mixture is not None and m.mixture.scale[0] <= 0 for m in self.members)
                or not all(np.isfinite(a).all() for a in arrays) or any((m.weights < 0).any() for m in self.members)):
            raise _Unsupported

    @staticmethod
    def _member(spec: dict[str, Any] | None, groups: dict[str, dict[str, np.ndarray]], k: int, width: int) -> _Member:
        tensors = groups.get(f"member{k}")
        cal = groups.get(f"calibration{k}")
        if spec is None or tensors is None or cal is None or spec.get("reconstruction") != "mse" \
                or spec.get("condition_size", 0) or spec["bottleneck"].get("type") != "continuous":
            raise _Unsupported
        encoder_spec = spec["encoder"]
        encoder = None if encoder_spec.get("type") == "identity" else _MLP(encoder_spec, tensors, "encoder")
        neck = spec["bottleneck"]
        project = _with_bias_row(*_linear(tensors, "bottleneck.proj", neck["in_features"], neck["code_size"]),
                                 hand_on=False)
        decoder = _MLP(spec["decoder"], tensors, "decoder")
        weights, mean, precision = (cal.get(n) for n in ("feature_weights", "latent_mean", "latent_precision"))
        code = neck["code_size"]
        if weights is None or weights.shape != (width,) or mean is None or mean.shape != (code,) \
                or precision is None or precision.shape != (code, code):
            raise _Unsupported
        return _Member(encoder, project, decoder, weights.astype(np.float32), mean.astype(np.float32),
                       precision.astype(np.float32), _CodeMixture.from_calibration(cal, code))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LightTableDetector | None:
        """The detector at ``path``, or None when it is not a model this path rebuilds."""
        if model_kind_at(path) != KIND:
            return None
        config, groups = load_model_arrays(path, (KIND,))
        try:
            return cls(config, groups)
        except (_Unsupported, KeyError, TypeError, ValueError, ModelFileError):
            return None  # the torch path loads it, and says what is wrong if anything is

    def copy_for_a_thread(self) -> LightTableDetector:
        """A copy that scores on its calling thread alone, for one of several threads that
        score chunks at once: the arrays are shared, the preprocessor's count of unseen
        categories (which each call sets) is its own."""
        mine = copy.copy(self)
        mine.preprocessor_ = copy.copy(self.preprocessor_)
        mine.threads = 1
        return mine

    # ------------------------------------------------------------------ scoring
    def score_explain(self, features: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """``AnomalyDetector.score_explain`` in numpy: scores, and per-column contributions
        (float32, as computed: a float64 copy of a million rows' parts cost 5% of scoring)."""
        z = self.preprocessor_.transform(features)
        scores, parts = self._scores(z)
        if self.fold is not None:
            parts = parts @ self.fold
        return scores, pd.DataFrame(parts, columns=self.explained_columns_, index=features.index, copy=False)

    def _scores(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and per-feature parts of scaled rows ``z``. A large chunk is split among
        threads, one per core (numpy releases the GIL in what costs here; BLAS then runs one
        thread each): a million rows in 1.7 s instead of 3.2 s on 2 cores."""
        workers = min(self.threads or usable_cores(), MAX_SCORE_THREADS, len(z) // THREAD_ROWS)
        if workers < 2:
            return self._part_scores(z)
        from concurrent.futures import ThreadPoolExecutor

        from threadpoolctl import threadpool_limits

        # parts of whole multiples of THREAD_ROWS, which keep each row where one thread puts it
        # in BLAS's tiles: BLAS may round a row by where it falls in them (halves of 6,250
        # rows moved the last bits of two scores), and these are one thread's scores bit for bit
        bounds = [len(z) * k // workers // THREAD_ROWS * THREAD_ROWS for k in range(workers)] + [len(z)]
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            done = list(pool.map(self._part_scores, [z[a:b] for a, b in itertools.pairwise(bounds)]))
        return np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])

    def _part_scores(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``_scores`` on one thread, a block of rows at a time: each block's arrays stay in
        cache (the networks take 0.31 s per million rows instead of 0.43 in 50,000-row
        chunks, issue 34)."""
        total = np.empty(len(z), dtype=np.float64)
        parts = np.empty_like(z)
        block = max(64, BLOCK_VALUES // max(z.shape[1], 1))
        if self.references is not None:
            block = min(block, self.search.block)
        starts = list(range(0, len(z), block))
        if len(starts) > 1 and len(z) - starts[-1] < block // SHORT_BLOCK:
            starts.pop()  # a short last block joins the one before
        for s, e in itertools.pairwise(starts + [len(z)]):
            total[s:e], parts[s:e] = self._block_scores(z[s:e])
        return total, parts

    def _block_scores(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.members)
        total = np.zeros(len(z), dtype=np.float32)
        acc = None
        inv_scale = (1 / (z.var(1) + np.float32(VARIANCE_FLOOR)))[:, None] if self.weighting_ == "relative" else None
        for m in self.members:
            code = m.code(z)
            errors = m.decoder(code)
            errors -= z
            errors *= errors
            if inv_scale is not None:
                errors *= inv_scale
            errors *= m.weights
            part = row_sums(errors)
            if n > 1:
                errors /= np.float32(n)
            if acc is None:  # the first member's errors are the sum so far: no array of zeros to add them to
                acc = errors
            else:
                acc += errors
            if self.latent_weight:
                diff = code - m.latent_mean
                gaussian = row_sums((diff @ m.latent_precision) * diff) / np.float32(len(m.latent_mean))
                if m.mixture is not None:  # the stricter of the two, as AnomalyDetector._member_extra
                    gaussian = np.maximum(gaussian, m.mixture.term(code))
                part += gaussian * np.float32(self.latent_weight)
            total += part
        total /= np.float32(n)
        if self.references is not None:
            local = self._local_parts(z)
            total += row_sums(local)
            acc += local
        if self.histograms is not None and self.histogram_weight:
            term, parts = self.histograms.term_and_parts(z, self.histogram_weight)
            total += term
            acc += parts
        return total, acc

    def _local_parts(self, z: np.ndarray) -> np.ndarray:
        """The local term's per-column parts, which sum to it (``AnomalyDetector._local_term``),
        for at most ``search.block`` rows."""
        if self.nearest_scale is None:
            return self._to_nearest(z) * np.float32(self.local_weight / self.local_scale)
        index, nearest, mean = self.search.nearest_and_mean(z)
        term = np.maximum(mean / np.float32(self.local_scale), nearest / np.float32(self.nearest_scale))
        term *= np.float32(self.local_weight)
        diff = z - self.references.take(index, axis=0)  # take: 3x faster than []
        diff *= diff
        total = row_sums(diff)
        shared = total <= 0  # a row equal to its nearest reference: the term shared evenly
        diff *= (term / np.where(shared, 1, total))[:, None]
        if shared.any():
            diff[shared] = (term[shared] / np.float32(z.shape[1]))[:, None]
        return diff

    def _to_nearest(self, z: np.ndarray) -> np.ndarray:
        """Per-column squared differences to the nearest reference of each group, averaged
        over the groups (the local term of models before 0.8.0): the search finds them, the
        differences to them are then exact, taken group by group (twice as fast as one
        [rows, groups, columns] array)."""
        index = self.search.nearest(z)
        part = np.empty_like(z)
        for g in range(index.shape[1]):
            diff = z - self.references.take(index[:, g], axis=0)
            diff *= diff
            if g:
                part += diff
            else:
                part[:] = diff
        return part / np.float32(self.search.groups) if self.search.groups > 1 else part


class _CellSearch:
    """``local_cells.CellSearch`` in numpy (its docstring says how): the row in
    ``references`` of each group's nearest reference among those of each row's ``probes``
    nearest cells.

    Each minimum comes with its position packed in (``report.pack_positions``): the product
    yields full squared distances, >= 0 up to rounding (which only reorders values within
    rounding of zero), and one int32 minimum down each group's candidates gives the nearest
    and where it is. The search takes 1.0 s per million rows instead of 1.8 s with ``argmin``
    (one core, 30 columns, 64 cells; issue 34). Distances are compared to 2^-16 relative or
    better (7 bits for 128 candidates), a tie that close goes to the lower position, and the
    differences to the reference found are exact all the same."""

    def __init__(self, references: np.ndarray, centres: np.ndarray, groups: int, probes: int) -> None:
        cells, width = centres.shape
        self.references, self.centres = references, centres
        self.cells, self.groups, self.width, self.probes = cells, groups, width, probes
        self.size = len(references) // max(cells * groups, 1)
        centred = references.reshape(cells, groups * self.size, width) - centres[:, None]
        # rows [z, 1, |z - c|^2] times a cell's [groups * size, width + 2] give |z - r|^2
        # for each of its references r (centred on c, where float32 keeps more digits)
        offset = (centred * centred).sum(2) + 2 * (centred * centres[:, None]).sum(2)
        ones = np.ones_like(offset)
        self.search = np.ascontiguousarray(np.concatenate([-2 * centred, offset[..., None], ones[..., None]], 2),
                                           dtype=np.float32)
        # [cells, width + 2]: times rows [z, 1, |z|^2] (transposed) it gives |z - c|^2 for each centre c
        self.centre_search = np.hstack([-2 * centres, (centres * centres).sum(1)[:, None],
                                        np.ones((cells, 1))]).astype(np.float32)
        self.slot_bits = position_bits(self.size)
        self.slot_mask = (1 << self.slot_bits) - 1
        self.block = max(64, SEARCH_VALUES // max(cells, probes * (width + 2)))
        self.chunk = max(64, PRODUCT_VALUES // (groups * self.size))  # pairs per product (in cache)
        # where each group of each cell starts in the references: [cells, groups]
        self.offsets = (np.arange(cells)[:, None] * groups + np.arange(groups)) * self.size

    @classmethod
    def from_model(cls, local: dict[str, Any], tensors: dict[str, np.ndarray], width: int) -> _CellSearch:
        """The search of a model's local term (``state["local"]`` and its tensors), or
        ``_Unsupported`` for settings no trained model holds (the torch path names them)."""
        counts = [local.get("groups", 1), local.get("cells", 1), local.get("probes", 1)]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
            raise _Unsupported
        groups, cells, probes = counts
        refs = tensors.get("references")
        centres = tensors.get("centres") if cells > 1 else None
        if refs is None or refs.ndim != 2 or refs.shape[1] != width or not len(refs) or len(refs) % (groups * cells) \
                or probes > cells or (cells > 1 and (centres is None or centres.shape != (cells, width))) \
                or position_bits(len(refs) // (groups * cells)) > MAX_PACKED_BITS or cells > 1 << 15:
            raise _Unsupported
        refs = np.ascontiguousarray(refs, dtype=np.float32)
        return cls(refs, refs.mean(0, keepdims=True) if centres is None else centres.astype(np.float32), groups, probes)

    def nearest(self, z: np.ndarray) -> np.ndarray:
        """``[rows, groups]``: the row in ``references`` of each group's nearest reference."""
        best, packed, cells = self._nearest_per_group(z)
        return self._positions(best, packed, cells, np.arange(self.groups)[:, None], np.arange(len(z))).T

    def nearest_and_mean(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(index, nearest, mean)``, each ``[rows]``: the row in ``references`` of the
        nearest reference of all groups, its squared distance, and the mean over the groups
        of each group's nearest squared distance (``AnomalyDetector._local_distance``).
        Distances are in product form, to 2^-16 relative or better (their low bits held the
        positions); only the nearest reference's position is unpacked."""
        best, packed, cells = self._nearest_per_group(z)
        distances = (best & ~np.int32(self.slot_mask)).view(np.float32)  # [groups, rows]
        np.maximum(distances, 0, out=distances)
        rows = np.arange(len(z))
        nearest = distances.min(0)
        group = _first_equal(distances, nearest)
        pairs = group * len(z) + rows  # (group, row) in [groups, rows]: takes from flat arrays beat [a, b]
        index = self._positions(best.reshape(-1).take(pairs), packed.reshape(-1, self.probes).take(pairs, axis=0),
                                cells, group, rows)
        return index, nearest, distances.mean(0)

    def _nearest_per_group(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(best, packed, cells)``: ``[groups, rows]`` each group's nearest over the probed
        cells (compared packed, as above), and ``_packed``'s two arrays."""
        packed, cells = self._packed(z)
        best = packed[..., 0].copy()
        for p in range(1, self.probes):
            np.minimum(best, packed[..., p], out=best)
        return best, packed, cells

    def _positions(self, best: np.ndarray, packed: np.ndarray, cells: np.ndarray, group: np.ndarray,
                   rows: np.ndarray) -> np.ndarray:
        """The rows in ``references`` of the packed minima ``best`` of groups ``group`` for
        rows ``rows`` (index arrays that broadcast to ``best``'s shape; ``packed``: the same
        minima in each probed cell, a last axis): the slot packed in each, in the cell of
        the first probe that holds that minimum."""
        won = _first_equal(np.moveaxis(packed, -1, 0), best)
        return self.offsets[cells[rows, won], group] + (best & self.slot_mask)

    def _packed(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(packed, cells)``: ``[groups, rows, probes]`` each group's nearest squared
        distance in each probed cell with its slot packed in, and ``[rows, probes]`` the
        probed cells."""
        rows, probes = len(z), self.probes
        aug = np.empty((rows, self.width + 2), dtype=np.float32)
        aug[:, :-2], aug[:, -2] = z, 1
        aug[:, -1] = np.einsum("ij,ij->i", z, z)
        # [cells, rows] |z - c|^2 for each centre c (as torch: see local_cells.CellSearch._to_centres),
        # which both picks the probed cells and completes their queries; this product is
        # faster than the [rows, cells] one and its transpose
        to_centres = self.centre_search @ aug.T
        if probes == self.cells:  # every row searches every cell
            cells = np.broadcast_to(np.arange(self.cells), (rows, probes))
        else:
            cells = _smallest(to_centres, probes)
        pair_cells = cells.reshape(-1)
        order = np.argsort(pair_cells.astype(np.int16), kind="stable")  # a radix sort (cells < 2 ** 15)
        pair_rows = order // probes
        queries = aug.take(pair_rows, axis=0)  # the (row, cell) pairs, cell after cell (take: 3x faster than [])
        queries[:, -1] = to_centres.reshape(-1).take(pair_cells[order].astype(np.intp) * rows + pair_rows)
        packed = np.empty((self.groups, rows * probes), dtype=np.int32)
        slots = np.arange(self.size, dtype=np.int32)[:, None]
        start = 0
        for cell, count in enumerate(np.bincount(pair_cells, minlength=self.cells).tolist()):
            for first in range(start, start + count, self.chunk):
                last = min(first + self.chunk, start + count)
                distances = (self.search[cell] @ queries[first:last].T).reshape(self.groups, self.size, -1)
                np.minimum.reduce(pack_positions(distances, slots, self.slot_bits), axis=1, out=packed[:, first:last])
            start += count
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        unsorted = packed.take(inverse, axis=1)  # the pairs back in row order (a gather: 5x faster than a scatter)
        return unsorted.reshape(self.groups, rows, probes), np.asarray(cells)


def _first_equal(values: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Where along the first axis of ``values`` the first value equal to ``target`` (which
    one of them holds) is: ``argmin`` along a short axis where ``target`` is the minimum,
    by one comparison per position down contiguous rows (numpy runs an arg-extreme along
    a short axis once per row: 0.064 s per million rows over 20 groups, against 0.023)."""
    found = np.zeros(target.shape, dtype=np.intp)
    for i in range(len(values) - 1, -1, -1):  # the first equal one written last
        np.copyto(found, i, where=values[i] == target)
    return found


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """``[rows, k]``: the rows of each column's ``k`` smallest values (``values [cells,
    rows]``). The 2 of a power of two of cells (float32 >= 0 up to rounding) are those
    ``local_cells._two_smallest`` picks (values packed with their cell), by element-wise
    minima and maxima down contiguous rows, ``SMALLEST_TILE`` rows at a time: the cells
    halved until one is left, keeping at each step the smallest and the second smallest of
    each pair of halves (0.8 ms against 1.7 ms for arg-minimum passes, 2 of 64 cells for
    16,384 rows); else by k arg-minimum passes."""
    cells = len(values)
    if k == 2 and 2 <= cells <= 1 << 15 and not cells & (cells - 1):
        bits = position_bits(cells)
        found = np.empty((values.shape[1], 2), dtype=np.int32)
        positions = np.arange(cells, dtype=np.int32)[:, None]
        for start in range(0, values.shape[1], SMALLEST_TILE):  # rows of a tile, which stay in cache
            tile = slice(start, start + SMALLEST_TILE)
            packed = pack_positions(np.maximum(values[:, tile], 0), positions, bits)
            half = cells // 2
            low, high = np.minimum(packed[:half], packed[half:]), np.maximum(packed[:half], packed[half:])
            while len(low) > 1:
                half = len(low) // 2
                low, high = (np.minimum(low[:half], low[half:]),
                             np.minimum(np.maximum(low[:half], low[half:]), np.minimum(high[:half], high[half:])))
            found[tile, 0], found[tile, 1] = low[0], high[0]
        return found & ((1 << bits) - 1)
    found = [values.argmin(0)]
    if k > 1:
        values = values.copy()
        columns = np.arange(values.shape[1])
        for _ in range(k - 1):
            values[found[-1], columns] = np.inf
            found.append(values.argmin(0))
    return np.stack(found, 1)


def score_frame(det: Any, chunk: pd.DataFrame, *, id_col: str | None = None,
                label_col: str | None = None, top_k: int = 3, leaders: np.ndarray | None = None) -> pd.DataFrame:
    """One chunk of a table scored by ``det`` (a table detector, or its numpy twin
    ``LightTableDetector``): the ID column, ``score``, ``is_anomaly``, ``top_features`` and
    the label column, the columns of every scoring output (CSV, Dask, Spark). ``leaders``
    (a count per explained column), where given: each flagged row adds 1 to the count of
    the column that contributes most to its score."""
    features, labels, ids = split_columns(chunk, label_col, id_col)
    scores, contrib = det.score_explain(features)
    result = pd.DataFrame(index=chunk.index)
    if ids is not None:
        result[id_col] = ids
    result["score"] = scores
    flagged = scores > det.threshold_
    result["is_anomaly"] = flagged.astype(int)
    result["top_features"] = top_features(contrib, top_k)
    if labels is not None:
        result[label_col] = labels
    if leaders is not None:
        leaders += flagged_leaders(contrib, flagged)
    return result


def flagged_leaders(contrib: pd.DataFrame, flagged: np.ndarray) -> np.ndarray:
    """For each explained column, how many ``flagged`` rows it contributes most to."""
    return np.bincount(contrib.to_numpy()[flagged].argmax(1), minlength=contrib.shape[1])


def leader_counts(leaders: np.ndarray, columns: list[str]) -> dict[str, int]:
    """``flagged_leaders``' counts by column name, the largest first, zeros left out."""
    return {columns[j]: int(leaders[j]) for j in np.argsort(-leaders, kind="stable") if leaders[j]}


def unused_columns(columns: Any, features: list[str], id_col: str | None, label_col: str | None) -> list[str]:
    """A note naming the table's ``columns`` that the model does not read (an ID, a label, a
    column added since training), where there are any: they are not in the output either."""
    columns = list(columns)
    known = {*features, id_col, label_col, f"Unnamed: {len(columns) - 1}"}  # a separator ending every line
    unused = [c for c in columns if c not in known]
    if not unused:
        return []
    fix = "" if id_col else " (--id-col NAME copies an ID column to the output)"
    return [f"column(s) {some_columns(unused)} are not features of this model: not scored, not in the output{fix}"]


@dataclass
class ScoreSummary:
    """What scoring a file reports, whichever path scored it (tables here, images in
    ``image_scoring``): rows, flagged rows, unseen categories, heat maps written."""

    rows: int = 0
    flagged: int = 0
    unseen_categories: dict[str, int] = field(default_factory=dict)
    unseen_examples: dict[str, list[str]] = field(default_factory=dict)  # a few of each column's unseen values
    known_categories: dict[str, list[str]] = field(default_factory=dict)  # ... and the model's categories there
    leaders: dict[str, int] = field(default_factory=dict)  # tables: flagged rows by their leading column
    expected_share: float | None = None  # the share of normal rows the threshold flags, where it says
    heatmap_dir: str | None = None
    heatmaps: int = 0
    unit: str = "rows"  # what was scored: rows, or images
    notices: list[str] = field(default_factory=list)

    def add_unseen(self, counts: dict[str, int], examples: dict[str, list[str]]) -> None:
        """Add one chunk's unseen categories (``TabularPreprocessor.unseen_counts_`` and
        ``unseen_examples_``): counts summed, the first few distinct examples kept."""
        for col, n in counts.items():
            self.unseen_categories[col] = self.unseen_categories.get(col, 0) + n
            known = self.unseen_examples.setdefault(col, [])
            known += [v for v in examples.get(col, []) if v not in known][:UNSEEN_EXAMPLES - len(known)]


def score_table(data: str | os.PathLike[str], model: str | os.PathLike[str], out: str | os.PathLike[str] | BinaryIO, *,
                id_col: str | None = None, label_col: str | None = None, top_k: int = 3,
                chunksize: int = CHUNK_ROWS, verbose: int = 1) -> ScoreSummary | None:
    """``jobs.score_file`` for a table model, in numpy; None when the model at ``model`` is not
    one this path scores (the caller then runs ``jobs.score_file``). The same checks, in the
    same order, and the same output columns."""
    check_int(top_k, "--top-k", 1, 1000)
    check_int(chunksize, "--chunk-rows", 1, 100_000_000)
    out = check_table_output(out, inputs=[data])
    det = LightTableDetector.load(model)
    if det is None:
        return None
    return write_table_scores(det, data, out, id_col=id_col, label_col=label_col, top_k=top_k, chunksize=chunksize,
                              verbose=verbose)


def write_table_scores(det: Any, data: str | os.PathLike[str], out: str | os.PathLike[str] | BinaryIO, *,
                       id_col: str | None, label_col: str | None, top_k: int, chunksize: int,
                       verbose: int) -> ScoreSummary:
    """Score a table chunk by chunk with ``det`` (either scorer) and write ``out`` (CSV or
    Parquet), which appears atomically when every chunk is done; returns the counts. Whole
    chunks are
    scored on one thread per core (``map_ahead``), each with its own copy of ``det``
    (``copy_for_a_thread``). A torch detector's caller runs this in
    ``threads.one_torch_thread`` (``jobs.score_file``): each thread's torch then runs on one
    thread, as the numpy scorer's BLAS does (a million rows in 2.75-3.05 s instead of
    3.42-3.85 s with each chunk's rows shared among torch's threads, issue 34)."""
    workers = usable_cores()
    own = threading.local()
    columns = det.explained_columns_
    summary = ScoreSummary(expected_share=expected_share(det.threshold_rule_))

    def scored(numbered: tuple[int, pd.DataFrame]
               ) -> tuple[Any, int, int, dict[str, int], dict[str, list[str]], np.ndarray]:
        number, chunk = numbered
        if number == 0:
            summary.notices += unused_columns(chunk.columns, det.preprocessor_.columns_, id_col, label_col)
        if workers > 1 and not hasattr(own, "det"):
            own.det = det.copy_for_a_thread()
        mine = own.det if workers > 1 else det
        leaders = np.zeros(len(columns), dtype=np.int64)
        result = score_frame(mine, chunk, id_col=id_col, label_col=label_col, top_k=top_k, leaders=leaders)
        return (output.encode(result, first=number == 0), len(chunk), int(result["is_anomaly"].sum()),
                dict(mine.preprocessor_.unseen_counts_), dict(mine.preprocessor_.unseen_examples_), leaders)

    leaders = np.zeros(len(columns), dtype=np.int64)
    with table_output(out, marks.ANOMALY_SCORES) as output:
        chunks = map_ahead(scored, enumerate(iter_table(data, chunksize, ramp=True)), workers)
        if verbose > 0:  # tqdm's import is 0.025 s of a new process's start: only when it shows
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc="scoring", unit="chunk", leave=False, disable=None)  # None: off where not a terminal
        for encoded, rows, flagged, unseen, examples, led in chunks:
            output.write(encoded)
            summary.rows += rows
            summary.flagged += flagged
            leaders += led
            summary.add_unseen(unseen, examples)
    summary.leaders = leader_counts(leaders, columns)
    summary.known_categories = {c: det.preprocessor_.categories_[c] for c in summary.unseen_categories}
    return summary
