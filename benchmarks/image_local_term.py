"""How the image detector's local term was chosen, on one-class MNIST (the digits chosen on:
5 and 8 by default). One default ImageAnomalyDetector per digit, trained on 85% of that
digit's training images; every term in units of its mean on the other 15% (held-out normal
images), scored on the 10,000 test images.

  recon (plain)      relative squared pixel error (error_blur=0)
  recon (default)    the same after the size-relative mean filter (error_blur="auto")
  code               Mahalanobis distance of the code to the training codes
  local: L2 pixels   mean Euclidean distance to the 5 nearest training images
  local: cos pixels  mean cosine distance to the 5 nearest training images
  local: cos blurred the same after the size-relative Gaussian blur
  local (default)    the same, each training image under its best one-pixel shift
and the sums recon + code + w x local for the weights tried.

    python benchmarks/image_local_term.py [--digits 5 8]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from _mnist import load_mnist  # noqa: E402

from aekit.apps.anomaly import ImageAnomalyDetector, neighbours  # noqa: E402

WEIGHTS = (1, 2, 4, 8)


def knn(reference: torch.Tensor, queries: torch.Tensor, cosine: bool, k: int = 5) -> torch.Tensor:
    a, b = reference.flatten(1), queries.flatten(1)
    if cosine:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        return torch.cat([1 - (q @ a.T).topk(k).values.mean(1) for q in b.split(1024)])
    return torch.cat([torch.cdist(q, a).topk(k, largest=False).values.mean(1) for q in b.split(1024)])


@torch.inference_mode()
def terms(det: ImageAnomalyDetector, fit: torch.Tensor, Z: torch.Tensor) -> dict[str, torch.Tensor]:
    model, (mean, precision) = det.models_[0], det.latent_stats_[0]
    code = model.encode(Z)
    residual = model.decode(code) - Z
    var = Z.flatten(1).var(1, unbiased=False) + 1e-3
    blurred = det._reconstruction_errors(model, Z)[0]
    diff = code - mean
    return {
        "recon (plain)": residual.pow(2).flatten(1).mean(1) / var,
        "recon (default)": blurred.flatten(1).mean(1) / var,
        "code": ((diff @ precision) * diff).sum(1),
        "local: L2 pixels": knn(fit, Z, cosine=False),
        "local: cos pixels": knn(fit, Z, cosine=True),
        "local: cos blurred": knn(neighbours.to_space(fit, 28, 28), neighbours.to_space(Z, 28, 28), cosine=True),
        "local (default)": det._neighbour_parts(Z, det.local_references_).sum(1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digits", type=int, nargs="*", default=[5, 8])
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    x_train, y_train, x_test, y_test = load_mnist()
    test = torch.from_numpy(x_test)
    aucs: dict[str, list[float]] = {}
    for d in args.digits:
        x = x_train[y_train == d]
        order = np.random.default_rng(0).permutation(len(x))
        held, fit = torch.from_numpy(x[order[:len(x) // 7]]), torch.from_numpy(x[order[len(x) // 7:]])
        det = ImageAnomalyDetector(n_estimators=1, validation_fraction=0.0).fit(fit.numpy())
        units = {k: float(v.mean()) for k, v in terms(det, fit, held).items()}
        scored = {k: v / units[k] for k, v in terms(det, fit, test).items()}
        autoencoder = scored["recon (default)"] + scored["code"]
        scored["recon + code"] = autoencoder
        for w in WEIGHTS:
            scored[f"recon + code + {w} x local"] = autoencoder + w * scored["local (default)"]
        labels = (y_test != d).astype(int)
        for name, s in scored.items():
            aucs.setdefault(name, []).append(roc_auc_score(labels, s.numpy()))
        print(f"digit {d} done", file=sys.stderr, flush=True)
    rows = [[name, *(f"{v:.4f}" for v in a), f"**{np.mean(a):.4f}**"] for name, a in aucs.items()]
    print(f"\n### The image score's terms on one-class MNIST, digits {args.digits}: AUC-ROC (one member)\n")
    print(table(rows, ["term", *map(str, args.digits), "mean"]))


if __name__ == "__main__":
    main()
