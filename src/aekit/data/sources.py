"""One reader for any data source a command names: images (a folder, an ``.npz``, an image
file, a bundled set) or a table (CSV/TSV/Parquet). Returns the samples, their labels when
the source carries them (class subfolders, bundled sets), and a name for each."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from .images import is_image_source, load_images
from .tables import read_table


@dataclass
class Source:
    X: Any  # images [N, C, H, W] or a DataFrame of features
    labels: np.ndarray | None
    names: list[str]


def read_source(data: str | os.PathLike[str], size: tuple[int, int] | None = None) -> Source:
    """Read ``data`` whole; images at ``size`` (H, W) when given."""
    if is_image_source(data):
        images = load_images(data, size=size)
        labels = images.labels if images.labels is not None and (images.labels >= 0).all() else None
        return Source(images.images, labels, images.names or [f"image_{i}" for i in range(len(images.images))])
    if size is not None:
        raise DataError(f"{data} is a table; --image-size is for images")
    table = read_table(data)
    return Source(table, None, [f"row_{i}" for i in range(len(table))])
