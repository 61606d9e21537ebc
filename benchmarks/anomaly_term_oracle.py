"""How far could a per-data-set choice among the default's terms go? (issue 33)

The default table score is the autoencoder terms (reconstruction + code) plus 4 x the local
term plus 2 x the histogram term. On the development sets the autoencoder terms help some sets
(Cardiotocography, Waveform) and cost others (fault, SpamBase, s3_digits). This script fits the
default detector on the protocol of anomaly_tabular.py (ADBench groups A and B, the synthetic
and digit sets; 2 seeds) and prints, per group, mean AUC-ROC of:

  default          the detector's score
  without AE       local + histogram terms (the autoencoder terms left out)
  half AE          local + histogram + 0.5 x the autoencoder terms
  AE terms alone, local term alone
  oracle of 2      per set, the better of default and without AE, chosen with the labels
  oracle of 5      per set, the best of the five scores above, chosen with the labels
  kNN              the peer: distance to the 5th nearest training row, standardised columns

The oracles are upper bounds of any unsupervised rule that picks among those scores per set.
With --per-set, each set's row is printed too, with two statistics such a rule could read from
the held-out training rows: the rank correlation of the autoencoder and local terms on them,
and the ratio of their median autoencoder term to the training rows'.

    python benchmarks/anomaly_term_oracle.py                  # clean training rows
    python benchmarks/anomaly_term_oracle.py --contaminated   # 60% of all rows, anomalies included
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from anomaly_tabular import development_sets, load_set, split, study_groups  # noqa: E402

from aekit import AnomalyDetector  # noqa: E402

SCORES = ("default", "without AE", "half AE", "AE alone", "local alone")


@torch.inference_mode()
def terms(det: AnomalyDetector, Z: torch.Tensor) -> dict[str, np.ndarray]:
    """The detector's score of rows ``Z`` (scaled) and its parts, as the detector weighs them."""
    total = det._score_blocks(Z, per_feature=False)[0]
    local = det._local_term(Z, False)[0].double().numpy()
    hist = det._histogram_term(Z, False)[0].double().numpy()
    return {"total": total, "local": local, "hist": hist, "ae": total - local - hist}


def run_set(X: np.ndarray, y: np.ndarray, seed: int, contaminated: bool) -> list[float]:
    """AUC-ROC of each of ``SCORES`` and kNN, then the two held-out statistics."""
    tr, te = split(y, seed, contaminated)
    det = AnomalyDetector(random_state=seed).fit(X[tr])
    Z = det._inputs(X[tr])
    train_idx, val_idx = det._split(len(Z))
    test, val, train = terms(det, det._inputs(X[te])), terms(det, Z[val_idx]), terms(det, Z[train_idx])
    scores = [test["total"], test["local"] + test["hist"], test["local"] + test["hist"] + 0.5 * test["ae"],
              test["ae"], test["local"]]
    scaler = StandardScaler().fit(X[tr])
    knn = NearestNeighbors(n_neighbors=5).fit(scaler.transform(X[tr])).kneighbors(scaler.transform(X[te]))[0][:, -1]
    aucs = [roc_auc_score(y[te], s) for s in (*scores, knn)]
    rho = float(spearmanr(val["ae"], val["local"]).statistic)
    return aucs + [rho, float(np.median(val["ae"]) / np.median(train["ae"]))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--contaminated", action="store_true", help="train on 60%% of all rows, anomalies included")
    ap.add_argument("--per-set", action="store_true", help="print each set's row too")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    groups = study_groups()
    per_set: dict[str, np.ndarray] = {}
    for name in development_sets():
        X, y = load_set(name)
        per_set[name] = np.mean([run_set(X, y, seed, args.contaminated) for seed in range(args.seeds)], 0)
        print(f"{name} done", file=sys.stderr, flush=True)

    n = len(SCORES)
    columns = [*SCORES, "oracle of 2", "oracle of 5", "kNN"]

    def row_of(r: np.ndarray) -> list[float]:
        return [*r[:n], max(r[0], r[1]), r[:n].max(), r[n]]

    print(f"\nmean AUC-ROC over {args.seeds} seeds; {'contaminated' if args.contaminated else 'clean'} training rows\n")
    rows = [[group] + [f"{np.mean([row_of(per_set[s])[i] for s in sets]):.3f}" for i in range(len(columns))]
            for group, sets in groups.items()]
    print(table(rows, ["group", *columns]))
    if args.per_set:
        rows = [[name] + [f"{v:.3f}" for v in (*row_of(r), *r[n + 1:])] for name, r in per_set.items()]
        print()
        print(table(rows, ["set", *columns, "held-out rank corr.", "held-out / training AE"]))


if __name__ == "__main__":
    main()
