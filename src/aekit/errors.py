"""User-facing errors.

Every error a user can cause (bad data, a bad model directory, a bad option) is an
``AekitError``: the CLI prints its one-line message and exits with code 2, no traceback.
"""


class AekitError(Exception):
    """An error caused by the user's input, with a one-line message that names the problem."""


class DataError(AekitError, ValueError):
    """Input data that cannot be used: wrong columns, NaN/inf, strings in numeric columns..."""


class ModelFileError(AekitError):
    """A model directory that is missing, truncated, corrupted, foreign or too new."""


class NotFittedError(AekitError, AttributeError):
    """A method that needs a fitted model was called before ``fit``."""
