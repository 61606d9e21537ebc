"""Scoring a source of images to a CSV and heat maps, whichever engine computes the scores
(the detector in torch, or its ONNX graph in ONNX Runtime, ``onnx_images``). No torch here."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ... import marks, plots
from ...data.images import UNREADABLE_SHOWN, ImageSet, ImageSpec, image_chunks
from ...data.table_output import is_stream, table_output
from ...errors import DataError, grouped_said
from ...io import check_output_dir, claim_output_dir
from .light import ScoreSummary
from .report import Metrics, binary_labels, class_summary, evaluate, label_classes, write_report

IMAGE_CHUNK = 1024  # images decoded and scored at a time (--chunk-rows may lower it)
HEATMAPS = 20  # heat maps of this many flagged images (the highest scores): a view, not one file per anomaly
GALLERY = 8  # images in each of a report's galleries
OVERVIEW = "_overview.png"  # in the heat-map folder: the top anomalies' panels in one grid
HEATMAP_KIND = "anomaly heat maps"  # the markers of the folders these jobs fill (see io.check_output_dir)


def check_image_options(id_col: str | None, label_col: str | None) -> None:
    """Table options given for an image model are an error, not silently ignored."""
    for option, value in (("--id-col", id_col), ("--label-col", label_col)):
        if value is not None:
            raise DataError(f"{option} is for tables: an image model's output names each image by its file "
                            "(and its class folder, if any)")


def check_no_image_options(kind: str, heatmap_dir: str | os.PathLike[str] | None = None,
                           skip_unreadable: bool = False) -> None:
    """Image options given for a table or series model are an error, not silently ignored."""
    for option, given in (("--heatmap-dir", heatmap_dir is not None), ("--skip-unreadable", skip_unreadable)):
        if given:
            raise DataError(f"{option} is for image models, not a {'time-series' if kind == 'series' else kind} "
                            "model")


def write_image_scores(data: str | os.PathLike[str], spec: ImageSpec, threshold: float,
                       score: Callable[[np.ndarray], np.ndarray], anomaly_maps: Callable[[np.ndarray], np.ndarray],
                       out: str | os.PathLike[str] | BinaryIO, heatmap_dir: str | os.PathLike[str] | None = None,
                       heatmaps: int = HEATMAPS, chunk: int = IMAGE_CHUNK, verbose: int = 1,
                       skip_unreadable: bool = False) -> ScoreSummary:
    """Score images as a stream: decode ``chunk`` at a time (a folder in a background thread),
    ``score`` them, and append the rows to a CSV (image, score, is_anomaly[, class]) that
    appears atomically at the end; memory holds a few chunks whatever the source's size. Then,
    for the ``heatmaps`` highest-scoring flagged images, a PNG of the image beside its
    ``anomaly_maps`` map, and one overview grid of them. A file that cannot be read is an
    error, or, with ``skip_unreadable``, left out of the output and named in the summary's
    notices."""
    heat_dir = heatmap_folder(data, out, heatmap_dir, heatmaps)
    count, chunks = image_chunks(data, spec, chunk, skip_unreadable=skip_unreadable)
    summary = ScoreSummary(heatmap_dir=str(heat_dir) if heat_dir else None, unit="images")
    top = _TopImages(heatmaps)
    unreadable: dict[str, str] = {}
    with table_output(out, marks.ANOMALY_SCORES) as output, \
            tqdm(total=count, desc="scoring", unit="img", leave=False, disable=True if verbose <= 0 else None) as bar:
        for part in _readable(chunks, unreadable, bar):
            scores = np.asarray(score(part.images), dtype=np.float64)
            flagged = scores > threshold
            table = pd.DataFrame({"image": part.names, "score": scores, "is_anomaly": flagged.astype(int)})
            if part.classes:
                table["class"] = [part.classes[i] if i >= 0 else "" for i in part.labels]
            output.write_frame(table)
            top.offer(scores, flagged, part, summary.rows)
            summary.rows += len(scores)
            summary.flagged += int(flagged.sum())
            bar.update(len(scores))
        check_some_read(data, summary.rows, unreadable)
    summary.notices = unreadable_notes(unreadable)
    summary.heatmaps = draw_heatmaps(heat_dir, top.names, top.scores, top.images, anomaly_maps)
    return summary


def _readable(chunks: Iterator[ImageSet], unreadable: dict[str, str], bar: tqdm) -> Iterator[ImageSet]:
    """``chunks`` that hold images, each chunk's unreadable files added to ``unreadable`` (and
    counted on ``bar``)."""
    for part in chunks:
        if part.unreadable:
            unreadable.update(part.unreadable)
            bar.update(len(part.unreadable))
        if len(part.images):
            yield part


def check_some_read(data: str | os.PathLike[str], scored: int, unreadable: dict[str, str]) -> None:
    """A source whose every file was left out as unreadable is an error, not an empty output."""
    if unreadable and not scored:
        (name, why), *others = unreadable.items()
        if not others:
            raise DataError(f"the one image in {data}, {name}, {why}")
        raise DataError(f"none of the {len(unreadable)} images in {data} can be read ({name} {why}, ...)")


def unreadable_notes(unreadable: dict[str, str]) -> list[str]:
    """The files left out as unreadable (name -> why), one line per reason:
    ``2 images not scored, cannot be decoded as an image (an empty file): a.jpg, b.jpg``."""
    return grouped_said(unreadable.items(), _not_scored)


def _not_scored(names: list[str], why: str) -> str:
    more = len(names) - UNREADABLE_SHOWN
    shown = ", ".join(names[:UNREADABLE_SHOWN]) + (f" and {more:,} more" if more > 0 else "")
    return f"{len(names):,} image{'s' if len(names) > 1 else ''} not scored, {why}: {shown}"


def heatmap_folder(data: str | os.PathLike[str], out: str | os.PathLike[str] | BinaryIO,
                   heatmap_dir: str | os.PathLike[str] | None, heatmaps: int) -> Path | None:
    """The folder for the heat maps of a job writing ``out``: ``heatmap_dir``, or OUT_heatmaps
    beside ``out``; checked before any work (``check_output_dir``). None with ``heatmaps`` 0,
    or for scores written to a stream without ``heatmap_dir``: nothing is written then."""
    if heatmap_dir:
        return check_output_dir(heatmap_dir, HEATMAP_KIND, inputs=[data], option="--heatmap-dir") if heatmaps else None
    if not heatmaps or is_stream(out):
        return None
    out = Path(out)  # type: ignore[arg-type]
    unzipped = out.with_suffix("") if out.suffix.lower() == ".gz" else out  # s.csv.gz -> s_heatmaps, as s.csv
    return check_output_dir(out.with_name(unzipped.stem + "_heatmaps"), HEATMAP_KIND, inputs=[data],
                            option="the heat-map folder (see --heatmap-dir)")


def draw_heatmaps(heat_dir: Path | None, names: list[str], scores: np.ndarray, images: np.ndarray | None,
                  anomaly_maps: Callable[[np.ndarray], np.ndarray]) -> int:
    """A PNG of each image beside its ``anomaly_maps`` map in ``heat_dir``, named after the
    image, and one overview grid of them all; how many were drawn."""
    if heat_dir is None or not len(scores):
        return 0
    claim_output_dir(heat_dir, HEATMAP_KIND)
    panels = _panels(names, scores, images, anomaly_maps)
    for name, panel in zip(names, panels, strict=True):
        plots.write_png(panel, heat_dir / f"{name.replace('/', '__').rsplit('.', 1)[0]}.png")
    # one image to look at first: the top anomalies side by side
    plots.write_png(plots.panel_grid(panels), heat_dir / OVERVIEW)
    return len(panels)


def _panels(names: list[str], scores: np.ndarray, images: np.ndarray,
            anomaly_maps: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """Each image beside its anomaly map, captioned with its name and score."""
    # maps only for the images drawn: the per-pixel pass costs more than the score alone
    maps = anomaly_maps(images)
    return [plots.heatmap_panel(image, heat, f"{name}: {value:.3g}")
            for name, value, image, heat in zip(names, scores, images, maps, strict=True)]


@dataclass
class ImageAnalysis:
    """What ``analyse_images`` found: every image's score and (with classes) label, the
    metrics, each class's counts, and the report's files."""

    scores: np.ndarray
    labels: np.ndarray | None
    metrics: Metrics | None
    by_class: pd.DataFrame | None
    report_paths: list[Path]
    notices: list[str]


def analyse_images(data: str | os.PathLike[str], spec: ImageSpec, threshold: float,
                   score: Callable[[np.ndarray], np.ndarray], anomaly_maps: Callable[[np.ndarray], np.ndarray],
                   report_dir: str | os.PathLike[str], normal_value: str | None = None, labelled: bool = False,
                   chunk: int = IMAGE_CHUNK, verbose: int = 1, skip_unreadable: bool = False) -> ImageAnalysis:
    """Score an image source as a stream and write a report: the scores' histogram, and a
    gallery of the highest-scoring images beside their anomaly maps. With ``labelled`` or a
    ``normal_value``, the images' class folders are their labels (``normal_value`` names the
    normal class, every other class is anomalous), and the report adds metrics
    (``metrics.json``), the ROC curve, each class's share flagged and AUC-ROC against the
    normal class, and galleries of the anomalies scored lowest (missed) and the normal
    images scored highest (false alarms). Memory holds a few chunks and the galleries'
    images. Unreadable files as ``write_image_scores`` treats them."""
    count, chunks = image_chunks(data, spec, chunk, skip_unreadable=skip_unreadable)
    unreadable: dict[str, str] = {}
    scores, labels, classes = [], [], []
    top, missed, alarms = (_TopImages(GALLERY), _TopImages(GALLERY, lowest=True), _TopImages(GALLERY))
    offset = 0
    with tqdm(total=count, desc="scoring", unit="img", leave=False, disable=True if verbose <= 0 else None) as bar:
        for part in _readable(chunks, unreadable, bar):
            s = np.asarray(score(part.images), dtype=np.float64)
            names = _class_names(part, labelled) if labelled or normal_value is not None else None
            if normal_value is not None and part.classes and str(normal_value) not in part.classes:
                raise DataError(f"--normal-value {normal_value!r} is not a class of {data} (classes: {part.classes})")
            if names is not None and not part.classes:  # an .npz's label in the galleries' captions
                part = replace(part, names=[f"{n} ({c})" for n, c in zip(part.names, names, strict=True)])
            top.offer(s, np.ones(len(s), dtype=bool), part, offset)
            if names is not None:
                y = binary_labels(names, normal_value)
                missed.offer(s, y == 1, part, offset)
                alarms.offer(s, y == 0, part, offset)
                labels.append(y)
                classes.append(label_classes(names))
            scores.append(s)
            offset += len(s)
            bar.update(len(s))
    check_some_read(data, offset, unreadable)
    if not offset:
        raise DataError(f"{data} holds no images")
    all_scores = np.concatenate(scores)
    y = np.concatenate(labels) if labels else None
    metrics = evaluate(all_scores, y, threshold) if y is not None else None
    by_class, extra = class_summary(all_scores, classes, y, threshold, "images")
    paths = write_report(report_dir, all_scores, threshold, y=y, metrics=metrics, more_metrics=extra)
    out = Path(report_dir)
    # the highest scores; the anomalies scored lowest; the normal images scored highest
    for kept, file in ((top, "top_anomalies.png"), (missed, "missed_anomalies.png"), (alarms, "false_alarms.png")):
        if len(kept.scores):
            grid = plots.panel_grid(_panels(kept.names, kept.scores, kept.images, anomaly_maps))
            paths.append(plots.write_png(grid, out / file))
    return ImageAnalysis(all_scores, y, metrics, by_class, paths, unreadable_notes(unreadable))


def _class_names(part: ImageSet, labelled: bool) -> np.ndarray | None:
    """Each image's class: its folder's name, or an ``.npz``'s label as text; None for images
    without classes. An image outside every class folder among images in class folders is
    refused."""
    if part.labels is None:
        if labelled:
            raise DataError("eval needs the images in class folders (e.g. good/ and defect/), or an .npz with "
                            "labels, and --normal-value naming the normal class")
        return None
    if not part.classes:
        return part.labels.astype(str).astype(object)
    if (part.labels < 0).any():
        first = part.names[int(np.flatnonzero(part.labels < 0)[0])]
        raise DataError(f"{first} lies outside every class folder: put each image in its class's folder")
    return np.asarray(part.classes, dtype=object)[part.labels]


class _TopImages:
    """The ``size`` images seen so far with the highest scores among those offered (ties: the
    earlier first); with ``lowest``, the lowest scores instead."""

    def __init__(self, size: int, lowest: bool = False) -> None:
        self.size, self.sign = size, -1.0 if lowest else 1.0
        self.scores = np.zeros(0)
        self.order = np.zeros(0, dtype=np.int64)  # position in the source
        self.names: list[str] = []
        self.images = np.zeros((0, 1, 1, 1), dtype=np.float32)

    def offer(self, scores: np.ndarray, offered: np.ndarray, part: ImageSet, offset: int) -> None:
        new = np.flatnonzero(offered)
        if not self.size or not len(new):
            return
        scores = np.concatenate([self.scores, scores[new]])
        order = np.concatenate([self.order, offset + new])
        names = self.names + [part.names[i] for i in new]
        images = np.concatenate([self.images, part.images[new]]) if len(self.scores) else part.images[new]
        keep = np.lexsort((order, -self.sign * scores))[:self.size]
        self.scores, self.order, self.images = scores[keep], order[keep], images[keep]
        self.names = [names[i] for i in keep]
