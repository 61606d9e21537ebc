"""The learned image codec against Pillow's JPEG and WebP, at equal bytes, on held-out photos.

Photos: ``../shared/data/photos``, the 100 files held out of the codec's training (every
tenth by sorted name, see ``scripts/make_default_codec.py``), downsampled by 2 like the
training photos (it hides their own JPEG artefacts); ``--photos N`` takes the first N.

For every codec and setting: bits per pixel from the bytes written (aekit: the whole .aek
file, header and checksum included), PSNR (RGB, peak 255), MS-SSIM where the image is large
enough; BD-rate (Bjontegaard) of aekit against JPEG and WebP on the mean curves; encode and
decode milliseconds per megapixel; an RD plot.

    python benchmarks/compression.py --model src/aekit/apps/compress/default_model
    python benchmarks/compression.py --model M --photos 20 --plot rd.png
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from _common import SHARED, table  # noqa: E402
from make_default_codec import split  # noqa: E402

from aekit.apps.compress import ImageCodec, bd_rate, psnr  # noqa: E402
from aekit.apps.compress.metrics import bpp  # noqa: E402

JPEG_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def held_out_photos(n: int) -> list[np.ndarray]:
    from PIL import Image

    _, held = split(SHARED / "photos")
    out = []
    for p in held[:n]:
        with Image.open(p) as im:
            im = im.convert("RGB")
            out.append(np.asarray(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)))
    return out


def pillow_codec(fmt: str, quality: int):
    from PIL import Image

    def encode(rgb: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt, quality=quality)
        return buf.getvalue()

    def decode(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    return encode, decode


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (pytorch-msssim) on RGB in [0, 255]; NaN for images under 161 pixels a side."""
    if min(a.shape[:2]) < 161:
        return float("nan")
    import torch
    from pytorch_msssim import ms_ssim as score

    t = [torch.from_numpy(x.transpose(2, 0, 1)[None].astype(np.float32)) for x in (a, b)]
    return float(score(t[0], t[1], data_range=255))


def measure(images: list[np.ndarray], encode, decode) -> dict[str, float]:
    rates, psnrs, ssims, enc_s, dec_s = [], [], [], 0.0, 0.0
    for rgb in images:
        t0 = time.perf_counter()
        data = encode(rgb)
        t1 = time.perf_counter()
        out = decode(data)
        dec_s += time.perf_counter() - t1
        enc_s += t1 - t0
        rates.append(bpp(len(data), *rgb.shape[:2]))
        psnrs.append(psnr(rgb, out))
        ssims.append(ms_ssim(rgb, out))
    megapixels = sum(x.shape[0] * x.shape[1] for x in images) / 1e6
    return {"bpp": float(np.mean(rates)), "psnr": float(np.mean(psnrs)), "ms_ssim": float(np.nanmean(ssims)),
            "encode_ms_per_mp": 1e3 * enc_s / megapixels, "decode_ms_per_mp": 1e3 * dec_s / megapixels}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="codec model directory")
    ap.add_argument("--photos", type=int, default=100, help="held-out photos to use (of 100)")
    ap.add_argument("--plot", help="write the rate-distortion plot (PNG) here")
    args = ap.parse_args()
    images = held_out_photos(args.photos)
    codec = ImageCodec.load(args.model)
    curves: dict[str, list[dict[str, float]]] = {"aekit": [], "JPEG (Pillow)": [], "WebP (Pillow)": []}
    for q in range(1, codec.qualities + 1):
        curves["aekit"].append({"setting": q, **measure(images, lambda x, q=q: codec.compress(x, q), codec.decompress)})
    for name, fmt, qualities in (("JPEG (Pillow)", "JPEG", JPEG_QUALITIES), ("WebP (Pillow)", "WEBP", WEBP_QUALITIES)):
        for q in qualities:
            curves[name].append({"setting": q, **measure(images, *pillow_codec(fmt, q))})
    pixels = np.mean([x.shape[0] * x.shape[1] for x in images])
    print(f"\n### {len(images)} held-out photos (mean {pixels / 1e3:.0f} kilopixels), bpp from file bytes\n")
    rows = [[name, r["setting"], f"{r['bpp']:.3f}", f"{r['psnr']:.2f}", f"{r['ms_ssim']:.4f}",
             f"{r['encode_ms_per_mp']:.0f}", f"{r['decode_ms_per_mp']:.0f}"]
            for name, rs in curves.items() for r in rs]
    print(table(rows, ["codec", "quality", "bpp", "PSNR dB", "MS-SSIM", "encode ms/MP", "decode ms/MP"]))
    ours = [(r["bpp"], r["psnr"]) for r in curves["aekit"]]
    print()
    for anchor in ("JPEG (Pillow)", "WebP (Pillow)"):
        theirs = [(r["bpp"], r["psnr"]) for r in curves[anchor]]
        try:
            print(f"BD-rate of aekit against {anchor} (PSNR): {bd_rate(theirs, ours):+.1f}%")
        except Exception as exc:  # curves without a shared PSNR range say so instead of a number
            print(f"BD-rate of aekit against {anchor}: {exc}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4.5))
        for name, rs in curves.items():
            ax.plot([r["bpp"] for r in rs], [r["psnr"] for r in rs], "o-", label=name, markersize=4)
        ax.set_xlabel("bits per pixel (file bytes)")
        ax.set_ylabel("PSNR (dB, RGB)")
        ax.set_xlim(0, 2.0)
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_title(f"{len(images)} held-out photos")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=80)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
