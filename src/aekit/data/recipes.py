"""Recipes for well-known public table formats.

KDD Cup 99 connection records ship without a header: ``kdd_to_csv`` streams the raw file
into a CSV with the 41 standard feature names plus ``label`` (``normal.`` or an attack name),
ready for ``aekit anomaly train kdd.csv --label-col label --normal-value normal.``.

Card-transaction tables (Time, V1..V28, Amount, Class) already have a header:
``aekit anomaly train card.csv --label-col Class --normal-value 0 --log-columns Amount``.
"""
from __future__ import annotations

import os

import pandas as pd

from .. import marks
from ..errors import DataError, first_line
from ..io import atomic_path, check_output_file

KDD_FEATURES = [
    "duration", "protocol_type", "service", "flag", "src_bytes", "dst_bytes", "land", "wrong_fragment",
    "urgent", "hot", "num_failed_logins", "logged_in", "num_compromised", "root_shell", "su_attempted",
    "num_root", "num_file_creations", "num_shells", "num_access_files", "num_outbound_cmds",
    "is_host_login", "is_guest_login", "count", "srv_count", "serror_rate", "srv_serror_rate",
    "rerror_rate", "srv_rerror_rate", "same_srv_rate", "diff_srv_rate", "srv_diff_host_rate",
    "dst_host_count", "dst_host_srv_count", "dst_host_same_srv_rate", "dst_host_diff_srv_rate",
    "dst_host_same_src_port_rate", "dst_host_srv_diff_host_rate", "dst_host_serror_rate",
    "dst_host_srv_serror_rate", "dst_host_rerror_rate", "dst_host_srv_rerror_rate",
]
KDD_LABEL = "label"
CARD_COLUMNS = ["Time", *[f"V{i}" for i in range(1, 29)], "Amount", "Class"]


def kdd_to_csv(src: str | os.PathLike[str], dst: str | os.PathLike[str], chunksize: int = 200_000) -> int:
    """Add the header to a raw KDD Cup 99 file (42 comma-separated fields per line).
    Streams in chunks; returns the number of rows written. ``dst`` must be new (or empty)."""
    check_output_file(dst, marks.TABLE, inputs=[src], suffixes=(".csv",), option="dst")
    rows = 0
    try:
        reader = pd.read_csv(src, header=None, names=[*KDD_FEATURES, KDD_LABEL], chunksize=chunksize)
        with atomic_path(dst) as tmp, open(tmp, "w", newline="") as fh:
            for chunk in reader:
                if chunk[KDD_LABEL].isna().any():
                    raise DataError(f"{src}: a line has fewer than 42 fields (not a KDD Cup 99 file?)")
                chunk.to_csv(fh, header=rows == 0, index=False)
                rows += len(chunk)
    except pd.errors.EmptyDataError:
        raise DataError(f"{src} is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{src} is not a KDD Cup 99 file ({first_line(exc)})") from None
    return rows
