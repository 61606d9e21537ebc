"""How the ``aekit`` command's own process manages memory: freed blocks kept for reuse, and
no garbage collections over what it imports.

glibc hands large freed blocks back to the kernel (above 128 KB to 32 MB, adapting), and the
next block of that size is then mapped anew and zeroed page by page as it is first written.
A process that scores a file chunk after chunk allocates the same large arrays again and
again, so it paid that for every chunk: a million CSV rows spent 0.45-0.74 s in the kernel
(1.2 s in chunks of 25,000 rows). Keeping freed memory for reuse (up to 32 MB per block,
1 GB in all) cut that to 0.29-0.35 s (50,000-row chunks, 2 cores; issue 34).

Both act only in the ``aekit`` command's own process (``cli.entry`` calls ``claim_process``
first): a library, or a program that calls ``cli.main``, must not have its allocator or its
garbage collector changed. Only `aekit anomaly score` keeps freed memory (a long-running
service would keep up to 1 GB it no longer needs); the `aekit anomaly` verbs import their
work without collections (``importing_without_collections``).
"""
from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_command_process = False  # set by claim_process: this process is the aekit command's own
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
KEEP_BLOCKS_UP_TO = 32 << 20  # glibc's largest mmap threshold
KEEP_FREE_UP_TO = 1 << 30


def claim_process() -> None:
    """Mark this process as the ``aekit`` command's own: the tunings below then apply."""
    global _command_process
    _command_process = True


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed blocks for reuse; False where it is not glibc, or
    where this process is not the command's own."""
    if not _command_process or not sys.platform.startswith("linux"):
        return False
    import ctypes  # here, not at the top: every command (--help too) imports this module

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library Python runs on
    except (OSError, AttributeError):  # musl and other C libraries: nothing to set
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, KEEP_BLOCKS_UP_TO)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREE_UP_TO))


@contextmanager
def importing_without_collections() -> Iterator[None]:
    """Run the block (a verb's imports) without the cyclic garbage collector, then freeze
    every object made so far out of later collections. Importing pandas makes hundreds of
    thousands of objects, none of them garbage, and each collection walked them all: the
    table scorer's imports took 0.32-0.35 s instead of 0.30-0.32 s (issue 34). Outside the
    command's own process, the block runs as it is."""
    if not _command_process:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
