"""Train the image codec's default model (every quality level, one network).

    python scripts/make_default_codec.py              # resumable: run again with --resume

Training photos: ``../shared/data/photos`` (1,000 Flickr photos, CC BY 2.0; credits in its
ATTRIBUTION.txt), all but every tenth file by sorted name: those 100 are held out for
``benchmarks/compression.py`` and never trained on. Each photo is downsampled by 2 (to hide
its JPEG artefacts) and gives 4 random 128 x 128 crops. Checkpoints go to ``OUT.ckpt/`` after
every epoch, so an interrupted run continues with ``--resume``. The weights are stored in
float16.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"


def split(photos: Path) -> tuple[list[Path], list[Path]]:
    """(training, held-out) photos: every tenth file by sorted path is held out."""
    files = sorted(photos.rglob("*.jpg"))
    return [p for i, p in enumerate(files) if i % 10], files[::10]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=PHOTOS)
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "aekit" / "apps" / "compress" / "default_model")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    from aekit.apps.compress import ImageCodec

    train, _ = split(args.photos)
    start = time.perf_counter()
    ImageCodec(epochs=args.epochs, verbose=1).fit_to(train, args.out, resume=args.resume)
    seconds = time.perf_counter() - start
    half(args.out)
    size = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(f"trained on {len(train)} photos in {seconds:.0f} s; wrote {args.out} ({size:.1f} MB)")


def half(model: Path) -> None:
    """Store the weights at ``model`` in float16 (half the bytes; loading copies them into a
    float32 network, and the model identity in every .aek file is that of the loaded weights)."""
    from aekit.apps.compress import ImageCodec

    codec = ImageCodec.load(model)
    codec.model_.half()
    codec.save(model)


if __name__ == "__main__":
    main()
