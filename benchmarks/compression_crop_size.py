"""The crop-size lever of the image codec (issue 32), at a fixed training budget.

Continues a saved codec (default: ``build/codec/stage3``, the codec before stage 4) for
``--steps`` Adam steps on ``photos_hd``'s training photos, once per crop size, with the same
number of pixels in every step (256 x 256 at batch 8, 128 x 128 at batch 32, ...), the same
learning rate (1e-4 falling to 1e-5) and the same ``--seed``. Each result is scored by the training
objective (rate in bits per pixel + lambda x 255^2 x MSE, the qualities in turn) on the same
256 x 256 crops of the evaluation photos (4 per photo, fixed), beside the starting codec.

    python benchmarks/compression_crop_size.py --steps 240     # 8-20 minutes a crop size on 2 cores
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from _common import SHARED, table  # noqa: E402
from make_default_codec import split_hd  # noqa: E402

from aekit.apps.compress import ImageCodec  # noqa: E402
from aekit.training import evaluate_loss  # noqa: E402

PIXELS_PER_STEP = 8 * 256 * 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--start", default=str(Path(__file__).resolve().parents[1] / "build" / "codec" / "stage3"),
                    help="the saved codec every variant continues")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--crops", type=int, nargs="+", default=[256, 128], help="crop sides to compare")
    ap.add_argument("--seed", type=int, default=0, help="the crops drawn and the training noise")
    args = ap.parse_args()
    train, evaluation = split_hd(SHARED / "photos_hd")
    start = ImageCodec.load(args.start)
    scorer = ImageCodec(crop=256, crops_per_image=4, random_state=1)
    held_out = scorer._crops(evaluation, np.random.default_rng(1))
    rows = [["start (" + Path(args.start).name + ")", "-", "-", f"{evaluate_loss(start.model_, held_out, 64):.4f}", "-"]]
    for crop in args.crops:
        batch = PIXELS_PER_STEP // (crop * crop)
        per_photo = math.ceil(args.steps * batch / len(train))  # one epoch of about --steps steps
        codec = ImageCodec(crop=crop, crops_per_image=per_photo, batch_size=batch, epochs=1, lr=1e-4, lr_decay=0.1,
                           validation_fraction=0.0, lambdas=tuple(start.lambdas), init_model=args.start,
                           random_state=args.seed, verbose=1)
        t0 = time.perf_counter()
        codec.fit(train)
        seconds = time.perf_counter() - t0
        steps = math.ceil(len(train) * per_photo / batch)
        rows.append([f"{crop} x {crop}", str(batch), str(steps), f"{evaluate_loss(codec.model_, held_out, 64):.4f}",
                     f"{seconds:.0f}"])
        print(rows[-1], flush=True)
    print(f"\n### Crop size at {PIXELS_PER_STEP:,} pixels a step: the objective on {len(held_out)} crops of the "
          f"{len(evaluation)} evaluation photos (lower is better)\n")
    print(table(rows, ["crops", "batch", "steps", "rate + lambda x distortion", "training s"]))


if __name__ == "__main__":
    main()
