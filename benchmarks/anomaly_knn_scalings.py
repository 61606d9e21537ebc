"""Exact kNN on the development sets under several column scalings: how sharp a local
statistic can be on clean training rows, and what it gives away on contaminated ones
(issue 33). The anomaly_tabular.py protocol (60% of the normal rows, or with
``--contaminated`` of all rows, to train on; 2 seeds); each scaling is fitted on the training
rows, then the distance to the nearest and to the 5th nearest training row scores the test
rows.

  aekit     minus the median, over the tighter of the IQR and 1.349 std (aekit's scaling)
  std       standardised (PyOD's kNN)
  trimmed   over the std of the values between the 1st and 99th percentiles
  looser    over the looser of the IQR and 1.349 std
  geometric over the geometric mean of IQR / 1.349 and the std
  range     over the 1st-99th percentile range
  quantile  each column's empirical CDF (scikit-learn's QuantileTransformer, uniform)

    python benchmarks/anomaly_knn_scalings.py [--contaminated]     # 20 s on 2 cores
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import QuantileTransformer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from anomaly_tabular import development_sets, load_set, split, study_groups  # noqa: E402

NORMAL_IQR = 1.349


def nearest_distances(reference: np.ndarray, queries: np.ndarray, k: int = 5) -> np.ndarray:
    """``[queries, k]``: exact distances to the ``k`` nearest reference rows."""
    ref, q = torch.from_numpy(reference), torch.from_numpy(queries)
    return torch.cat([torch.cdist(q[s:s + 1024], ref).topk(k, largest=False).values
                      for s in range(0, len(q), 1024)]).numpy()


def scalings(train: np.ndarray) -> dict[str, object]:
    """Each scaling as a function of rows, fitted on ``train``."""
    std = train.std(0)
    q1, q25, median, q75, q99 = np.percentile(train, [1, 25, 50, 75, 99], axis=0)
    iqr = q75 - q25
    kept = [c[(c >= a) & (c <= b)] for c, a, b in zip(train.T, q1, q99, strict=True)]
    trimmed = np.array([c.std() if len(c) > 1 else 0.0 for c in kept])

    def safe(scale: np.ndarray) -> np.ndarray:  # a zero scale falls back to the std, then to 1
        return np.where(scale > 0, scale, np.where(std > 0, std, 1.0))

    tight = np.minimum(iqr, NORMAL_IQR * std)  # aekit's fallback: 1.349 std where the IQR is 0
    over = {"aekit": np.where(tight > 0, tight, np.where(std > 0, NORMAL_IQR * std, 1.0)), "std": safe(std),
            "trimmed": safe(trimmed),
            "looser": safe(np.maximum(iqr, NORMAL_IQR * std)), "geometric": safe(np.sqrt(iqr / NORMAL_IQR * std)),
            "range": safe(q99 - q1)}
    maps: dict[str, object] = {name: (lambda x, s=scale: (x - median) / s) for name, scale in over.items()}
    maps["quantile"] = QuantileTransformer(n_quantiles=min(1000, len(train)), output_distribution="uniform").fit(train).transform
    return maps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contaminated", action="store_true", help="train on a random 60%% of all rows")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    names = development_sets()
    auc: dict[tuple[str, str], dict[str, list[float]]] = {}
    for name in names:
        X, y = load_set(name, np.float64)
        for seed in range(args.seeds):
            train, test = split(y, seed, args.contaminated)
            for scaling, transform in scalings(X[train]).items():
                distances = nearest_distances(transform(X[train]), transform(X[test]))
                for stat, column in (("nearest", 0), ("5th nearest", 4)):
                    auc.setdefault((scaling, stat), {}).setdefault(name, []).append(
                        roc_auc_score(y[test], distances[:, column]))
        print(name, flush=True)
    groups = study_groups()
    groups["16 ADBench sets"] = groups["A (choose)"] + groups["B (held out)"]
    rows = [[f"{scaling}, {stat}", *[f"{np.mean([np.mean(sets[n]) for n in group]):.3f}" for group in groups.values()]]
            for (scaling, stat), sets in auc.items()]
    print(f"\nmean AUC-ROC, {args.seeds} seeds, {'contaminated' if args.contaminated else 'clean'} training rows")
    print(table(rows, ["scaling, distance", *groups]))


if __name__ == "__main__":
    main()
