"""scikit-learn's estimator protocol without importing scikit-learn.

``get_params``/``set_params`` from the ``__init__`` signature, the ``repr`` of the parameters
that differ from their defaults, and the tags scikit-learn (>= 1.6) asks its own estimators
for: what ``clone``, ``Pipeline`` and grid searches use. Why not ``sklearn.base.BaseEstimator``:
importing scikit-learn costs 1.6-2.2 s on 2 cores, and a command that only scores (``aekit
anomaly score``) never needs it (issue 34). scikit-learn is imported only when it asks for
the tags, that is when it is already loaded.
"""
from __future__ import annotations

import inspect
from typing import Any

from .errors import ParameterError


class Params:
    """The parameter half of ``sklearn.base.BaseEstimator``."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The keyword parameters of ``__init__`` (its published signature), sorted."""
        if cls.__init__ is object.__init__:
            return []
        parameters = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The estimator's parameters (with ``deep``, those of parameters that are
        estimators too, as ``name__param``)."""
        params: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{key}", v) for key, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params: Any) -> Params:
        """Set parameters (``name`` or ``name__param``); returns the estimator."""
        valid = self._get_param_names()
        for key, value in params.items():
            name, _, inner = key.partition("__")
            if name not in valid:
                raise ParameterError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {', '.join(valid)}")
            if inner:
                getattr(self, name).set_params(**{inner: value})
            else:
                setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        changed = [f"{name}={getattr(self, name)!r}" for name in self._get_param_names()
                   if not _same(getattr(self, name), defaults.get(name, inspect.Parameter.empty))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import Tags, TargetTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), transformer_tags=None,
                    regressor_tags=None, classifier_tags=None)


def _same(value: Any, default: Any) -> bool:
    """Whether a parameter still holds its default (arrays and odd types compare as changed)."""
    try:
        return bool(value is default or value == default)
    except Exception:  # noqa: BLE001 (an array's ambiguous truth value, a failing __eq__)
        return False
