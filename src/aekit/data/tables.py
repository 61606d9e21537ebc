"""Reading user tables (CSV, Parquet) whole or in bounded-memory chunks, with clear errors."""
from __future__ import annotations

import bz2
import codecs
import csv
import glob
import gzip
import io
import itertools
import lzma
import os
import re
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, DataNotice, ParameterError, first_line
from ..parquet_folders import parquet_parts

T = TypeVar("T")
R = TypeVar("R")
TABLE_SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
SEPARATORS = {"csv": ",", "tsv": "\t"}  # each text format's field separator
# a CSV or TSV compressed so is read as it streams: each suffix's format and opener
COMPRESSIONS = {".gz": ("gzip", gzip.open), ".bz2": ("bzip2", bz2.open), ".xz": ("xz", lzma.open)}
# the byte-order marks of UTF-32 and UTF-16 text and their codecs; UTF-32's little-endian mark
# begins with UTF-16's, so it is tried first (a text file is read so, a CSV refused with the fix)
UNICODE_MARKS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                 (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# the text pandas' read_csv reads as NaN by default (its na_values)
NA_MARKERS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


def table_format(path: str | os.PathLike[str]) -> str:
    """``csv``, ``tsv`` or ``parquet`` from the file name; errors for missing or other files."""
    p = Path(path)
    if not p.exists():
        raise _missing(p)
    if p.is_dir():
        if parquet_parts(p) is not None:
            return "parquet"
        from .images import IMAGE_SUFFIXES

        if any(f.suffix.lower() in IMAGE_SUFFIXES for f in itertools.islice(p.rglob("*"), 1000)):
            raise DataError(f"{p} is a folder of images, not a table: this reads tables (a .csv or .parquet file, "
                            "or a folder of Parquet files); images take an image model")
        raise DataError(f"{p} is a directory, not a table (expected .csv or .parquet, or a folder of Parquet files)")
    fmt = format_by_name(p)
    if fmt is None:
        reader = CONVERTIBLE.get(p.suffix.lower())
        fix = f": convert it, e.g. pandas.{reader}.to_csv(new_path, index=False)" if reader else ""
        if not p.suffix:  # the type is read from the name: a pipeline's "data" may well be a CSV
            raise DataError(f"{p} has no file type in its name; expected .csv, .tsv or .parquet: give it the one it "
                            "is (e.g. rename it to .csv)")
        raise DataError(f"{p}: unsupported file type {p.suffix!r}; expected .csv, .tsv or .parquet{fix}")
    if p.stat().st_size == 0:
        raise DataError(f"{p} is empty")
    return fmt


def iter_table(path: str | os.PathLike[str], chunksize: int = 100_000, *, ramp: bool = False,
               columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """Yield the table in chunks of at most ``chunksize`` rows; memory stays bounded.
    The path is checked now, not at the first chunk, so errors come before any progress bar.

    ``columns``: only these, each read as in the whole table's chunks (a first pass that
    needs one column converts only that one: a series ID column of 400,000 rows in 0.055 s
    against 0.115 s for three columns, 0.42 against 0.64 s for 31).

    ``ramp``: a CSV's first chunks are smaller (an eighth, a quarter and a half of
    ``chunksize``), and so are its last ones (``_ramped_size``), for a caller that hands
    chunks to other threads as they are read: every core is then working sooner, and they
    finish together (issue 34: parsing a first chunk of 50,000 rows left a core idle for
    0.1 s of a 2.2 s run)."""
    if chunksize < 1:
        raise ParameterError(f"chunksize must be >= 1, got {chunksize}")
    return _chunks(path, table_format(path), chunksize, ramp, columns)


def _chunks(path: str | os.PathLike[str], fmt: str, chunksize: int, ramp: bool,
            columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    any_rows = False
    try:
        if fmt == "parquet":
            for chunk in _parquet_chunks(path, chunksize, columns):
                any_rows = any_rows or len(chunk) > 0
                yield chunk
        else:
            sep, decimal = csv_dialect(path, SEPARATORS[fmt])
            header = check_csv_header(path, sep)
            _check_columns(columns, header, path)
            wanted = set(columns or ())
            chunks = _csv_chunks(path, sep, chunksize, ramp, decimal) if columns is None else pd.read_csv(
                path, sep=sep, decimal=decimal, skipinitialspace=True, low_memory=False, chunksize=chunksize,
                usecols=lambda name: name.strip() in wanted)
            for chunk in chunks:
                any_rows = any_rows or len(chunk) > 0
                names = stripped_names(chunk.columns)  # 'x , y': as the header's checks read them
                if names != list(chunk.columns):
                    chunk.columns = names
                yield chunk
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} has no header and no rows") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text: save it as UTF-8, e.g. pandas.read_csv(path, encoding='latin-1')"
                        ".to_csv(new_path, index=False)") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path} is not a readable {fmt.upper()} file ({first_line(exc)})") from None
    except (EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as exc:  # a .csv.gz cut short or damaged
        raise DataError(f"{path} is a truncated or corrupted {_compression(path)} file ({first_line(exc)})") from None
    except OSError as exc:
        if exc.errno is not None or not compressed(path):  # the disk's error, not the data's
            raise
        raise DataError(f"{path} is a corrupted {_compression(path)} file ({first_line(exc)})") from None
    if not any_rows:
        raise DataError(f"{path} has a header but no data rows")


def _parquet_chunks(path: str | os.PathLike[str], chunksize: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    """A Parquet file's chunks, or a folder's files' (``parquet_parts``) one after another,
    each file holding the first one's columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = None
    for part in parquet_parts(path) or [Path(path)]:
        try:
            pf = pq.ParquetFile(part)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{part} is not a readable Parquet file ({exc})") from None
        schema = pf.schema_arrow
        nested = [f.name for f in schema if pa.types.is_nested(f.type)]
        if nested:
            raise DataError(f"{part}: column(s) {nested[:10]} are nested (lists, structs or maps); "
                            "flatten them into plain columns first")
        if names is None:
            names = list(schema.names)
            _check_unique(names, part)
            _check_columns(columns, names, part)
        elif list(schema.names) != names:
            raise DataError(f"{part} has other columns than the folder's first file "
                            f"({_differences(names, schema.names)})")
        for batch in pf.iter_batches(batch_size=chunksize, columns=columns):
            yield batch.to_pandas()


def _differences(first: list[str], other: list[str]) -> str:
    """How a part's columns differ from the first part's, in a few words."""
    lacking, extra = [c for c in first if c not in other], [c for c in other if c not in first]
    said = [f"lacks {lacking[:5]}"] * bool(lacking) + [f"adds {extra[:5]}"] * bool(extra)
    return "; ".join(said) or "in another order"


def _csv_chunks(path: str | os.PathLike[str], sep: str, chunksize: int, ramp: bool = False,
                decimal: str = ".") -> Iterator[pd.DataFrame]:
    """A CSV's chunks as ``pd.read_csv(path, sep=sep, decimal=decimal, skipinitialspace=True,
    low_memory=False, chunksize=...)`` yields them: the same columns, values, row index and
    chunks (with ``ramp``, ``iter_table``'s, the first chunks are smaller), and the same errors.

    Chunks are parsed without looking for NA markers or spaces after the separator, and
    faster (issue 34: a million rows of 30 numbers in 0.92 s against 1.28 s; 300,000 rows of
    25 numbers and 5 text columns in 0.35 s against 0.40, its checks included), and kept where
    the careful read would give the same (``_reads_as_careful``): a number reads the same
    either way, and so does text that starts with no space and is no NA marker. From the
    first chunk that is not so, or that fails (a long row), pandas reads the rest of the
    file the careful way (its line numbers, in errors, count from the top as before)."""
    # low_memory=False: each chunk's column types are inferred over the whole chunk, so a
    # number column with text in it is one type (which scoring names in one line) and pandas
    # adds no DtypeWarning of its own; it parses as fast
    careful = {"sep": sep, "decimal": decimal, "skipinitialspace": True, "low_memory": False}
    rows = 0
    names = _plain_header(path, sep)
    if names is not None:
        fast = pd.read_csv(path, sep=sep, decimal=decimal, header=0, names=names, na_filter=False,
                           skip_blank_lines=False, low_memory=False, chunksize=chunksize)
        total = _rows_guess(path) if ramp else 0.0
        with fast:
            for number in itertools.count():
                try:
                    chunk = fast.get_chunk(_ramped_size(number, rows, chunksize, total) if ramp else chunksize)
                except StopIteration:
                    return
                except (pd.errors.ParserError, ValueError, UnicodeDecodeError):
                    break
                if not _reads_as_careful(chunk):
                    break
                rows += len(chunk)
                yield chunk
    # Skipping the rows already read keeps the careful read exact unless its first row has
    # more fields than the header, which pandas would take for an index column (where a
    # whole read calls it an error): then it reads from the top and drops the rows yielded.
    skip = rows and _fields(_line(path, rows + 1), sep) <= len(names or ())
    for chunk in pd.read_csv(path, chunksize=chunksize, skiprows=range(1, rows + 1) if skip else None, **careful):
        if skip:
            chunk.index = chunk.index + rows
        elif rows:
            chunk = chunk.iloc[max(0, rows - chunk.index[0]):] if len(chunk) else chunk
            if not len(chunk):
                continue
        yield chunk


def _check_columns(columns: list[str] | None, header: list[str], path: str | os.PathLike[str]) -> None:
    missing = [c for c in columns or () if c not in header]
    if missing:
        raise DataError(f"{path}: column(s) {missing} not found (columns: {header[:10]})")


def _ramped_size(number: int, rows: int, chunksize: int, total: float) -> int:
    """``iter_table``'s size for chunk ``number`` (from 0) with ``ramp``, after ``rows`` rows
    of a file of about ``total`` (``_rows_guess``): an eighth, a quarter and a half of
    ``chunksize`` first, then ``chunksize``, and for the last two chunks' worth half of the
    rows left each time, down to an eighth of ``chunksize``. Threads that take a chunk each
    then finish together: with whole chunks to the end, one core sat idle while the other
    scored the last one (issue 34: `aekit anomaly score` on 2 cores, paired runs, 100,000
    rows 0.59 -> 0.56 s, 200,000 rows 0.75 -> 0.735 s, a million rows 0.012 s less). A
    wrong guess changes only the chunks' sizes (past it, whole chunks again)."""
    if number < 3:
        return max(1, chunksize >> (3 - number))
    left = total - rows
    if left <= 0 or left >= 2 * chunksize:
        return chunksize
    return max(1, chunksize >> 3, int(left + 1) // 2)


def _rows_guess(path: str | os.PathLike[str]) -> float:
    """About how many rows follow the header: the file's size over its first MiB's line length."""
    with open(path, "rb") as fh:
        sample = fh.read(1 << 20)
    return os.path.getsize(path) * sample.count(b"\n") / max(len(sample), 1) - 1


def _reads_as_careful(chunk: pd.DataFrame) -> bool:
    """Whether the careful read would give this chunk of the fast read unchanged: it holds
    no NaN (here a blank line or a short row made it), and no text value that starts with a
    space (the careful read strips it), is an NA marker (it reads NaN there; an empty field
    is one) or spans lines (then rows would no longer count lines, which resuming needs)."""
    for _, column in chunk.items():
        if column.dtype.kind in "biu":
            continue
        if column.dtype.kind == "f":
            if np.isnan(column.to_numpy()).any():
                return False
            continue
        text = column.astype(str)  # what the parser gives already: no copy
        if text.isna().any() or text.str.startswith(" ").any() or text.isin(NA_MARKERS).any() \
                or text.str.contains("\n", regex=False).any() or text.str.contains("\r", regex=False).any():
            return False
    return True


def _plain_header(path: str | os.PathLike[str], sep: str) -> list[str] | None:
    """The column names as the careful read gives them, when the fast read may start: an
    uncompressed file whose header and first row hold no quotes and a field per name (a
    first row with one more would make pandas read an index column)."""
    if compressed(path):
        return None
    with open(path, "rb") as fh:
        header, first = fh.readline(), fh.readline()
    if not header.endswith(b"\n") or b'"' in header + first:
        return None
    names = list(pd.read_csv(io.BytesIO(header), sep=sep, skipinitialspace=True, nrows=0).columns)
    return names if _fields(first, sep) == len(names) else None


def _check_last_line(path: str | os.PathLike[str], sep: str, width: int) -> None:
    """Refuse an uncompressed CSV whose last line has no line end and fewer fields than the
    header: a file cut short (a copy or a writer that stopped), whose last row pandas
    would fill with NaN and score. A last line with a quote is left to the parser, which
    names an unclosed one; a compressed file's end is checked by its decompression."""
    if compressed(path):
        return
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - LAST_LINE_BYTES))
        tail = fh.read()
    if not tail or tail.endswith(b"\n") or (b"\n" not in tail and len(tail) == LAST_LINE_BYTES):
        return
    last = tail[tail.rfind(b"\n") + 1:]
    fields = _fields(last.rstrip(b"\r"), sep)
    if fields < width:
        raise DataError(f"{path}: its last line has {fields} of the header's {width} fields and no line end: "
                        "the file looks truncated (cut short in a copy, or still being written)")


def _line(path: str | os.PathLike[str], number: int) -> bytes:
    """Line ``number`` of the file (0: the first), or b"" past its end."""
    with open(path, "rb") as fh:
        return next(itertools.islice(fh, number, None), b"")


def _fields(line: bytes, sep: str) -> int:
    """Fields in a line (as many as the careful read finds when it holds no quotes; a line
    with a quote counts as too many, so the caller takes the longer, sure way)."""
    return 1 << 30 if b'"' in line else line.count(sep.encode()) + 1


def read_ahead(chunks: Iterator[T]) -> Iterator[T]:
    """``chunks``, with the next one read by a background thread while the caller works on
    the current one. Parsing a CSV (pandas' tokenizer) and scoring (numpy) both release the
    GIL, so on two cores they overlap (issue 34). Errors from the reader come out where
    they would have; at most one chunk is read ahead; a caller that stops early (an error,
    ``break``) stops the thread at its next chunk.

    While the reader runs, numpy's BLAS gets one core fewer: its threads wait for work by
    spinning, and on two cores they took the reader's core (a million CSV rows scored in
    3.7 s instead of 4.5 s)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(max(1, usable_cores() - 1), user_api="blas"):
        yield from _read_ahead(chunks)


def _read_ahead(chunks: Iterator[T]) -> Iterator[T]:
    """``read_ahead`` with BLAS's threads left as the caller set them."""
    import queue
    import threading

    slot: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not offer((chunk, None)):
                    return
        except BaseException as exc:  # handed to the caller, who raises it
            offer((done, exc))
            return
        offer((done, None))

    thread = threading.Thread(target=read, name="aekit-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slot.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def map_ahead(work: Callable[[T], R], items: Iterator[T], workers: int) -> Iterator[R]:
    """``work(item)`` for each of ``items``, in order, on ``workers`` threads, while a
    background thread reads the next items (``read_ahead``): at most ``workers + 1`` items
    are being worked on or waiting to be handed back, and one more is read ahead. ``work``
    must be safe to run on several threads at once; numpy's BLAS runs one thread in each.
    With one worker, the items are worked on by the caller's thread.

    Whole chunks on separate threads keep both cores busy where splitting each chunk's
    scoring among threads left the parts that run on one thread (scaling the columns,
    the top columns, formatting the CSV) to hold a core idle (issue 34)."""
    if workers < 2:
        for item in read_ahead(items):
            yield work(item)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    pending: deque = deque()
    # BLAS on one thread until the last item is done, not only while items are read: the
    # last chunks' products otherwise woke OpenBLAS's own thread, which took a core from
    # the other worker and spun on after them (0.1 s of a million CSV rows, issue 34)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers, thread_name_prefix="aekit-work") as pool:
        try:
            for item in _read_ahead(items):  # BLAS is on one thread already
                pending.append(pool.submit(work, item))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # an error here or in the caller: nothing more starts
            for future in pending:
                future.cancel()


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_csv_header(path: str | os.PathLike[str], sep: str) -> list[str]:
    """A CSV's header row, refused where its fields are separated by another character, two
    columns share a name or the file was cut short (each in one line, with the fix)."""
    _check_not_utf16(path, sep)
    header = _csv_header(path, sep)
    _check_no_comments(header, path, sep)
    _check_other_separator(header, path, sep)
    check_not_data(header, path)
    _check_unique(header, path)
    _check_last_line(path, sep, len(header))
    return header


def _check_no_comments(header: list[str], path: str | os.PathLike[str], sep: str) -> None:
    """Refuse a file that starts with comment lines (``# exported by ...``, as loggers and
    instruments write): pandas took the first for the header, then failed on the real one
    ("Expected 1 fields in line 3, saw 3"). A line starting with ``#`` is a comment where
    the first line that does not has another number of fields (``#id,a,b`` is a header)."""
    if not header or not header[0].startswith("#"):
        return
    with _open_text(path) as fh:
        lines = list(itertools.islice(fh, 1000))
    count = next((i for i, line in enumerate(lines) if not line.lstrip().startswith("#")), len(lines))
    if count < len(lines) and _fields(lines[count].encode(), sep) == len(header):
        return
    raise DataError(f"{path} starts with {count} comment line(s) ({lines[0].strip()[:60]!r}): a table's first line "
                    f"names its columns; remove them, e.g. pandas.read_csv(path, skiprows={count}).to_csv(new_path, "
                    "index=False)")


def _csv_header(path: str | os.PathLike[str], sep: str) -> list[str]:
    """The header row as written (pandas would rename duplicates to ``a.1`` silently), each
    name without the spaces around it."""
    import csv

    with _open_text(path) as fh:
        return [c.strip() for c in next(csv.reader(fh, delimiter=sep), [])]


def stripped_names(columns: pd.Index) -> list[Any]:
    """Column names without the spaces around them (a header written ``x , y``)."""
    return [c.strip() if isinstance(c, str) else c for c in columns]


def _check_not_utf16(path: str | os.PathLike[str], sep: str) -> None:
    """Refuse a CSV written as UTF-16 (Excel's "Unicode Text", PowerShell's ``Export-Csv`` of
    old): read as UTF-8 its every other byte is a NUL, and it was refused as "truncated".
    Also a file whose start holds NUL bytes without such a mark (UTF-16 without one, or no
    text at all)."""
    try:
        with _opener(path)(path, "rb") as fh:
            start = fh.read(4096)
    except (OSError, EOFError):  # a damaged .gz: its reader names it
        return
    for bom, name in UNICODE_MARKS:
        if start.startswith(bom):
            separator = "" if sep == "," else f", sep={sep!r}"
            raise DataError(f"{path} is {name.upper()} text; aekit reads UTF-8: save it as UTF-8, e.g. "
                            f"pandas.read_csv(path, encoding={name!r}{separator}).to_csv(new_path, index=False)")
    if b"\x00" in start:
        raise DataError(f"{path} holds NUL bytes: it is not UTF-8 text (UTF-16 without its mark, or not text "
                        "at all); save it as UTF-8 CSV")


def _missing(p: Path) -> DataError:
    """The error for a path that names nothing; a shell pattern the shell did not expand
    (quoted, as the Dask engine wants its patterns) says what it matches and what reads it."""
    if not glob.has_magic(str(p)):
        return DataError(f"{p} does not exist")
    matches = glob.glob(str(p))
    if not matches:
        return DataError(f"{p} does not exist (as a pattern it matches no file)")
    return DataError(f"{p} is a pattern ({len(matches)} files match): a table is one file or a folder of Parquet "
                     "files; give that folder, or score a pattern's files with --engine dask")


def format_by_name(path: str | os.PathLike[str]) -> str | None:
    """``csv``, ``tsv`` or ``parquet`` as a table's name says (``rows.tsv.gz``: ``tsv``), or
    None; the file is not looked at (a URL's name will do)."""
    p = Path(path)
    return TABLE_SUFFIXES.get(p.with_suffix("").suffix.lower() if compressed(p) else p.suffix.lower())


def _opener(path: str | os.PathLike[str]) -> Callable[..., Any]:
    """The opener of a file's compression (``COMPRESSIONS``: ``gzip.open`` for .gz, ...), else
    ``open``."""
    return COMPRESSIONS.get(Path(path).suffix.lower(), ("", open))[1]


def compressed(path: str | os.PathLike[str]) -> bool:
    """Whether a table's name says it is compressed (``COMPRESSIONS``): read as it streams,
    its end checked by its decompression."""
    return Path(path).suffix.lower() in COMPRESSIONS


def _compression(path: str | os.PathLike[str]) -> str:
    """The name of a file's compression, as an error says it ("gzip")."""
    return COMPRESSIONS.get(Path(path).suffix.lower(), ("compressed",))[0]


def _open_text(path: str | os.PathLike[str]) -> io.TextIOBase:
    """A CSV as text (decompressed where its name says so), never failing on bytes."""
    return _opener(path)(path, "rt", newline="", encoding="utf-8", errors="replace")


# tables in formats aekit does not read, and the pandas reader that converts each
CONVERTIBLE = {".xlsx": "read_excel(path)", ".xls": "read_excel(path)", ".ods": "read_excel(path)",
               ".json": "read_json(path)", ".jsonl": "read_json(path, lines=True)", ".feather": "read_feather(path)",
               ".sav": "read_spss(path)", ".dta": "read_stata(path)", ".sas7bdat": "read_sas(path)",
               ".xml": "read_xml(path)", ".orc": "read_orc(path)", ".zip": "read_csv(path)",
               ".zst": "read_csv(path)"}  # aekit reads .csv.gz, .csv.bz2 and .csv.xz itself

OTHER_SEPARATORS = (";", "\t", "|", ",")
DECIMAL_COMMA = re.compile(r"-?\d+,\d+")
LAST_LINE_BYTES = 1 << 16  # the end of a CSV read for its last line (a longer line is not checked)


def other_separator(header: str, first_row: str, sep: str) -> str | None:
    """The character other than ``sep`` that separates a one-column table's fields (a
    spreadsheet's ``;``), or None: said when the header and the first row both split into
    as many fields by it. Read as it is, such a table's one column of text would train or
    score nothing."""
    for other in OTHER_SEPARATORS:
        fields = header.count(other) + 1
        if other != sep and fields > 1 and first_row.count(other) + 1 == fields:
            return other
    return None


def csv_dialect(path: str | os.PathLike[str], sep: str) -> tuple[str, str]:
    """``(separator, decimal mark)`` to read a CSV with: its format's ``sep`` and ``.``, or a
    spreadsheet's ``;`` or ``|`` where the header and the first row split alike by it
    (``other_separator``), with ``,`` decimals where that row writes a number so (a European
    spreadsheet's ``1,5``), said in a note. A comma or a tab where the file's name says the
    other is refused by ``check_csv_header``, naming the fix."""
    with _open_text(path) as fh:
        header, first = next(fh, "").rstrip("\r\n"), next(fh, "").rstrip("\r\n")
    if len(next(csv.reader([header], delimiter=sep), [])) > 1:  # its own separator splits the header
        return sep, "."
    other = other_separator(header, first, sep)
    if other is None or other in ",\t":
        return sep, "."
    decimal = "," if any(DECIMAL_COMMA.fullmatch(f.strip()) for f in first.split(other)) else "."
    written = " and decimals written with ',' (1,5)" if decimal == "," else ""
    warnings.warn(f"{path}: fields separated by '{other}'{written}: read so", DataNotice, stacklevel=4)
    return other, decimal


def _check_other_separator(header: list[str], path: str | os.PathLike[str], sep: str) -> None:
    """Refuse a file whose fields are separated by a comma where its name says tabs, or the
    other way round, with the fix (``csv_dialect`` reads a spreadsheet's ``;`` and ``|``)."""
    if len(header) != 1:
        return
    with _open_text(path) as fh:
        first = next(itertools.islice(fh, 1, None), "")
    other = other_separator(header[0], first, sep)
    if other is None:
        return
    fields = header[0].count(other) + 1
    shown, suffix = ("commas", ".csv") if other == "," else ("tabs", ".tsv") if other == "\t" else (repr(other), "")
    raise DataError(f"{path}: its {fields} fields are separated by {shown}: name it {suffix}" if suffix else
                    f"{path}: its {fields} fields are separated by {shown}")


def check_not_data(header: list[str], path: str | os.PathLike[str]) -> None:
    """Refuse a header line that is a row of measurements: a file saved without its header,
    whose first row would silently become the column names (and be lost as a row). Numbers
    that name columns are kept: increasing ones (a ``pd.DataFrame(array)``'s 0, 1, 2, ...,
    wavelengths) and distinct whole ones (years, sensor numbers); a fraction, a sign or a
    number twice is a row's values."""
    if len(header) < 2:
        return
    numbers = pd.to_numeric(pd.Series(header), errors="coerce")
    increasing = (numbers.diff().iloc[1:] > 0).all()
    whole_names = all(str(name).isdigit() for name in header) and numbers.is_unique
    if numbers.notna().all() and not increasing and not whole_names:
        raise DataError(f"{path}: its first line holds numbers ({', '.join(map(str, header[:3]))}, ...), not column "
                        "names: a table's first line names its columns; add a header line, e.g. "
                        "pandas.read_csv(path, header=None).add_prefix('x').to_csv(new_path, index=False)")


def _check_unique(columns: list[str], path: str | os.PathLike[str]) -> None:
    seen, dup = set(), []
    for c in columns:
        if c in seen and c not in dup:
            dup.append(c)
        seen.add(c)
    if dup:
        raise DataError(f"{path}: duplicate column names {dup[:10]}; every column needs its own name")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The whole table as one DataFrame (for training; scoring streams with ``iter_table``)."""
    return pd.concat(list(iter_table(path)), ignore_index=True)


def is_arrow_table(X: object) -> bool:
    """A table of another library that speaks Arrow's C stream interface (a pyarrow Table or
    RecordBatch, a Polars DataFrame, a DuckDB relation); not pandas', nor an array."""
    return hasattr(X, "__arrow_c_stream__") and not isinstance(X, (pd.DataFrame, pd.Series, np.ndarray))


def array_names(width: int) -> list[str]:
    """The names an array's columns get: ``x0, x1, ...``."""
    return [f"x{i}" for i in range(width)]


def as_frame(X: object, columns: list[str] | None = None) -> pd.DataFrame:
    """Accept a DataFrame, an Arrow table (``is_arrow_table``), a 2-D array-like or a path;
    arrays get columns ``x0, x1, ...``."""
    refuse_sparse(X)
    if is_arrow_table(X):  # numpy would read it as an array of objects, its names lost
        import pyarrow as pa

        X = pa.table(X).to_pandas()
    if isinstance(X, pd.DataFrame):
        df = X
    elif isinstance(X, (str, os.PathLike)):
        df = read_table(X)
    elif isinstance(X, pd.Series):  # a DataFrame's row (X.iloc[0]) or column (X["a"])
        column = repr(X.name) if isinstance(X.name, str) else "'a'"
        raise DataError(f"expected a 2-D table (rows x features), got a pandas Series of {len(X)} values: pass one "
                        f"row as a one-row DataFrame (X.iloc[[0]], or row.to_frame().T), one column as X[[{column}]]")
    else:
        arr = np.asarray(X)
        if arr.ndim == 1:
            raise DataError(f"expected a 2-D table (rows x features), got a 1-D array of {arr.shape[0]} values; "
                            "use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one row")
        if arr.ndim != 2:
            raise DataError(f"expected a 2-D table (rows x features), got an array of shape {arr.shape}")
        df = pd.DataFrame(arr, columns=columns or array_names(arr.shape[1]))
    if df.shape[1] == 0:
        raise DataError("the table has no columns")
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()].tolist()
        raise DataError(f"duplicate column names: {dup}")
    if not all(isinstance(c, str) for c in df.columns):
        df = df.rename(columns=str)  # a new frame: the caller's keeps its column names
    return df


def empty_unnamed(frame: pd.DataFrame) -> list[str]:
    """The columns with a blank header (pandas names them ``Unnamed: N``) and no value in any
    row: what a separator at the end of every line makes (``a,b,c,``), no column of data."""
    return [c for c in frame.columns if isinstance(c, str) and c.startswith("Unnamed: ") and frame[c].isna().all()]


EMPTY_UNNAMED_NOTE = "have no name and no values (a separator at the end of every line?): left out"


def refuse_sparse(X: object) -> None:
    """A SciPy sparse matrix or array is refused with the fix (numpy reads one as a single
    object, so the shape errors that would follow name a shape of ``()``)."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise DataError(f"X is a sparse matrix ({type(X).__name__}); aekit needs dense rows: pass X.toarray()")


def split_columns(df: pd.DataFrame, label_col: str | None = None, id_col: str | None = None,
                  drop: list[str] | None = None) -> tuple[pd.DataFrame, pd.Series | None, pd.Series | None]:
    """Separate the label and ID columns (named by the user) from the features, and leave the
    columns ``drop`` out (a time, a name, free text)."""
    for role, name in (("label", label_col), ("id", id_col)):
        if name is not None and name not in df.columns:
            raise DataError(f"{role} column {name!r} not found; columns are {list(df.columns)[:20]}")
    check_dropped(df, drop)
    labels = df[label_col] if label_col else None
    ids = df[id_col] if id_col else None
    features = df.drop(columns=[c for c in (label_col, id_col, *(drop or [])) if c])
    if features.shape[1] == 0:
        raise DataError("no feature columns left after removing the label, ID and dropped columns")
    return features, labels, ids


def check_dropped(df: pd.DataFrame, drop: list[str] | None) -> None:
    """Refuse a column to leave out (``--drop-cols``) that the table does not have."""
    missing = [c for c in drop or [] if c not in df.columns]
    if missing:
        raise DataError(f"--drop-cols: column(s) {missing[:10]} not found; columns are {list(df.columns)[:20]}")
