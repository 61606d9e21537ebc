"""How many new normal images a contamination threshold flags: the share it promises is
that of the training images it flags (PyOD's meaning), so on new images like the training
ones it should flag about as many.

One default ImageAnomalyDetector per case, scored on new images of the training class (the
normal ones) and of the other classes. The threshold is the (1 - contamination) quantile of
three sets of scores from the same fit:

  in-sample      the training images scored as new ones are: each finds itself among its
                 nearest references (what 0.9.7 and earlier read)
  leave-one-out  each training image compared without its own reference (decision_scores_
                 since 0.9.8, which labels_ reads)
  held-out       the 15% of training images held out of the gradient steps (what the
                 contamination threshold of image detectors reads since 0.9.8, and an
                 ``fpr:`` threshold reads)

Cases: scikit-learn's 8x8 digits (bundled), 120 training images of digits 1, 3 and 7, 3
seeds each; MNIST, 3,000 training images of one digit, its 10,000 test images.

    python benchmarks/image_thresholds.py [--contamination 0.1] [--mnist-digits 0]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from _mnist import load_mnist  # noqa: E402

from aekit.apps.anomaly import ImageAnomalyDetector  # noqa: E402
from aekit.data.images import load_images  # noqa: E402


def flagged_shares(train: np.ndarray, normal: np.ndarray, others: np.ndarray, contamination: float,
                   seed: int) -> list[float]:
    """Shares of ``normal`` and of ``others`` flagged at each of the three thresholds."""
    det = ImageAnomalyDetector(contamination=contamination, random_state=seed).fit(train)
    train_idx, val_idx = det._split(len(train))
    scores = {"in-sample": np.r_[det.decision_function(train[train_idx]), det.decision_scores_[val_idx]],
              "leave-one-out": det.decision_scores_, "held-out": det.decision_scores_[val_idx]}
    new, other = det.decision_function(normal), det.decision_function(others)
    cuts = [np.quantile(s, 1 - contamination) for s in scores.values()]
    return [float((new > c).mean()) for c in cuts] + [float((other > c).mean()) for c in cuts]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contamination", type=float, default=0.1)
    ap.add_argument("--mnist-digits", type=int, nargs="*", default=[0])
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    digits = load_images("digits")
    runs = []
    for digit in (1, 3, 7):
        mine = np.flatnonzero(digits.labels == digit)
        for seed in range(3):
            order = np.random.default_rng(seed).permutation(mine)
            others = np.flatnonzero(digits.labels != digit)[:300]
            runs.append(flagged_shares(digits.images[order[:120]], digits.images[order[120:]], digits.images[others],
                                       args.contamination, seed))
            print(f"digits {digit} seed {seed}: " + " ".join(f"{v:.3f}" for v in runs[-1]), flush=True)
    rows.append(["8x8 digits, 120 training images (9 fits)", *[f"{v:.1%}" for v in np.mean(runs, 0)]])
    if args.mnist_digits:
        x_train, y_train, x_test, y_test = load_mnist()
        for digit in args.mnist_digits:
            shares = flagged_shares(x_train[y_train == digit][:3000], x_test[y_test == digit], x_test[y_test != digit],
                                    args.contamination, 0)
            rows.append([f"MNIST {digit}, 3,000 training images", *[f"{v:.1%}" for v in shares]])
    names = ("in-sample", "leave-one-out", "held-out")
    print(f"\nnew images flagged at contamination {args.contamination:g}, threshold from each set of training scores")
    print(table(rows, ["case", *[f"normal: {n}" for n in names], *[f"others: {n}" for n in names]]))


if __name__ == "__main__":
    main()
