"""The VAE decoder as a generator, judged the way the field judges it.

MNIST (the default protocol; ../shared/data/mnist): each generator trains on the 60,000
training images and draws 10,000 samples. A small classifier (benchmarks/_mnist.py, two conv
blocks, trained for two epochs on the training set, 98.2% test accuracy) gives:
  - the Fréchet distance between the samples and the training images in its 128-unit feature
    space (an "FID for MNIST"); the floor is the test set's own distance (10,000 real images
    the generators never saw);
  - the entropy of its predicted-class histogram (uniform: ln 10 = 2.303), the smallest class
    share, and its mean confidence (max class probability) on the samples;
  - the copy ratio: median pixel distance from a sample to its nearest training image, over the
    same for test images (1: as new as unseen real images; 0: copies).
References in the same table: the test set (the floor), training images drawn with replacement
(copies: a perfect distance, copy ratio 0), and a full-covariance Gaussian fit to the pixels.
Generators: the VAE (``VAEGenerator``) and the VQ-VAE with a transformer prior over its token
grids (``TokenGenerator``), each with its defaults and any ``--variants`` / ``--token-variants``.
Under each, its reconstructions of the test images: the decoder's ceiling, what samples would
score if the prior were perfect.

digits (--protocols digits): the earlier protocol on scikit-learn's 8x8 digits, with the
Fréchet distance in a PCA-16 space of 1,000 samples, held-out ELBO and IWAE bounds, 3 seeds
(the distance cannot tell a generator from copies; kept for history).

    python benchmarks/generation.py                         # MNIST; writes docs/img/generate_mnist_*.png
    python benchmarks/generation.py --generators tokens --token-variants "temperature=0.9"
    python benchmarks/generation.py --variants "prior='learned'" --epochs 10
    python benchmarks/generation.py --protocols digits
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
from _mnist import DigitClassifier, load_mnist, nearest_distances  # noqa: E402
from anomaly_images import parse_variants  # noqa: E402

from aekit import plots  # noqa: E402
from aekit.apps.generate import TokenGenerator, VAEGenerator, class_histogram_entropy, copy_ratio, frechet_distance, pca_frechet_distance  # noqa: E402
from aekit.data.images import load_images  # noqa: E402

N_SAMPLES = 1000
N_LARGE = 10_000  # a second Fréchet distance with this many samples
MNIST_EPOCHS = 15
PIXEL_SCALE = 16.0  # load_digits' pixel range is 0-16; the distances are in those units
DOCS = Path(__file__).resolve().parents[1] / "docs" / "img"


def gaussian_baseline(train: np.ndarray, test: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Samples of a full-covariance Gaussian fit to the training pixels, and its exact
    held-out negative log-likelihood (nats per image, same pixel units as the VAE)."""
    flat = train.reshape(len(train), -1).astype(np.float64)
    mean, cov = flat.mean(0), np.cov(flat, rowvar=False) + 1e-4 * np.eye(flat.shape[1])  # some pixels are constant
    samples = np.random.default_rng(seed).multivariate_normal(mean, cov, N_LARGE)
    nll = -multivariate_normal(mean, cov).logpdf(test.reshape(len(test), -1)).mean()
    return samples, float(nll)


def strips(gen: VAEGenerator | TokenGenerator, test: np.ndarray, labels: np.ndarray, pairs: list[tuple[int, int]], steps: int) -> np.ndarray:
    rows = []
    for a, b in pairs:
        first, last = test[labels == a][0], test[labels == b][0]
        rows.append(np.concatenate([first[None], gen.interpolate(first, last, steps), last[None]]))
    return np.concatenate(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocols", nargs="*", choices=["mnist", "digits"], default=["mnist"])
    ap.add_argument("--generators", nargs="*", choices=["vae", "tokens"], default=["vae", "tokens"],
                    help="MNIST: which generators to train (each with its defaults and variants)")
    ap.add_argument("--variants", nargs="*", default=[], help="VAEGenerator option sets, e.g. \"code_size=16\"")
    ap.add_argument("--token-variants", nargs="*", default=[],
                    help="MNIST: TokenGenerator option sets, e.g. \"codebook_size=128\"")
    ap.add_argument("--seeds", type=int, help="training seeds per generator (default: 1 on MNIST, 3 on digits)")
    ap.add_argument("--temperatures", type=float, nargs="*", default=[0.8, 0.9],
                    help="MNIST: token generators also sample at these prior temperatures (extra rows, same weights)")
    ap.add_argument("--refine-rows", type=int, nargs="*", default=[0, 1],
                    help="MNIST: VAEs also sample with these refine_steps (extra rows, same weights; 0: unrefined)")
    ap.add_argument("--epochs", type=int, default=MNIST_EPOCHS,
                    help="MNIST: training epochs of each VAE (token generators keep their own defaults)")
    ap.add_argument("--no-figures", action="store_true", help="do not write docs/img/generate_*.png")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if "mnist" in args.protocols:
        mnist(args, args.seeds or 1)
    if "digits" in args.protocols:
        digits(args, args.seeds or 3)


def mnist(args: argparse.Namespace, seeds: int) -> None:
    x_train, y_train, x_test, y_test = load_mnist()
    start = time.perf_counter()
    clf = DigitClassifier.train_on(x_train, y_train)
    train_feats = clf.embed(x_train)[0]
    test_feats, test_probs = clf.embed(x_test)
    accuracy = float((test_probs.argmax(1) == y_test).mean())
    print(f"classifier: test accuracy {accuracy:.4f}, trained in {time.perf_counter() - start:.0f} s",
          file=sys.stderr, flush=True)
    test_nearest = float(np.median(nearest_distances(x_train, x_test)))

    def quality(samples: np.ndarray, feats: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
        f, p = feats if feats is not None else clf.embed(samples)
        fd = frechet_distance(f, train_feats)
        hist = np.bincount(p.argmax(1), minlength=10) / len(p)
        entropy = float(-(hist[hist > 0] * np.log(hist[hist > 0])).sum())
        copies = float(np.median(nearest_distances(x_train, samples))) / test_nearest
        return [f"{fd:.2f}", f"{fd / floor:.1f}x", f"{entropy:.3f}", f"{hist.min():.3f}",
                f"{p.max(1).mean():.3f}", f"{copies:.2f}"]

    floor = frechet_distance(test_feats, train_feats)
    rng = np.random.default_rng(0)
    flat = x_train.reshape(len(x_train), -1).astype(np.float64)
    gauss = rng.multivariate_normal(flat.mean(0), np.cov(flat, rowvar=False), N_LARGE)
    rows = [["test images (the floor)", *quality(x_test, (test_feats, test_probs)), ""],
            ["training images drawn with replacement (copies)",
             *quality(x_train[rng.integers(len(x_train), size=N_LARGE)]), ""],
            ["full-cov. Gaussian on pixels, clipped",
             *quality(np.clip(gauss, 0, 1).astype(np.float32).reshape(-1, 1, 28, 28)), ""]]
    runs = []
    if "vae" in args.generators:
        runs += [("VAE", name, VAEGenerator, {"epochs": args.epochs, **kw}) for name, kw in parse_variants(args.variants).items()]
    if "tokens" in args.generators:
        runs += [("tokens", name, TokenGenerator, kw) for name, kw in parse_variants(args.token_variants).items()]
    for kind, name, cls, kw in runs:
        for seed in range(seeds):
            start = time.perf_counter()
            gen = cls(random_state=seed, verbose=1, **kw).fit(x_train)
            seconds = time.perf_counter() - start
            samples = gen.sample(N_LARGE, seed=seed)
            label = f"{name.replace('aekit', f'aekit {kind}')} (seed {seed})"
            rows.append([label, *quality(samples), f"{seconds:.0f}"])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
            # the decoder's ceiling: its reconstructions of the test images, as if the prior were perfect
            rows.append([f"{label}: reconstructions of the test images", *quality(gen.reconstruct(x_test)), ""])
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
            # the same weights sampled another way: the prior's temperature, the refiner's passes
            key, values = ("temperature", args.temperatures) if kind == "tokens" else ("refine_steps", args.refine_rows)
            kept = gen.get_params()[key]
            for v in values:
                rows.append([f"{label}: sampled with {key}={v}", *quality(gen.set_params(**{key: v}).sample(N_LARGE, seed=seed)), ""])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
            gen.set_params(**{key: kept})
            if seed == 0 and name == "aekit (default)" and not args.no_figures:
                prefix = "generate_mnist" if kind == "VAE" else "generate_mnist_tokens"
                plots.image_grid(samples[:100], DOCS / f"{prefix}_samples.png", ncols=10)
                plots.image_grid(strips(gen, x_test, y_test, [(0, 6), (1, 7), (3, 8), (4, 9), (2, 5)], 8),
                                 DOCS / f"{prefix}_interpolation.png", ncols=10)
    print(f"\n### Generation on MNIST: {N_LARGE:,} samples each against the 60,000 training images "
          f"(classifier test accuracy {accuracy:.3f})\n")
    print(table(rows, ["generator", "Fréchet distance (classifier features)", "÷ floor", "class entropy (max 2.303)",
                       "smallest class share", "mean confidence", "copy ratio", "train s"]))


def digits(args: argparse.Namespace, seeds: int) -> None:
    digits = load_images("digits")
    X, y = digits.images, digits.labels
    tr, te = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=0)
    train, test = X[tr], X[te]
    scaled = lambda a: np.asarray(a).reshape(len(a), -1) * PIXEL_SCALE  # noqa: E731

    def quality(samples: np.ndarray) -> tuple[float, float, float, float, float]:
        """FD at N_SAMPLES (mean and spread over the disjoint N_SAMPLES-chunks of ``samples``),
        FD of all of them, class entropy and copy ratio (of the first chunk)."""
        fd_of = lambda s: pca_frechet_distance(scaled(train), scaled(test), scaled(s))  # noqa: E731
        chunks = [fd_of(samples[i:i + N_SAMPLES]) for i in range(0, max(len(samples) - N_SAMPLES, 0) + 1, N_SAMPLES)]
        first = samples[:N_SAMPLES]
        return (float(np.mean(chunks)), float(np.std(chunks)), fd_of(samples),
                class_histogram_entropy(scaled(train), y[tr], scaled(first))[0], copy_ratio(train, test, first))

    fd, _, _, ent, copies = quality(train)
    rows = [["real training images (reference)", "", "", f"{fd:.1f}", "", f"{ent:.3f}", f"{copies:.2f}", ""]]
    gaussian, nll = gaussian_baseline(train, test, 0)
    references = {"training images drawn with replacement (copies)":
                  train[np.random.default_rng(0).integers(len(train), size=N_LARGE)],
                  "full-cov. Gaussian, clipped to the pixel range": np.clip(gaussian, 0, 1),
                  "full-cov. Gaussian, unclipped (not valid images)": gaussian}
    for name, samples in references.items():
        fd, spread, fd_all, ent, copies = quality(samples)
        rows.append([name, "" if "copies" in name else f"{nll:.1f} (exact)", "", f"{fd:.1f} ± {spread:.1f}",
                     f"{fd_all:.1f}", f"{ent:.3f}", f"{copies:.2f}", ""])

    for name, kw in parse_variants(args.variants).items():
        per_seed = []
        for seed in range(seeds):
            start = time.perf_counter()
            gen = VAEGenerator(random_state=seed, **kw).fit(train)
            seconds = time.perf_counter() - start
            fd, _, fd_all, ent, copies = quality(gen.sample(N_LARGE, seed=seed))
            per_seed.append((-gen.elbo(test, n_samples=10).mean(), -gen.log_likelihood_bound(test, k=100).mean(),
                             fd, fd_all, ent, copies, seconds))
            print(f"{name} seed {seed}: FD {fd:.1f}", file=sys.stderr, flush=True)
            if seed == 0 and not kw and not args.no_figures:
                plots.image_grid(gen.sample(64, seed=0), DOCS / "generate_samples.png", ncols=8)
                plots.image_grid(strips(gen, test, y[te], [(0, 6), (1, 7), (3, 8), (4, 9)], 8),
                                 DOCS / "generate_interpolation.png", ncols=10)
        m, s = np.mean(per_seed, 0), np.std(per_seed, 0)
        rows.append([name.replace("aekit", "aekit VAE"), f"{m[0]:.1f} ± {s[0]:.1f}", f"{m[1]:.1f} ± {s[1]:.1f}",
                     f"**{m[2]:.1f}** ± {s[2]:.1f}", f"{m[3]:.1f} ± {s[3]:.1f}", f"{m[4]:.3f}", f"{m[5]:.2f}",
                     f"{m[6]:.0f}"])

    print(f"\n### Generation on digits: 50/50 split, {seeds} training seeds, {N_LARGE:,} samples each\n")
    print(table(rows, ["generator", "held-out -ELBO (nats)", "held-out -IWAE k=100 (nats)",
                       f"Fréchet distance, PCA-16, {N_SAMPLES:,} samples (mean of 10 sets)",
                       f"same, all {N_LARGE:,} samples",
                       "class entropy (max 2.303)", "copy ratio", "train s"]))


if __name__ == "__main__":
    main()
