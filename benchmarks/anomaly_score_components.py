"""Which tabular anomaly score? Each candidate term, alone and summed, on the protocol of
anomaly_tabular.py (ADBench groups A and B, the synthetic sets), computed from the same fitted
detectors: the study behind the default score (issue 11; BENCHMARKS.md).

Terms, each in units of its mean on the held-out validation rows (about 1 for normal rows):
  rec       reconstruction error, each feature's divided by its typical error
  code      the code term: the larger of the squared Mahalanobis distance of the code to the
            training codes and the code mixture's term (code_mixture; since 0.7.0)
  local     the default's local term: the training rows (at most 65,536) dealt into 20
            groups; the larger of the squared distance to the nearest row and the mean over
            the groups of the squared distance to the group's nearest row, each in its median
            unit (scaled inputs; since 0.8.0), searched in the 2 nearest of equal cells (local_cells)
  centres   the local term before issue 33: squared distance to the nearest of at most 256
            k-means centres of the training rows (4 rows per centre on small sets)
  sized     centres, each centre's distance raised by log(largest cluster / its cluster's
            size): a centre that holds few training rows counts as farther
  knn_in    mean squared distance to the 5 nearest training rows (all of them)
  knn10     the same over the 10 nearest
  knn_k     squared distance to the 5th nearest training row (the kNN peer's score)
  knn_code  knn_in on the whitened codes
The autoencoder terms are the ensemble means of the fitted detector's members.

    python benchmarks/anomaly_score_components.py                          # the default's networks, 3 seeds
    python benchmarks/anomaly_score_components.py --options n_estimators=3 epochs=100 batch_size=128
    python benchmarks/anomaly_score_components.py --datasets 6_cardio s1_clusters --seeds 1
    python benchmarks/anomaly_score_components.py --references 1024  # cap the local term's rows (1,024: the cap before the cells)
    python benchmarks/anomaly_score_components.py --min-steps 1000  # train small sets longer
    python benchmarks/anomaly_score_components.py --contaminated --seeds 2   # training rows hold anomalies
"""
from __future__ import annotations

import argparse
import ast
import math
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, Timer, table  # noqa: E402
from anomaly_tabular import SYNTHETIC, development_sets, split, study_groups, synthetic_set  # noqa: E402

from aekit import AnomalyDetector  # noqa: E402
from aekit.apps.anomaly import local_cells  # noqa: E402

# (label, {term: weight}); "default" is the detector's own decision_function
RECIPES = [
    ("rec", {"rec": 1}), ("code", {"code": 1}), ("local", {"local": 1}), ("centres", {"centres": 1}),
    ("sized", {"sized": 1}), ("knn_in", {"knn_in": 1}), ("knn10", {"knn10": 1}), ("knn_k", {"knn_k": 1}),
    ("knn_code", {"knn_code": 1}),
    ("rec + code (the default before issue 11)", {"rec": 1, "code": 1}),
    ("rec + code + 2 centres (the default before issue 33)", {"rec": 1, "code": 1, "centres": 2}),
    ("rec + code + 2 local", {"rec": 1, "code": 1, "local": 2}),
    ("rec + code + 4 local (the default)", {"rec": 1, "code": 1, "local": 4}),
    ("rec + code + 6 local", {"rec": 1, "code": 1, "local": 6}),
    ("rec + 4 local", {"rec": 1, "local": 4}),
    ("rec + code + 4 knn_in", {"rec": 1, "code": 1, "knn_in": 4}),
    ("rec + code + 4 knn10", {"rec": 1, "code": 1, "knn10": 4}),
    ("rec + code + 4 sized", {"rec": 1, "code": 1, "sized": 4}),
    ("rec + code + 2 centres + 2 local", {"rec": 1, "code": 1, "centres": 2, "local": 2}),
]
CENTRES, ROWS_PER_CENTRE = 256, 4  # the k-means term before issue 33


def knn_distance(ref: torch.Tensor, query: torch.Tensor, k: int = 5) -> np.ndarray:
    dist = torch.cdist(query.flatten(1), ref.flatten(1)).pow_(2)
    return dist.topk(min(k, len(ref)), dim=1, largest=False).values.mean(1).numpy()


def knn_kth(ref: torch.Tensor, query: torch.Tensor, k: int = 5) -> np.ndarray:
    dist = torch.cdist(query.flatten(1), ref.flatten(1)).pow_(2)
    return dist.topk(min(k, len(ref)), dim=1, largest=False).values[:, -1].numpy()


def centres_of(rows: torch.Tensor, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """The k-means centres of ``rows`` (as the detector fitted them before issue 33) and
    their clusters' sizes."""
    from sklearn.cluster import KMeans

    flat = rows.flatten(1).double().numpy()
    n = int(min(CENTRES, max(1, len(flat) // ROWS_PER_CENTRE)))
    km = KMeans(n_clusters=n, n_init=1, max_iter=50, random_state=seed).fit(flat)
    return torch.from_numpy(km.cluster_centers_).float(), np.bincount(km.labels_, minlength=n)


def nearest_centre(centres: torch.Tensor, query: torch.Tensor, penalty: np.ndarray | None = None) -> np.ndarray:
    dist = torch.cdist(query.flatten(1), centres).pow_(2).numpy()
    return dist.min(1) if penalty is None else (dist + penalty).min(1)


def whiten(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    mean = train.mean(0)
    cov = torch.cov((train - mean).T.double()).reshape(train.shape[1], train.shape[1])
    cov += 1e-6 * torch.eye(len(cov), dtype=cov.dtype) * cov.trace() / len(cov)
    white = torch.linalg.cholesky(torch.linalg.inv(cov)).float()
    return [(x - mean) @ white for x in (train, *others)]


@torch.inference_mode()
def terms(det: AnomalyDetector, Z: torch.Tensor, train: torch.Tensor, val: torch.Tensor) -> dict[str, np.ndarray]:
    """Every term for the rows of ``Z``, each divided by its mean on ``val``."""
    centres, sizes = centres_of(train, det.random_state)
    unit = float(nearest_centre(centres, val).mean()) + 1e-12
    sizes = np.maximum(sizes, 1)
    penalty = unit * np.log(sizes.max() / sizes)[None, :]

    def raw(rows: torch.Tensor) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = defaultdict(list)
        for k, model in enumerate(det.models_):
            errors, code = det._reconstruction_errors(model, rows)
            out["rec"].append((errors.flatten(1) @ det.feature_weights_[k].flatten()).numpy())
            out["code"].append(det._member_extra(k, rows, code).numpy() / max(det.latent_weight, 1e-12))
            tr, q = whiten(model.encode(train), code)[:2]
            out["knn_code"].append(knn_distance(tr, q))
        result = {name: np.mean(v, 0) for name, v in out.items()}
        result["local"] = det._local_term(rows, per_feature=False)[0].numpy() / det.local_weight_
        result["knn_in"] = knn_distance(train, rows)
        result["knn_k"] = knn_kth(train, rows)
        result["centres"] = nearest_centre(centres, rows)
        result["sized"] = nearest_centre(centres, rows, penalty)
        result["knn10"] = knn_distance(train, rows, 10)
        return result

    test, ref = raw(Z), raw(val)
    return {name: test[name] / (ref[name].mean() + 1e-12) for name in test} | {
        f"val:{name}": ref[name] / (ref[name].mean() + 1e-12) for name in ref}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", help="names without .npz (default: all, and the synthetic sets)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--contaminated", action="store_true", help="train on 60%% of all rows, anomalies included")
    ap.add_argument("--options", nargs="*", default=[], help="AnomalyDetector options, e.g. n_estimators=3")
    ap.add_argument("--references", type=int, default=local_cells.MAX_ROWS, help="cap on the local term's rows")
    ap.add_argument("--dump", help="a folder to save each run's terms in (.npz), for studies of how to combine them")
    ap.add_argument("--min-steps", type=int, default=0,
                    help="raise each set's epochs to give at least this many optimizer steps")
    args = ap.parse_args()
    local_cells.MAX_ROWS = args.references
    warnings.filterwarnings("ignore")
    options = {k: ast.literal_eval(v) for k, _, v in (o.partition("=") for o in args.options)}
    names = development_sets()
    groups = study_groups()
    if args.datasets:
        names = [n for n in names if n in args.datasets]
    results: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    fit_seconds: dict[str, list[float]] = defaultdict(list)
    for name in names:
        if name in SYNTHETIC:
            X, y = synthetic_set(name)
        else:
            data = np.load(SHARED / "adbench" / f"{name}.npz", allow_pickle=False)
            X, y = data["X"].astype(np.float32), data["y"].astype(int)
        for seed in range(args.seeds):
            tr, te = split(y, seed, args.contaminated)
            det = AnomalyDetector(random_state=seed, **{**options, "local_weight": 4.0})
            if args.min_steps:
                rows = len(tr) * (1 - det.validation_fraction)
                det.epochs = max(det.epochs, math.ceil(args.min_steps / math.ceil(rows / det.batch_size)))
            with Timer() as t:
                det.fit(X[tr])
            fit_seconds[name].append(t.seconds)
            Z = det._inputs(X[tr])
            train_idx, val_idx = det._split(len(Z))
            parts = terms(det, det._inputs(X[te]), Z[train_idx], Z[val_idx])
            if args.dump:
                Path(args.dump).mkdir(parents=True, exist_ok=True)
                np.savez(Path(args.dump) / f"{name}_{seed}.npz", y=y[te], **{k.replace(":", "__"): v for k, v in parts.items()})
            scores = {"default": det.decision_function(X[te])}
            for label, weights in RECIPES:
                scores[label] = sum(w * parts[term] for term, w in weights.items())
            for label, s in scores.items():
                results[label][name].append((roc_auc_score(y[te], s), average_precision_score(y[te], s)))
        print(f"{name} done", file=sys.stderr, flush=True)

    rows = []
    for label in ["default", *(r[0] for r in RECIPES)]:
        row = [label]
        for metric in (0, 1):
            for sets in groups.values():
                sets = [s for s in sets if s in names]
                row.append(f"{np.mean([np.mean([r[metric] for r in results[label][s]]) for s in sets]):.3f}"
                           if sets else "-")
        rows.append(row)
    header = ["score"] + [f"{m} {g}" for m in ("AUC-ROC", "AUC-PR") for g in groups]
    print(f"\nmean over data sets of the mean over {args.seeds} seeds; options {options or 'defaults'}; "
          f"{'contaminated' if args.contaminated else 'clean'} training rows; local references <= {args.references}, min steps {args.min_steps}\n")
    print(table(rows, header))
    print(f"\nfit seconds, summed over data sets (mean over seeds): "
          f"{sum(np.mean(v) for v in fit_seconds.values()):.1f}")


if __name__ == "__main__":
    main()
