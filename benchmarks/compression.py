"""The learned image codec against Pillow's JPEG and WebP, at equal bytes, on held-out photos.

Peers: Pillow's JPEG (qualities 5-95) and WebP, AVIF where this Pillow has it, JPEG XL
through ``pillow-jxl-plugin`` (the ``bench`` extra) when installed.

Photos (``--set``):

- ``photos_hd`` (the default, the headline): the evaluation split of ``../shared/data/photos_hd``
  (the 44 files whose number is divisible by 5; never trained on), at full resolution (longer
  side 1024 px), as a user's photos arrive.
- ``flickr``: ``../shared/data/photos``, the 100 small Flickr JPEGs held out of the bundled
  codec's training (every tenth by sorted name, see ``scripts/make_default_codec.py``),
  downsampled by 2 like its training photos: a second, differently distributed check, and
  the kind of picture the bundled codec was trained on (not a headline number).

``--photos N`` takes the first N.

For every codec and setting: bits per pixel from the bytes written (aekit: the whole .aek
file, header and checksum included), PSNR (RGB, peak 255), MS-SSIM where the image is large
enough; BD-rates (Bjontegaard) of aekit against every peer on the mean curves, on PSNR and on
MS-SSIM (in dB, ``-10 log10(1 - MS-SSIM)``); encode and decode milliseconds per megapixel; an
RD plot.

    python benchmarks/compression.py                      # the bundled codec, photos_hd's 44 evaluation photos
    python benchmarks/compression.py --set flickr --model M --photos 20 --plot rd.png --side-by-side crop.png
    python benchmarks/compression.py --photos 8 --no-context --refine 10   # the levers, one at a time
    python benchmarks/compression.py --no-peers --also build/codec/stage4a build/codec/stage3   # training stages
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
from make_default_codec import split, split_hd  # noqa: E402

from aekit.apps.compress import ImageCodec, bd_rate, default_model, psnr  # noqa: E402
from aekit.apps.compress.codec import as_rgb  # noqa: E402
from aekit.apps.compress.metrics import bpp  # noqa: E402

JPEG_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
WEBP_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def held_out_photos(n: int, photo_set: str = "photos_hd") -> list[np.ndarray]:
    from PIL import Image

    if photo_set == "photos_hd":  # full resolution, as the photos are
        out = []
        for p in split_hd(SHARED / "photos_hd")[1][:n]:
            with Image.open(p) as im:
                out.append(np.asarray(im.convert("RGB")))
        return out
    _, held = split(SHARED / "photos")
    out = []
    for p in held[:n]:
        with Image.open(p) as im:
            im = im.convert("RGB")
            out.append(np.asarray(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)))
    return out


def ms_ssim_db(value: float) -> float:
    """MS-SSIM on the dB scale that RD curves use: ``-10 log10(1 - MS-SSIM)``."""
    return float(-10 * np.log10(max(1 - value, 1e-12)))


def peers() -> list[tuple[str, str, tuple[int, ...]]]:
    """(name, Pillow format, qualities) of the codecs this Pillow can write: JPEG and WebP
    always, AVIF where Pillow was built with it, JPEG XL with ``pillow-jxl-plugin``."""
    from PIL import features

    out = [("JPEG (Pillow)", "JPEG", JPEG_QUALITIES), ("WebP (Pillow)", "WEBP", WEBP_QUALITIES)]
    if features.check("avif"):
        out.append(("AVIF (Pillow)", "AVIF", WEBP_QUALITIES))
    try:
        import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)

        out.append(("JPEG XL (pillow-jxl)", "JXL", WEBP_QUALITIES))
    except ImportError:
        print("JPEG XL left out: pip install pillow-jxl-plugin", file=sys.stderr)
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


def without_context(codec: ImageCodec) -> ImageCodec:
    """A copy of ``codec`` that codes every latent in one group, from the hyperprior alone (the
    context input zero): its files are larger by what the context model saves."""
    import copy

    import torch

    ablated = copy.deepcopy(codec)
    ablated.model_.group_masks = lambda h, w: [torch.ones(h, w, dtype=torch.bool)]
    return ablated


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
        out = as_rgb(out)  # a grey image decodes to one channel; compared as the RGB it came as
        enc_s += t1 - t0
        rates.append(bpp(len(data), *rgb.shape[:2]))
        psnrs.append(psnr(rgb, out))
        ssims.append(ms_ssim(rgb, out))
    megapixels = sum(x.shape[0] * x.shape[1] for x in images) / 1e6
    return {"bpp": float(np.mean(rates)), "psnr": float(np.mean(psnrs)), "ms_ssim": float(np.nanmean(ssims)),
            "encode_ms_per_mp": 1e3 * enc_s / megapixels, "decode_ms_per_mp": 1e3 * dec_s / megapixels}


def crossings(ours: list[tuple[float, float]], theirs: list[tuple[float, float]]) -> str:
    """Where aekit's PSNR-over-log-bpp curve crosses another's, within the bpp range both cover."""
    a, b = sorted(ours), sorted(theirs)
    low, high = max(a[0][0], b[0][0]), min(a[-1][0], b[-1][0])
    if not low < high:
        return "the curves share no bpp range"
    grid = np.exp(np.linspace(np.log(low), np.log(high), 400))
    gap = (np.interp(np.log(grid), np.log([p[0] for p in a]), [p[1] for p in a])
           - np.interp(np.log(grid), np.log([p[0] for p in b]), [p[1] for p in b]))
    where = grid[1:][np.sign(gap[1:]) != np.sign(gap[:-1])]
    lead = "aekit ahead" if gap[0] > 0 else "aekit behind"
    if not len(where):
        return f"{lead} over all of {low:.2f}-{high:.2f} bpp"
    return f"{lead} at {low:.2f} bpp, curves cross at {', '.join(f'{x:.2f}' for x in where)} bpp"


def side_by_side(rgb: np.ndarray, codec: ImageCodec, target_bpp: float, path: str, size: int = 192) -> str:
    """Original, JPEG and aekit crops of ``rgb`` at about ``target_bpp``: aekit's quality nearest
    the target, and the JPEG quality whose file is nearest aekit's in bytes (equal bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coded = [codec.compress(rgb, q) for q in range(1, codec.qualities + 1)]
    ours = min(coded, key=lambda d: abs(bpp(len(d), *rgb.shape[:2]) - target_bpp))
    jpegs = [pillow_codec("JPEG", q)[0](rgb) for q in range(2, 96)]
    jpeg = min(jpegs, key=lambda d: abs(len(d) - len(ours)))
    panels = [("original", rgb), (f"JPEG {bpp(len(jpeg), *rgb.shape[:2]):.3f} bpp", pillow_codec("JPEG", 0)[1](jpeg)),
              (f"aekit {bpp(len(ours), *rgb.shape[:2]):.3f} bpp", as_rgb(codec.decompress(ours)))]
    h, w = rgb.shape[:2]
    size = min(size, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.3))
    for ax, (title, img) in zip(axes, panels):
        crop = img[top:top + size, left:left + size]
        ax.imshow(crop, interpolation="nearest")
        ax.set_title(title if title == "original" else f"{title}, {psnr(rgb, img):.2f} dB", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="codec model directory (default: the bundled codec)")
    ap.add_argument("--set", dest="photo_set", choices=("photos_hd", "flickr"), default="photos_hd",
                    help="photos_hd: the 44 evaluation photos at full resolution (default); flickr: the 100 "
                         "held-out small Flickr photos, downsampled by 2")
    ap.add_argument("--photos", type=int, default=100, help="use the first N photos of the set")
    ap.add_argument("--plot", help="write the rate-distortion plot (PNG) here")
    ap.add_argument("--side-by-side", help="write original / JPEG / aekit crops at about 0.25 bpp (PNG) here")
    ap.add_argument("--refine", type=int, default=0,
                    help="also measure encoding with N steps of encode-time refinement (a lever)")
    ap.add_argument("--no-context", action="store_true",
                    help="also measure the same network coding every latent from the hyperprior alone (what "
                         "the checkerboard context model buys)")
    ap.add_argument("--also", nargs="+", default=[], metavar="DIR",
                    help="also measure these codec model directories (a lever: e.g. an earlier training stage)")
    ap.add_argument("--no-peers", action="store_true", help="leave out JPEG, WebP, AVIF and JPEG XL")
    args = ap.parse_args()
    from PIL import Image

    images = held_out_photos(args.photos, args.photo_set)
    codec = ImageCodec.load(args.model) if args.model else default_model()
    variants = {"aekit": (codec, 0)}
    if args.no_context:
        variants["aekit, no context"] = (without_context(codec), 0)
    if args.refine:
        variants[f"aekit, refine {args.refine}"] = (codec, args.refine)
    for other in args.also:
        variants[f"aekit, {Path(other).name}"] = (ImageCodec.load(other), 0)
    curves: dict[str, list[dict[str, float]]] = {}
    for name, (variant, steps) in variants.items():
        curves[name] = [{"setting": q, **measure(images, lambda x, v=variant, q=q, s=steps: v.compress(x, q, refine=s),
                                                 variant.decompress)} for q in range(1, variant.qualities + 1)]
    for name, fmt, qualities in [] if args.no_peers else peers():
        curves[name] = []
        for q in qualities:
            curves[name].append({"setting": q, **measure(images, *pillow_codec(fmt, q))})
    pixels = np.mean([x.shape[0] * x.shape[1] for x in images])
    print(f"\n### {args.photo_set}: {len(images)} held-out photos (mean {pixels / 1e3:.0f} kilopixels), "
          "bpp from file bytes\n")
    rows = [[name, r["setting"], f"{r['bpp']:.3f}", f"{r['psnr']:.2f}", f"{r['ms_ssim']:.4f}",
             f"{r['encode_ms_per_mp']:.0f}", f"{r['decode_ms_per_mp']:.0f}"]
            for name, rs in curves.items() for r in rs]
    print(table(rows, ["codec", "quality", "bpp", "PSNR dB", "MS-SSIM", "encode ms/MP", "decode ms/MP"]))
    print()
    for name in variants:
        ours = [(r["bpp"], r["psnr"]) for r in curves[name]]
        ours_ssim = [(r["bpp"], ms_ssim_db(r["ms_ssim"])) for r in curves[name]]
        for anchor in [c for c in curves if c not in variants] + [v for v in variants if v != name]:
            theirs = [(r["bpp"], r["psnr"]) for r in curves[anchor]]
            theirs_ssim = [(r["bpp"], ms_ssim_db(r["ms_ssim"])) for r in curves[anchor]]
            parts = []
            for metric, a, b in (("PSNR", theirs, ours), ("MS-SSIM", theirs_ssim, ours_ssim)):
                try:
                    parts.append(f"{metric} {bd_rate(a, b):+.1f}%")
                except Exception as exc:  # curves without a shared quality range say so instead of a number
                    parts.append(f"{metric}: {exc}")
            print(f"BD-rate of {name} against {anchor}: {'; '.join(parts)}; {crossings(ours, theirs)}")
    kodak_sized = np.asarray(Image.fromarray(images[0]).resize((768, 512), Image.Resampling.LANCZOS))
    for q in (1, codec.qualities):
        encode, decode = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            data = codec.compress(kodak_sized, q)
            t1 = time.perf_counter()
            codec.decompress(data)
            encode.append(t1 - t0)
            decode.append(time.perf_counter() - t1)
        print(f"a 768 x 512 photo at quality {q}: encode {min(encode):.2f} s, decode {min(decode):.2f} s "
              "(best of 3; targets 2 s and 0.5 s)")
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
        ax.set_title(f"{args.photo_set}: {len(images)} held-out photos")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=80)
        print(f"wrote {args.plot}")
    if args.side_by_side:
        # the photo whose smallest aekit file is nearest 0.25 bpp (most need more: they are
        # textured), so that the crop shows the rate the issue asks about
        nearest = min(images, key=lambda x: abs(bpp(len(codec.compress(x, 1)), *x.shape[:2]) - 0.25))
        print(f"wrote {side_by_side(nearest, codec, 0.25, args.side_by_side)}")


if __name__ == "__main__":
    main()
