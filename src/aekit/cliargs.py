"""What every application's command-line verbs share: a parser whose errors are one line,
argument types with bounds, and the flags of every training verb. Imports no torch, so
``aekit --help`` stays fast."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit 2 (like every user error)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"aekit: error: {message} (see '{self.prog} --help')\n")


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def int_or_auto(low: int, high: int | None = None) -> Callable[[str], int | str]:
    """An argparse type: ``auto``, or an integer in ``[low, high]``."""
    number = int_at_least(low, high)

    def parse(text: str) -> int | str:
        if text.strip().lower() == "auto":
            return "auto"
        try:
            int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is neither 'auto' nor an integer") from None
        return number(text)

    parse.__name__ = "integer or 'auto'"
    return parse


def float_in(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low}, {high}], got {value}")
        return value

    parse.__name__ = "number"
    return parse


def application(sub: argparse._SubParsersAction, name: str, help: str, description: str,
                run: Callable[[argparse.Namespace], int]) -> argparse._SubParsersAction:
    """``aekit NAME``: its parser, with ``run`` as what it does, and the subparsers of its verbs
    (one required ``VERB``)."""
    parser = sub.add_parser(name, help=help, description=description)
    parser.set_defaults(run=run)
    return parser.add_subparsers(dest="verb", required=True, metavar="VERB")


def training_flags(parser: argparse.ArgumentParser, epochs: int | None, epochs_default: str = "") -> None:
    """The options every training verb shares: each can resume an interrupted run.
    ``epochs=None``: the model's own default, described by ``epochs_default``."""
    default = f"default {epochs}" if epochs is not None else "default: " + (epochs_default or "the model's")
    parser.add_argument("--epochs", type=int_at_least(1, 100_000), default=epochs,
                        help=f"maximum epochs ({default}; early stopping may end sooner)")
    parser.add_argument("--seed", type=int_at_least(0, 2**31 - 1), default=0)
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted training from its checkpoints (OUT.ckpt/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def comma_names(value: str) -> list[str]:
    """The names of a comma-separated list, spaces around them dropped, empty ones skipped."""
    return [v.strip() for v in value.split(",") if v.strip()]


def column_list(value: str) -> list[str]:
    """A comma-separated list of column names (argparse type)."""
    names = comma_names(value)
    if not names:
        raise argparse.ArgumentTypeError("expected comma-separated column names")
    return names


def drop_cols_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--drop-cols", type=column_list, metavar="A,B",
                        help="tables: comma-separated columns to leave out of the features (a time, a name, free "
                             "text); scoring ignores columns the model was not trained on")


def image_size_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-size", type=int_at_least(1, 1024), nargs=2, metavar=("H", "W"),
                        help="resize every image to H x W (default: the training images' most common size, its "
                        "longer side at most 128 pixels)")


def report(line: str) -> None:
    """Print a summary line from rank 0 only (under torchrun every rank runs the command)."""
    from .distributed import is_main_process

    if is_main_process():
        print(line, file=sys.stdout)


STDIO = "-"  # a command's data or --out: standard input or output, as Unix tools take it


@contextmanager
def stdin_as_file() -> Iterator[Path]:
    """Standard input copied to a temporary file named for what its first bytes show (a
    CSV, a gzipped CSV or a Parquet file), for readers that open a file more than once;
    removed when the block ends. A terminal on standard input is refused, not waited on."""
    import shutil
    import tempfile

    from .errors import DataError

    if sys.stdin is None or sys.stdin.isatty():
        raise DataError("'-' reads the data from standard input, which is a terminal here: pipe a table in, "
                        "e.g. cat rows.csv | aekit anomaly score - --model m --out scores.csv")
    stream = sys.stdin.buffer
    head = stream.read(4)
    name = "stdin.parquet" if head == b"PAR1" else "stdin.csv.gz" if head[:2] == b"\x1f\x8b" else "stdin.csv"
    with tempfile.TemporaryDirectory(prefix="aekit-stdin-") as folder:
        path = Path(folder) / name
        with open(path, "wb") as fh:
            fh.write(head)
            shutil.copyfileobj(stream, fh, 1 << 20)
        yield path
