"""Would the image local term survive a search in cells? (A feasibility study for issue 34's
RGB rate, which the exhaustive search bounds.)

One-class MNIST, each digit in turn: the references are that digit's training images (as
many as the detector keeps, in its comparison space), the queries the first 4,000 test
images (other digits anomalous). The local term alone, AUC-ROC: the exhaustive search
(every reference under its best one-pixel shift, the 5 most similar), against the same
restricted to the references of the P cells (of L, ``local_cells.build_cells`` on the
unshifted references) whose centres are most similar to the query. ``ratio``: the mean
approximate distance over the exact one.

    python benchmarks/image_local_cells.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from _mnist import load_mnist  # noqa: E402

from aekit.apps.anomaly import neighbours  # noqa: E402
from aekit.apps.anomaly.local_cells import build_cells  # noqa: E402

SEARCHES = ((16, 2), (16, 4), (32, 4), (64, 8))  # (cells, probed)
QUERIES = 4000


def similarities(queries: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
    """``[queries, references]``: each reference's best cosine over its nine shifts."""
    flat = shifted.reshape(-1, shifted.shape[-1])
    return torch.cat([(q @ flat.T).view(len(q), len(shifted), -1).amax(1) for q in queries.split(500)])


def restricted(sim: torch.Tensor, space: torch.Tensor, queries: torch.Tensor, cells: int, probes: int) -> torch.Tensor:
    """The local distance with each query's search limited to its ``probes`` nearest cells."""
    _, centres, sources = build_cells(space, 1, cells, np.random.default_rng(0))
    size = len(sources) // cells
    cell_of = torch.empty(len(space), dtype=torch.long)
    for c in range(cells):
        cell_of[sources[c * size:(c + 1) * size]] = c
    probed = (queries @ F.normalize(centres, dim=1).T).topk(probes, dim=1).indices
    allowed = torch.zeros(len(queries), cells, dtype=torch.bool).scatter_(1, probed, True)[:, cell_of]
    return 1 - sim.masked_fill(~allowed, -2).topk(neighbours.NEIGHBOURS, dim=1).values.mean(1)


@torch.inference_mode()
def main() -> None:
    torch.set_num_threads(2)
    x_train, y_train, x_test, y_test = load_mnist()
    x_train, x_test = torch.from_numpy(x_train), torch.from_numpy(x_test[:QUERIES])
    queries = neighbours.unit_rows(neighbours.to_space(x_test, 28, 28))
    keep = neighbours.MAX_REFERENCE_VALUES // (28 * 28)
    rows, sums = [], np.zeros(1 + 2 * len(SEARCHES))
    for digit in range(10):
        refs = x_train[torch.from_numpy(y_train == digit)]
        refs = refs[torch.from_numpy(np.sort(np.random.default_rng(0).permutation(len(refs))[:keep]))]
        grid = neighbours.to_space(refs, 28, 28)
        sim = similarities(queries, neighbours.shifted_references(grid))
        exact = 1 - sim.topk(neighbours.NEIGHBOURS, dim=1).values.mean(1)
        y = (y_test[:QUERIES] != digit).astype(int)
        values = [roc_auc_score(y, exact.numpy())]
        for cells, probes in SEARCHES:
            approx = restricted(sim, neighbours.unit_rows(grid), queries, cells, probes)
            values += [roc_auc_score(y, approx.numpy()), float((approx / exact).mean())]
        sums += values
        rows.append([str(digit), f"{len(refs):,}"] + [f"{v:.4f}" for v in values])
    rows.append(["mean", ""] + [f"{v / 10:.4f}" for v in sums])
    head = ["digit", "references", "exhaustive"]
    for cells, probes in SEARCHES:
        head += [f"{probes} of {cells} cells ({probes / cells:.0%} searched)", "ratio"]
    print(table(rows, head))


if __name__ == "__main__":
    main()
