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
from .tables import read_table, split_columns


@dataclass
class Source:
    X: Any  # images [N, C, H, W] or a DataFrame of features
    labels: np.ndarray | None
    names: list[str]


def read_source(data: str | os.PathLike[str], size: tuple[int, int] | None = None, *,
                label_col: str | None = None, id_col: str | None = None, drop_cols: list[str] | None = None) -> Source:
    """Read ``data`` whole; images at ``size`` (H, W) when given. For a table, ``label_col``,
    ``id_col`` and ``drop_cols`` are left out of the features: the labels only score, the IDs
    name the rows (else ``row_0``, ``row_1``, ...)."""
    if is_image_source(data):
        given = [flag for flag, name in (("--label-col", label_col), ("--id-col", id_col), ("--drop-cols", drop_cols))
                 if name]
        if given:
            named = "names a table column" if len(given) == 1 else "name table columns"
            raise DataError(f"{data} is an image source; {' and '.join(given)} {named} (images take their labels "
                            "from class subfolders, their names from their files)")
        images = load_images(data, size=size)
        labels = images.labels if images.labels is not None and (images.labels >= 0).all() else None
        return Source(images.images, labels, images.names or [f"image_{i}" for i in range(len(images.images))])
    if size is not None:
        raise DataError(f"{data} is a table; --image-size is for images")
    features, labels, ids = split_columns(read_table(data), label_col, id_col, drop_cols)
    names = ids.astype(str).tolist() if ids is not None else [f"row_{i}" for i in range(len(features))]
    return Source(features, None if labels is None else labels.astype(str).to_numpy(), names)
