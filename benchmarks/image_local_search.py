"""The image local term's search against the exhaustive comparison it replaced (issue 34).

The search ranks the references in ``neighbours.BASIS`` principal directions and compares the
``neighbours.CANDIDATES`` ranked first exactly, under each shift. The exhaustive comparison
takes every reference under every shift. Two sets, the local term alone:

- one-class MNIST, each digit in turn: that digit's training images as references (as many
  as a detector keeps), the first 4,000 test images as queries (other digits anomalous);
- 32x32 RGB crops of the shared photos (as ``throughput.py`` makes them): 1,365 references
  (what a detector keeps at that size) and 2,000 queries, no labels.

``same``: the share of queries whose distance equals the exhaustive one (to 1e-5 of itself);
``ratio``: the mean distance over the exhaustive one (>= 1: a missed neighbour is replaced
by a farther one); ``ms/image``: the search alone on this machine's threads.

    python benchmarks/image_local_search.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, photo_tiles, table  # noqa: E402
from _mnist import load_mnist  # noqa: E402

from aekit.apps.anomaly import neighbours  # noqa: E402

QUERIES = 4000
EXHAUSTIVE_BLOCK = 512  # images per product, as the exhaustive search ran them


def exhaustive(space: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """1 - the mean cosine to the 5 most similar references, each under its best shift."""
    shifted = neighbours.shifted_references(grid)
    flat = shifted.reshape(-1, shifted.shape[-1])
    out = [1 - (neighbours.unit_rows(block) @ flat.T).view(len(block), len(shifted), -1).amax(1)
           .topk(neighbours.NEIGHBOURS, dim=1).values.mean(1) for block in space.split(EXHAUSTIVE_BLOCK)]
    return torch.cat(out)


def searched(space: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    flat = grid.flatten(1)
    index = neighbours.reference_index(flat, tuple(grid.shape[1:]), neighbours.principal_directions(flat))
    return neighbours.neighbour_parts(space, index).sum(1)


def timed(fn, *args) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def compare(space: torch.Tensor, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float, float, float, float]:
    exact, t_exact = timed(exhaustive, space, grid)
    found, t_found = timed(searched, space, grid)
    relative = (found - exact) / exact
    return exact, found, float((relative.abs() < 1e-5).float().mean()), float((found / exact).mean()), \
        1e3 * t_exact / len(space), 1e3 * t_found / len(space)


def photo_crops(n: int, seed: int) -> torch.Tensor:
    """``[n, 3, 32, 32]`` in [0, 1]: the crops ``throughput.py`` writes as PNGs."""
    tiles = [np.asarray(tile, dtype=np.float32) / 255 for tile in photo_tiles(n, seed)]
    return torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).contiguous()


@torch.inference_mode()
def main() -> None:
    rows = []
    x_train, y_train, x_test, y_test = load_mnist()
    x_train, queries = torch.from_numpy(x_train), torch.from_numpy(x_test[:QUERIES])
    space = neighbours.to_space(queries, 28, 28)
    keep = neighbours.MAX_REFERENCE_VALUES // (28 * 28)
    sums = np.zeros(6)
    for digit in range(10):
        refs = x_train[torch.from_numpy(y_train == digit)]
        refs = refs[torch.from_numpy(np.sort(np.random.default_rng(0).permutation(len(refs))[:keep]))]
        exact, found, same, ratio, ms_exact, ms_found = compare(space, neighbours.to_space(refs, 28, 28))
        y = (y_test[:QUERIES] != digit).astype(int)
        values = [roc_auc_score(y, exact.numpy()), roc_auc_score(y, found.numpy()), same, ratio, ms_exact, ms_found]
        sums += values
        rows.append([f"MNIST {digit}", f"{len(refs):,}"] + [f"{v:.4f}" for v in values[:4]] + [f"{v:.3f}" for v in values[4:]])
    mean = sums / 10
    rows.append(["MNIST, mean", ""] + [f"{v:.4f}" for v in mean[:4]] + [f"{v:.3f}" for v in mean[4:]])
    if (SHARED / "photos").is_dir():
        refs = neighbours.to_space(photo_crops(neighbours.MAX_REFERENCE_VALUES // 3072, 1), 32, 32)
        _, _, same, ratio, ms_exact, ms_found = compare(neighbours.to_space(photo_crops(2000, 2), 32, 32), refs)
        rows.append(["32x32 RGB photo crops", f"{len(refs):,}", "", "", f"{same:.4f}", f"{ratio:.5f}",
                     f"{ms_exact:.3f}", f"{ms_found:.3f}"])
    print(table(rows, ["set", "references", "AUC-ROC exhaustive", "AUC-ROC search", "same", "ratio",
                       "ms/image exhaustive", "ms/image search"]))


if __name__ == "__main__":
    main()
