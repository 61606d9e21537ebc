"""``aekit anomaly export --format onnx``: a detector as one ONNX graph.

The graph's input is the raw numbers a user has (``x``: float32 ``[rows, columns]`` in the
model card's column order; for an image model ``images``: ``[N, C, H, W]`` in [0, 1] at the
model's size). Everything aekit does after reading the data is inside: the log transform
and robust scaling of the columns, every autoencoder of the ensemble, the feature weights,
the code-density, local-density and histogram terms. Outputs: ``score`` (float32 ``[rows]``, the
``decision_function``) and ``is_anomaly`` (``score > threshold``). The threshold, the
column names and the weights' checksum are in the model's metadata.

aekit refuses a row holding NaN or inf; a graph cannot raise, so such a row scores NaN
(a model trained with ``impute="median"`` fills them with the training median, as aekit
does). Categorical columns are refused: the one-hot step needs strings, which the float
input cannot carry.
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
from ...errors import DataError
from ... import marks
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
            if pre.categories_:
                raise DataError(f"ONNX export takes numeric columns only; this model has categorical column(s) "
                                f"{list(pre.categories_)[:5]}: score it with aekit or 'aekit serve'")
            self.register_buffer("center", torch.tensor(pre.center_, dtype=torch.float32))
            self.register_buffer("scale", torch.tensor(pre.scale_, dtype=torch.float32))
            self.register_buffer("logged", torch.tensor([c in pre.log_columns for c in pre.numeric_]))
            self.impute = pre.impute is not None
            self.clip = float(pre.clip)
        self.register_buffer("threshold", torch.tensor(det.threshold_, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x - x is 0 where x is finite and NaN elsewhere: cheaper in the graph than isfinite,
        # which the exporter casts to float64 first
        finite = (x - x).flatten(1).sum(1) == 0
        z = self._prepare(x) if self.table else x
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


def export_onnx(model_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the detector at ``model_dir`` as an ONNX file at ``out`` (atomically); returns
    the metadata written into it."""
    import onnx

    out = check_output_file(out, marks.SCORE_GRAPH, inputs=[model_dir], suffixes=(".onnx",))
    det, config = read_detector(model_dir)
    if det.adapter_.kind == "series":
        raise DataError(f"{model_dir} is a time-series detector: ONNX export covers table and image detectors "
                        "(a series' row scores come from overlapping windows); score it with 'aekit anomaly score'")
    graph = ScoreGraph(det).eval()
    shape = tuple(det.adapter_.sample_shape)
    input_name = "x" if graph.table else "images"
    example = torch.zeros(2, *shape)
    meta = {
        "aekit_version": __version__, "kind": config["kind"], "threshold": repr(float(det.threshold_)),
        "threshold_rule": det.threshold_rule_.describe(), "weights_sha256": config["weights_sha256"],
        "input": f"{input_name}: float32 [rows, {', '.join(map(str, shape))}]",
        "columns": json.dumps(det.preprocessor_.numeric_ if graph.table else []),
        "outputs": "score: float32 [rows] (higher = more anomalous); is_anomaly: bool [rows] (score > threshold)",
    }
    with atomic_path(out) as tmp:
        _trace(graph, example, str(tmp), input_name, ("score", "is_anomaly"))
        model = onnx.load(str(tmp))
        for key, value in meta.items():
            model.metadata_props.add(key=key, value=value)
        model.producer_name, model.producer_version = "aekit", __version__
        onnx.save(model, str(tmp))
    return meta


def _trace(graph: ScoreGraph, example: torch.Tensor, target: Any, input_name: str, outputs: tuple[str, ...]) -> None:
    """Trace ``graph`` on ``example`` into an ONNX file or buffer ``target``, every tensor's
    first axis (rows) dynamic."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on constants and its own deprecation
        graph(example)  # once outside the tracer: anything a detector caches is a constant in the graph
        torch.onnx.export(graph, (example,), target, input_names=[input_name], output_names=list(outputs),
                          opset_version=OPSET, dynamo=False,
                          dynamic_axes={name: {0: "rows"} for name in (input_name, *outputs)})


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
    _trace(ScoreGraph(det, maps=True).eval(), torch.zeros(2, *det.adapter_.sample_shape), buffer, "images",
           ("score", "maps"))
    return buffer.getvalue()


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of an exported model (what ``export_onnx`` wrote)."""
    import onnx

    return {p.key: p.value for p in onnx.load(str(Path(path))).metadata_props}
