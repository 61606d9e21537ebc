"""Discrete codes on scikit-learn's digits (and scikit-image's lfw_subset), three tables:

1. Unsupervised classification: Hungarian-matched accuracy, NMI and ARI on all 1,797 digits
   (labels used only to score) over --seeds seeds: k-means on pixels, a plain 10-way one-hot
   autoencoder, the autoencoder codes with k-means, and AutoEncoderClustering (default).
2. Binary codes for retrieval (stratified 70/30 split; database = train, queries = test,
   relevant = same class): mAP of Hamming ranking at 16/32/64 bits for sign(PCA), ITQ, LSH and
   aekit's BinaryHasher (with and without the neighbour stage); exact Euclidean ranking on the
   raw pixels as the reference; and Hamming search time over 1,000,000 packed codes.
3. VQ-VAE against k-means at the same bits (k-means on whole images up to 8 bits, on equal
   pixel chunks, 8 bits each, beyond): held-out PSNR and codebook health.
1b. (--only tables, --only mnist) the same three scores on a panel of labelled tables
   (benchmarks/_cluster_tables.py: a development half where defaults are chosen, a reported
   half) and on all 70,000 MNIST images, beside k-means and a Gaussian mixture on
   standardised columns and the previous default; time and peak memory of each run.
4. (--only vq_mnist) the same on MNIST: 60,000 training images, PSNR on the 10,000 test images.

Writes docs/img/cluster_members.png, hash_bit_flips.png and vq_codebook.png.

    python benchmarks/discrete_codes.py [--seeds 10] [--only cluster,hash,vq]
    python benchmarks/discrete_codes.py --only tables --seeds 3 [--tables digits,wine] [--methods ...]
    python benchmarks/discrete_codes.py --only mnist --seeds 1     # all 70,000 MNIST images
    python benchmarks/discrete_codes.py --only vq_mnist [--vq-epochs 15] [--vq-configs 0 1 2]
"""
from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from _cluster_tables import DEVELOPMENT, REPORTED  # noqa: E402
from _cluster_tables import load as load_table  # noqa: E402
from _mnist import load_mnist  # noqa: E402

from aekit import plots  # noqa: E402
from aekit.data.preprocess import SCALED_LIMIT  # noqa: E402
from aekit.apps.codes import (  # noqa: E402
    AutoEncoderClustering,
    BinaryHasher,
    VQAutoEncoder,
    hamming_search,
    matched_accuracy,
    mean_average_precision,
    ranking_map,
)
from aekit import AutoEncoder  # noqa: E402
from aekit.training import TrainConfig, train  # noqa: E402
from aekit.data.images import load_images  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs" / "img"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- 1. clustering
def one_hot_autoencoder(x: np.ndarray, seed: int) -> np.ndarray:
    """The plain baseline: a 10-way one-hot (Gumbel-softmax) bottleneck; cluster = argmax."""
    torch.manual_seed(seed)
    model = AutoEncoder.for_shape(x.shape[1:], 10, "onehot", reconstruction="mse")
    train(model, torch.from_numpy(x), None, TrainConfig(epochs=100, batch_size=64, lr=2e-3, seed=seed, verbose=0,
                                                        patience=1_000_000))
    with torch.inference_mode():
        return model.encode_indices(torch.from_numpy(x)).numpy()


CLUSTER_METHODS = ("k-means on pixels", "one-hot autoencoder (10-way, argmax)", "autoencoder codes + k-means",
                   "aekit AutoEncoderClustering (codes + t-SNE + k-means)")


def cluster_seed(seed: int) -> dict[str, np.ndarray]:
    """Each method's cluster labels of all digits for one seed."""
    x = load_images("digits").images
    out = {
        CLUSTER_METHODS[0]: KMeans(10, n_init=10, random_state=seed).fit_predict(x.reshape(len(x), -1)),
        CLUSTER_METHODS[1]: one_hot_autoencoder(x, seed),
        CLUSTER_METHODS[2]: AutoEncoderClustering(embedding="none", random_state=seed).fit(x).labels_,
        CLUSTER_METHODS[3]: AutoEncoderClustering(random_state=seed).fit(x).labels_,
    }
    log(f"clustering seed {seed}: " + ", ".join(f"{matched_accuracy(load_images('digits').labels, v):.3f}"
                                                for v in out.values()))
    return out


def clustering(seeds: int, jobs: int) -> None:
    digits = load_images("digits")
    x, y = digits.images, digits.labels
    if jobs > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            results = pool.map(cluster_seed, range(seeds))
    else:
        results = [cluster_seed(s) for s in range(seeds)]
    rows = []
    for name in CLUSTER_METHODS:
        a = np.array([(matched_accuracy(y, r[name]), normalized_mutual_info_score(y, r[name]),
                       adjusted_rand_score(y, r[name])) for r in results])
        rows.append([name, f"**{a[:, 0].mean():.3f}** ± {a[:, 0].std():.3f}", f"{a[:, 0].min():.3f}",
                     f"{a[:, 1].mean():.3f}", f"{a[:, 2].mean():.3f}"])
    print(f"\n### Unsupervised classification of digits: {seeds} seeds, all 1,797 images\n")
    print(table(rows, ["method", "accuracy (Hungarian) mean ± std", "worst seed", "NMI", "ARI"]))
    labels = results[0][CLUSTER_METHODS[3]]
    members = [x[labels == c][:10] for c in range(10)]
    plots.image_grid(np.concatenate([np.pad(m, ((0, 10 - len(m)), (0, 0), (0, 0), (0, 0))) for m in members]),
                     DOCS / "cluster_members.png", ncols=10)


# ---------------------------------------------------------------------------- 1b. tables and MNIST
def standardised(X: np.ndarray) -> np.ndarray:
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit_transform(X.reshape(len(X), -1).astype(np.float64))  # images as pixel rows


def gaussian_mixture(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A Gaussian mixture on standardised columns: full covariances up to 100 columns, else
    diagonal (784 pixels make a full covariance singular); reg_covar keeps constant columns."""
    from sklearn.mixture import GaussianMixture

    kind = "full" if np.prod(X.shape[1:]) <= 100 else "diag"
    return GaussianMixture(k, covariance_type=kind, reg_covar=1e-3, random_state=seed).fit_predict(standardised(X))


TABLE_METHODS = {
    "k-means (standardised)": lambda X, k, s: KMeans(k, n_init=10, random_state=s).fit_predict(standardised(X)),
    "Gaussian mixture (standardised)": gaussian_mixture,
    "aekit previous default (robust scale and t-SNE)":
        lambda X, k, s: AutoEncoderClustering(k, embedding="tsne", scaling="robust", epochs=100,
                                              random_state=s).fit(X).labels_,
    "aekit AutoEncoderClustering (default)": lambda X, k, s: AutoEncoderClustering(k, random_state=s).fit(X).labels_,
    "aekit, columns not clipped (before)":
        lambda X, k, s: AutoEncoderClustering(k, clip=SCALED_LIMIT, random_state=s).fit(X).labels_,
    "aekit, t-SNE perplexity 10 (tried)":
        lambda X, k, s: AutoEncoderClustering(k, perplexity=10.0, random_state=s).fit(X).labels_,
}


def run_method(args: tuple) -> tuple[np.ndarray, float, float]:
    """One method on one data set and seed, in its own process: labels, seconds, peak MB."""
    import resource

    method, data, seed = args
    X, y = load_table(data) if data != "mnist" else mnist_70k()
    start = time.perf_counter()
    labels = TABLE_METHODS[method](X, len(np.unique(y)), seed)
    return labels, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mnist_70k() -> tuple[np.ndarray, np.ndarray]:
    x_train, y_train, x_test, y_test = load_mnist()
    return np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])


def scores(y: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([matched_accuracy(y, labels), normalized_mutual_info_score(y, labels),
                     adjusted_rand_score(y, labels)])


def table_panel(seeds: int, methods: list[str], names: list[str]) -> None:
    """Accuracy / NMI / ARI of each method on each table of the panel, mean over seeds; each
    run in a fresh process (its time and peak memory are its own)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    results: dict[tuple[str, str], list] = {}
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        for name in names:
            y = load_table(name)[1] if name != "mnist" else mnist_70k()[1]
            for method in methods:
                for seed in range(seeds):
                    labels, seconds, mb = pool.apply(run_method, ((method, name, seed),))
                    results.setdefault((name, method), []).append((scores(y, labels), seconds, mb))
                    log(f"{name} / {method} / seed {seed}: accuracy {matched_accuracy(y, labels):.3f}, "
                        f"{seconds:.0f} s, {mb:.0f} MB")
    for half, members in (("development half (defaults chosen here)", DEVELOPMENT),
                          ("reported half (never chosen on)", REPORTED), ("MNIST, 70,000 images", ("mnist",))):
        rows = []
        for name in (n for n in names if n in members):
            for method in methods:
                runs = results[(name, method)]
                a = np.array([r[0] for r in runs])
                rows.append([name, method, f"{a[:, 0].mean():.3f} ({' / '.join(f'{v:.3f}' for v in a[:, 0])})",
                             f"{a[:, 1].mean():.3f}", f"{a[:, 2].mean():.3f}",
                             f"{np.mean([r[1] for r in runs]):.1f}", f"{max(r[2] for r in runs):.0f}"])
        if rows:
            print(f"\n### Unsupervised classification, {half}: {seeds} seeds\n")
            print(table(rows, ["data", "method", "accuracy (per seed)", "NMI", "ARI", "seconds", "peak MB"]))


# ---------------------------------------------------------------------------- 2. retrieval
def itq(train: np.ndarray, bits: int, seed: int, iters: int = 50) -> tuple[PCA, np.ndarray]:
    """Iterative quantization (Gong & Lazebnik 2011): PCA, then the rotation that best rounds."""
    pca = PCA(bits, random_state=seed).fit(train)
    v = pca.transform(train)
    r = np.linalg.qr(np.random.default_rng(seed).normal(size=(bits, bits)))[0]
    for _ in range(iters):
        b = np.sign(v @ r)
        u, _, wt = np.linalg.svd(v.T @ b)
        r = u @ wt
    return pca, r


def retrieval() -> None:
    digits = load_images("digits")
    x, y = digits.images, digits.labels
    tr, te = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
    flat = x.reshape(len(x), -1).astype(np.float64)
    pack = lambda bits: np.packbits(bits.astype(np.uint8), axis=1)  # noqa: E731
    euclid = ranking_map(((flat[te][:, None] - flat[tr][None]) ** 2).sum(-1), y[tr], y[te])
    rows = {}
    hasher_32 = None
    for bits in (16, 32, 64):
        pca = PCA(bits, random_state=0).fit(flat[tr])
        codes = {"sign(PCA)": lambda a: pack(pca.transform(a) > 0)}
        p_itq, rot = itq(flat[tr], bits, 0)
        codes["ITQ"] = lambda a, p=p_itq, r=rot: pack(p.transform(a) @ r > 0)
        mean = flat[tr].mean(0)
        proj = np.random.default_rng(0).normal(size=(flat.shape[1], bits))
        codes["LSH (random projections)"] = lambda a, w=proj: pack((a - mean) @ w > 0)
        for name, f in codes.items():
            rows.setdefault(name, []).append(mean_average_precision(f(flat[tr]), y[tr], f(flat[te]), y[te]))
        for name, kw in (("aekit BinaryHasher, reconstruction only", {"neighbours": 0}),
                         ("aekit BinaryHasher (default: + neighbour stage)", {})):
            h = BinaryHasher(bits, **kw).fit(x[tr])
            rows.setdefault(name, []).append(mean_average_precision(h.hash(x[tr]), y[tr], h.hash(x[te]), y[te]))
            if bits == 32 and not kw:
                hasher_32 = h
        log(f"retrieval {bits} bits done")
    table_rows = [[name, *(f"{v:.3f}" for v in maps)] for name, maps in rows.items()]
    table_rows.append(["Euclidean on raw pixels (64 floats, reference)", f"{euclid:.3f}", f"{euclid:.3f}", f"{euclid:.3f}"])
    print("\n### Retrieval on digits: mAP of Hamming ranking (70/30 split, relevant = same class)\n")
    print(table(table_rows, ["codes", "16 bits", "32 bits", "64 bits"]))

    rng = np.random.default_rng(0)
    speed = []
    for bits in (32, 64):
        db = rng.integers(0, 256, size=(1_000_000, bits // 8), dtype=np.uint8)
        q = rng.integers(0, 256, size=(100, bits // 8), dtype=np.uint8)
        hamming_search(db, q[:2], k=10)  # warm-up
        start = time.perf_counter()
        hamming_search(db, q, k=10)
        per_query = (time.perf_counter() - start) / len(q) * 1000
        speed.append([f"{bits}", f"{db.nbytes / 1e6:.0f} MB", f"{per_query:.2f} ms"])
    print("\n### Hamming search over 1,000,000 packed codes (top 10, one query at a time, 2 cores)\n")
    print(table(speed, ["bits", "database", "time per query"]))

    # what the bits mean: flip each bit of one digit's code and decode
    code = hasher_32.encode(x[te][:1])
    flips = np.repeat(code, 32, axis=0)
    flips[np.arange(32), np.arange(32)] ^= 1
    images = hasher_32.decode_bits(np.concatenate([code, flips]))
    plots.image_grid(np.concatenate([x[te][:1], images]), DOCS / "hash_bit_flips.png", ncols=17,
                     title="input, its decoded 32-bit code, then the code with bit 1, 2, ..., 32 flipped")


# ---------------------------------------------------------------------------- 3. VQ vs k-means
def kmeans_psnr(train: np.ndarray, test: np.ndarray, bits: float, seed: int) -> float:
    """k-means with 2^bits centroids on whole images (bits <= 8), else product k-means with
    8 bits on each of ceil(bits / 8) equal pixel chunks."""
    a, b = train.reshape(len(train), -1), test.reshape(len(test), -1)
    chunks = 1 if bits <= 8 else math.ceil(bits / 8)
    k = int(round(2 ** (bits / chunks)))
    out = np.empty_like(b)
    for part in np.array_split(np.arange(a.shape[1]), chunks):
        km = KMeans(min(k, len(a)), n_init=3, random_state=seed).fit(a[:, part])
        out[:, part] = km.cluster_centers_[km.predict(b[:, part])]
    mse = ((out - b) ** 2).mean(1)
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-10))))


def vq() -> None:
    rows, first = [], None
    for data in ("digits", "lfw_subset"):
        images = load_images(data)
        x = images.images
        tr, te = train_test_split(np.arange(len(x)), test_size=0.3, random_state=0)
        for k, positions in ((16, 1), (64, 1), (64, 4), (256, 4)):
            model = VQAutoEncoder(k, positions=positions, epochs=100 if data == "digits" else 200).fit(x[tr])
            seen, held = model.health(x[tr]), model.health(x[te])
            rows.append([data, f"{k}", f"{positions}", f"{model.bits_:.0f}", f"**{model.psnr(x[te]):.2f}**",
                         f"{kmeans_psnr(x[tr], x[te], model.bits_, 0):.2f}",
                         f"{seen['codes_used']}/{k} ({seen['codes_used'] / k:.0%})",
                         f"{held['codes_used']}/{k} ({held['codes_used'] / k:.0%})",
                         f"{seen['perplexity_ratio']:.2f}", f"{seen['dead_restarts']}"])
            log(f"vq {data} K={k} positions={positions} done")
            if data == "digits" and k == 64 and positions == 1:
                first = model
    print("\n### VQ-VAE vs k-means at equal bits (held-out 30%): PSNR (dB) and codebook health\n")
    print(table(rows, ["data", "K", "tokens", "bits/image", "VQ-VAE PSNR", "k-means PSNR", "codes used (train)",
                       "codes used (held-out)", "perplexity / K (train)", "dead-code restarts"]))
    entries = first.decode(np.arange(64).reshape(64, 1, 1))
    plots.image_grid(entries, DOCS / "vq_codebook.png", ncols=16, title="the 64 codebook entries, decoded")


MNIST_VQ = (  # (K, tokens, options): equal bits in pairs, then what more capacity buys
    (256, 1, {}), (64, 4, {}), (256, 4, {}), (256, 4, {"dim": 64}), (256, 4, {"hidden": 512, "channels": (64, 128)}),
    (256, 8, {}),
)


def vq_mnist(epochs: int, configs: list[int] | None) -> None:
    """VQ-VAE against k-means at equal bits on MNIST: train on the 60,000 training images,
    PSNR on the 10,000 test images; k-means (product k-means beyond 8 bits) on 20,000
    training images."""
    x_train, _, x_test, _ = load_mnist()
    km_train = x_train[np.random.default_rng(0).choice(len(x_train), 20_000, replace=False)]
    rows, kmeans_at = [], {}
    for i, (k, positions, options) in enumerate(MNIST_VQ):
        if configs is not None and i not in configs:
            continue
        start = time.perf_counter()
        model = VQAutoEncoder(k, positions=positions, epochs=epochs, **options).fit(x_train)
        seconds = time.perf_counter() - start
        bits = model.bits_
        if bits not in kmeans_at:
            kmeans_at[bits] = kmeans_psnr(km_train, x_test, bits, 0)
        held = model.health(x_test)
        rows.append([f"{k}", f"{positions}", ", ".join(f"{a}={b}" for a, b in options.items()) or "defaults",
                     f"{bits:.0f}", f"**{model.psnr(x_test):.2f}**", f"{model.psnr(x_train[:10_000]):.2f}",
                     f"{kmeans_at[bits]:.2f}", f"{held['codes_used']}/{k}", f"{held['perplexity_ratio']:.2f}",
                     f"{len(model.training_history_)}", f"{seconds:.0f}"])
        log(" | ".join(rows[-1]))
    print(f"\n### VQ-VAE vs k-means at equal bits on MNIST (train 60,000, PSNR on the 10,000 test images; "
          f"{epochs} epochs at most)\n")
    print(table(rows, ["K", "tokens", "options", "bits/image", "VQ-VAE PSNR (test)", "VQ-VAE PSNR (train)",
                       "k-means PSNR (test)", "codes used (test)", "perplexity / K (test)", "epochs run", "train s"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10, help="seeds of the clustering table")
    ap.add_argument("--only", default="cluster,hash,vq", help="comma-separated tables to run")
    ap.add_argument("--jobs", type=int, default=1, help="clustering seeds run in parallel (one core each)")
    ap.add_argument("--vq-epochs", type=int, default=15, help="vq_mnist: training epochs at most")
    ap.add_argument("--vq-configs", type=int, nargs="*", help="vq_mnist: indices into MNIST_VQ (default all)")
    ap.add_argument("--tables", default=",".join(DEVELOPMENT + REPORTED),
                    help="tables: which tables of the panel (benchmarks/_cluster_tables.py)")
    ap.add_argument("--methods", default=",".join(TABLE_METHODS), help="tables, mnist: which methods")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    parts = set(args.only.split(","))
    if "cluster" in parts:
        clustering(args.seeds, args.jobs)
    if "tables" in parts:
        table_panel(args.seeds, args.methods.split(","), args.tables.split(","))
    if "mnist" in parts:
        table_panel(args.seeds, args.methods.split(","), ["mnist"])
    if "hash" in parts:
        retrieval()
    if "vq" in parts:
        vq()
    if "vq_mnist" in parts:
        vq_mnist(args.vq_epochs, args.vq_configs)


if __name__ == "__main__":
    main()
