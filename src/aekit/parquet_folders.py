"""A folder of Parquet files as one table: what Spark, Dask and ``DataFrame.to_parquet`` on a
folder write (``part-00000-....parquet``, ``part.0.parquet``, ..., beside ``_SUCCESS`` and
``_metadata``). Standard library only: the image readers and the output checks ask it
whether a folder is one, and must not import pandas to find out."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")


def parquet_parts(path: str | os.PathLike[str]) -> list[Path] | None:
    """The Parquet files of a folder, in name order (as the writers number their parts), or
    None where ``path`` is not a folder holding any. Files whose names start with ``_`` or
    ``.`` (a writer's markers and summaries) are not parts. A folder partitioned into
    ``key=value`` folders is refused: its key's values live in the folders' names."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    parts, partitions = [], []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        # names first: a folder of 100,000 images is not stat-ed file by file
        if entry.suffix.lower() in PARQUET_SUFFIXES and entry.is_file():
            parts.append(entry)
        elif "=" in entry.name and entry.is_dir() and any(entry.rglob("*.parquet")):
            partitions.append(entry.name)
    if partitions:
        raise DataError(f"{folder} is a Parquet dataset partitioned into folders ({partitions[0]}, ...), whose "
                        "values live in the folders' names: write it as one table, e.g. "
                        "pandas.read_parquet(path).to_parquet(new_path)")
    return parts or None
