"""What every make_default_*.py script ends with: the fitted model written in float16."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def write_float16(model: Any, out: Path, start: float) -> None:
    """Save ``model`` at ``out`` with float16 weights (half the bytes; loading copies them into
    a float32 network) and say how long training took since ``start`` and how big it is."""
    model.model_.half()
    model.save(out)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"trained in {time.perf_counter() - start:.0f} s; wrote {out} ({size:.1f} MB)")
