"""The data-adapter interface (see ``data.adapters`` for the adapters and how they are used)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch

from ..errors import DataError, NotFittedError


class SpanRows:
    """Rows of new data, each span transformed when it is sliced (``rows[start:stop]``, a
    tensor), so that scoring threads transform their own spans: a million rows of 30 columns
    were scaled in one serial pass (0.06-0.4 s, most of it the first touch of a new 120 MB
    array) before the two threads started. ``transform(part)`` must give every row what the
    whole input's transform gives it; an error in a span is raised again from the whole
    input, so its message names every bad column, as ``transform`` does."""

    def __init__(self, data: Any, transform: Callable[[Any], torch.Tensor], sample_shape: tuple[int, ...]) -> None:
        self.data, self.transform = data, transform
        self.shape = (len(data), *sample_shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, span: slice) -> torch.Tensor:
        try:
            return self.transform(self.data[span])
        except DataError:
            self.transform(self.data)  # the whole input's message, if it has one
            raise


class DataAdapter:
    """Base class of the data adapters (see ``data.adapters``)."""

    kind: ClassVar[str] = ""
    sample_shape: tuple[int, ...]

    def fit_transform(self, X: Any) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, X: Any) -> torch.Tensor:
        raise NotImplementedError

    def transform_by_spans(self, X: Any) -> torch.Tensor | SpanRows:
        """``transform(X)``, or, where the adapter can, rows that are transformed span by
        span as a scorer slices them (``SpanRows``)."""
        return self.transform(X)

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataAdapter:
        raise NotImplementedError

    def describe(self) -> str:
        return "samples of shape " + "x".join(map(str, self.sample_shape))

    def _check_fitted(self) -> None:
        if not hasattr(self, "sample_shape"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet")
