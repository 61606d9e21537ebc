"""Parameter checks shared by every estimator and the CLI: one message style, one set of bounds.

Upper bounds exist so that a typo (``--codebook-size 10000000``) or a tampered model file
gives a one-line error instead of allocating gigabytes before failing.
"""
from __future__ import annotations

import math
from typing import Any

from .errors import ParameterError

MAX_WIDTH = 1 << 16  # any layer width, code size or codebook size
MAX_EPOCHS = 100_000
MAX_IMAGE_SIDE = 1024  # pixels per side of the images a model works on
MAX_SAMPLES = 100_000  # images one call of sample/interpolate may produce


def check_int(value: Any, name: str, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, or a ParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (hasattr(value, "__index__")):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParameterError(f"{name} must be {bound}, got {value}")
    return value


def check_float(value: Any, name: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the given range, or a ParameterError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be a finite number, got {value!r}")
    v = float(value)
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
        raise ParameterError(f"{name} must be {' and '.join(p for p in (lo, hi) if p)}, got {v}")
    return v


def check_choice(value: Any, name: str, choices: tuple[Any, ...]) -> Any:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_device(value: Any, name: str = "device") -> str:
    """A torch device name that this machine has ("cpu", "cuda", "cuda:1", "mps")."""
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        raise ParameterError(f"{name} must be a torch device such as 'cpu' or 'cuda', got {value!r}") from None
    there = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not there.get(device.type, False):
        raise ParameterError(f"{name} {value!r}: this machine has no such device (torch sees no {device.type})")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ParameterError(f"{name} {value!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return str(value)


def check_sizes(values: Any, name: str) -> list[int]:
    """A list of layer widths, each in [1, MAX_WIDTH]."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ParameterError(f"{name} must be a list of integers, got {values!r}")
    return [check_int(v, name, 1, MAX_WIDTH) for v in values]


def check_image_size(value: Any, name: str = "image_size") -> tuple[int, int] | None:
    """None (keep the images' size) or (H, W), each in [1, MAX_IMAGE_SIDE]."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ParameterError(f"{name} must be (height, width), got {value!r}")
    h, w = (check_int(v, name, 1, MAX_IMAGE_SIDE) for v in value)
    return h, w
