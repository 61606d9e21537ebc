"""Figures the applications write (PNG, atomically, headless): matplotlib charts, and
Pillow-only heat-map panels.

matplotlib (and pandas) are imported by the functions that draw with them, not with this
module: a command that draws no chart (``aekit anomaly score`` on images draws heat maps
with Pillow) does not pay their 0.5-1 s of import (issue 34)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import marks
from .io import atomic_path

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata=marks.png_text(marks.FIGURE))
    _pyplot().close(fig)
    return path


def score_histogram(scores: np.ndarray, threshold: float, path: str | os.PathLike[str],
                    labels: np.ndarray | None = None) -> Path:
    """Histogram of anomaly scores (log x-axis when they span decades) with the threshold."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    s = np.asarray(scores, dtype=float)
    positive = s[s > 0]
    use_log = len(positive) == len(s) and positive.max() / max(positive.min(), 1e-12) > 100
    bins = np.geomspace(positive.min(), positive.max(), 50) if use_log else 50
    if labels is None:
        ax.hist(s, bins=bins, color="tab:blue", alpha=0.8, label="rows")
    else:
        ax.hist(s[labels == 0], bins=bins, color="tab:blue", alpha=0.6, label="normal")
        ax.hist(s[labels == 1], bins=bins, color="tab:red", alpha=0.6, label="anomaly")
    if use_log:
        ax.set_xscale("log")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("anomaly score (higher = more anomalous)")
    ax.set_ylabel("rows")
    ax.legend()
    ax.set_title("Anomaly scores")
    return save_figure(fig, path)


def roc_curve_plot(labels: np.ndarray, scores: np.ndarray, path: str | os.PathLike[str]) -> Path:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, color="tab:red", label=f"AUC-ROC {roc_auc_score(labels, scores):.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return save_figure(fig, path)


def contributions_plot(contrib: pd.DataFrame, path: str | os.PathLike[str], max_features: int = 10,
                       scores: pd.Series | None = None) -> Path:
    """Each row of ``contrib`` (the top anomalies) as a bar of its columns' shares of its
    contributions, with its score written beside it (``scores``; else the contributions'
    sum, the score less its terms that no column carries, which did not fall down the rows
    as the scores do). Bars of the totals themselves showed only the highest: one row of 2.5
    million left the next of 40,000 a sliver, and the columns shown were that row's."""
    totals = contrib.sum(axis=1)
    shown_totals = totals if scores is None else scores
    shares = contrib.div(totals.where(totals > 0, 1.0), axis=0) * 100
    top_cols = shares.sum(axis=0).sort_values(ascending=False).index[:max_features]  # every row counts alike
    shown = shares[top_cols].copy()
    shown["(other)"] = shares.drop(columns=top_cols).sum(axis=1)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(shown) + 1.8))
    left = np.zeros(len(shown))
    colors = plt.get_cmap("tab20").colors
    for i, col in enumerate(shown.columns):
        vals = shown[col].to_numpy()
        ax.barh(range(len(shown)), vals, left=left, color=colors[i % 20] if col != "(other)" else "lightgrey",
                label=col)
        left += vals
    for y, total in enumerate(np.asarray(shown_totals, dtype=float)):
        ax.text(101, y, f"{total:,.0f}" if total >= 100 else f"{total:.3g}", va="center", fontsize=8)
    ax.text(101, -0.9, "sum" if scores is None else "score", va="center", fontsize=8, fontweight="bold")
    ax.set_xlim(0, 100)
    ax.set_yticks(range(len(shown)), [str(i) for i in shown.index])
    ax.invert_yaxis()
    ax.set_xlabel("share of the row's contributions (%)")
    ax.set_ylabel("row")
    ax.set_title("What makes the top anomalies anomalous")
    ax.legend(loc="center left", bbox_to_anchor=(1.12, 0.5), fontsize=8)
    return save_figure(fig, path)


def training_curves(histories: list[list[dict[str, float]]], path: str | os.PathLike[str]) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, hist in enumerate(histories):
        epochs = [r["epoch"] for r in hist]
        ax.plot(epochs, [r["train_loss"] for r in hist], color=f"C{k}", alpha=0.6, label=f"model {k} train")
        if hist and "val_loss" in hist[0]:
            ax.plot(epochs, [r["val_loss"] for r in hist], color=f"C{k}", linestyle="--", label=f"model {k} val")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title("Training")
    return save_figure(fig, path)


def line_plot(curves: dict[str, list[tuple[float, float]]], path: str | os.PathLike[str], *, xlabel: str,
              ylabel: str, title: str = "") -> Path:
    """One line with markers per named list of ``(x, y)`` points."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, points in curves.items():
        xs, ys = zip(*sorted(points)) if points else ((), ())
        ax.plot(xs, ys, "o-", markersize=4, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


SERIES_POINTS = 4000  # a longer series is drawn as this many buckets (mean of values, max of scores)
SERIES_CHANNELS = 4  # channels drawn (the ones that contribute most to flagged rows first)


def series_plot(values: np.ndarray, channels: list[str], scores: np.ndarray, threshold: float,
                path: str | os.PathLike[str], labels: np.ndarray | None = None,
                times: np.ndarray | None = None, title: str = "Series and anomaly score") -> Path:
    """The series (``values [T, C]``, up to ``SERIES_CHANNELS`` of them) above its anomaly
    score with the threshold; flagged stretches shaded red, labelled ones (``labels``) orange."""
    plt = _pyplot()
    n = len(scores)
    bucket = max(1, -(-n // SERIES_POINTS))
    cut = -(-n // bucket) * bucket

    def reduced(x: np.ndarray, how: str) -> np.ndarray:
        pad = np.concatenate([x, np.repeat(x[-1:], cut - n, axis=0)]) if cut > n else x
        shaped = pad.reshape(cut // bucket, bucket, *x.shape[1:])
        return shaped.max(1) if how == "max" else shaped.mean(1)

    x = reduced(times, "mean") if times is not None else np.arange(0, cut, bucket)
    if times is not None:
        x = x.astype("datetime64[ns]")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 5.5), sharex=True, height_ratios=(3, 2))
    for j, name in enumerate(channels[:SERIES_CHANNELS]):
        top.plot(x, reduced(values[:, j], "mean"), linewidth=0.8, label=name)
    flagged = reduced((scores > threshold).astype(float), "max") > 0
    score_line = reduced(scores, "max")
    bottom.plot(x, score_line, color="tab:purple", linewidth=0.8, label="score")
    bottom.axhline(threshold, color="k", linestyle="--", linewidth=0.8, label=f"threshold {threshold:.3g}")
    for ax in (top, bottom):
        _shade(ax, x, flagged, "tab:red", "flagged")
        if labels is not None:
            _shade(ax, x, reduced(labels.astype(float), "max") > 0, "tab:orange", "labelled")
    positive = score_line[score_line > 0]
    if len(positive) and positive.max() / max(positive.min(), 1e-12) > 100:
        bottom.set_yscale("log")
    top.set_ylabel("value")
    bottom.set_ylabel("anomaly score")
    top.legend(loc="upper left", fontsize=8)
    bottom.legend(loc="upper left", fontsize=8)
    top.set_title(f"{title} ({int((scores > threshold).sum())} of {n} rows flagged)")
    fig.autofmt_xdate() if times is not None else bottom.set_xlabel("row")
    return save_figure(fig, path)


def fleet_plot(shares: np.ndarray, names: list[str], edges: np.ndarray, path: str | os.PathLike[str],
               title: str, times: bool = True) -> Path:
    """A fleet at a glance: one row per series (``names``), one column per stretch of time
    between ``edges`` (datetime64 with ``times``, else row numbers), coloured by the share of
    that series' rows flagged there (``shares [S, B]``, NaN where it has none): an incident
    of one machine is a red spot, one of the whole fleet a red column."""
    plt = _pyplot()
    from matplotlib.dates import date2num

    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.28 * len(names)))
    x = date2num(edges.astype("datetime64[ms]").astype(object)) if times else edges
    cmap = plt.get_cmap("Reds").copy()
    cmap.set_bad("0.9")
    mesh = ax.pcolormesh(x, np.arange(len(names) + 1), np.ma.masked_invalid(shares), cmap=cmap, vmin=0, vmax=1)
    ax.set_yticks(np.arange(len(names)) + 0.5, names, fontsize=8)
    ax.invert_yaxis()
    if times:
        ax.xaxis_date()
        fig.autofmt_xdate()
    else:
        ax.set_xlabel("row of the series")
    fig.colorbar(mesh, ax=ax, label="share of rows flagged", fraction=0.03, pad=0.01)
    ax.set_title(title)
    return save_figure(fig, path)


def _shade(ax: Any, x: np.ndarray, mask: np.ndarray, color: str, label: str) -> None:
    """Shade the stretches of ``x`` where ``mask`` holds (one legend entry)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    for i, (a, b) in enumerate(zip(edges[::2], edges[1::2], strict=True)):
        ax.axvspan(x[a], x[min(b, len(x) - 1)], color=color, alpha=0.2, linewidth=0, label=label if i == 0 else None)


HEATMAP_CELL = 112  # pixels: the height each image is shown at in heat-map panels


def heatmap_panel(image: np.ndarray, heat: np.ndarray, caption: str = "") -> np.ndarray:
    """``[h, w, 3]`` uint8: the image (``[C, H, W]`` in [0, 1]) beside it with its anomaly map
    (``[H, W]``, >= 0, scaled to its own maximum) blended over it in red-yellow, enlarged to
    ``HEATMAP_CELL`` pixels high, with ``caption`` below. Pillow and numpy only: 2-3 ms a
    panel written as a PNG (28x28 gray, 32x32 RGB), where a matplotlib figure took ~140."""
    from PIL import Image, ImageDraw

    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image[:3]
    rgb = np.clip(rgb.transpose(1, 2, 0), 0, 1)
    level = np.clip(heat / (heat.max() or 1.0), 0, 1)[..., None]
    colour = np.concatenate([np.ones_like(level), level, np.zeros_like(level)], axis=2)  # red to yellow
    blended = rgb * (1 - 0.6 * level) + colour * 0.6 * level
    pair = np.concatenate([rgb, np.ones((rgb.shape[0], max(1, rgb.shape[1] // 16), 3)), blended], axis=1)
    scale = max(1, HEATMAP_CELL // rgb.shape[0])
    panel = Image.fromarray((pair * 255).round().astype(np.uint8)).resize(
        (pair.shape[1] * scale, pair.shape[0] * scale), Image.NEAREST)
    canvas = Image.new("RGB", (panel.width, panel.height + (14 if caption else 0)), "white")
    canvas.paste(panel, (0, 0))
    if caption:
        ImageDraw.Draw(canvas).text((2, panel.height + 1), caption[:panel.width // 6], fill="black")
    return np.asarray(canvas)


def png_bytes(array: np.ndarray) -> bytes:
    """An ``[h, w, 3]`` uint8 array as the bytes of a PNG (what a service sends)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """An ``[h, w, 3]`` uint8 array as a PNG, atomically."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", **marks.pillow_options(marks.FIGURE, "PNG"))
    return path


def panel_grid(panels: list[np.ndarray] | np.ndarray, ncols: int = 4, margin: int = 3) -> np.ndarray:
    """Panels ``[h, w, C]`` (``heatmap_panel``'s, or images) tiled row by row on white (255
    for uint8, 1.0 for floats), each cell the largest panel's size plus ``margin`` pixels on
    every side."""
    h = max(p.shape[0] for p in panels) + 2 * margin
    w = max(p.shape[1] for p in panels) + 2 * margin
    ncols = max(1, min(ncols, len(panels)))
    dtype = panels[0].dtype
    white = 255 if np.issubdtype(dtype, np.integer) else 1.0
    grid = np.full((-(-len(panels) // ncols) * h, ncols * w, panels[0].shape[2]), white, dtype)
    for i, p in enumerate(panels):
        r, c = divmod(i, ncols)
        grid[r * h + margin:r * h + margin + p.shape[0], c * w + margin:c * w + margin + p.shape[1]] = p
    return grid


def image_grid(images: np.ndarray, path: str | os.PathLike[str], ncols: int = 8, title: str = "",
               cell_inches: float = 0.6) -> Path:
    """Images ``[N, C, H, W]`` in [0, 1] tiled row by row, ``ncols`` per row (a sample grid,
    or with ``ncols = N`` an interpolation strip)."""
    images = np.asarray(images, dtype=np.float32).clip(0, 1)
    n, c, h, w = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    # one mosaic, one imshow: 64 subplots took 1.3 s to build
    mosaic = panel_grid(images.transpose(0, 2, 3, 1), ncols, margin=max(1, round(min(h, w) / 28)))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(ncols * cell_inches, nrows * cell_inches + (0.3 if title else 0)))
    ax.axis("off")
    gray = c == 1
    ax.imshow(mosaic[..., 0] if gray else mosaic, cmap="gray" if gray else None, vmin=0, vmax=1,
              interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=9)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.9 if title else 1)
    return save_figure(fig, path)


def code_health_plot(history: list[dict[str, float]], shares: dict[str, float], path: str | os.PathLike[str],
                     title: str) -> Path:
    """Health of a discrete code per epoch: each ``shares`` key of the history divided by its
    full value (e.g. codes used / K), on [0, 1]; cumulative dead-code restarts, if logged, on
    the right axis."""
    epochs = [r["epoch"] + 1 for r in history]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, full in shares.items():
        ax.plot(epochs, [r[key] / full for r in history], label=f"{key.replace('_', ' ')} / {full:g}")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    lines = ax.get_legend_handles_labels()[0]
    if history and "dead_restarts" in history[0]:
        right = ax.twinx()
        right.plot(epochs, [r["dead_restarts"] for r in history], color="gray", linestyle="--",
                   label="dead-code restarts")
        right.set_ylabel("restarts (cumulative)")
        lines += right.get_legend_handles_labels()[0]
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="lower right")
    return save_figure(fig, path)
