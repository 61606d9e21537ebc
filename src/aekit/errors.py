"""User-facing errors.

Every error a user can cause (bad data, a bad model directory, a bad option, an output path
that would destroy something) is an ``AekitError``: the CLI prints its one-line message and
exits with code 2, no traceback. Anything else that escapes is a bug and shows as one.
"""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of ``exc``'s message (at most ``limit`` characters), or its class name
    when it says nothing: what a one-line error can quote of a library's exception."""
    text = (str(exc).splitlines() or [""])[0]
    return (text[:limit] if limit else text) or type(exc).__name__


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
