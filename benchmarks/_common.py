"""Helpers shared by the benchmark scripts (not part of the package)."""
from __future__ import annotations

import ast
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def photo_tiles(n: int, seed: int) -> Iterator:
    """``n`` 32x32 RGB Pillow images: random square crops of the shared photos (the first 200,
    each reduced 4x), resized; noise tiles where the photos are missing. The same seed gives
    the same tiles (``throughput.py``'s PNG folders, ``image_local_search.py``'s crops)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = sorted((SHARED / "photos").glob("*/*.jpg"))
    sources = [Image.open(p).convert("RGB").reduce(4) for p in photos[:200]] if photos else []
    for _ in range(n):
        if sources:
            im = sources[int(rng.integers(len(sources)))]
            side = int(rng.integers(32, min(im.size) + 1))
            x, y = int(rng.integers(im.width - side + 1)), int(rng.integers(im.height - side + 1))
            yield im.crop((x, y, x + side, y + side)).resize((32, 32))
        else:
            yield Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows)])


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def set_threads() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    np.seterr(all="ignore")


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"name:k=v,k=v"`` -> ``("name", {k: v})``, values read as Python literals where they are."""
    name, _, opts = spec.partition(":")
    kwargs = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    return name, kwargs
