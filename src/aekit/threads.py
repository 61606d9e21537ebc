"""Scoring rows on every core: spans of rows handed to Python threads, each running torch
with one thread of its own.

torch splits each operation among its threads, which pays for big products but not for the
many small operations of a scoring pass (a search's per-cell products, minima, gathers): on
2 cores, a million table rows scored in 1.01-1.22 s with torch's 2 threads, and in
0.83-0.90 s as two spans on two Python threads, each with one torch thread (torch releases
the GIL inside its operations).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import Iterator

import torch

MIN_SPAN_ROWS = 1024  # fewer rows per thread cost more in start-up than they save

_lock = threading.Lock()
_users = 0
_saved_threads = 1


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch runs each operation on one thread inside the block, and as before after it.
    The setting is process-wide: nested and concurrent users share it, and the last to
    leave restores the number of threads the first found."""
    global _users, _saved_threads
    with _lock:
        if _users == 0:
            _saved_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                torch.set_num_threads(_saved_threads)


def for_each_span(work: Callable[[int, int], None], rows: int, block: int) -> None:
    """``work(start, stop)`` for spans covering ``range(rows)``: blocks of ``block`` rows one
    after another on torch's threads; or, with more than one torch thread and at least
    ``2 * MIN_SPAN_ROWS`` rows, spans of a block's rows divided among as many Python threads,
    each running torch on one thread (at most one block's rows in flight at once, as
    before). ``work`` must write only its own span's results; inference mode is entered in
    every thread (torch keeps it per thread)."""
    workers = min(torch.get_num_threads(), rows // MIN_SPAN_ROWS)
    if workers < 2 or torch.jit.is_tracing():
        for start in range(0, rows, block):
            work(start, min(start + block, rows))
        return
    from concurrent.futures import ThreadPoolExecutor

    span = max(MIN_SPAN_ROWS, -(-min(block, rows) // workers))  # every thread a span, however few rows
    spans = [(start, min(start + span, rows)) for start in range(0, rows, span)]

    def run(where: tuple[int, int]) -> None:
        with torch.inference_mode():
            work(*where)

    with one_torch_thread(), ThreadPoolExecutor(workers, thread_name_prefix="aekit-score") as pool:
        for _ in pool.map(run, spans):  # in order; the first error is raised here
            pass
