"""Output tables written chunk by chunk, as CSV, TSV (either gzipped) or Parquet (by the
file name's suffix), appearing atomically when the last chunk is in: what the scoring
commands write.

``TableOutput.encode`` turns a chunk into what ``write`` appends (CSV bytes or an Arrow
table) and may run on any thread, so workers format their own chunks; ``write`` and
``close`` run on the thread that owns the file. A Parquet file carries aekit's mark in its
schema metadata (``marks``); a CSV's header is its mark.
"""
from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

from .. import marks
from ..errors import DataError
from ..io import atomic_path, check_output_file

OUTPUT_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet")
# gzip's fastest level: 3-4x smaller than the text, at about the cost of formatting it again
GZIP_LEVEL = 1


class TableOutput:
    """Appends chunks of one table to ``fh``, a file open for binary writing: CSV (the
    header with the first chunk; ``delimiter`` between the values) or Parquet (one row group
    per chunk; every chunk cast to the first one's column types)."""

    def __init__(self, fh: BinaryIO, parquet: bool, kind: str, delimiter: str = ",") -> None:
        self.fh, self.parquet, self.kind, self.delimiter = fh, parquet, kind, delimiter
        self.writer: Any = None  # pyarrow's ParquetWriter, opened with the first chunk
        self.chunks = 0

    def encode(self, frame: pd.DataFrame, first: bool) -> bytes | Any:
        """``frame`` ready for ``write`` (``first``: the table's first chunk, which carries
        a CSV's header). Any thread."""
        if not self.parquet:
            body = io.BytesIO()
            write_csv_chunk(body, frame, header=first, delimiter=self.delimiter)
            return body.getvalue()
        import pyarrow as pa

        try:
            return pa.Table.from_pandas(frame, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise DataError(f"a chunk of the output cannot be written as Parquet ({exc}); write a .csv") from None

    def write(self, encoded: bytes | Any) -> None:
        """Append a chunk from ``encode``, in the table's order."""
        self.chunks += 1
        if not self.parquet:
            self.fh.write(encoded)
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.writer is None:
            schema = encoded.schema.with_metadata({**(encoded.schema.metadata or {}),
                                                   **marks.parquet_metadata(self.kind)})
            self.writer = pq.ParquetWriter(self.fh, schema)
        elif not encoded.schema.equals(self.writer.schema, check_metadata=False):
            encoded = _cast(encoded, self.writer.schema, self.chunks, pa)
        self.writer.write_table(encoded)

    def write_frame(self, frame: pd.DataFrame) -> None:
        """``write(encode(frame, ...))`` on this thread."""
        self.write(self.encode(frame, first=self.chunks == 0))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _cast(table: Any, schema: Any, number: int, pa: Any) -> Any:
    """``table`` as the first chunk's types; a column whose values cannot be (text after
    numbers, say) is named."""
    columns = []
    for field in schema:
        column = table.column(field.name)
        try:
            columns.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise DataError(f"column {field.name!r} reads as {column.type} in chunk {number} of the output but as "
                            f"{field.type} in the first; a Parquet column holds one type: write a .csv, or make "
                            "the column one type in the input") from None
    return pa.Table.from_arrays(columns, schema=schema)


def is_stream(out: object) -> bool:
    """Whether an output is an open binary stream (``--out -``: the command's standard
    output) rather than a path."""
    return hasattr(out, "write")


def check_table_output(out: str | os.PathLike[str] | BinaryIO,
                       inputs: list[str | os.PathLike[str]]) -> Path | BinaryIO:
    """A scoring job's ``out`` checked before any work (``check_output_file``: one of
    ``OUTPUT_SUFFIXES``, never an input nor a file of yours), or a stream as it is."""
    if is_stream(out):
        return out  # type: ignore[return-value]
    return check_output_file(out, marks.ANOMALY_SCORES, inputs=inputs, suffixes=OUTPUT_SUFFIXES)


@contextmanager
def table_output(path: str | os.PathLike[str] | BinaryIO, kind: str) -> Iterator[TableOutput]:
    """A ``TableOutput`` for ``path`` (Parquet where it ends with ``.parquet``, tab-separated
    where it ends with ``.tsv``, else CSV; gzipped where it ends with ``.gz``): the file
    appears, complete, when the block ends without an error. A binary stream gets CSV as
    the rows are scored (a pipe's reader has them at once; there is no file to withhold)."""
    if is_stream(path):
        output = TableOutput(path, False, kind)  # type: ignore[arg-type]
        yield output
        path.flush()  # type: ignore[union-attr]
        return
    path = Path(path)
    name = path.name.lower()
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, _gzipped(raw, name.endswith(".gz")) as fh:
        output = TableOutput(fh, name.endswith(".parquet"), kind, "\t" if name.removesuffix(".gz").endswith(".tsv")
                             else ",")
        try:
            yield output
        except BaseException:
            with suppress(Exception):  # the file is dropped; only its writer is let go
                output.close()
            raise
        output.close()


@contextmanager
def _gzipped(fh: BinaryIO, gzipped: bool) -> Iterator[BinaryIO]:
    """``fh``, or a gzip stream onto it (closed, its trailer written, when the block ends)."""
    if not gzipped:
        yield fh
        return
    with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as stream:
        yield stream  # type: ignore[misc]


def write_csv_chunk(fh: BinaryIO, frame: pd.DataFrame, header: bool, delimiter: str = ",") -> None:
    """Append ``frame`` to a CSV opened in binary mode (with the header row when ``header``;
    ``delimiter`` between values: a TSV with a tab).

    Arrow's writer formats numbers about ten times faster than pandas' (1,000,000 rows of
    four columns: 0.2 s against 2.5 s), which is most of what writing scores costs. Values
    are quoted only where they must be (a comma, quote or line break), as pandas writes
    them; a column Arrow cannot type (mixed objects) falls back to pandas."""
    import csv

    import pyarrow as pa
    import pyarrow.csv as pa_csv

    if header:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n", delimiter=delimiter).writerow([str(c) for c in frame.columns])
        fh.write(text.getvalue().encode())
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for style in ("none", "needed"):  # "none" refuses values that need quotes: then quote strings
            body = io.BytesIO()
            try:
                pa_csv.write_csv(table, body, pa_csv.WriteOptions(include_header=False, quoting_style=style,
                                                                  delimiter=delimiter))
                break
            except pa.ArrowInvalid:
                continue
    except (pa.ArrowException, TypeError, ValueError):
        body = io.BytesIO(frame.to_csv(header=False, index=False, lineterminator="\n", sep=delimiter).encode())
    fh.write(body.getvalue())
