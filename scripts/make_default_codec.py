"""Train the image codec's default model (every quality level, one network), in four stages.

    python scripts/make_default_codec.py                # all stages; resumable: run again with --resume
    python scripts/make_default_codec.py --init DIR     # stages 2-4, from the codec saved at DIR
    python scripts/make_default_codec.py --widen DIR    # stages 3 and 4, from the codec saved at DIR
    python scripts/make_default_codec.py --polish DIR   # stage 4 only, from the codec saved at DIR

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
4. **Polishing** (the bundled model; meant for a GPU, ``--device cuda``, the default where
   torch sees one): the same photos, 64 crops each (bytes in memory: 2.2 GB), batch 16, in
   passes of ``POLISH_EPOCHS`` = (23, 21) epochs (``WORK/stage4a``, then the bundled model),
   each pass Adam from 1e-4 falling to 1e-5 along a cosine (a warm restart): 15,300 + 14,000
   steps, about 29 times the crops that stages 2 and 3 saw together. On one H200 each pass took
   about 5 minutes; on 2 CPU cores both would take about a day and a half. ``--seconds S``
   instead runs one pass of as many epochs as fit S seconds on this machine (it times 40 steps
   first; that is how the two passes' epochs were picked) and prints them.

Checkpoints go to ``OUT.ckpt/`` (and ``WORK/stageN.ckpt/``) after every epoch, so an
interrupted run continues with ``--resume``. Each stage's weights are stored in float16, and
the next stage starts from those.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from aekit.nn.codec import LAMBDAS

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PRETRAIN = dict(context="none", lambdas=(0.0018, 0.0035, 0.0067, 0.013, 0.025, 0.0483), crop=128,
                crops_per_image=4, downsample=2, epochs=40, lr=1e-3, lr_decay=0.05)
FINE_TUNE = dict(context="checkerboard", crop=256, crops_per_image=12, downsample=1, epochs=5, lr=3e-4,
                 lr_decay=0.1, lambdas=LAMBDAS[:8])
WIDEN = dict(FINE_TUNE, epochs=3, lambdas=LAMBDAS)
POLISH_EPOCHS = (23, 21)
POLISH = dict(WIDEN, crops_per_image=64, batch_size=16, lr=1e-4, lr_decay=0.1)


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
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "codec", help="the earlier stages' model folders")
    ap.add_argument("--init", type=Path, help="start stage 2 from this saved codec (skips stage 1)")
    ap.add_argument("--widen", type=Path, help="start stage 3 from this saved codec (skips stages 1 and 2)")
    ap.add_argument("--polish", type=Path, help="start stage 4 from this saved codec (skips stages 1-3)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="stage 4's device")
    ap.add_argument("--epochs", type=int, nargs="+", default=list(POLISH_EPOCHS),
                    help="stage 4's epochs, one number per pass")
    ap.add_argument("--seconds", type=float, help="stage 4: one pass of as many epochs as fit this many seconds here")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    start = time.perf_counter()
    train_hd, _ = split_hd(args.photos_hd)
    polish = args.polish
    if polish is None:
        widen = args.widen
        if widen is None:
            init = args.init
            if init is None:
                init = args.work / "stage1"
                train, _ = split(args.photos)
                stage(PRETRAIN, None, train, init, args.resume, start)
            widen = args.work / "stage2"
            stage(FINE_TUNE, init, train_hd, widen, args.resume, start)
        polish = args.work / "stage3"
        stage(WIDEN, widen, train_hd, polish, args.resume, start)
    if torch.device(args.device).type == "cuda":  # fixed crop shapes: let cuDNN pick its fastest kernels
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
    passes = args.epochs
    if args.seconds is not None:
        passes = [epochs_within(args.seconds, len(train_hd), args.device)]
        print(f"stage 4: {passes[0]} epochs fit {args.seconds:.0f} s on {args.device} "
              f"(rerun with --epochs {passes[0]})")
    for i, epochs in enumerate(passes):
        out = args.out if i == len(passes) - 1 else args.work / f"stage4{chr(ord('a') + i)}"
        stage(dict(POLISH, epochs=epochs, device=args.device), polish, train_hd, out, args.resume, start,
              again=out == args.out)
        polish = out
    size = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(f"{time.perf_counter() - start:.0f} s in all; wrote {args.out} ({size:.1f} MB)")


def stage(recipe: dict, init: Path | None, photos: list[Path], out: Path, resume: bool, start: float,
          again: bool = False) -> None:
    """Train ``recipe`` from the codec at ``init`` (None: from scratch) on ``photos`` into
    ``out``, stored in float16; a stage whose model is already there is skipped unless it was
    interrupted (``resume`` and a checkpoint) or ``again`` (the last stage always runs)."""
    from aekit.apps.compress import ImageCodec

    if (out / "config.json").exists() and not again and not (resume and Path(f"{out}.ckpt").exists()):
        print(f"{out}: already trained, kept")
        return
    codec = ImageCodec(**recipe, init_model=None if init is None else str(init), verbose=1)
    codec.fit_to(photos, out, resume=resume)
    for record in codec.training_history_:
        print({k: round(v, 5) for k, v in record.items()})
    half(out)
    print(f"{out}: {len(photos)} photos, {time.perf_counter() - start:.0f} s since the start")


def epochs_within(seconds: float, photos: int, device: str) -> int:
    """Stage 4's epochs that fit ``seconds`` on ``device``, from the time of 40 steps of the
    stage's network on random crops (after 10 to warm up)."""
    from aekit.apps.compress import ImageCodec
    from aekit.nn.codec import HyperpriorCodec

    codec = ImageCodec(**POLISH, device=device)
    codec._check_params()
    model = HyperpriorCodec(codec.channels, codec.latent_channels, codec.lambdas, codec.context).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-6)
    x = torch.randint(0, 256, (codec.batch_size, 3, codec.crop, codec.crop), dtype=torch.uint8, device=device)
    for step in range(50):
        if step == 10:
            synchronize(device)
            t0 = time.perf_counter()
        loss, _ = model.loss(x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    synchronize(device)
    per_step = (time.perf_counter() - t0) / 40
    crops = photos * codec.crops_per_image
    steps = -(-(crops - round(codec.validation_fraction * crops)) // codec.batch_size)  # as ImageCodec splits them
    # validation and the checkpoint add a few percent to every epoch
    return max(1, int(seconds / (1.08 * steps * per_step + 1.0)))


def synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def half(model: Path) -> None:
    """Store the weights at ``model`` in float16 (half the bytes; loading copies them into a
    float32 network, and the model identity in every .aek file is that of the loaded weights)."""
    from aekit.apps.compress import ImageCodec

    codec = ImageCodec.load(model)
    codec.model_.half()
    codec.save(model)


if __name__ == "__main__":
    main()
