"""Image anomaly detection, two protocols, peers side by side in one run.

1. One-class digits (scikit-learn load_digits): for each digit d, train on d's images from a
   stratified 50% split; test on the other half of every class (d normal, the rest anomalies).
2. Faces vs non-faces (scikit-image lfw_subset, 25x25): train on 60 faces; test on the other
   40 faces plus the 100 non-faces; 3 seeds.

Peers on raw pixels: PCA reconstruction error, IsolationForest, OneClassSVM.

    python benchmarks/anomaly_images.py
    python benchmarks/anomaly_images.py --variants "feature_weighting='none'" "latent_weight=0"
"""
from __future__ import annotations

import argparse
import ast
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.svm import OneClassSVM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="*", default=[], help="aekit option sets, e.g. \"latent_weight=0\"")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of the faces protocol")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    variants = parse_variants(args.variants)

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

    lfw = load_images("lfw_subset")
    faces: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(100)
        train, test = lfw.images[order[:60]], np.concatenate([lfw.images[order[60:]], lfw.images[100:]])
        labels = np.r_[np.zeros(40, int), np.ones(100, int)]
        scores = {**aekit_scores(variants, train, test, seed), **peers(train, test, seed)}
        for name, s in scores.items():
            faces.setdefault(name, []).append(roc_auc_score(labels, s))
        print(f"faces seed {seed} done", file=sys.stderr, flush=True)
    rows = [[name, *(f"{v:.3f}" for v in aucs), f"**{np.mean(aucs):.3f}** ± {np.std(aucs):.3f}"]
            for name, aucs in faces.items()]
    print(f"\n### Faces vs non-faces (lfw_subset): AUC-ROC, {args.seeds} seeds\n")
    print(table(rows, ["method", *(f"seed {s}" for s in range(args.seeds)), "mean ± std"]))


if __name__ == "__main__":
    main()
