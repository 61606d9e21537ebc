"""Train the image codec's default model (every quality level, one network), in three stages.

    python scripts/make_default_codec.py                # all stages; resumable: run again with --resume
    python scripts/make_default_codec.py --init DIR     # stages 2 and 3, from the codec saved at DIR
    python scripts/make_default_codec.py --widen DIR    # stage 3 only, from the codec saved at DIR

1. **Pre-training** (``WORK/stage1``): the hyperprior alone (no context model), 6 quality
   levels, on ``../shared/data/photos`` (1,000 Flickr photos, CC BY 2.0; credits in its
   ATTRIBUTION.txt), all but every tenth file by sorted name (those 100 are held out for
   ``benchmarks/compression.py --set flickr``), downsampled by 2 to hide their JPEG artefacts,
   4 random 128 x 128 crops each, 40 epochs. Cheap pixels teach the transforms.
2. **Fine-tuning** (the bundled model): the checkerboard context model added and 8 quality
   levels (gains interpolated from stage 1's), on ``../shared/data/photos_hd``'s training
   split (files whose number is not divisible by 5; the evaluation split is never trained on)
   at full resolution, 12 random 256 x 256 crops each (flipped at random), 5 epochs.
3. **Widening** (the bundled model): two more quality levels above the eight (lambda 0.18 and
   0.35, gains extrapolated in log lambda) so the top of the range reaches about 1.5 bpp, on
   stage 2's data and crops, 3 epochs; qualities 1-8 keep their meaning.

Checkpoints go to ``OUT.ckpt/`` (and ``WORK/stage1.ckpt/``, ``WORK/stage2.ckpt/``) after every
epoch, so an interrupted run continues with ``--resume``. The weights are stored in float16.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from aekit.nn.codec import LAMBDAS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PRETRAIN = dict(context="none", lambdas=(0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483), crop=128,
                crops_per_image=4, downsample=2, epochs=40, lr=1e-3, lr_decay=0.05)
FINE_TUNE = dict(context="checkerboard", crop=256, crops_per_image=12, downsample=1, epochs=5, lr=3e-4,
                 lr_decay=0.1, lambdas=LAMBDAS[:8])
WIDEN = dict(FINE_TUNE, epochs=3, lambdas=LAMBDAS)


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
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "codec", help="stages 1 and 2's model folders")
    ap.add_argument("--init", type=Path, help="start stage 2 from this saved codec (skips stage 1)")
    ap.add_argument("--widen", type=Path, help="start stage 3 from this saved codec (skips stages 1 and 2)")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    start = time.perf_counter()
    train_hd, _ = split_hd(args.photos_hd)
    widen = args.widen
    if widen is None:
        init = args.init
        if init is None:
            init = args.work / "stage1"
            train, _ = split(args.photos)
            stage(PRETRAIN, None, train, init, args.resume, start)
        widen = args.work / "stage2"
        stage(FINE_TUNE, init, train_hd, widen, args.resume, start)
    stage(WIDEN, widen, train_hd, args.out, args.resume, start, again=True)
    half(args.out)
    size = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(f"{time.perf_counter() - start:.0f} s in all; wrote {args.out} ({size:.1f} MB)")


def stage(recipe: dict, init: Path | None, photos: list[Path], out: Path, resume: bool, start: float,
          again: bool = False) -> None:
    """Train ``recipe`` from the codec at ``init`` (None: from scratch) on ``photos`` into
    ``out``; a stage whose model is already there is skipped unless it was interrupted
    (``resume`` and a checkpoint) or ``again`` (the last stage always runs)."""
    from aekit.apps.compress import ImageCodec

    if (out / "config.json").exists() and not again and not (resume and Path(f"{out}.ckpt").exists()):
        print(f"{out}: already trained, kept")
        return
    codec = ImageCodec(**recipe, init_model=None if init is None else str(init), verbose=1)
    codec.fit_to(photos, out, resume=resume)
    for record in codec.training_history_:
        print({k: round(v, 5) for k, v in record.items()})
    print(f"{out}: {len(photos)} photos, {time.perf_counter() - start:.0f} s since the start")


def half(model: Path) -> None:
    """Store the weights at ``model`` in float16 (half the bytes; loading copies them into a
    float32 network, and the model identity in every .aek file is that of the loaded weights)."""
    from aekit.apps.compress import ImageCodec

    codec = ImageCodec.load(model)
    codec.model_.half()
    codec.save(model)


if __name__ == "__main__":
    main()
