"""ADBench semi-supervised protocol on the 16 data sets in ../shared/data/adbench.

For each seed: train on a random 60% of the normal rows; test on the other normal rows plus
all anomalies; AUC-ROC and AUC-PR (average precision). ``--contaminated``: train on a random
60% of all rows, anomalies included (what most users' training tables are), test on the rest. Every method runs side by side in
this one script, with its installed version's defaults and no per-data-set tuning.

    python benchmarks/anomaly_tabular.py                      # the full table (5 seeds)
    python benchmarks/anomaly_tabular.py --seeds 2 --datasets 6_cardio 42_WBC
    python benchmarks/anomaly_tabular.py --contaminated --seeds 2 --methods aekit knn iforest lof
    python benchmarks/anomaly_tabular.py --methods aekit "aekit:feature_weighting=none" iforest
    python benchmarks/anomaly_tabular.py --from-csv part1.csv part2.csv   # tables of saved runs
    python benchmarks/anomaly_tabular.py --datasets s1_clusters s2_lowdim_extreme   # the synthetic cases

Beside the 16 ADBench sets the script generates two synthetic sets for the kinds of data
where the default lost on unseen sets: ``s1_clusters`` (normal rows in 8 well-separated
clusters; anomalies between them, where no cluster is) and ``s2_lowdim_extreme`` (3
heavy-tailed columns; 1% anomalies with an extreme value in one column), and two built from
digit images as ODDS built the ADBench sets where kNN led on unseen data (issue 33):
``s3_digits`` (scikit-learn's optdigits copy: digits 1-9 normal, 50 zeros as anomalies) and
``s4_mnist`` (MNIST: every 0 normal, 700 sixes anomalous, 100 random pixel columns); on request
(``--datasets s5_mnist_large``) a large one, ``s5_mnist_large`` (every MNIST digit but 0 normal,
600 zeros anomalous, 100 random pixel columns: about 38,000 training rows). The tables report
the mean over group A (ADBench sets at even positions: where defaults are chosen), group B
(odd positions: reported, never chosen on) and the synthetic sets, separately.

A method spec ``aekit:k=v,k=v`` (or ``aekit-vae:...``) passes options to the aekit detector,
which is how the ablations in BENCHMARKS.md were run.
"""
from __future__ import annotations

import argparse
import csv
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, Timer, parse_spec, set_threads, table  # noqa: E402

DEFAULT_METHODS = ["aekit", "aekit-vae", "pyod-ae", "pyod-vae", "knn", "iforest", "lof", "ocsvm", "ecod"]


def make_scorer(spec: str, seed: int):
    """Returns fit(X) -> score(X) with higher = more anomalous."""
    name, kw = parse_spec(spec)
    if name in ("aekit", "aekit-vae"):
        from aekit import AnomalyDetector, VAEAnomalyDetector

        cls = AnomalyDetector if name == "aekit" else VAEAnomalyDetector
        det = cls(random_state=seed, **kw)
        return lambda X: det.fit(X), det.decision_function
    if name in ("pyod-ae", "pyod-vae"):
        from pyod.models.auto_encoder import AutoEncoder
        from pyod.models.vae import VAE

        cls = AutoEncoder if name == "pyod-ae" else VAE
        det = cls(random_state=seed, verbose=0, **kw)
        return lambda X: det.fit(X), det.decision_function
    if name == "ecod":
        from pyod.models.ecod import ECOD

        det = ECOD(**kw)
        return lambda X: det.fit(X), det.decision_function
    if name == "knn":  # exact kNN (PyOD's KNN default): distance to the k-th nearest training row
        from sklearn.neighbors import NearestNeighbors

        k = int(kw.get("n_neighbors", 5))
        nn, scaler = NearestNeighbors(n_neighbors=k), StandardScaler()
        return (lambda X: nn.fit(scaler.fit_transform(X)),
                lambda X: nn.kneighbors(scaler.transform(X))[0][:, -1])
    # scikit-learn detectors: standardised inputs (they are distance / kernel based)
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.svm import OneClassSVM

    est = {"iforest": lambda: IsolationForest(random_state=seed, **kw),
           "lof": lambda: LocalOutlierFactor(novelty=True, **kw),
           "ocsvm": lambda: OneClassSVM(**kw)}[name]()
    scaler = StandardScaler()
    return (lambda X: est.fit(scaler.fit_transform(X)),
            lambda X: -est.score_samples(scaler.transform(X)))


SYNTHETIC = ("s1_clusters", "s2_lowdim_extreme", "s3_digits", "s4_mnist")
LARGE = ("s5_mnist_large",)  # only when named in --datasets (LOF and PyOD take minutes on it)


def synthetic_set(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a synthetic set (fixed seed: the same data every run)."""
    rng = np.random.default_rng(12345)
    if name == "s1_clusters":
        centres = rng.normal(scale=6.0, size=(8, 20))
        normal = centres[rng.integers(8, size=4000)] + rng.normal(size=(4000, 20))
        a, b = rng.integers(8, size=(2, 200))
        b = np.where(a == b, (b + 1) % 8, b)
        between = 0.5 * (centres[a] + centres[b]) + rng.normal(size=(200, 20))  # midway: far from every cluster
        return np.vstack([normal, between]).astype(np.float32), np.r_[np.zeros(4000, int), np.ones(200, int)]
    if name == "s2_lowdim_extreme":
        normal = np.column_stack([rng.lognormal(3, 1, 5000), rng.exponential(50, 5000), rng.poisson(20, 5000)])
        anomalies = np.column_stack([rng.lognormal(3, 1, 50), rng.exponential(50, 50), rng.poisson(20, 50)])
        col = rng.integers(3, size=50)
        anomalies[np.arange(50), col] *= rng.uniform(8, 30, 50)  # one extreme value per anomaly
        return np.vstack([normal, anomalies]).astype(np.float32), np.r_[np.zeros(5000, int), np.ones(50, int)]
    if name == "s3_digits":  # ODDS optdigits' recipe on scikit-learn's copy: digits 1-9 normal, 3% zeros
        from sklearn.datasets import load_digits

        X, labels = load_digits(return_X_y=True)
        zeros = rng.choice(np.flatnonzero(labels == 0), 50, replace=False)
        keep = np.r_[np.flatnonzero(labels != 0), zeros]
        return X[keep].astype(np.float32), (labels[keep] == 0).astype(int)
    if name == "s4_mnist":  # ODDS mnist's recipe: every 0 normal, 700 sixes, 100 random pixels
        with np.load(SHARED / "mnist" / "mnist.npz", allow_pickle=False) as f:
            images = np.concatenate([f["x_train"], f["x_test"]]).reshape(-1, 784)
            labels = np.concatenate([f["y_train"], f["y_test"]])
        sixes = rng.choice(np.flatnonzero(labels == 6), 700, replace=False)
        keep = np.r_[np.flatnonzero(labels == 0), sixes]
        pixels = np.sort(rng.choice(np.flatnonzero(images[keep].std(0) > 0), 100, replace=False))
        return images[keep][:, pixels].astype(np.float32), (labels[keep] == 6).astype(int)
    if name == "s5_mnist_large":  # s4's recipe the other way round, large: every digit but 0 normal, 600 zeros
        with np.load(SHARED / "mnist" / "mnist.npz", allow_pickle=False) as f:
            images = np.concatenate([f["x_train"], f["x_test"]]).reshape(-1, 784)
            labels = np.concatenate([f["y_train"], f["y_test"]])
        zeros = rng.choice(np.flatnonzero(labels == 0), 600, replace=False)
        keep = np.r_[np.flatnonzero(labels != 0), zeros]
        pixels = np.sort(rng.choice(np.flatnonzero(images[keep].std(0) > 0), 100, replace=False))
        return images[keep][:, pixels].astype(np.float32), (labels[keep] == 0).astype(int)
    raise ValueError(f"unknown synthetic set {name!r}")


def development_sets() -> list[str]:
    """The 16 ADBench development sets in their numbered order (group A: even positions, B:
    odd), then the synthetic sets."""
    files = sorted((SHARED / "adbench").glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    return [f.stem for f in files] + list(SYNTHETIC)


def study_groups() -> dict[str, list[str]]:
    """The development sets as the studies report them: A (to choose on), B (held out), the
    synthetic and the digit sets."""
    adbench = [name for name in development_sets() if name not in SYNTHETIC]
    return {"A (choose)": adbench[0::2], "B (held out)": adbench[1::2], "synthetic": list(SYNTHETIC[:2]),
            "digits": list(SYNTHETIC[2:])}


def load_set(name: str, dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of a development set (``development_sets``' names), ``X`` as ``dtype``."""
    if name in SYNTHETIC or name in LARGE:
        X, y = synthetic_set(name)
    else:
        with np.load(SHARED / "adbench" / f"{name}.npz", allow_pickle=False) as d:
            X, y = d["X"], d["y"].astype(int)
    return X.astype(dtype), y


def split(y: np.ndarray, seed: int, contaminated: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) rows: 60% of the normal rows (``contaminated``: of all rows, anomalies
    included, as ADBench's main protocol) to train on, the rest to test on."""
    rng = np.random.default_rng(seed)
    normal = np.arange(len(y)) if contaminated else np.flatnonzero(y == 0)
    rng.shuffle(normal)
    train = np.sort(normal[: int(0.6 * len(normal))])
    test = np.setdiff1d(np.arange(len(y)), train)
    return train, test


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(SHARED / "adbench"))
    ap.add_argument("--datasets", nargs="*", help="names without .npz (default: all)")
    ap.add_argument("--methods", nargs="*", default=DEFAULT_METHODS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--contaminated", action="store_true",
                    help="train on a random 60%% of all rows, anomalies included (default: of the normal rows)")
    ap.add_argument("--csv", default="bench_output/anomaly_tabular.csv", help="per-run results, appended as they come")
    ap.add_argument("--from-csv", nargs="*", help="print the tables of saved result files instead of running")
    args = ap.parse_args()
    if args.from_csv:
        return print_tables(load_runs(args.from_csv))
    set_threads()
    warnings.filterwarnings("ignore")
    files = sorted(Path(args.data_dir).glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    sources: list[tuple[str, object]] = [(f.stem, f) for f in files] + [(name, name) for name in SYNTHETIC]
    if args.datasets:
        sources = [s for s in sources + [(name, name) for name in LARGE] if s[0] in args.datasets]
    if not sources:
        sys.exit(f"no data sets found in {args.data_dir}")

    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w") as out:
        out.write(CSV_HEADER)
    runs = []  # (dataset, method, seed, auc, ap, fit_s, rows_per_s)
    for stem, source in sources:
        if isinstance(source, str):
            X, y = synthetic_set(source)
        else:
            d = np.load(source, allow_pickle=False)
            X, y = d["X"].astype(np.float32), d["y"].astype(int)
        for seed in range(args.seeds):
            tr, te = split(y, seed, args.contaminated)
            for m in args.methods:
                fit, score = make_scorer(m, seed)
                with Timer() as tf:
                    fit(X[tr])
                with Timer() as ts:
                    s = np.asarray(score(X[te]), dtype=np.float64)
                s = np.nan_to_num(s, nan=np.nanmax(s[np.isfinite(s)], initial=0.0), posinf=1e300)
                runs.append((stem, m, seed, roc_auc_score(y[te], s), average_precision_score(y[te], s),
                             tf.seconds, len(te) / max(ts.seconds, 1e-9)))
                with open(args.csv, "a", newline="") as out:  # a cut-off run keeps what it measured
                    csv.writer(out, lineterminator="\n").writerow(runs[-1])  # quotes a spec with commas
            print(f"{stem} seed {seed} done", file=sys.stderr, flush=True)
    print_tables(runs)


CSV_HEADER = "dataset,method,seed,auc_roc,auc_pr,fit_s,score_rows_per_s\n"


def load_runs(paths: list[str]) -> list[tuple]:
    import pandas as pd

    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    return list(frame.itertuples(index=False, name=None))


def print_tables(runs: list[tuple]) -> None:
    order = {m: i for i, m in enumerate(dict.fromkeys(r[1] for r in runs))}
    methods = sorted(order, key=order.get)
    datasets = sorted(dict.fromkeys(r[0] for r in runs), key=_order)
    adbench = [ds for ds in datasets if not ds.startswith("s")]
    groups = {"group A (choose)": adbench[0::2], "group B (held out)": adbench[1::2],
              "synthetic": [ds for ds in datasets if ds.startswith(("s1_", "s2_"))],
              "digits": [ds for ds in datasets if ds.startswith(("s3_", "s4_"))],
              "large": [ds for ds in datasets if ds.startswith("s5_")]}
    seeds = len({r[2] for r in runs})
    agg = defaultdict(list)
    for ds, m, _, auc, ap_, fit_s, rps in runs:
        agg[ds, m].append((auc, ap_, fit_s, rps))
    for metric, idx in (("AUC-ROC", 0), ("AUC-PR", 1)):
        rows = []
        for ds in datasets:
            rows.append([ds] + [f"{np.mean([v[idx] for v in agg[ds, m]]):.3f}±{np.std([v[idx] for v in agg[ds, m]]):.3f}"
                                for m in methods])
        mean_of = lambda sets, m: np.mean([np.mean([v[idx] for v in agg[ds, m]]) for ds in sets])  # noqa: E731
        if adbench:
            ranks = np.mean([_ranks([np.mean([v[idx] for v in agg[ds, m]]) for m in methods]) for ds in adbench], 0)
            rows.append(["**mean (ADBench)**"] + [f"**{mean_of(adbench, m):.3f}**" for m in methods])
            rows.append(["mean rank (ADBench)"] + [f"{r:.2f}" for r in ranks])
        for label, sets in groups.items():
            if sets and (label in ("synthetic", "digits", "large") or len(sets) < len(adbench)):
                rows.append([f"mean, {label}"] + [f"{mean_of(sets, m):.3f}" for m in methods])
        print(f"\n### {metric} (mean±std over {seeds} seeds)\n")
        print(table(rows, ["dataset", *methods]))
    rows = [[m, f"{sum(np.mean([v[2] for v in agg[ds, m]]) for ds in datasets):.1f}",
             f"{np.median([np.mean([v[3] for v in agg[ds, m]]) for ds in datasets]):,.0f}"] for m in methods]
    print("\n### Cost\n")
    print(table(rows, ["method", "fit s (sum over data sets, mean over seeds)", "scoring rows/s (median)"]))


def _order(name: str) -> tuple[int, str]:
    head = name.split("_")[0]
    return (1, name) if head.startswith("s") else (0, f"{int(head):04d}")


def _ranks(values: list[float]) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(-np.asarray(values))


if __name__ == "__main__":
    main()
