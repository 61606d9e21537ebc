"""Image anomaly detection, three protocols, peers side by side in one run.

1. One-class MNIST (the standard protocol, ../shared/data/mnist): for each digit d, train on
   the training images of d (about 6,000); score the whole test set (10,000; d normal, the
   nine others anomalies); AUC-ROC per digit and the mean. aekit runs through the CLI as a
   user would (`aekit anomaly train d.npz`, `aekit anomaly score test.npz`), timed.
2. One-class digits (scikit-learn load_digits, 8x8): for each digit d, train on d's images
   from a stratified 50% split; test on the other half of every class.
3. Faces vs non-faces (scikit-image lfw_subset, 25x25): train on 60 faces; test on the other
   40 faces plus the 100 non-faces; 3 seeds.

Peers on raw pixels: PCA reconstruction error, IsolationForest, OneClassSVM.

    python benchmarks/anomaly_images.py                        # all three
    python benchmarks/anomaly_images.py --protocols digits faces --variants "latent_weight=0"
    python benchmarks/anomaly_images.py --protocols mnist --digits 3 5 8
"""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.svm import OneClassSVM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, table  # noqa: E402

from aekit.apps.anomaly import ImageAnomalyDetector  # noqa: E402
from aekit.data.images import load_images  # noqa: E402


def pca_error(train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    pca = PCA(n_components=0.9, random_state=seed).fit(train)
    return ((pca.inverse_transform(pca.transform(test)) - test) ** 2).sum(1)


def peers(train: np.ndarray, test: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    a, b = train.reshape(len(train), -1), test.reshape(len(test), -1)
    return {
        "PCA recon. error": pca_error(a, b, seed),
        "IsolationForest": -IsolationForest(random_state=seed).fit(a).score_samples(b),
        "OneClassSVM": -OneClassSVM(gamma="scale").fit(a).score_samples(b),
    }


def aekit_scores(variants: dict[str, dict], train: np.ndarray, test: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    return {name: ImageAnomalyDetector(random_state=seed, **kw).fit(train).decision_function(test)
            for name, kw in variants.items()}


def parse_variants(specs: list[str]) -> dict[str, dict]:
    out = {"aekit (default)": {}}
    for spec in specs:
        kw = {}
        for item in filter(None, spec.split(",")):
            key, _, value = item.partition("=")
            kw[key.strip()] = ast.literal_eval(value)
        out[f"aekit {spec}"] = kw
    return out


def aekit_cli(args: list[str]) -> float:
    """Run ``aekit ARGS`` in a fresh process (as a user would); its wall-clock seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aekit", *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def mnist(path: Path, digits: list[int]) -> None:
    with np.load(path, allow_pickle=False) as f:
        x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    flat_test = x_test.reshape(len(x_test), -1) / 255.0
    aucs: dict[str, list[float]] = {}
    seconds: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        test_file = Path(tmp) / "test.npz"
        np.savez(test_file, images=x_test)
        for d in digits:
            labels = (y_test != d).astype(int)
            train_file, model, scores = Path(tmp) / f"train{d}.npz", Path(tmp) / f"model{d}", Path(tmp) / f"s{d}.csv"
            np.savez(train_file, images=x_train[y_train == d])
            fit_s = aekit_cli(["anomaly", "train", str(train_file), "--out", str(model)])
            score_s = aekit_cli(["anomaly", "score", str(test_file), "--model", str(model), "--out", str(scores),
                                 "--heatmaps", "0"])
            seconds.append((fit_s, score_s))
            result = {"aekit (default, CLI)": pd.read_csv(scores)["score"].to_numpy(),
                      **peers(x_train[y_train == d] / 255.0, flat_test, 0)}
            for name, s in result.items():
                aucs.setdefault(name, []).append(roc_auc_score(labels, s))
            print(f"MNIST digit {d}: aekit {aucs['aekit (default, CLI)'][-1]:.4f}, train {fit_s:.0f} s, "
                  f"score {score_s:.0f} s", file=sys.stderr, flush=True)
    rows = [[name, *(f"{v:.3f}" for v in a), f"**{np.mean(a):.4f}**"] for name, a in aucs.items()]
    print(f"\n### One-class MNIST: AUC-ROC per normal digit (train: that digit's training images; test: all "
          f"{len(x_test):,} test images)\n")
    print(table(rows, ["method", *map(str, digits), "mean"]))
    fit_s, score_s = np.mean(seconds, 0)
    print(f"\naekit CLI per digit, mean: train {fit_s:.0f} s, score {score_s:.0f} s, "
          f"together {fit_s + score_s:.0f} s (max {max(a + b for a, b in seconds):.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocols", nargs="*", choices=["mnist", "digits", "faces"], default=["mnist", "digits", "faces"])
    ap.add_argument("--mnist", type=Path, default=SHARED / "mnist" / "mnist.npz", help="MNIST .npz")
    ap.add_argument("--digits", type=int, nargs="*", default=list(range(10)), help="MNIST normal digits to run")
    ap.add_argument("--variants", nargs="*", default=[], help="aekit option sets, e.g. \"latent_weight=0\"")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the faces protocol")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    variants = parse_variants(args.variants)
    if "mnist" in args.protocols:
        mnist(args.mnist, args.digits)
    if "digits" in args.protocols:
        small_digits(variants)
    if "faces" in args.protocols:
        faces(variants, args.seeds)


def small_digits(variants: dict[str, dict]) -> None:
    digits = load_images("digits")
    X, y = digits.images, digits.labels
    tr, te = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    per_class: dict[str, list[float]] = {}
    for d in range(10):
        train = X[tr][y[tr] == d]
        labels = (y[te] != d).astype(int)
        scores = {**aekit_scores(variants, train, X[te], 0), **peers(train, X[te], 0)}
        for name, s in scores.items():
            per_class.setdefault(name, []).append(roc_auc_score(labels, s))
        print(f"digit {d} done", file=sys.stderr, flush=True)
    rows = [[name, *(f"{v:.3f}" for v in aucs), f"**{np.mean(aucs):.3f}**"] for name, aucs in per_class.items()]
    print("\n### One-class digits: AUC-ROC per normal digit (50% split, seed 0)\n")
    print(table(rows, ["method", *map(str, range(10)), "mean"]))



def faces(variants: dict[str, dict], seeds: int) -> None:
    lfw = load_images("lfw_subset")
    faces: dict[str, list[float]] = {}
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(100)
        train, test = lfw.images[order[:60]], np.concatenate([lfw.images[order[60:]], lfw.images[100:]])
        labels = np.r_[np.zeros(40, int), np.ones(100, int)]
        scores = {**aekit_scores(variants, train, test, seed), **peers(train, test, seed)}
        for name, s in scores.items():
            faces.setdefault(name, []).append(roc_auc_score(labels, s))
        print(f"faces seed {seed} done", file=sys.stderr, flush=True)
    rows = [[name, *(f"{v:.3f}" for v in aucs), f"**{np.mean(aucs):.3f}** ± {np.std(aucs):.3f}"]
            for name, aucs in faces.items()]
    print(f"\n### Faces vs non-faces (lfw_subset): AUC-ROC, {seeds} seeds\n")
    print(table(rows, ["method", *(f"seed {s}" for s in range(seeds)), "mean ± std"]))


if __name__ == "__main__":
    main()
