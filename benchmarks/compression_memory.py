"""Memory and time of the bundled codec on large photos, whole against tiled, beside Pillow's JPEG.

A phone photo is 12-48 megapixels. The codec's transforms ran on the whole image, and their
activations at half resolution took 7 GB for 24 megapixels; since 0.9.3 they run on tiles
of ``aekit.nn.codec.TILE`` pixels with a halo, up to float rounding the same. Each
cell runs in a fresh process and reports its peak resident memory (``ru_maxrss``) and its wall
time; the photo is photos_hd's first, enlarged (bicubic) to the size asked for.

    python benchmarks/compression_memory.py --megapixels 12 24
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

PHOTO = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos_hd" / "000_ubuntuwp.jpg"
QUALITY = 4  # the codec's middle quality; JPEG at 85

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
step, src, out, tile = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
start = time.perf_counter()
if step.startswith("jpeg"):
    from PIL import Image
    if step == "jpeg-encode":
        Image.open(src).convert("RGB").save(out, quality=85)
    else:
        Image.open(src).convert("RGB").save(out)
else:
    import aekit.nn.codec as nn_codec
    from aekit.apps.compress.codec import default_model
    if tile:
        nn_codec.TILE = tile
    codec = default_model()
    if step == "encode":
        Path(out).write_bytes(codec.compress(src, %d))
    else:
        from PIL import Image
        Image.fromarray(codec.decompress(Path(src).read_bytes())).save(out)
print(json.dumps({"s": time.perf_counter() - start, "gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
""" % QUALITY


def run(step: str, src: Path, out: Path, tile: int = 0) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, step, str(src), str(out), str(tile)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--megapixels", type=float, nargs="+", default=[12.0, 24.0])
    args = ap.parse_args()
    base = Image.open(PHOTO).convert("RGB")
    print("| photo | coder | encode s | encode peak GB | decode s | decode peak GB | file bytes |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for mp in args.megapixels:
            scale = (mp * 1e6 / (base.width * base.height)) ** 0.5
            size = (round(base.width * scale), round(base.height * scale))
            src = work / "photo.png"
            base.resize(size, Image.Resampling.BICUBIC).save(src)
            label = f"{size[0]}x{size[1]} ({mp:g} MP)"
            files = {}
            for name, tile in (("aekit, tiled (default)", 0), ("aekit, whole image", 1 << 20)):
                enc = run("encode", src, work / f"x{tile}.aek", tile)
                dec = run("decode", work / f"x{tile}.aek", work / f"x{tile}.png", tile)
                files[name] = (work / f"x{tile}.aek").read_bytes()
                print(f"| {label} | {name} | {enc['s']:.1f} | {enc['gb']:.2f} | {dec['s']:.1f} | {dec['gb']:.2f} | "
                      f"{len(files[name]):,} |", flush=True)
            enc = run("jpeg-encode", src, work / "x.jpg")
            dec = run("jpeg-decode", work / "x.jpg", work / "x_jpeg.png")
            print(f"| {label} | Pillow JPEG q85 | {enc['s']:.1f} | {enc['gb']:.2f} | {dec['s']:.1f} | {dec['gb']:.2f} | "
                  f"{(work / 'x.jpg').stat().st_size:,} |", flush=True)
            same = len(set(files.values())) == 1
            print(f"|  | tiled and whole files identical: {same} | | | | | |", flush=True)


if __name__ == "__main__":
    main()
