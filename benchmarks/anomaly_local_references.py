"""Which training rows should the local term compare with, and in which space? (issue 33)

The default's local term is the larger of the nearest training row and the mean over 20
groups of each group's nearest row, in robust column units. The nearest row alone is sharper
on clean training rows and fails on contaminated ones, where anomalies are each other's
nearest rows. This script asks whether the reference rows can be cleaned first, and whether
the autoencoder's code space holds a sharper neighbour. On the protocol of anomaly_tabular.py
(ADBench groups A and B, the synthetic and digit sets; 2 seeds) it fits the default detector
and prints mean AUC-ROC of (every local statistic exact, over the training rows the local
term uses, in units of its median on the held-out rows):

  default              the detector's score
  exact default term   rec + code + histogram + 4 x the larger of the two statistics
  nearest row          rec + code + histogram + 4 x the nearest row
  trimmed q            both, with the share q of references whose own autoencoder terms
                       (reconstruction + code) are highest left out
  + code neighbour w   the default + w x the nearest training code, whitened by the code
                       term's precision

    python benchmarks/anomaly_local_references.py                  # clean training rows
    python benchmarks/anomaly_local_references.py --contaminated   # 60% of all rows, anomalies included
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from anomaly_tabular import development_sets, load_set, split, study_groups  # noqa: E402
from anomaly_term_oracle import terms  # noqa: E402

from aekit import AnomalyDetector  # noqa: E402

GROUPS = 20  # the default's groups
TRIMS = (0.05, 0.1, 0.2)
CODE_WEIGHTS = (0.5, 1.0, 2.0)


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0)


def median_unit(values: np.ndarray) -> float:
    return max(float(np.median(values)), 1e-12)


def local_statistics(rows: np.ndarray, refs: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest reference's squared distance, and the mean over the groups of theirs."""
    d = squared_distances(rows, refs)
    return d.min(1), np.stack([d[:, groups == g].min(1) for g in range(GROUPS)], 1).mean(1)


def run_set(X: np.ndarray, y: np.ndarray, seed: int, contaminated: bool) -> dict[str, float]:
    tr, te = split(y, seed, contaminated)
    det = AnomalyDetector(random_state=seed).fit(X[tr])
    Z = det._inputs(X[tr])
    train_idx, val_idx = det._split(len(Z))
    inputs = {"test": det._inputs(X[te]), "val": Z[val_idx], "train": Z[train_idx]}
    test, train = terms(det, inputs["test"]), terms(det, inputs["train"])
    T, V, R = (inputs[name].flatten(1).double().numpy() for name in ("test", "val", "train"))
    y_test = y[te]
    others = test["ae"] + test["hist"]  # the score but for its local term
    aucs = {"default": roc_auc_score(y_test, test["total"])}
    rng = np.random.default_rng(seed)
    for q in (0.0, *TRIMS):
        keep = train["ae"] <= np.quantile(train["ae"], 1 - q) if q else np.ones(len(R), bool)
        groups = rng.permutation(int(keep.sum())) % GROUPS
        t_near, t_mean = local_statistics(T, R[keep], groups)
        v_near, v_mean = local_statistics(V, R[keep], groups)
        near_unit, mean_unit = median_unit(v_near), median_unit(v_mean)
        common = median_unit(np.maximum(v_near / near_unit, v_mean / mean_unit))
        larger = np.maximum(t_near / near_unit, t_mean / mean_unit) / common
        prefix = f"trimmed {q:g}: " if q else ""
        aucs[prefix + ("default term" if q else "exact default term")] = roc_auc_score(y_test, others + 4 * larger)
        aucs[prefix + "nearest row"] = roc_auc_score(y_test, others + 4 * t_near / near_unit)
    precision = det.latent_stats_[0][1].double().numpy()
    eigenvalues, vectors = np.linalg.eigh((precision + precision.T) / 2)
    whiten = vectors * np.sqrt(np.maximum(eigenvalues, 0))
    with torch.inference_mode():
        codes = {name: det._codes(det.models_[0], rows).double().numpy() @ whiten for name, rows in inputs.items()}
    code_near = squared_distances(codes["test"], codes["train"]).min(1)
    code_near /= median_unit(squared_distances(codes["val"], codes["train"]).min(1))
    for w in CODE_WEIGHTS:
        aucs[f"+ code neighbour {w:g}"] = roc_auc_score(y_test, test["total"] + w * code_near)
    return aucs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--contaminated", action="store_true", help="train on 60%% of all rows, anomalies included")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    groups = study_groups()
    per_set: dict[str, dict[str, float]] = {}
    for name in development_sets():
        X, y = load_set(name)
        runs = [run_set(X, y, seed, args.contaminated) for seed in range(args.seeds)]
        per_set[name] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
        print(f"{name} done", file=sys.stderr, flush=True)
    scores = list(next(iter(per_set.values())))
    print(f"\nmean AUC-ROC over {args.seeds} seeds; {'contaminated' if args.contaminated else 'clean'} training rows\n")
    rows = [[score] + [f"{np.mean([per_set[s][score] for s in sets]):.3f}" for sets in groups.values()]
            for score in scores]
    print(table(rows, ["score", *groups]))


if __name__ == "__main__":
    main()
