"""The token refiner's patience on small image sets: counted in epochs (5, the code before
0.9.13) or in updates (60). With one update an epoch (a set of 150 images is one batch of 128),
five epochs stopped the refiner after a handful of updates, and it drew smears or flat gray.

Each set trains the default ``VAEGenerator`` (2 seeds, both patiences) and samples 1,000
images from the same weights with the refiner (``refine_steps=3``) and without it (0). Printed:
the PCA-16 Fréchet distance of the samples to held-out images (lower is better), beside that
of copies of the training images.

  lfw_subset  150 of scikit-image's 200 faces (25x25 gray) to train, the other 50 held out
  flowers     the first 75 daisy and 75 sunflower photos of ../shared/data/photos to train (read
              at 128x85), the next 50 of each held out

With ``--tokens``, ``TokenGenerator`` (``--generator tokens``) instead: its VQ-VAE and prior
trained 5 and 10 epochs (before 0.9.13) or ``"auto"`` (about 2,000 steps each), by the same
distance.

    python benchmarks/refiner_patience.py                  # both sets: about 25 min on 2 cores
    python benchmarks/refiner_patience.py --sets lfw_subset
    python benchmarks/refiner_patience.py --sets lfw_subset --tokens
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, table  # noqa: E402

import aekit.apps.generate.generator as generator  # noqa: E402
from aekit.apps.generate import TokenGenerator, VAEGenerator, pca_frechet_distance  # noqa: E402
from aekit.data.images import load_files, load_images  # noqa: E402

SIZE = (85, 128)  # the flower photos' most common shape, its longer side 128: the command's default


def image_sets(names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    sets = {}
    if "lfw_subset" in names:
        faces = load_images("lfw_subset").images
        order = np.random.default_rng(0).permutation(len(faces))
        sets["lfw_subset"] = faces[order[:150]], faces[order[150:]]
    if "flowers" in names:
        photos = SHARED / "photos"
        kinds = [sorted((photos / kind).glob("*.jpg")) for kind in ("daisy", "sunflowers")]
        train = [f for files in kinds for f in files[:75]]
        held = [f for files in kinds for f in files[75:125]]
        sets["flowers"] = load_files(train, size=SIZE).images, load_files(held, size=SIZE).images
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="*", choices=["lfw_subset", "flowers"], default=["lfw_subset", "flowers"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--tokens", action="store_true", help="TokenGenerator's epochs instead of the refiner's patience")
    args = ap.parse_args()
    flat = lambda a: np.asarray(a).reshape(len(a), -1)  # noqa: E731
    rows = []
    for name, (train, held) in image_sets(args.sets).items():
        copies = train[np.random.default_rng(0).integers(len(train), size=1000)]
        rows.append([name, "copies of the training images", "", "",
                     f"{pca_frechet_distance(flat(train), flat(held), flat(copies)):.2f}", ""])
        for seed in range(args.seeds):
            if args.tokens:
                for label, kw in (("5 and 10 epochs (before 0.9.13)", dict(epochs=5, prior_epochs=10)),
                                  ('"auto" (0.9.13)', {})):
                    start = time.perf_counter()
                    gen = TokenGenerator(random_state=seed, **kw).fit(train)
                    seconds = time.perf_counter() - start
                    fd = pca_frechet_distance(flat(train), flat(held), flat(gen.sample(1000, seed=seed)))
                    rows.append([name, f"TokenGenerator, {label}", str(seed), "", f"{fd:.2f}", f"{seconds:.0f}"])
                    print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
                continue
            for label, updates in (("5 epochs (before 0.9.13)", 0), ("60 updates (0.9.13)", 60)):
                generator.PATIENCE_UPDATES = updates
                start = time.perf_counter()
                gen = VAEGenerator(random_state=seed).fit(train)
                seconds = time.perf_counter() - start
                distances = []
                for steps in (0, 3):
                    gen.set_params(refine_steps=steps)
                    distances.append(pca_frechet_distance(flat(train), flat(held), flat(gen.sample(1000, seed=seed))))
                rows.append([name, label, str(seed), f"{distances[0]:.2f}", f"{distances[1]:.2f}", f"{seconds:.0f}"])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(table(rows, ["set", "generator / refiner patience", "seed", "FD without refiner", "FD with refiner",
                       "fit s"]))


if __name__ == "__main__":
    main()
