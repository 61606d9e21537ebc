"""The bit-balance loss of BinaryHasher: mAP of Hamming ranking at 32 bits (70/30 split,
relevant = same class) for several weights, on three sources:

  digits      scikit-learn's 8x8 digits, 10 classes (where the weight is chosen)
  lfw_subset  scikit-image's 100 faces and 100 non-faces, 25x25 gray
  flowers     40 daisy and 40 sunflower photos of ../shared/data/photos as a user's folder
              holds them: every third gray, every fifth squeezed to half its width, saved as
              PNG, JPEG and WebP in turn (read at 128x85 colour, the folder's common size)

With weight 0 (the default before 0.9.12) the codes of the whole flower folder collapsed to one
through `aekit hash fit`.

    python benchmarks/hash_balance.py [--weights 0,0.03,0.1,1] [--seeds 3] [--sets digits,lfw_subset,flowers]
    python benchmarks/hash_balance.py --weights 0.03 --activations relu,leaky_relu   # the networks' activation
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, table  # noqa: E402
from discrete_codes import mean_average_precision  # noqa: E402

from aekit.apps.codes import BinaryHasher  # noqa: E402
from aekit.apps.codes.hashing import bit_health  # noqa: E402
from aekit.data.images import load_images  # noqa: E402

BITS = 32


def flower_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The 80 flower photos written as described above, read back as aekit reads the folder."""
    from PIL import Image

    files = sorted((SHARED / "photos" / "daisy").glob("*.jpg"))[:40] + \
        sorted((SHARED / "photos" / "sunflowers").glob("*.jpg"))[:40]
    for i, f in enumerate(files):
        im = Image.open(f)
        if i % 3 == 0:
            im = im.convert("L")
        if i % 5 == 0:
            im = im.resize((im.width // 2, im.height))
        im.save(folder / f"p{i:03d}.{['png', 'jpg', 'webp'][i % 3]}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notes on sizes
        images = load_images(folder).images
    return images, (np.arange(len(files)) >= 40).astype(int)


def sources(names: list[str], tmp: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    found = {}
    for name in names:
        if name == "flowers":
            found[name] = flower_folder(tmp)
        else:
            images = load_images(name)
            found[name] = (images.images, images.labels)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="0,0.03,0.1,1")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sets", default="digits,lfw_subset,flowers")
    parser.add_argument("--activations", default=BinaryHasher().activation)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    weights = [float(w) for w in args.weights.split(",")]
    activations = args.activations.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (x, y) in sources(args.sets.split(","), Path(tmp)).items():
            train, test = train_test_split(np.arange(len(y)), test_size=0.3, stratify=y, random_state=0)
            for weight, activation in itertools.product(weights, activations):
                start, maps, used = time.perf_counter(), [], []
                for seed in range(args.seeds):
                    hasher = BinaryHasher(BITS, balance=weight, activation=activation, random_state=seed).fit(x[train])
                    maps.append(mean_average_precision(hasher.hash(x[train]), y[train], hasher.hash(x[test]), y[test]))
                    used.append(bit_health(hasher.encode(x[train]))["bits_used"])
                rows.append([name, f"{weight:g}", activation, f"{np.mean(maps):.3f} ± {np.std(maps):.3f}",
                             " ".join(map(str, used)), f"{time.perf_counter() - start:.0f}"])
                print(f"{name} {weight:g} {activation} done", file=sys.stderr, flush=True)
    print(f"\nmAP of Hamming ranking at {BITS} bits over {args.seeds} seeds\n")
    print(table(rows, ["set", "balance weight", "activation", "mAP", "bits in use, by seed", "seconds"]))


if __name__ == "__main__":
    main()
