"""User-facing errors.

Every error a user can cause (bad data, a bad model directory, a bad option, an output path
that would destroy something) is an ``AekitError``: the CLI prints its one-line message and
exits with code 2, no traceback. Anything else that escapes is a bug and shows as one.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of ``exc``'s message (at most ``limit`` characters), or its class name
    when it says nothing: what a one-line error can quote of a library's exception."""
    text = (str(exc).splitlines() or [""])[0]
    return (text[:limit] if limit else text) or type(exc).__name__


def grouped_notes(notes: list[str], subject: re.Pattern[str],
                  several: Callable[[list[str], str], str]) -> list[str]:
    """``notes`` with those that say the same of several subjects as one line each, in the
    order first seen: a note ``subject`` matches (its groups: the subject, then what is said
    of it) joins the others that say the same, and ``several(subjects, text)`` writes the
    group (one subject too); a note it does not match stays as it is. A thousand files
    resampled alike, or series with a gap, then make one line, not a thousand."""
    return grouped_said((match.groups() if (match := subject.match(note)) else (None, note) for note in notes),
                        several)


def grouped_said(said: Iterable[tuple[str | None, str]], several: Callable[[list[str], str], str]) -> list[str]:
    """``grouped_notes`` for notes already split into (subject, text) pairs (None: a note of
    no subject, kept as it is): the texts said of several subjects one line each, by
    ``several(subjects, text)``, in the order first seen."""
    lines: list[str] = []
    subjects: dict[str, list[str]] = {}  # each text said of subjects, and whom it was said of
    for key, text in said:
        if key is None:
            lines.append(text)
            continue
        if text not in subjects:
            subjects[text] = []
            lines.append(text)
        subjects[text].append(key)
    return [line if line not in subjects else several(subjects[line], line) for line in lines]


class AekitError(Exception):
    """An error caused by the user's input, with a one-line message that names the problem."""


class DataError(AekitError, ValueError):
    """Input data that cannot be used: wrong columns, NaN/inf, strings in numeric columns..."""


class ParameterError(AekitError, ValueError):
    """An option (estimator parameter or CLI flag) with a value out of its range."""


class ModelFileError(AekitError):
    """A model directory or checkpoint that is missing, truncated, corrupted, foreign or too new."""


class OutputError(AekitError):
    """An output path that cannot or must not be written (it would replace the user's files)."""


class TrainingDivergedError(AekitError, FloatingPointError):
    """The training loss became NaN or infinite (data scale or learning rate)."""


class NotFittedError(AekitError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""


class DataNotice(UserWarning):
    """Input that aekit reads on after changing it in a way the user should know of (images
    of other sizes resized to the first one's); the CLI prints it as one ``note:`` line."""
