"""Train the image codec's default model (every quality level, one network), in two stages.

    python scripts/make_default_codec.py              # both stages; resumable: run again with --resume
    python scripts/make_default_codec.py --init DIR   # stage 2 only, from the codec saved at DIR

1. **Pre-training** (``WORK/stage1``): the hyperprior alone (no context model), 6 quality
   levels, on ``../shared/data/photos`` (1,000 Flickr photos, CC BY 2.0; credits in its
   ATTRIBUTION.txt), all but every tenth file by sorted name (those 100 are held out for
   ``benchmarks/compression.py --set flickr``), downsampled by 2 to hide their JPEG artefacts,
   4 random 128 x 128 crops each, 40 epochs. Cheap pixels teach the transforms.
2. **Fine-tuning** (the bundled model): the checkerboard context model added and 8 quality
   levels (gains interpolated from stage 1's), on ``../shared/data/photos_hd``'s training
   split (files whose number is not divisible by 5; the evaluation split is never trained on)
   at full resolution, 12 random 256 x 256 crops each (flipped at random).

Checkpoints go to ``OUT.ckpt/`` (and ``WORK/stage1.ckpt/``) after every epoch, so an
interrupted run continues with ``--resume``. The weights are stored in float16.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PRETRAIN = dict(context="none", lambdas=(0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483), crop=128,
                crops_per_image=4, downsample=2, epochs=40, lr=1e-3, lr_decay=0.05)
FINE_TUNE = dict(context="checkerboard", crop=256, crops_per_image=12, downsample=1, epochs=5, lr=3e-4,
                 lr_decay=0.1)


def split(photos: Path) -> tuple[list[Path], list[Path]]:
    """Flickr (training, held-out) photos: every tenth file by sorted path is held out."""
    files = sorted(photos.rglob("*.jpg"))
    return [p for i, p in enumerate(files) if i % 10], files[::10]


def split_hd(photos: Path) -> tuple[list[Path], list[Path]]:
    """photos_hd (training, evaluation) files: ``NNN_*.jpg`` with NNN divisible by 5 are evaluation."""
    files = [p for p in sorted(photos.glob("*.jpg")) if p.name[:3].isdigit()]
    return [p for p in files if int(p.name[:3]) % 5], [p for p in files if int(p.name[:3]) % 5 == 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=SHARED / "photos", help="stage 1's photos")
    ap.add_argument("--photos-hd", type=Path, default=SHARED / "photos_hd", help="stage 2's photos")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "aekit" / "apps" / "compress" / "default_model")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "codec", help="stage 1's model folder")
    ap.add_argument("--init", type=Path, help="start stage 2 from this saved codec (skips stage 1)")
    ap.add_argument("--epochs", type=int, default=FINE_TUNE["epochs"], help="stage 2's epochs")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    from aekit.apps.compress import ImageCodec

    start = time.perf_counter()
    init = args.init
    if init is None:
        init = args.work / "stage1"
        if not (init / "config.json").exists() or args.resume and (args.work / "stage1.ckpt").exists():
            train, _ = split(args.photos)
            ImageCodec(**PRETRAIN, verbose=1).fit_to(train, init, resume=args.resume)
            print(f"stage 1: {len(train)} photos, {time.perf_counter() - start:.0f} s")
    train, _ = split_hd(args.photos_hd)
    codec = ImageCodec(**{**FINE_TUNE, "epochs": args.epochs}, init_model=str(init), verbose=1)
    codec.fit_to(train, args.out, resume=args.resume)
    for record in codec.training_history_:
        print({k: round(v, 5) for k, v in record.items()})
    half(args.out)
    size = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(f"trained on {len(train)} photos in {time.perf_counter() - start:.0f} s; wrote {args.out} ({size:.1f} MB)")


def half(model: Path) -> None:
    """Store the weights at ``model`` in float16 (half the bytes; loading copies them into a
    float32 network, and the model identity in every .aek file is that of the loaded weights)."""
    from aekit.apps.compress import ImageCodec

    codec = ImageCodec.load(model)
    codec.model_.half()
    codec.save(model)


if __name__ == "__main__":
    main()
