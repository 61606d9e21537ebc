"""The VAE decoder as a generator, on scikit-learn's digits (50/50 stratified split, seeded).

For each generator, in one run:
  - held-out negative ELBO and the importance-weighted bound (IWAE, k=100), nats per image
    (Gaussian likelihoods are densities on pixels in [0, 1], so these can be negative);
  - the Fréchet distance between 1,000 samples and the held-out images in a PCA-16 space fit
    on the training half, in the digits' own pixel units (0-16);
  - the entropy of the predicted-class histogram of the 1,000 samples under a logistic
    regression trained on the real training half (uniform over 10 digits: ln 10 = 2.303).
References in the same table: the real training images themselves, and a full-covariance
Gaussian fit to the training pixels (its samples clipped to the pixel range, and unclipped).

    python benchmarks/generation.py                  # writes docs/img/generate_*.png too
    python benchmarks/generation.py --variants "prior_components=0" "likelihood='bernoulli'"
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import multivariate_normal
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from anomaly_images import parse_variants  # noqa: E402

from aekit import plots  # noqa: E402
from aekit.apps.generate import VAEGenerator, class_histogram_entropy, pca_frechet_distance  # noqa: E402
from aekit.data.images import load_images  # noqa: E402

N_SAMPLES = 1000
PIXEL_SCALE = 16.0  # load_digits' pixel range is 0-16; the distances are in those units
DOCS = Path(__file__).resolve().parents[1] / "docs" / "img"


def gaussian_baseline(train: np.ndarray, test: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Samples of a full-covariance Gaussian fit to the training pixels, and its exact
    held-out negative log-likelihood (nats per image, same pixel units as the VAE)."""
    flat = train.reshape(len(train), -1).astype(np.float64)
    mean, cov = flat.mean(0), np.cov(flat, rowvar=False) + 1e-4 * np.eye(flat.shape[1])  # some pixels are constant
    samples = np.random.default_rng(seed).multivariate_normal(mean, cov, N_SAMPLES)
    nll = -multivariate_normal(mean, cov).logpdf(test.reshape(len(test), -1)).mean()
    return samples, float(nll)


def strips(gen: VAEGenerator, test: np.ndarray, labels: np.ndarray, pairs: list[tuple[int, int]], steps: int) -> np.ndarray:
    rows = []
    for a, b in pairs:
        first, last = test[labels == a][0], test[labels == b][0]
        rows.append(np.concatenate([first[None], gen.interpolate(first, last, steps), last[None]]))
    return np.concatenate(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="*", default=[], help="VAEGenerator option sets, e.g. \"code_size=16\"")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per generator")
    ap.add_argument("--no-figures", action="store_true", help="do not write docs/img/generate_*.png")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    digits = load_images("digits")
    X, y = digits.images, digits.labels
    tr, te = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    train, test = X[tr], X[te]
    scaled = lambda a: np.asarray(a).reshape(len(a), -1) * PIXEL_SCALE  # noqa: E731

    def quality(samples: np.ndarray) -> tuple[float, float]:
        fd = pca_frechet_distance(scaled(train), scaled(test), scaled(samples))
        return fd, class_histogram_entropy(scaled(train), y[tr], scaled(samples))[0]

    fd, ent = quality(train)
    rows = [["real training images (reference)", "", "", f"{fd:.1f}", f"{ent:.3f}", ""]]
    samples, nll = gaussian_baseline(train, test, 0)
    for name, s in (("full-cov. Gaussian, clipped to the pixel range", np.clip(samples, 0, 1)),
                    ("full-cov. Gaussian, unclipped (not valid images)", samples)):
        fd, ent = quality(s)
        rows.append([name, f"{nll:.1f} (exact)", "", f"{fd:.1f}", f"{ent:.3f}", ""])

    for name, kw in parse_variants(args.variants).items():
        per_seed = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            gen = VAEGenerator(random_state=seed, **kw).fit(train)
            seconds = time.perf_counter() - start
            fd, ent = quality(gen.sample(N_SAMPLES, seed=seed))
            per_seed.append((-gen.elbo(test, n_samples=10).mean(), -gen.log_likelihood_bound(test, k=100).mean(),
                             fd, ent, seconds))
            print(f"{name} seed {seed}: FD {fd:.1f}", file=sys.stderr, flush=True)
            if seed == 0 and not kw and not args.no_figures:
                plots.image_grid(gen.sample(64, seed=0), DOCS / "generate_samples.png", ncols=8)
                plots.image_grid(strips(gen, test, y[te], [(0, 6), (1, 7), (3, 8), (4, 9)], 8),
                                 DOCS / "generate_interpolation.png", ncols=10)
        m, s = np.mean(per_seed, 0), np.std(per_seed, 0)
        rows.append([name.replace("aekit", "aekit VAE"), f"{m[0]:.1f} ± {s[0]:.1f}", f"{m[1]:.1f} ± {s[1]:.1f}",
                     f"**{m[2]:.1f}** ± {s[2]:.1f}", f"{m[3]:.3f}", f"{m[4]:.0f}"])

    print(f"\n### Generation on digits: 50/50 split, {args.seeds} training seeds, {N_SAMPLES} samples\n")
    print(table(rows, ["generator", "held-out -ELBO (nats)", "held-out -IWAE k=100 (nats)",
                       "Fréchet distance, PCA-16", "class entropy (max 2.303)", "train s"]))


if __name__ == "__main__":
    main()
