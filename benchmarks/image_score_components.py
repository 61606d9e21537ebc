"""Which image anomaly score? Each candidate term, alone and summed, on both image protocols
of anomaly_images.py (one-class digits, seed 0; faces vs non-faces, 3 seeds), computed from
the same trained autoencoders (the default ImageAnomalyDetector's networks, 3 members).

Terms, each in units of its mean on the training images (so about 1 for normal images):
  abs error   mean squared pixel error (feature_weighting="global")
  rel error   the same divided by the image's own pixel variance + 1e-3 ("relative")
  ssim error  1 - local SSIM (3x3 windows on 8x8 images, 7x7 on larger ones)
  code maha   Mahalanobis distance of the code to the training codes (Ledoit-Wolf)
  hidden maha the same on the encoder's hidden layer
  code knn    mean distance to the 5 nearest training codes
  code cycle  distance between the code of x and the code of its reconstruction

    python benchmarks/image_score_components.py
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402

from aekit.apps.anomaly import ImageAnomalyDetector  # noqa: E402
from aekit.apps.anomaly.base import VARIANCE_FLOOR  # noqa: E402
from aekit.data.images import load_images  # noqa: E402

SUMS = [("abs error", "code maha"), ("rel error", "code maha"), ("ssim error", "code maha"),
        ("abs error", "hidden maha"), ("rel error", "hidden maha"), ("ssim error", "hidden maha")]


def mahalanobis(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    lw = LedoitWolf().fit(train)
    d = test - lw.location_
    return np.einsum("ij,jk,ik->i", d, lw.precision_, d)


def knn_distance(train: np.ndarray, test: np.ndarray, k: int = 5, skip_self: bool = False) -> np.ndarray:
    dist = np.sort(torch.cdist(torch.from_numpy(test), torch.from_numpy(train)).numpy(), axis=1)
    return dist[:, int(skip_self):k + int(skip_self)].mean(1)


def ssim_error(x: torch.Tensor, r: torch.Tensor) -> np.ndarray:
    k = 3 if x.shape[-1] < 16 else 7
    pool = lambda a: F.avg_pool2d(a, k, 1, k // 2, count_include_pad=False)  # noqa: E731
    mx, my = pool(x), pool(r)
    sx, sy, sxy = pool(x * x) - mx ** 2, pool(r * r) - my ** 2, pool(x * r) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = (2 * mx * my + c1) * (2 * sxy + c2) / ((mx ** 2 + my ** 2 + c1) * (sx + sy + c2))
    return (1 - ssim).flatten(1).mean(1).numpy()


def terms(train: np.ndarray, test: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    det = ImageAnomalyDetector(random_state=seed).fit(train)
    out: dict[str, list[np.ndarray]] = {}
    for model in det.models_:
        for name, v in member_terms(model, train, test).items():
            out.setdefault(name, []).append(v)
    means = {name: np.mean(v, 0) for name, v in out.items()}
    means.update({f"{a} + {b}": means[a] + means[b] for a, b in SUMS})
    return means


@torch.inference_mode()
def member_terms(model: torch.nn.Module, train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
    parts = {}
    for name, x in (("train", torch.from_numpy(train)), ("test", torch.from_numpy(test))):
        hidden = model.encoder(x)
        code = model.bottleneck(hidden).code
        rec = model.decode(code)
        mse = (rec - x).pow(2).flatten(1).mean(1)
        parts[name] = {
            "abs error": mse.numpy(),
            "rel error": (mse / x.flatten(1).var(1, unbiased=False).add(VARIANCE_FLOOR)).numpy(),
            "ssim error": ssim_error(x, rec),
            "hidden": hidden.double().numpy(), "code": code.double().numpy(),
            "code cycle": (model.encode(rec) - code).pow(2).sum(1).numpy(),
        }
    tr, te = parts["train"], parts["test"]
    member = {name: te[name] / tr[name].mean() for name in ("abs error", "rel error", "ssim error", "code cycle")}
    for space in ("code", "hidden"):
        member[f"{space} maha"] = mahalanobis(tr[space], te[space]) / tr[space].shape[1]
    member["code knn"] = knn_distance(tr["code"], te["code"]) / knn_distance(tr["code"], tr["code"], skip_self=True).mean()
    return member


def main() -> None:
    warnings.filterwarnings("ignore")
    aucs: dict[str, dict[str, list[float]]] = {"digits": {}, "faces": {}}
    digits = load_images("digits")
    X, y = digits.images, digits.labels
    tr, te = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    for d in range(10):
        for name, s in terms(X[tr][y[tr] == d], X[te], 0).items():
            aucs["digits"].setdefault(name, []).append(roc_auc_score(y[te] != d, s))
        print(f"digit {d} done", file=sys.stderr, flush=True)
    lfw = load_images("lfw_subset")
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(100)
        train, test = lfw.images[order[:60]], np.concatenate([lfw.images[order[60:]], lfw.images[100:]])
        for name, s in terms(train, test, seed).items():
            aucs["faces"].setdefault(name, []).append(roc_auc_score(np.r_[np.zeros(40), np.ones(100)], s))
        print(f"faces seed {seed} done", file=sys.stderr, flush=True)
    rows = [[name, f"{np.mean(aucs['digits'][name]):.3f}", f"{np.mean(v):.3f}",
             " ".join(f"{a:.3f}" for a in v)] for name, v in aucs["faces"].items()]
    print("\n### Image anomaly score terms: AUC-ROC\n")
    print(table(rows, ["score", "one-class digits (mean of 10)", "faces vs non-faces (mean of 3)", "faces per seed"]))


if __name__ == "__main__":
    main()
