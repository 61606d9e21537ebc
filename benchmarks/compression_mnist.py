"""MNIST: the learned image codec against zlib, lzma, PNG and k-means vector quantization.

Every method codes the whole MNIST test set (10,000 digits, or ``--digits N``) as one stream,
so headers are shared as they would be in an archive, and reports bits per digit from the
bytes written and PSNR (peak 255) over every pixel:

- aekit: an ``ImageCodec`` trained here on mosaics of training digits (gray, tiled 28 x 28
  without gaps; lower lambdas than the photo codec, since a digit carries few bits), coding
  the test mosaic as one ``.aek`` file per quality (header and checksum included);
- zlib and lzma (level 9) on the raw pixels, lossless, and on pixels requantized to 1, 2 and
  4 bits (the classic way to trade bits for fidelity with a lossless coder);
- PNG (Pillow, optimize) of the mosaic, lossless;
- k-means VQ (scikit-learn MiniBatchKMeans on the training digits): each digit (or each
  7 x 7 patch) becomes the index of its nearest centroid, log2 K bits each; the codebook is
  part of the model, like the codec's weights, and is not counted.

    python benchmarks/compression_mnist.py                 # about 10 minutes on 2 cores (7 of them training)
    python benchmarks/compression_mnist.py --digits 2000 --epochs 5
"""
from __future__ import annotations

import argparse
import io
import lzma
import math
import sys
import time
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, table  # noqa: E402

from aekit.apps.compress import ImageCodec, psnr  # noqa: E402

SIDE = 28
# rate-distortion trade-offs for digits: a 28 x 28 digit needs tens of bits, not hundreds
MNIST_LAMBDAS = (0.0002, 0.0005, 0.0012, 0.003, 0.0075, 0.019)


def mosaic(digits: np.ndarray, columns: int) -> np.ndarray:
    """Digits ``[N, 28, 28]`` tiled row by row into one gray image (the last row padded black)."""
    rows = math.ceil(len(digits) / columns)
    padded = np.zeros((rows * columns, SIDE, SIDE), np.uint8)
    padded[:len(digits)] = digits
    return padded.reshape(rows, columns, SIDE, SIDE).transpose(0, 2, 1, 3).reshape(rows * SIDE, columns * SIDE)


def unmosaic(image: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` digits ``[n, 28, 28]`` of a mosaic."""
    rows, columns = image.shape[0] // SIDE, image.shape[1] // SIDE
    return image.reshape(rows, SIDE, columns, SIDE).transpose(0, 2, 1, 3).reshape(-1, SIDE, SIDE)[:n]


def requantized(x: np.ndarray, bits: int) -> np.ndarray:
    """Pixels kept to ``bits`` bits (levels spread over 0-255), as the decoder would show them."""
    levels = (1 << bits) - 1
    return np.round(np.round(x / 255.0 * levels) * 255.0 / levels).astype(np.uint8)


def row(method: str, setting: str, n_bytes: int, n_digits: int, original: np.ndarray, decoded: np.ndarray,
        seconds: float) -> list[str]:
    quality = psnr(original, decoded)
    return [method, setting, f"{8 * n_bytes / n_digits:.1f}", "lossless" if math.isinf(quality) else f"{quality:.2f}",
            f"{seconds:.2f}"]


def kmeans_rows(train: np.ndarray, test: np.ndarray, patch: int, ks: tuple[int, ...], seed: int) -> list[list[str]]:
    from sklearn.cluster import MiniBatchKMeans

    def patches(x: np.ndarray) -> np.ndarray:
        n = len(x)
        return (x.reshape(n, SIDE // patch, patch, SIDE // patch, patch).transpose(0, 1, 3, 2, 4)
                .reshape(-1, patch * patch).astype(np.float32))

    def unpatch(p: np.ndarray, n: int) -> np.ndarray:
        g = SIDE // patch
        return p.reshape(n, g, g, patch, patch).transpose(0, 1, 3, 2, 4).reshape(n, SIDE, SIDE)

    out = []
    per_digit = (SIDE // patch) ** 2
    for k in ks:
        t0 = time.perf_counter()
        km = MiniBatchKMeans(k, batch_size=4096, n_init=1, max_iter=30, random_state=seed).fit(patches(train))
        idx = km.predict(patches(test))
        decoded = unpatch(np.clip(np.round(km.cluster_centers_[idx]), 0, 255).astype(np.uint8), len(test))
        n_bytes = len(test) * per_digit * math.log2(k) / 8  # fixed-length indices
        name = "k-means VQ (whole digit)" if patch == SIDE else f"k-means VQ ({patch}x{patch} patches)"
        out.append(row(name, f"K={k}", n_bytes, len(test), test, decoded, time.perf_counter() - t0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--digits", type=int, default=10000, help="test digits to code (of 10,000)")
    ap.add_argument("--epochs", type=int, default=40, help="codec training epochs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = np.load(SHARED / "mnist" / "mnist.npz")
    train, test = data["x_train"], data["x_test"][:args.digits]
    columns = math.ceil(math.sqrt(len(test)))
    test_image = mosaic(test, columns)
    n = len(test)
    rows: list[list[str]] = []

    rng = np.random.default_rng(args.seed)
    tiles = [mosaic(train[rng.choice(len(train), 100, replace=False)], 10) for _ in range(400)]  # 280 x 280
    t0 = time.perf_counter()
    codec = ImageCodec(channels=48, latent_channels=64, lambdas=MNIST_LAMBDAS, crop=128, crops_per_image=2,
                       downsample=1, epochs=args.epochs, random_state=args.seed, verbose=1).fit(tiles)
    print(f"trained the MNIST codec on 400 mosaics of training digits in {time.perf_counter() - t0:.0f} s")
    for q in range(1, codec.qualities + 1):
        t0 = time.perf_counter()
        blob = codec.compress(test_image, q)
        decoded = unmosaic(codec.decompress(blob), n)  # grey mosaics decode to one channel
        rows.append(row("aekit ImageCodec", f"quality {q}", len(blob), n, test, decoded, time.perf_counter() - t0))

    for name, pack in (("zlib -9", lambda b: zlib.compress(b, 9)), ("lzma -9", lambda b: lzma.compress(b, preset=9))):
        for bits in (1, 2, 4, 8):
            t0 = time.perf_counter()
            kept = requantized(test, bits) if bits < 8 else test
            # below 8 bits the levels are written as their indices, which the coder then packs
            symbols = np.round(kept / 255.0 * ((1 << bits) - 1)).astype(np.uint8)
            blob = pack(symbols.tobytes())
            rows.append(row(name, "8-bit (lossless)" if bits == 8 else f"{bits}-bit levels", len(blob), n, test, kept,
                            time.perf_counter() - t0))
    from PIL import Image

    t0 = time.perf_counter()
    buf = io.BytesIO()
    Image.fromarray(test_image).save(buf, format="PNG", optimize=True)
    rows.append(row("PNG (Pillow)", "lossless", buf.tell(), n, test_image, test_image, time.perf_counter() - t0))
    rows += kmeans_rows(train, test, SIDE, (16, 256, 1024), args.seed)
    rows += kmeans_rows(train, test, 7, (16, 256), args.seed)
    print(f"\n### MNIST test set: {n} digits coded as one stream; bits per digit from the bytes written\n")
    print(table(rows, ["method", "setting", "bits per digit", "PSNR dB", "seconds"]))


if __name__ == "__main__":
    main()
