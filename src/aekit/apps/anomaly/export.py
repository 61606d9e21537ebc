"""``aekit anomaly export --format onnx``: a detector as one ONNX graph.

The graph's input is the raw numbers a user has (``x``: float32 ``[rows, columns]`` in the
model card's column order; for an image model ``images``: ``[N, C, H, W]`` in [0, 1] at the
model's size). Everything aekit does after reading the data is inside: the log transform
and robust scaling of the columns, every autoencoder of the ensemble, the feature weights,
the code-density, local-density and histogram terms. Outputs: ``score`` (float32 ``[rows]``, the
``decision_function``) and ``is_anomaly`` (``score > threshold``). The threshold, the
column names and the weights' checksum are in the model's metadata.

A table model with categorical columns takes them as a second input, ``categories``: strings
``[rows, categorical columns]`` (the metadata's ``categorical_columns`` order; the values as
text, as ``str(value)`` writes them); a model with no numeric column takes that input alone.
The graph looks each value up among the training categories (ONNX-ML's ``LabelEncoder``) and
one-hot encodes it; a value never seen in training is all zeros, as in aekit.

aekit refuses a row holding NaN or inf; a graph cannot raise, so such a row scores NaN
(a model trained with ``impute="median"`` fills them with the training median, as aekit
does).

A time-series model's graph (``SeriesGraph``) takes one series: ``x``, float32 ``[rows,
channels]`` in time order (the metadata's ``columns``), and scores every row as ``aekit
anomaly score`` scores a file of that series: the windows, the scaling, every network and
the averaging of the windows' scores onto their rows are inside. A model of several series
scaled each by its own statistics takes a second input, ``series``: int64 ``[1]``, the
series' position in the metadata's ``series_ids`` (-1 for a series not in training, scaled
by all the training series' statistics, as aekit does). The times are not an input: the
caller sorts the rows and checks their gaps. A series shorter than one window, or holding
NaN or inf anywhere, scores NaN on every row (aekit refuses the one, or fills with
``impute="ffill"``, and leaves the other unscored in a table of several).

The graph holds every window's candidate neighbours for the local term at once (about
``2 x 256 x window x channels`` float32 per window of the stride), so a long series goes in
pieces: rows ``[a, b)``, ``a`` a multiple of the metadata's ``stride``, get the whole
series' scores from the rows ``[a - m, b + window)`` (clipped to the series; ``m`` the
smallest multiple of ``stride`` of at least ``window - 1``).
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..._version import __version__
from ... import marks
from ...data.preprocess import WHOLE_NUMBER_CATEGORY, category_aliases
from ...io import atomic_path, check_output_file
from . import read_detector

OPSET = 17
FORMATS = ("onnx",)


class ScoreGraph(nn.Module):
    """``decision_function`` as a module of torch operations (what the exporter traces).
    Outputs ``(score, is_anomaly)``; with ``maps`` (images), ``(score, maps)``: the per-pixel
    parts of the score, channels summed (``score_maps``), what the heat maps draw."""

    def __init__(self, det: Any, maps: bool = False) -> None:
        super().__init__()
        self.det = det
        self.maps = maps
        self.members = nn.ModuleList(det.models_)  # registered: their weights become initializers
        if det.local_references_ is not None:  # registered too, so what the graph does to them stays operations
            self.register_buffer("local_references", det.local_references_)
        self.table = det.adapter_.kind == "table"
        if self.table:
            pre = det.preprocessor_
            self.register_buffer("center", torch.tensor(pre.center_, dtype=torch.float32))
            self.register_buffer("scale", torch.tensor(pre.scale_, dtype=torch.float32))
            self.register_buffer("logged", torch.tensor([c in pre.log_columns for c in pre.numeric_]))
            self.impute = pre.impute is not None
            self.clip = float(pre.clip)
        self.register_buffer("threshold", torch.tensor(det.threshold_, dtype=torch.float32))

    def forward(self, x: torch.Tensor, onehot: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``onehot``: the categorical columns' one-hot block, which the exported graph makes
        from its ``categories`` strings (``_add_category_lookup``)."""
        # x - x is 0 where x is finite and NaN elsewhere: cheaper in the graph than isfinite,
        # which the exporter casts to float64 first
        finite = (x - x).flatten(1).sum(1) == 0
        z = self._prepare(x) if self.table else x
        if onehot is not None:  # the preprocessor's order: the scaled numbers, then each column's one-hot block
            z = torch.cat([z, onehot], dim=1)
        parts = torch.zeros_like(z) if self.maps else None
        score = self.det._block_scores(z, parts)
        if not (self.table and self.impute):
            score = torch.where(finite, score, torch.full_like(score, float("nan")))
        return (score, parts.sum(1)) if parts is not None else (score, score > self.threshold)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """``TabularPreprocessor.transform_array``: log columns, imputation, scaling, clipping."""
        z = torch.where(self.logged, torch.sign(x) * torch.log1p(torch.abs(x)), x)
        if self.impute:
            z = torch.where(torch.isfinite(z), z, self.center)
        return ((z - self.center) / self.scale).clamp(-self.clip, self.clip)


class SeriesGraph(nn.Module):
    """A time-series detector's ``decision_function`` on one series, in torch operations.

    A row's score is the mean of the scores of the windows that cover it: the windows that
    start every ``stride`` rows, and the one that ends on the last row. For row ``r`` the
    first kind are windows ``a..b`` (``a = ceil((r - window + 1) / stride)``, ``b = r //
    stride``, clipped to those that exist), summed as a difference of cumulative sums (in
    float64: a long series' running total would lose a float32 score's digits), so the graph
    needs gathers, not scatters."""

    def __init__(self, det: Any) -> None:
        super().__init__()
        self.det = det
        self.members = nn.ModuleList(det.models_)
        if det.local_references_ is not None:
            self.register_buffer("local_references", det.local_references_)
        adapter = det.series_adapter_
        self.window, self.stride = det.window_, det.stride_
        self.series_ids = list(adapter.series_stats_ or {})
        # each series' own statistics, then the shared ones (index -1: a series not in training)
        stats = [adapter.series_stats_[key] for key in self.series_ids] + [[adapter.center_, adapter.scale_]]
        self.register_buffer("centres", torch.tensor([c for c, _ in stats], dtype=torch.float64))
        self.register_buffer("spreads", torch.tensor([s for _, s in stats], dtype=torch.float64))
        self.register_buffer("threshold", torch.tensor(det.threshold_, dtype=torch.float32))

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        w, s = self.window, self.stride
        which = series if series is not None else torch.tensor([-1])
        z = ((x.double() - self.centres[which]) / self.spreads[which]).float()
        n = torch._shape_as_tensor(x)[0]
        z = torch.cat([z, torch.zeros(w, z.shape[1])])  # a series shorter than a window still gathers in bounds
        last = torch.clamp(n - w, min=0)  # where the window that ends the series starts
        count = last // s + 1  # windows on the stride
        starts = torch.cat([torch.arange(count) * s, last.reshape(1)])
        windows = z[starts[:, None] + torch.arange(w)[None, :]]  # [count + 1, window, channels]
        scores = self.det._block_scores(windows.transpose(1, 2).flatten(1), None).double()
        running = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(scores[:-1], 0)])
        rows = torch.arange(n)
        first = (torch.clamp(rows - w + 1, min=0) + s - 1) // s
        stop = torch.clamp(rows // s + 1, max=count)  # one past the last stride window covering the row
        covered = torch.clamp(stop - first, min=0)
        total = torch.where(covered > 0, running[stop] - running[torch.clamp(first, max=count)], 0.0)
        ending = ((last % s != 0) & (rows >= last)).double()  # the last window, where it is off the stride
        score = ((total + ending * scores[-1]) / (covered + ending)).float()
        whole = ((x - x).sum() == 0) & (n >= w)  # every value finite, and a window's rows at least
        score = torch.where(whole, score, torch.full_like(score, float("nan")))
        return score, score > self.threshold


class CategoriesGraph(ScoreGraph):
    """``ScoreGraph`` of a table model with categorical columns only: the one-hot block (which
    the exported graph makes from its ``categories`` strings) is the whole input."""

    def forward(self, onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        score = self.det._block_scores(onehot, None)
        return score, score > self.threshold


def export_onnx(model_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the detector at ``model_dir`` as an ONNX file at ``out`` (atomically); returns
    the metadata written into it."""
    out = check_output_file(out, marks.SCORE_GRAPH, inputs=[model_dir], suffixes=(".onnx",))
    det, config = read_detector(model_dir)
    if det.adapter_.kind == "series":
        return _export_series(det, config, out)
    table = det.adapter_.kind == "table"
    numeric = det.preprocessor_.numeric_ if table else []
    graph = (CategoriesGraph if table and not numeric else ScoreGraph)(det).eval()
    categories = det.preprocessor_.categories_ if table else {}
    shape = (len(numeric),) if table else tuple(det.adapter_.sample_shape)
    inputs = {"x" if table else "images": torch.zeros(2, *shape)} if numeric or not table else {}
    described = [f"{next(iter(inputs))}: float32 [rows, {', '.join(map(str, shape))}]"] if inputs else []
    if categories:
        inputs["onehot"] = torch.zeros(2, sum(map(len, categories.values())))
        described.append(f"categories: string [rows, {len(categories)}] (categorical_columns, as text)")
    meta = {
        **_meta(det, config, described),
        "columns": json.dumps(numeric),
        "categorical_columns": json.dumps(list(categories)),
        "outputs": "score: float32 [rows] (higher = more anomalous); is_anomaly: bool [rows] (score > threshold)",
    }
    pooled, missing = (det.preprocessor_.pooled_, det.preprocessor_.na_values) if table else ([], [])
    lookup = (lambda model: _add_category_lookup(model, categories, pooled, missing)) if categories else None
    _write(out, graph, inputs, meta, edit=lookup)
    return meta


def _meta(det: Any, config: dict[str, Any], described: list[str]) -> dict[str, str]:
    """The metadata every exported graph carries: versions, threshold, checksum, its inputs."""
    return {"aekit_version": __version__, "kind": config["kind"], "threshold": repr(float(det.threshold_)),
            "threshold_rule": det.threshold_rule_.describe(), "weights_sha256": config["weights_sha256"],
            "input": "; ".join(described)}


def _write(out: Path, graph: nn.Module, inputs: dict[str, torch.Tensor], meta: dict[str, str],
           rows: tuple[str, ...] | None = None, edit: Any = None) -> None:
    """Trace ``graph`` (``_trace``) into ``out`` atomically, changed by ``edit`` (a function of
    the loaded ONNX model) and carrying ``meta``."""
    import onnx

    with atomic_path(out) as tmp:
        _trace(graph, inputs, str(tmp), ("score", "is_anomaly"), rows=rows)
        model = onnx.load(str(tmp))
        if edit is not None:
            edit(model)
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        model.producer_name, model.producer_version = "aekit", __version__
        onnx.save(model, str(tmp))


def _export_series(det: Any, config: dict[str, Any], out: Path) -> dict[str, Any]:
    """``export_onnx`` of a time-series detector (``SeriesGraph``)."""
    graph = SeriesGraph(det).eval()
    adapter = det.series_adapter_
    channels = adapter.channels_
    inputs = {"x": torch.zeros(3 * det.window_ + 1, len(channels))}
    described = [f"x: float32 [rows, {len(channels)}] (one series, in time order)"]
    if graph.series_ids:
        inputs["series"] = torch.tensor([0])
        described.append("series: int64 [1] (the position in series_ids; -1: a series not in training)")
    meta = {
        **_meta(det, config, described), "columns": json.dumps(channels),
        "window": str(det.window_), "stride": str(det.stride_),
        "time_col": json.dumps(adapter.time_col), "id_col": json.dumps(adapter.id_col),
        "series_ids": json.dumps(graph.series_ids),
        "outputs": "score: float32 [rows] (higher = more anomalous; NaN for a series shorter than one window or "
                   "holding NaN or inf); is_anomaly: bool [rows] (score > threshold)",
    }
    _write(out, graph, inputs, meta, rows=("x",))
    return meta


def _trace(graph: nn.Module, inputs: dict[str, torch.Tensor], target: Any, outputs: tuple[str, ...],
           rows: tuple[str, ...] | None = None) -> None:
    """Trace ``graph`` on the example ``inputs`` (by name, in ``forward``'s order) into an
    ONNX file or buffer ``target``, the first axis (rows) of the outputs and of the inputs
    ``rows`` (default: all) dynamic."""
    examples = tuple(inputs.values())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on constants and its own deprecation
        graph(*examples)  # once outside the tracer: anything a detector caches is a constant in the graph
        torch.onnx.export(graph, examples, target, input_names=list(inputs), output_names=list(outputs),
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={name: {0: "rows"} for name in (*(rows or inputs), *outputs)})


def _add_category_lookup(model: Any, categories: dict[str, list[str]], pooled: list[str],
                         missing: list[str] = ()) -> None:
    """Replace the traced graph's ``onehot`` input by nodes that make it from a string input
    ``categories [rows, len(categories)]``: per column, its value's index among the training
    categories (``LabelEncoder``, -1 when never seen), compared with 0..k-1 (a never-seen
    value: all zeros, as ``TabularPreprocessor.transform``), the blocks side by side. In a
    ``pooled`` column every other value takes the last category's index (its "(other)"), but
    the ``missing`` markers (the model's ``na_values``), which are missing values: -1."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    nodes, blocks, constants = [], [], []
    constants.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "category_axis"))
    for j, (name, values) in enumerate(categories.items()):
        column, code, index, hot = (f"category{j}_{part}" for part in ("column", "code", "index", "hot"))
        constants += [numpy_helper.from_array(np.array(j, dtype=np.int64), column),
                      numpy_helper.from_array(np.arange(len(values), dtype=np.float32), f"category{j}_range")]
        nodes += [
            helper.make_node("Gather", ["categories", column], [f"category{j}_text"], axis=1),
            helper.make_node("LabelEncoder", [f"category{j}_text"], [code], domain="ai.onnx.ml",
                             **_category_keys(values, missing),
                             default_float=float(len(values) - 1) if name in pooled else -1.0),
            helper.make_node("Unsqueeze", [code, "category_axis"], [index]),
            helper.make_node("Equal", [index, f"category{j}_range"], [f"category{j}_equal"]),
            helper.make_node("Cast", [f"category{j}_equal"], [hot], to=TensorProto.FLOAT),
        ]
        blocks.append(hot)
    nodes.append(helper.make_node("Concat", blocks, ["onehot"], axis=1))
    kept = [i for i in g.input if i.name != "onehot"]
    del g.input[:]
    g.input.extend([*kept, helper.make_tensor_value_info("categories", TensorProto.STRING, ["rows", len(categories)])])
    traced = list(g.node)
    del g.node[:]
    g.node.extend([*nodes, *traced])
    g.initializer.extend(constants)
    model.opset_import.append(helper.make_opsetid("ai.onnx.ml", 2))


def _category_keys(values: list[str], missing: list[str] = ()) -> dict[str, list[Any]]:
    """The lookup's keys and indices: each category's text, and for a whole number ("1") its
    float's text too ("1.0", as ``astype(str)`` writes a float column), as aekit reads both;
    a True/False column's other spellings (``preprocess.category_aliases``); each
    ``missing`` marker -1 (no category)."""
    keys, indices = [str(v) for v in values], [float(i) for i in range(len(values))]
    for i, v in enumerate(values):
        alias = f"{v}.0"
        if WHOLE_NUMBER_CATEGORY.fullmatch(str(v)) and alias not in values:
            keys.append(alias)
            indices.append(float(i))
    for marker in missing:  # before the aliases: a marker is a missing value first, as aekit reads it
        if marker not in keys:
            keys.append(marker)
            indices.append(-1.0)
    for alias, category in category_aliases([str(v) for v in values]).items():
        if alias not in keys:
            keys.append(alias)
            indices.append(float(keys.index(category)))
    return {"keys_strings": keys, "values_floats": indices}


def score_graph_bytes(det: Any) -> bytes | None:
    """The ONNX graph saved in an image detector's model directory (``io.SCORE_GRAPH_FILE``):
    input ``images`` ``[N, C, H, W]`` in [0, 1] at the model's size; outputs ``score``
    ``[N]`` and ``maps`` ``[N, H, W]`` (``score_maps``). ``aekit anomaly score`` runs it
    with ONNX Runtime, so that scoring a folder needs no torch (issue 34). None where the
    ``onnx`` package that the exporter needs is missing: the model is then scored in torch."""
    import io

    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError:
        return None
    buffer = io.BytesIO()
    _trace(ScoreGraph(det, maps=True).eval(), {"images": torch.zeros(2, *det.adapter_.sample_shape)}, buffer,
           ("score", "maps"))
    return buffer.getvalue()


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of an exported model (what ``export_onnx`` wrote)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(Path(path))).metadata_props}
