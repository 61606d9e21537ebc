"""Rows that arrive over the wire (JSON records, a CSV body) -> a detector's input tensor (a
series model's: its input table), with every bad value named by its place
(``records[3]['age']``); images (a file as the body, or base64 files in JSON) -> an image
model's input array; the files of an HTML form (``multipart/form-data``, what ``curl -F`` and
``requests.post(files=...)`` send) -> the bodies they would have been.

Numbers are taken strictly: a string, a boolean or (unless the model imputes) a null where a
number belongs is refused, never coerced. In a categorical column a boolean is the category
``"True"`` or ``"False"``, as a CSV's ``True`` or ``true`` is read. Keys that are not
training columns (an event ID) are ignored. The tensor is what ``detector.adapter_.transform``
makes of the same rows, so a row scores exactly as it does in ``aekit anomaly score``.
"""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import torch

from ...data.images import ImageSpec, read_image_file
from ...data.tables import check_not_data, other_separator
from ...errors import DataError

NUMBER_TYPES = (int, float)


def records_to_inputs(det: Any, records: Any) -> torch.Tensor:
    """The input tensor of JSON ``records`` (a list of objects, column -> value)."""
    _check_records(records)
    pre = det.preprocessor_
    numeric = _take(records, pre.numeric_)
    _check_numbers(numeric, pre.numeric_, allow_null=pre.impute is not None)
    matrix = np.array(numeric, dtype=np.float64).reshape(len(records), len(pre.numeric_))
    if not pre.categories_:
        return torch.from_numpy(pre.transform_array(matrix))
    frame = pd.DataFrame(matrix, columns=pre.numeric_)
    for col in pre.categories_:
        values = _take(records, [col])
        _check_labels(values, col, booleans=True)
        frame[col] = [v[0] for v in values]
    return torch.from_numpy(pre.transform(frame))


def records_to_series(det: Any, records: Any) -> pd.DataFrame:
    """A series model's JSON ``records`` as the table its ``decision_function`` takes: the
    channels (numbers, strictly; null only where the model imputes), its time and ID columns
    (strings or numbers; the detector then reads the times and checks their order)."""
    _check_records(records)
    adapter = det.series_adapter_
    channels = adapter.channels_
    values = _take(records, channels)
    _check_numbers(values, channels, allow_null=adapter.impute is not None)
    frame = pd.DataFrame(np.array(values, dtype=np.float64).reshape(len(records), len(channels)), columns=channels)
    for col in (adapter.id_col, adapter.time_col):
        if col is not None:
            labels = _take(records, [col])
            _check_labels(labels, col, allow_null=False)
            frame[col] = [v[0] for v in labels]
    return frame


@dataclass
class ImageRequest:
    """A request's images converted to the model's spec, ``[N, C, H, W]`` in [0, 1], and each
    one's own size as sent, ``(width, height)``."""

    images: np.ndarray
    sizes: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.images)


def image_request(spec: ImageSpec, files: list[bytes], names: list[str]) -> ImageRequest:
    """Image files' bytes (PNG, JPEG, ...) read as ``aekit anomaly score`` reads files."""
    sizes: list[tuple[int, int]] = []
    arrays = [read_image_file(io.BytesIO(data), spec, natural=sizes, name=name)[0]
              for data, name in zip(files, names, strict=True)]
    return ImageRequest(np.stack(arrays), sizes)


def base64_files(images: Any) -> list[bytes]:
    """A JSON ``images`` list of base64-encoded files, decoded."""
    if not isinstance(images, list):
        raise DataError(f"'images' must be a list of base64-encoded image files, got {_json_type(images)}")
    if not images:
        raise DataError("'images' is empty")
    files = []
    for i, text in enumerate(images):
        if not isinstance(text, str):
            raise DataError(f"images[{i}] must be a base64-encoded image file (a string), got {_json_type(text)}")
        try:
            files.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise DataError(f"images[{i}] is not valid base64") from None
    return files


@dataclass
class FormFile:
    """One file of a form: its field's file name, its declared media type, its bytes."""

    name: str
    media: str
    data: bytes


def form_files(content_type: str, body: bytes) -> list[FormFile]:
    """The files of a ``multipart/form-data`` body, in the order sent (fields that are not
    files, such as a form's text inputs, are skipped); refused where the body is not such a
    form, is cut short or holds no file. The body is split on its boundary, not parsed line
    by line, so a form of a large CSV costs one pass over its bytes."""
    from email.parser import HeaderParser
    from email.policy import HTTP

    boundary = HeaderParser(policy=HTTP).parsestr(f"Content-Type: {content_type}\r\n\r\n").get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise DataError("a multipart/form-data body needs its boundary in the Content-Type header")
    sections = body.split(b"--" + boundary.encode("latin-1"))
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise DataError("the form body is cut short (no closing boundary)")
    files = []
    for section in sections[1:-1]:
        head, found, data = section.partition(b"\r\n\r\n")
        if not found:
            raise DataError("a part of the form body has no blank line after its headers")
        headers = HeaderParser(policy=HTTP).parsestr(head.decode("latin-1").strip("\r\n") + "\r\n\r\n")
        filename = headers.get_filename()
        if filename is not None:
            files.append(FormFile(filename, headers.get_content_type(), data.removesuffix(b"\r\n")))
    if not files:
        raise DataError("the form holds no file: send each as a file field (curl -F file=@data.csv)")
    return files


def csv_frame(body: bytes) -> pd.DataFrame:
    """A CSV body with a header row as a DataFrame (``adapter_.transform`` then names a
    missing column or a non-number)."""
    try:
        frame = pd.read_csv(io.BytesIO(body))
    except pd.errors.EmptyDataError:
        raise DataError("the CSV body has no header or rows") from None
    except UnicodeDecodeError:
        raise DataError("the CSV body is not UTF-8 text: send it as UTF-8") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"malformed CSV body ({(str(exc).splitlines() or [''])[0][:200]})") from None
    check_not_data(list(frame.columns), "the CSV body")
    if frame.empty:
        raise DataError("the CSV body has a header but no rows")
    if frame.shape[1] == 1:
        _check_body_separator(body)
    return frame


def _check_body_separator(body: bytes) -> None:
    """Refuse a one-column body whose fields are separated by ';', tabs or '|' (a
    spreadsheet's export): scored as it is, it would only be told its columns are missing."""
    lines = body.decode("utf-8", errors="replace").splitlines()[:2]
    other = other_separator(lines[0], lines[1] if len(lines) > 1 else "", ",")
    if other is not None:
        shown = "tabs" if other == "\t" else repr(other)
        raise DataError(f"the CSV body's fields are separated by {shown}; send them separated by commas")


def split_records(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """pandas' ``to_json(orient="split")`` (``{"columns": [...], "index": [...], "data":
    [[...], ...]}``) as the records it holds; a row of another length than the columns is
    named (its ``index`` is not a column)."""
    columns, data = payload["columns"], payload["data"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise DataError("'columns' must be a list of column names (strings)")
    if not isinstance(data, list):
        raise DataError(f"'data' must be a list of rows (lists of values), got {_json_type(data)}")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != len(columns):
            got = f"{len(row)} values" if isinstance(row, list) else _json_type(row)
            raise DataError(f"data[{i}] must be a list of {len(columns)} values, one per column, got {got}")
    return [dict(zip(columns, row)) for row in data]


def _check_records(records: Any) -> None:
    if not isinstance(records, list):
        raise DataError(f"'records' must be a list of objects, got {_json_type(records)}")
    if not records:
        raise DataError("'records' is empty")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(f"records[{i}] must be an object (column -> value), got {_json_type(record)}")


def _take(records: list[dict[str, Any]], columns: list[str]) -> list[tuple[Any, ...]]:
    """Each record's values of ``columns`` as a tuple (itemgetter: C speed), missing keys named."""
    if not columns:
        return [() for _ in records]
    getter = itemgetter(*columns)
    try:
        values = [getter(r) for r in records]
    except KeyError:
        for i, r in enumerate(records):
            missing = [c for c in columns if c not in r]
            if missing:
                raise DataError(f"records[{i}] is missing column {missing[0]!r}"
                                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")) from None
        raise
    return values if len(columns) > 1 else [(v,) for v in values]


def _check_numbers(rows: list[tuple[Any, ...]], columns: list[str], allow_null: bool) -> None:
    allowed = {int, float, type(None)} if allow_null else {int, float}
    if set(map(type, chain.from_iterable(rows))) <= allowed:
        return
    for i, row in enumerate(rows):
        for col, value in zip(columns, row, strict=True):
            if type(value) not in allowed:
                shown = " (this model does not impute missing values)" if value is None else f" {value!r:.40}"
                raise DataError(f"records[{i}][{col!r}] must be a number, got {_json_type(value)}{shown}")


def _check_labels(values: list[tuple[Any, ...]], col: str, allow_null: bool = True, booleans: bool = False) -> None:
    """A column of categories, times or IDs: strings or numbers (and nulls, and booleans
    for categories, where allowed)."""
    for i, (value,) in enumerate(values):
        if isinstance(value, bool) and booleans:
            continue
        if not ((value is None and allow_null) or isinstance(value, (str, *NUMBER_TYPES))) or isinstance(value, bool):
            raise DataError(f"records[{i}][{col!r}] must be a string or a number, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)
