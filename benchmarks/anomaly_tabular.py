"""ADBench semi-supervised protocol on the 16 data sets in ../shared/data/adbench.

For each seed: train on a random 60% of the normal rows; test on the other normal rows plus
all anomalies; AUC-ROC and AUC-PR (average precision). Every method runs side by side in
this one script, with its installed version's defaults and no per-data-set tuning.

    python benchmarks/anomaly_tabular.py                      # the full table (5 seeds)
    python benchmarks/anomaly_tabular.py --seeds 2 --datasets 6_cardio 42_WBC
    python benchmarks/anomaly_tabular.py --methods aekit "aekit:feature_weighting=none" iforest
    python benchmarks/anomaly_tabular.py --from-csv part1.csv part2.csv   # tables of saved runs

A method spec ``aekit:k=v,k=v`` (or ``aekit-vae:...``) passes options to the aekit detector,
which is how the ablations in BENCHMARKS.md were run.
"""
from __future__ import annotations

import argparse
import ast
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, Timer, set_threads, table  # noqa: E402

DEFAULT_METHODS = ["aekit", "aekit-vae", "pyod-ae", "pyod-vae", "iforest", "lof", "ocsvm", "ecod"]


def parse_spec(spec: str) -> tuple[str, dict]:
    name, _, opts = spec.partition(":")
    kwargs = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    return name, kwargs


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


def split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    normal = np.flatnonzero(y == 0)
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
    ap.add_argument("--csv", default="bench_output/anomaly_tabular.csv", help="per-run results, appended as they come")
    ap.add_argument("--from-csv", nargs="*", help="print the tables of saved result files instead of running")
    args = ap.parse_args()
    if args.from_csv:
        return print_tables(load_runs(args.from_csv))
    set_threads()
    warnings.filterwarnings("ignore")
    files = sorted(Path(args.data_dir).glob("*.npz"), key=lambda p: int(p.stem.split("_")[0]))
    if args.datasets:
        files = [f for f in files if f.stem in args.datasets]
    if not files:
        sys.exit(f"no data sets found in {args.data_dir}")

    Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w") as out:
        out.write(CSV_HEADER)
    runs = []  # (dataset, method, seed, auc, ap, fit_s, rows_per_s)
    for f in files:
        d = np.load(f, allow_pickle=False)
        X, y = d["X"].astype(np.float32), d["y"].astype(int)
        for seed in range(args.seeds):
            tr, te = split(y, seed)
            for m in args.methods:
                fit, score = make_scorer(m, seed)
                with Timer() as tf:
                    fit(X[tr])
                with Timer() as ts:
                    s = np.asarray(score(X[te]), dtype=np.float64)
                s = np.nan_to_num(s, nan=np.nanmax(s[np.isfinite(s)], initial=0.0), posinf=1e300)
                runs.append((f.stem, m, seed, roc_auc_score(y[te], s), average_precision_score(y[te], s),
                             tf.seconds, len(te) / max(ts.seconds, 1e-9)))
                with open(args.csv, "a") as out:  # a cut-off run keeps what it measured
                    out.write(",".join(map(str, runs[-1])) + "\n")
            print(f"{f.stem} seed {seed} done", file=sys.stderr, flush=True)
    print_tables(runs)


CSV_HEADER = "dataset,method,seed,auc_roc,auc_pr,fit_s,score_rows_per_s\n"


def load_runs(paths: list[str]) -> list[tuple]:
    import pandas as pd

    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    return list(frame.itertuples(index=False, name=None))


def print_tables(runs: list[tuple]) -> None:
    order = {m: i for i, m in enumerate(dict.fromkeys(r[1] for r in runs))}
    methods = sorted(order, key=order.get)
    datasets = sorted(dict.fromkeys(r[0] for r in runs), key=lambda s: int(s.split("_")[0]))
    seeds = len({r[2] for r in runs})
    agg = defaultdict(list)
    for ds, m, _, auc, ap_, fit_s, rps in runs:
        agg[ds, m].append((auc, ap_, fit_s, rps))
    for metric, idx in (("AUC-ROC", 0), ("AUC-PR", 1)):
        rows = []
        for ds in datasets:
            rows.append([ds] + [f"{np.mean([v[idx] for v in agg[ds, m]]):.3f}±{np.std([v[idx] for v in agg[ds, m]]):.3f}"
                                for m in methods])
        means = {m: np.mean([np.mean([v[idx] for v in agg[ds, m]]) for ds in datasets]) for m in methods}
        ranks = np.mean([_ranks([np.mean([v[idx] for v in agg[ds, m]]) for m in methods]) for ds in datasets], axis=0)
        rows.append(["**mean**"] + [f"**{means[m]:.3f}**" for m in methods])
        rows.append(["mean rank"] + [f"{r:.2f}" for r in ranks])
        print(f"\n### {metric} (mean±std over {seeds} seeds)\n")
        print(table(rows, ["dataset", *methods]))
    rows = [[m, f"{sum(np.mean([v[2] for v in agg[ds, m]]) for ds in datasets):.1f}",
             f"{np.median([np.mean([v[3] for v in agg[ds, m]]) for ds in datasets]):,.0f}"] for m in methods]
    print("\n### Cost\n")
    print(table(rows, ["method", "fit s (sum over data sets, mean over seeds)", "scoring rows/s (median)"]))


def _ranks(values: list[float]) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(-np.asarray(values))


if __name__ == "__main__":
    main()
