"""Shapes of real tables that the ADBench sets lack: categorical columns, repeated rows and
unrelated columns.

1. Categorical columns: does a column of many categories swamp the number columns, and are
the anomalies that categories carry still found? There are no categorical columns in the
ADBench sets, so the tables are synthetic, each built to ask one question. Every table has 8
correlated number columns (3 hidden factors, noise 0.2); a category's frequency follows
Zipf's law (exponent 1.1), as names, places and products do, unless said otherwise. 4,000 normal training rows, 2,000 test rows of which 100
are anomalies; mean AUC-ROC over the seeds.

  irrelevant K    a column of K categories unrelated to the numbers; the anomalies lie in
                  the number columns (each of their 8 values moved by 1.5 x a normal draw)
  informative K   each category shifts the numbers its own way; an anomaly carries the
                  label of another category (its numbers are those of its own)
  unseen value    3 categories (70/20/10%); an anomaly has a value never seen in training
  broken pairing  two columns of 6 categories that always go together in training; an
                  anomaly pairs them otherwise
  6 irrelevant    six columns of 1,000 categories unrelated to the numbers, which
                  hold the anomalies: several wide columns beside the numbers
  3 informative   three columns of 300 categories, each shifting the numbers; an anomaly
                  carries another category in one of them

Methods: aekit's default; ``aekit, weights by feature`` is the same detector with each
one-hot feature weighted on its own, as before 0.9.9 (a category's weight the inverse of its
own typical error); IsolationForest and kNN (the 5th nearest training row; PyOD's method)
on what a user of theirs would feed them: the number columns standardised beside the
one-hot columns.

2. Repeated rows: every row is one of P patterns (the same 8 correlated columns), each
repeated about 4,000 / P times, as in quantised sensors or traffic logs; an anomaly is a
pattern moved by 0.5 x a normal draw in every column. Besides AUC-ROC, the highest and the
median score of the normal test rows: their unit is the held-out rows' median, which is
about 0 where every held-out row repeats a training row.

3. An extra number column unrelated to the anomalies (which lie in the 8 number columns, as
in "irrelevant" above): heavy-tailed (lognormal with sigma 2, Pareto with shape 1.5), binary
flags that are rarely 1, or counts that are mostly 0. aekit scales each column by the
tighter of its IQR and standard deviation (a robust scale, chosen on ADBench, where anomalies
often lie in heavy tails); kNN and IsolationForest get the columns standardised. ``aekit, the
docs' fix`` does what docs/anomaly/tables.md advises: it log-transforms the columns that
aekit's note at fit names as heavy-tailed, and names the flags categorical (the same scores
where neither applies). Logging every such column by default was measured on ADBench and
refused (BENCHMARKS.md).

    python benchmarks/anomaly_table_shapes.py [--seeds 2]      # 4 min on 2 cores
"""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

from aekit import AnomalyDetector  # noqa: E402

TRAIN, TEST, ANOMALIES, NUMBERS = 4000, 2000, 100, 8
Maker = Callable[[int, int, int], tuple[pd.DataFrame, np.ndarray]]


class WeightsByFeature(AnomalyDetector):
    """The default detector with each one-hot feature weighted on its own (before 0.9.9)."""

    def _feature_columns(self) -> list[str] | None:
        return None


def numbers(n: int, rng: np.random.Generator) -> np.ndarray:
    """``[n, NUMBERS]`` correlated normal rows (the same factor loadings in every table)."""
    loadings = np.random.default_rng(42).normal(size=(3, NUMBERS))
    return rng.normal(size=(n, 3)) @ loadings + 0.2 * rng.normal(size=(n, NUMBERS))


def zipf_choice(k: int, n: int, rng: np.random.Generator, exponent: float = 1.1) -> np.ndarray:
    p = 1 / np.arange(1, k + 1) ** exponent
    return rng.choice(k, n, p=p / p.sum())


def frame(x: np.ndarray, **categorical: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    for name, codes in categorical.items():
        df[name] = [f"{name[0]}{c}" for c in codes]
    return df


def anomaly_rows(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.zeros(n, dtype=int)
    rows = rng.choice(n, count, replace=False)
    y[rows] = 1
    return rows, y


def moved_numbers(n: int, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Number rows of which ``count`` anomalies, each value moved by 1.5 x a normal draw."""
    x = numbers(n, rng)
    rows, y = anomaly_rows(n, count, rng)
    x[rows] += 1.5 * rng.normal(size=(count, NUMBERS))
    return x, y


def irrelevant(k: int) -> Maker:
    def make(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        x, y = moved_numbers(n, count, rng)
        return frame(x, city=zipf_choice(k, n, rng)), y
    return make


def informative(k: int, exponent: float) -> Maker:
    def make(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        shifts = 1.5 * np.random.default_rng(7).normal(size=(k, NUMBERS))
        codes = zipf_choice(k, n, rng, exponent)
        x = numbers(n, rng) + shifts[codes]
        rows, y = anomaly_rows(n, count, rng)
        codes[rows] = (codes[rows] + 1 + rng.integers(0, k - 1, count)) % k  # another category's label
        return frame(x, city=codes), y
    return make


def unseen_value(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.choice(3, n, p=[0.7, 0.2, 0.1])
    rows, y = anomaly_rows(n, count, rng)
    codes[rows] = 3
    return frame(numbers(n, rng), proto=codes), y


def broken_pairing(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, n)
    b = a.copy()
    rows, y = anomaly_rows(n, count, rng)
    b[rows] = (a[rows] + 1 + rng.integers(0, 5, count)) % 6
    return frame(numbers(n, rng), service=a, port=b), y


def several_irrelevant(columns: int, k: int) -> Maker:
    def make(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        x, y = moved_numbers(n, count, rng)
        return frame(x, **{f"c{j}": zipf_choice(k, n, rng) for j in range(columns)}), y
    return make


def several_informative(columns: int, k: int) -> Maker:
    """``columns`` columns of ``k`` categories, each shifting the numbers its own way (their
    shifts shrunk by the square root of the columns, so the numbers keep their spread); an
    anomaly carries another category in one of them."""
    def make(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = numbers(n, rng)
        rows, y = anomaly_rows(n, count, rng)
        columns_of = {}
        for j in range(columns):
            shifts = 1.5 * np.random.default_rng(7 + j).normal(size=(k, NUMBERS)) / np.sqrt(columns)
            codes = zipf_choice(k, n, rng)
            x += shifts[codes]
            mine = rows[j::columns]
            codes[mine] = (codes[mine] + 1 + rng.integers(0, k - 1, len(mine))) % k
            columns_of[f"i{j}"] = codes
        return frame(x, **columns_of), y
    return make


CASES: dict[str, Maker] = {
    "irrelevant, 50 categories": irrelevant(50),
    "irrelevant, 500 categories": irrelevant(500),
    "irrelevant, 2,000 categories": irrelevant(2000),
    "informative, 20 categories (uniform)": informative(20, 0.0),
    "informative, 50 categories": informative(50, 1.1),
    "informative, 200 categories": informative(200, 1.1),
    "unseen value, 3 categories": unseen_value,
    "broken pairing of two columns": broken_pairing,
    "6 irrelevant columns of 1,000 categories": several_irrelevant(6, 1000),
    "3 informative columns of 300 categories": several_informative(3, 300),
}


def one_hot(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The number columns standardised on ``train`` beside each categorical column's one-hot
    columns (a test value never seen in training: all zeros)."""
    num = [c for c in train.columns if c.startswith("x")]
    mean, std = train[num].mean(), train[num].std()
    cats = [c for c in train.columns if c not in num]
    if not cats:
        return ((train - mean) / std).to_numpy(), ((test - mean) / std).to_numpy()
    both = pd.get_dummies(pd.concat([train[cats], test[cats]]), columns=cats, dtype=float)
    both = both[[c for c in both.columns if both.iloc[:len(train)][c].any()]]  # training categories only
    parts = [np.hstack([((d[num] - mean) / std).to_numpy(), both.iloc[s].to_numpy()])
             for d, s in ((train, slice(0, len(train))), (test, slice(len(train), None)))]
    return parts[0], parts[1]


def peer_scores(name: str, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
    a, b = one_hot(train, test)
    if name == "IsolationForest":
        return -IsolationForest(random_state=seed).fit(a).score_samples(b)
    return NearestNeighbors(n_neighbors=5).fit(a).kneighbors(b)[0][:, -1]


METHODS = ["aekit", "aekit, weights by feature", "IsolationForest", "kNN"]
PATTERNS = (20, 200, 2000)


def repeated(patterns: int) -> Maker:
    def make(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        shapes = numbers(patterns, np.random.default_rng(5))  # the same patterns in training and test
        x = shapes[rng.integers(0, patterns, n)]
        rows, y = anomaly_rows(n, count, rng)
        x[rows] += 0.5 * rng.normal(size=(count, NUMBERS))
        return frame(x), y
    return make


def extra_column(kind: str) -> Maker:
    def make(n: int, count: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
        rng = np.random.default_rng(seed)
        x, y = moved_numbers(n, count, rng)
        df = frame(x)
        if kind == "lognormal, sigma 2":
            df["amount"] = rng.lognormal(3, 2, n)
        elif kind == "Pareto, shape 1.5":
            df["amount"] = rng.pareto(1.5, n)
        elif kind == "5 flags, each 1 in 1% of rows":
            for j in range(5):
                df[f"flag{j}"] = (rng.random(n) < 0.01).astype(float)
        elif kind == "counts, 0 in 90% of rows":
            df["count"] = np.where(rng.random(n) < 0.9, 0, rng.poisson(30, n))
        return df, y
    return make


EXTRA = ("none", "lognormal, sigma 2", "Pareto, shape 1.5", "5 flags, each 1 in 1% of rows", "counts, 0 in 90% of rows")


def extra_columns(seeds: int) -> list[list[str]]:
    rows = []
    for kind in EXTRA:
        make = extra_column(kind)
        aucs: dict[str, list[float]] = {m: [] for m in ("aekit", "aekit, the docs' fix", "IsolationForest", "kNN")}
        for seed in range(seeds):
            train, _ = make(TRAIN, 0, 100 + seed)
            test, y = make(TEST, ANOMALIES, 200 + seed)
            detector = AnomalyDetector(random_state=seed, verbose=0).fit(train)
            aucs["aekit"].append(roc_auc_score(y, detector.decision_function(test)))
            fix = {}
            if detector.preprocessor_.heavy_tailed_:  # the columns its note names, logged
                fix = {"log_columns": detector.preprocessor_.heavy_tailed_}
            elif kind.startswith("5 flags"):
                fix = {"categorical": [c for c in train.columns if c.startswith("flag")]}
            if fix:
                detector = AnomalyDetector(random_state=seed, verbose=0, **fix).fit(train)
            aucs["aekit, the docs' fix"].append(roc_auc_score(y, detector.decision_function(test)))
            for peer in ("IsolationForest", "kNN"):
                aucs[peer].append(roc_auc_score(y, peer_scores(peer, train, test, seed)))
        rows.append([kind] + [f"{np.mean(v):.3f}" for v in aucs.values()])
        print(f"{kind} done", file=sys.stderr, flush=True)
    return rows


def repeated_rows(seeds: int) -> list[list[str]]:
    rows = []
    for patterns in PATTERNS:
        make = repeated(patterns)
        auc, top, median, knn = [], [], [], []
        for seed in range(seeds):
            train, _ = make(TRAIN, 0, 100 + seed)
            test, y = make(TEST, ANOMALIES, 200 + seed)
            scores = AnomalyDetector(random_state=seed, verbose=0).fit(train).decision_function(test)
            auc.append(roc_auc_score(y, scores))
            top.append(scores[y == 0].max())
            median.append(np.median(scores[y == 0]))
            knn.append(roc_auc_score(y, peer_scores("kNN", train, test, seed)))
        rows.append([f"{patterns:,} patterns", f"{np.mean(auc):.3f}", f"{np.mean(top):,.1f}", f"{np.mean(median):.2f}",
                     f"{np.mean(knn):.3f}"])
        print(f"{patterns} patterns done", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for case, make in CASES.items():
        aucs: dict[str, list[float]] = {m: [] for m in METHODS}
        for seed in range(args.seeds):
            train, _ = make(TRAIN, 0, 100 + seed)
            test, y = make(TEST, ANOMALIES, 200 + seed)
            for method in METHODS:
                if method.startswith("aekit"):
                    cls = AnomalyDetector if method == "aekit" else WeightsByFeature
                    scores = cls(random_state=seed, verbose=0).fit(train).decision_function(test)
                else:
                    scores = peer_scores(method, train, test, seed)
                aucs[method].append(roc_auc_score(y, scores))
        rows.append([case] + [f"{np.mean(aucs[m]):.3f}" for m in METHODS])
        print(f"{case} done", file=sys.stderr, flush=True)
    rows.append(["mean"] + [f"{np.mean([float(r[i]) for r in rows]):.3f}" for i in range(1, len(METHODS) + 1)])
    print(f"\nCategorical columns: mean AUC-ROC over {args.seeds} seeds (synthetic tables; see the docstring)\n")
    print(table(rows, ["table"] + METHODS))
    print(f"\nRepeated rows: means over {args.seeds} seeds\n")
    print(table(repeated_rows(args.seeds), ["table", "aekit AUC-ROC", "aekit: highest normal score",
                                            "aekit: median normal score", "kNN AUC-ROC"]))
    print(f"\nAn extra number column, unrelated to the anomalies: mean AUC-ROC over {args.seeds} seeds\n")
    print(table(extra_columns(args.seeds), ["extra column", "aekit", "aekit, the docs' fix", "IsolationForest",
                                            "kNN"]))


if __name__ == "__main__":
    main()
