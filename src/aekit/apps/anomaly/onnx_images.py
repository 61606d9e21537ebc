"""Scoring images with ONNX Runtime: what ``aekit anomaly score`` runs for an image model, so
that a new process never imports torch (issue 34: torch's import was 1.2-1.75 s of the 4.3 s
that 3,000 small PNGs took).

An image detector's model directory holds its score as an ONNX graph (``score.onnx``,
written by ``save`` from ``export.score_graph_bytes`` and verified by its SHA-256 like the
weights): input ``images`` ``[N, C, H, W]``, outputs ``score`` and the per-pixel ``maps``.
A model without the graph (saved before it existed, or where the ``onnx`` package was
missing), or an install without ONNX Runtime, is scored by the torch path instead: this
module then answers None. Scores agree with the torch path's to float32 rounding (tested).
"""
from __future__ import annotations

import math
import os
from typing import Any, BinaryIO

import numpy as np

from ...checks import check_int
from ...data.images import ImageSpec
from ...data.table_output import check_table_output
from ...io import SCORE_GRAPH_FILE, model_kind_at, read_model_file
from .image_scoring import HEATMAPS, IMAGE_CHUNK, check_image_options, write_image_scores
from .light import ScoreSummary

# the detectors whose image models carry the graph (their classes' ``_kind``; series never do)
KINDS = ("anomaly.AnomalyDetector", "anomaly.VAEAnomalyDetector", "anomaly.ImageAnomalyDetector")
# images per run of the graph: its local term gathers [images, 24, D] reference values (75 MB
# for 256 32x32 RGB images; ONNX Runtime keeps its buffers between runs)
GRAPH_BLOCK = 256


class OnnxImageScorer:
    """An image detector's saved graph, run by ONNX Runtime: ``decision_function`` and
    ``anomaly_map`` of the detector, ``image_spec_`` and ``threshold_`` from its config."""

    def __init__(self, config: dict[str, Any], graph: bytes) -> None:
        import onnxruntime

        self.image_spec_ = ImageSpec.from_dict(config["adapter"])
        self.threshold_ = float(config["state"]["threshold"]["threshold"])
        if math.isnan(self.threshold_):
            raise ValueError("threshold")
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only: its notes on unused initializers are not the user's
        # no constant folding: graphs saved before 0.6.0 shift the local term's references
        # nine times as operations, which folded cost 1.5 s and 1.4 GB at load for an RGB
        # model (1,365 references); today's graphs hold nothing worth folding
        self.session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"],
                                                    disabled_optimizers=["ConstantFolding"])

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OnnxImageScorer | None:
        """The scorer of the image model at ``path``; None for any other model, a model
        without the graph, or an install without ONNX Runtime."""
        if model_kind_at(path) not in KINDS:
            return None
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return None
        config, graph = read_model_file(path, KINDS, SCORE_GRAPH_FILE)
        if graph is None or config.get("adapter", {}).get("type") != "image":
            return None
        try:
            return cls(config, graph)
        except (KeyError, TypeError, ValueError):
            return None  # the torch path loads it, and says what is wrong if anything is

    def decision_function(self, images: np.ndarray) -> np.ndarray:
        return self._run("score", images).astype(np.float64)

    def anomaly_map(self, images: np.ndarray) -> np.ndarray:
        return self._run("maps", images)

    def _run(self, output: str, images: np.ndarray) -> np.ndarray:
        """One output over ``GRAPH_BLOCK`` images at a time (the graph's local term gathers
        its candidate references for every image of a run at once)."""
        images = self._inputs(images)
        return np.concatenate([self.session.run([output], {"images": images[at:at + GRAPH_BLOCK]})[0]
                               for at in range(0, max(len(images), 1), GRAPH_BLOCK)])

    def _inputs(self, images: np.ndarray) -> np.ndarray:
        spec = self.image_spec_
        if images.shape[1:] != (spec.channels, spec.height, spec.width):
            raise ValueError(f"images of shape {images.shape[1:]}, the graph takes {spec}")
        return np.ascontiguousarray(images, dtype=np.float32)


def score_images_file(data: str | os.PathLike[str], model: str | os.PathLike[str], out: str | os.PathLike[str] | BinaryIO, *,
                      id_col: str | None = None, label_col: str | None = None,
                      heatmap_dir: str | os.PathLike[str] | None = None, heatmaps: int = HEATMAPS,
                      chunksize: int = IMAGE_CHUNK, verbose: int = 1, skip_unreadable: bool = False
                      ) -> ScoreSummary | None:
    """``jobs.score_file`` for an image model, in ONNX Runtime; None when the model at
    ``model`` is not one this path scores (the caller then runs ``jobs.score_file``). The
    same checks, in the same order, and the same outputs."""
    check_int(heatmaps, "--heatmaps", 0)
    check_int(chunksize, "--chunk-rows", 1, 100_000_000)
    out = check_table_output(out, inputs=[data])
    scorer = OnnxImageScorer.load(model)
    if scorer is None:
        return None
    check_image_options(id_col, label_col)
    return write_image_scores(data, scorer.image_spec_, scorer.threshold_, scorer.decision_function,
                              scorer.anomaly_map, out, heatmap_dir, heatmaps, min(chunksize, IMAGE_CHUNK), verbose,
                              skip_unreadable)
