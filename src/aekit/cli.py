"""``aekit <application> <verb>``: assembles the verbs each application registers and maps
user errors to exit code 2. No logic lives here.

An application plugs in with a ``commands`` module that has ``register(subparsers)``; it
adds its commands with ``set_defaults(run=...)``. Parsing imports no torch: a verb's
``run`` imports the application's jobs when it runs.

User errors (``AekitError``: bad data, a bad model directory, a bad option, an unsafe
output) and file-system errors print one line and exit with code 2. Anything else is a bug
and shows its traceback.
"""
from __future__ import annotations

import atexit
import os
import sys
import warnings
from collections.abc import Sequence
from importlib import import_module
from typing import NoReturn, TextIO

from ._version import __version__
from .cliargs import Parser, report
from .errors import AekitError, DataNotice

# each application's name -> the module that registers its verbs (one per application
# package: a `commands` module with register(subparsers))
COMMAND_MODULES = {
    "anomaly": "aekit.apps.anomaly.commands",
    "serve": "aekit.apps.anomaly.commands",
    "generate": "aekit.apps.generate.commands",
    "cluster": "aekit.apps.codes.commands",
    "hash": "aekit.apps.codes.commands",
    "vq": "aekit.apps.codes.commands",
    "voice": "aekit.apps.voice.commands",
    "compress": "aekit.apps.compress.commands",
    "summarize": "aekit.apps.summarize.commands",
    "tree": "aekit.apps.tree.commands",
}


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser of every application; of one alone where ``argv`` starts with its name.
    A command then imports and builds no other application's verbs: they were 0.02 s of
    every command's start (issue 34). ``--help``, ``--version`` and a misspelled name get
    the whole list."""
    parser = Parser(prog="aekit", description="Autoencoders made useful.")
    parser.add_argument("--version", action="version", version=f"aekit {__version__}")
    sub = parser.add_subparsers(dest="application", required=True, metavar="APPLICATION")
    named = COMMAND_MODULES.get(argv[0]) if argv else None
    for module in [named] if named else dict.fromkeys(COMMAND_MODULES.values()):
        import_module(module).register(sub)
    return parser


BROKEN_PIPE_EXIT = 141  # what a command killed by SIGPIPE reports in a shell (128 + 13)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_notice
            return args.run(args)
    except AekitError as exc:
        return _fail(str(exc) or type(exc).__name__)
    except BrokenPipeError:  # `aekit ... | head` stopped reading: not an error of the command's
        return BROKEN_PIPE_EXIT
    except OSError as exc:  # the file system said no (permissions, a full disk, a vanished file)
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or type(exc).__name__}{where}")
    except KeyboardInterrupt:
        print("aekit: interrupted (rerun with --resume to continue training)", file=sys.stderr)
        return 130


def entry() -> NoReturn:
    """``main`` as the ``aekit`` command runs it, in a process of its own, which it ends
    itself once ``main`` returns: exit handlers run and the standard streams are flushed as
    at any exit, then the process ends without the interpreter's teardown (every module and
    object freed one by one, and its last garbage collections over what pandas and pyarrow
    import), whose memory the system takes back at once: 0.015 s of the 0.33 s that scoring
    one row takes (issue 34). Every file a command writes is closed before ``main``
    returns, and its threads are done. An error that escapes ``main`` (a bug, or
    argparse's exit for ``--help``) ends the process the usual way. The process is the
    command's own, which ``aekit.memory``'s tunings need (a program that calls ``main``
    keeps its allocator and collector as they are)."""
    from .memory import claim_process

    claim_process()
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`aekit ... | head`): nothing more to say
            pass
    os._exit(code)


def _show_notice(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """An aekit ``DataNotice`` as one ``note:`` line, as the commands print their notes; any
    other warning as Python shows it."""
    if issubclass(category, DataNotice):
        report(f"note: {message}")
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _fail(message: str) -> int:
    print(f"aekit: error: {message.splitlines()[0]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(entry())
