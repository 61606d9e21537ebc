"""The mark aekit leaves in each output file it writes, so that a later run can tell its own
earlier output from a file of yours: ``io.check_output_file`` replaces only the former.

A mark is part of the format, so every reader still reads the file as before:

- PNG: a ``tEXt`` chunk ``aekit-output`` holding the kind (``png_text``);
- TIFF: its ``ImageDescription`` (``description``);
- WAV: its ``INFO`` list's software string (``description``);
- ``.npz``: the zip archive's comment (``zip_comment``);
- ``.aek``: its magic bytes; ``.onnx``: its producer, ``aekit``;
- Parquet: its schema's metadata, ``aekit-output`` (``parquet_metadata``);
- CSV and JSON lines: the header or first record that only aekit's writer of that kind
  writes (their formats have no place for a mark).

A BMP or a plain text file cannot carry one: an existing one is never replaced.
"""
from __future__ import annotations

import csv
import io
import json
import os
import struct
from pathlib import Path

MARK_KEY = "aekit-output"

# the kinds of output file (a writer and its check name the same one)
ANOMALY_SCORES = "anomaly scores"
CLUSTERS = "clusters"
MATCHES = "matches"
CODES = "codes"
TOKENS = "tokens"  # vq encode
DECODED_IMAGES = "decoded images"  # vq decode --npz
GENERATED_IMAGES = "generated images"
FIGURE = "figure"
DECODED_IMAGE = "decoded image"
COMPRESSED_IMAGE = "compressed image"
CONVERTED_SPEECH = "converted speech"
SYNTHETIC_SPEECH = "synthetic speech"  # voice make-corpus
SCORE_GRAPH = "score graph"
TREES = "trees"
TEXT = "text"  # never recognised: a text file holds no mark
TABLE = "table"  # a converted data table (its header is the data's): never recognised

HEAD_BYTES = 1 << 16  # what is read of an existing file to find its mark
GZIP_MAGIC = b"\x1f\x8b"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*")
AEK_MAGIC = b"AEK"  # compress.bitstream.MAGIC (a core module does not import an application)
PARQUET_MAGIC = b"PAR1"
ONNX_PRODUCER = b"\x12\x05aekit"  # ModelProto field 2 (producer_name), right after ir_version
CSV_HEADERS = {
    CLUSTERS: ["sample", "cluster"],
    MATCHES: ["query", "rank", "match", "distance"],
}


def description(kind: str) -> str:
    """The text that marks a TIFF's description or a WAV's software string."""
    return f"{MARK_KEY}: {kind}"


def png_text(kind: str) -> dict[str, str]:
    """The PNG text chunks that mark a file (matplotlib's ``metadata=``, Pillow's ``PngInfo``)."""
    return {MARK_KEY: kind}


def pillow_options(kind: str, fmt: str) -> dict[str, object]:
    """Pillow's ``save`` options that mark an image file of format ``fmt`` (a BMP has no
    place for a mark: none)."""
    if fmt == "PNG":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text(MARK_KEY, kind)
        return {"pnginfo": info}
    return {"description": description(kind)} if fmt == "TIFF" else {}


def parquet_metadata(kind: str) -> dict[str, str]:
    """The schema metadata that marks a Parquet file."""
    return {MARK_KEY: kind}


def zip_comment(kind: str) -> bytes:
    return description(kind).encode("ascii")


def mark_zip(path: str | os.PathLike[str], kind: str) -> None:
    """Set the comment of the zip archive (an ``.npz``) at ``path`` to ``kind``'s mark."""
    import zipfile

    with zipfile.ZipFile(path, "a") as archive:
        archive.comment = zip_comment(kind)


def output_kind(path: str | os.PathLike[str]) -> str | None:
    """The kind of aekit output the file ``path`` is, from its mark; None for a file aekit
    did not write (or cannot tell that it did)."""
    import zipfile  # here: a command that replaces no file does not import it

    import zlib

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(HEAD_BYTES)
        if head.startswith(GZIP_MAGIC) and path.suffix.lower() == ".gz":  # a gzipped table: its text's header
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, HEAD_BYTES)
            path = path.with_suffix("")
            if path.suffix.lower() not in (".csv", ".tsv"):
                return None
        return _kind_from_head(path, head)
    except (OSError, ValueError, zipfile.BadZipFile, struct.error, zlib.error):
        return None


def _kind_from_head(path: Path, head: bytes) -> str | None:
    suffix = path.suffix.lower()
    if head.startswith(PNG_SIGNATURE):
        return _png_kind(head)
    if head.startswith(TIFF_SIGNATURES):
        return _described(_tiff_description(path))
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return _described(_wav_software(head))
    if head.startswith(b"PK"):
        import zipfile

        with zipfile.ZipFile(path) as archive:
            return _described(archive.comment.decode("ascii", "replace"))
    if head.startswith(AEK_MAGIC) and suffix == ".aek":
        return COMPRESSED_IMAGE
    if suffix == ".onnx" and ONNX_PRODUCER in head[:16]:
        return SCORE_GRAPH
    if head.startswith(PARQUET_MAGIC) and suffix == ".parquet":
        return _parquet_kind(path)
    first_line = head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r")
    if suffix in (".csv", ".tsv"):
        return _csv_kind(first_line, "\t" if suffix == ".tsv" else ",")
    if suffix == ".jsonl":
        record = json.loads(first_line)
        return TREES if isinstance(record, dict) and set(record) == {"line", "tokens", "spans"} else None
    return None


def _parquet_kind(path: Path) -> str | None:
    """The ``aekit-output`` value of a Parquet file's schema metadata (in its footer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowException, OSError):
        return None
    value = metadata.get(MARK_KEY.encode("ascii"))
    return value.decode("utf-8", "replace") if value is not None else None


def _described(text: str | None) -> str | None:
    """The kind a ``description`` names (libsndfile appends its own name to the WAV's)."""
    prefix = f"{MARK_KEY}: "
    if not text or not text.startswith(prefix):
        return None
    return text[len(prefix):].split(" (libsndfile", 1)[0].strip()


def _png_kind(head: bytes) -> str | None:
    """The ``aekit-output`` text chunk's value, looked for in the chunks before the image
    data (where aekit's writers put it)."""
    at = len(PNG_SIGNATURE)
    while at + 8 <= len(head):
        length, name = struct.unpack(">I4s", head[at:at + 8])
        if name in (b"IDAT", b"IEND"):
            return None
        if name == b"tEXt":
            key, _, value = head[at + 8:at + 8 + length].partition(b"\x00")
            if key == MARK_KEY.encode("ascii"):
                return value.decode("latin-1")
        at += 12 + length
    return None


def _tiff_description(path: Path) -> str | None:
    from PIL import Image

    with Image.open(path) as image:
        value = image.tag_v2.get(270)  # ImageDescription
    return value if isinstance(value, str) else None


def _wav_software(head: bytes) -> str | None:
    """The ``ISFT`` string of a WAV's ``LIST``/``INFO`` chunk (libsndfile writes it before
    the samples)."""
    at = 12
    while at + 8 <= len(head):
        name, length = struct.unpack("<4sI", head[at:at + 8])
        if name == b"LIST" and head[at + 8:at + 12] == b"INFO":
            inner, end = at + 12, at + 8 + length
            while inner + 8 <= min(end, len(head)):
                key, size = struct.unpack("<4sI", head[inner:inner + 8])
                if key == b"ISFT":
                    return head[inner + 8:inner + 8 + size].split(b"\x00", 1)[0].decode("latin-1")
                inner += 8 + size + (size & 1)
        if name == b"data":
            return None
        at += 8 + length + (length & 1)
    return None


def _csv_kind(first_line: str, delimiter: str = ",") -> str | None:
    """The kind a CSV header shows: the scores of ``anomaly score`` (``score`` then
    ``is_anomaly``, whatever columns come around them), or an exact header of another
    writer."""
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter), [])
    if any(a == "score" and b == "is_anomaly" for a, b in zip(header, header[1:])):
        return ANOMALY_SCORES
    for kind, columns in CSV_HEADERS.items():
        if header == columns:
            return kind
    return None
