"""What the summarize commands do, callable from Python: train on a text file, summarize one."""
from __future__ import annotations

import os
from pathlib import Path

from ... import marks
from ...data.text import lines_at, read_numbered_lines
from ...io import atomic_write_text, check_output_file
from .summarizer import Summarizer, default_model

PathLike = str | os.PathLike[str]


def train_file(data: PathLike, out: PathLike, *, prior: PathLike | None = None, resume: bool = False,
               **params: object) -> Summarizer:
    """Train on the sentences of ``data`` (one per line; ``prior``: optional real short
    sentences for the language-model prior) and save the model at ``out``."""
    inputs = (data,) + ((prior,) if prior is not None else ())
    return Summarizer(**params).fit_to(data, out, resume=resume, inputs=inputs, prior=prior)


def summarize_file(data: PathLike, out: PathLike, model: PathLike | None = None, *,
                   length: int | None = None, decode: str | None = None,
                   progress: bool = True) -> tuple[Path, list[str]]:
    """Write one summary per line of ``data`` to the text file ``out`` (with ``model``, or the
    bundled default; ``length`` words each, default the model's; ``decode`` "search" or
    "greedy", default the model's; ``progress``: a bar on a terminal): line k of ``out`` is
    line k's summary, and a blank line stays blank. The notices are returned."""
    out = check_output_file(out, marks.TEXT, inputs=[data], suffixes=(".txt",))
    summarizer = Summarizer.load(model) if model is not None else default_model()
    if decode is not None:
        summarizer.set_params(decode=decode)
    lines, numbers = read_numbered_lines(data)
    summaries = summarizer.summarize(lines, length, progress=progress)
    atomic_write_text(out, lines_at(summaries, numbers))
    return out, summarizer.notices_
