"""The data-adapter interface (see ``data.adapters`` for the adapters and how they are used)."""
from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..errors import NotFittedError


class DataAdapter:
    """Base class of the data adapters (see ``data.adapters``)."""

    kind: ClassVar[str] = ""
    sample_shape: tuple[int, ...]

    def fit_transform(self, X: Any) -> torch.Tensor:
        raise NotImplementedError

    def transform(self, X: Any) -> torch.Tensor:
        raise NotImplementedError

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
