"""How many new normal samples a contamination threshold flags. The share it promises is that
of the training samples it flags (PyOD's meaning), so on new samples like the training ones
it should flag about as many.

Images: one default ImageAnomalyDetector per case, scored on new images of the training
class (the normal ones) and of the other classes. The threshold is the (1 - contamination)
quantile of three sets of scores from the same fit:

  in-sample      the training images scored as new ones are: each finds itself among its
                 nearest references (what 0.9.7 and earlier read)
  leave-one-out  each training image compared without its own reference (decision_scores_
                 since 0.9.8, which labels_ reads)
  held-out       the 15% of training images held out of the gradient steps (what the
                 contamination threshold of image detectors reads since 0.9.8, and an
                 ``fpr:`` threshold reads)

Cases: scikit-learn's 8x8 digits (bundled), 120 training images of digits 1, 3 and 7, 3
seeds each; colour photos (../shared/data/photos, read at 32x32), 140 training photos of each
of the 5 flowers, 2 seeds each, the other 60 new; MNIST, 3,000 training images of one digit,
its test images.

Tables (``--tables``): the default AnomalyDetector on each development set (the clean
protocol of anomaly_tabular.py, 2 seeds), its threshold (leave-one-out training scores)
beside the held-out rows' quantile, on the test set's normal rows.

Time series (``--series``): the default SeriesAnomalyDetector (threshold ``fpr:0.01``, on the
held-out end of its training stretch) trained on the first 15% of each NAB series whose
prefix holds no labelled window (anomaly_timeseries.py's protocol), and the share of the
later rows outside every labelled window that it flags.

    python benchmarks/anomaly_thresholds.py [--contamination 0.1] [--mnist-digits 0] [--tables | --series]
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, table  # noqa: E402
from _mnist import load_mnist  # noqa: E402
from anomaly_tabular import development_sets, load_set, split  # noqa: E402

from aekit import AnomalyDetector  # noqa: E402
from aekit.apps.anomaly import ImageAnomalyDetector  # noqa: E402
from aekit.data.images import load_images  # noqa: E402


def image_shares(train: np.ndarray, normal: np.ndarray, others: np.ndarray, contamination: float,
                 seed: int) -> list[float]:
    """Shares of ``normal`` and of ``others`` flagged at each of the three thresholds."""
    det = ImageAnomalyDetector(contamination=contamination, random_state=seed).fit(train)
    train_idx, val_idx = det._split(len(train))
    scores = {"in-sample": np.r_[det.decision_function(train[train_idx]), det.decision_scores_[val_idx]],
              "leave-one-out": det.decision_scores_, "held-out": det.decision_scores_[val_idx]}
    new, other = det.decision_function(normal), det.decision_function(others)
    cuts = [np.quantile(s, 1 - contamination) for s in scores.values()]
    return [float((new > c).mean()) for c in cuts] + [float((other > c).mean()) for c in cuts]


def images_part(contamination: float, mnist_digits: list[int]) -> None:
    rows = []
    digits = load_images("digits")
    runs = []
    for digit in (1, 3, 7):
        mine = np.flatnonzero(digits.labels == digit)
        for seed in range(3):
            order = np.random.default_rng(seed).permutation(mine)
            others = np.flatnonzero(digits.labels != digit)[:300]
            runs.append(image_shares(digits.images[order[:120]], digits.images[order[120:]], digits.images[others],
                                     contamination, seed))
            print(f"digits {digit} seed {seed}: " + " ".join(f"{v:.3f}" for v in runs[-1]), flush=True)
    rows.append(["8x8 digits, 120 training images (9 fits)", *[f"{v:.1%}" for v in np.mean(runs, 0)]])
    flowers = {f.name: load_images(f, size=(32, 32)).images for f in sorted((SHARED / "photos").iterdir()) if f.is_dir()}
    runs = []
    for flower, images in flowers.items():
        others = np.concatenate([v for k, v in flowers.items() if k != flower])
        for seed in range(2):
            order = np.random.default_rng(seed).permutation(len(images))
            runs.append(image_shares(images[order[:140]], images[order[140:]], others, contamination, seed))
            print(f"{flower} seed {seed}: " + " ".join(f"{v:.3f}" for v in runs[-1]), flush=True)
    rows.append([f"flower photos, 140 training photos ({len(runs)} fits)", *[f"{v:.1%}" for v in np.mean(runs, 0)]])
    if mnist_digits:
        x_train, y_train, x_test, y_test = load_mnist()
        for digit in mnist_digits:
            shares = image_shares(x_train[y_train == digit][:3000], x_test[y_test == digit], x_test[y_test != digit],
                                  contamination, 0)
            rows.append([f"MNIST {digit}, 3,000 training images", *[f"{v:.1%}" for v in shares]])
    names = ("in-sample", "leave-one-out", "held-out")
    print(f"\nnew images flagged at contamination {contamination:g}, threshold from each set of training scores")
    print(table(rows, ["case", *[f"normal: {n}" for n in names], *[f"others: {n}" for n in names]]))


def tables_part(contamination: float) -> None:
    rows, shares = [], []
    for name in development_sets():
        X, y = load_set(name)
        runs = []
        for seed in range(2):
            train, test = split(y, seed)
            det = AnomalyDetector(contamination=contamination, random_state=seed).fit(X[train])
            held = det.decision_scores_[det._split(len(train))[1]]
            new = det.decision_function(X[test][y[test] == 0])
            runs.append([(new > det.threshold_).mean(), (new > np.quantile(held, 1 - contamination)).mean(), len(held)])
        shares.append(np.mean(runs, 0))
        rows.append([name, f"{shares[-1][0]:.1%}", f"{shares[-1][1]:.1%}", f"{shares[-1][2]:.0f}"])
        print(" | ".join(rows[-1]), flush=True)
    rows.append(["**mean**", *[f"**{v:.1%}**" for v in np.mean(shares, 0)[:2]], ""])
    rows.append(["median", *[f"{v:.1%}" for v in np.median(shares, 0)[:2]], ""])
    print(f"\nnew normal rows flagged at contamination {contamination:g} (2 seeds)")
    print(table(rows, ["set", "threshold (training rows, leave-one-out)", "held-out rows' quantile", "held-out rows"]))


def series_part() -> None:
    from anomaly_timeseries import DEVELOPMENT, PREFIX, REPORTED, load_series

    from aekit.apps.anomaly import SeriesAnomalyDetector

    rows, shares = [], []
    for category in DEVELOPMENT + REPORTED:
        for name, values, labels in load_series(category):
            n = int(PREFIX * len(values))
            if labels[:n].any():
                continue
            det = SeriesAnomalyDetector(random_state=0).fit(values[:n])
            scores = det.decision_function(values)
            later = (np.arange(len(values)) >= n) & (labels == 0) & np.isfinite(scores)
            shares.append(float((scores[later] > det.threshold_).mean()))
            rows.append([f"{category}/{name}", f"{shares[-1]:.1%}"])
            print(" | ".join(rows[-1]), flush=True)
    rows += [["**median**", f"**{np.median(shares):.1%}**"], ["mean", f"{np.mean(shares):.1%}"]]
    print(f"\nlater normal rows flagged by the default threshold ({det.threshold_rule_.describe()})")
    print(table(rows, ["series", "flagged"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contamination", type=float, default=0.1)
    ap.add_argument("--mnist-digits", type=int, nargs="*", default=[0])
    ap.add_argument("--tables", action="store_true", help="the table detector on the development sets instead")
    ap.add_argument("--series", action="store_true", help="the time-series detector on NAB instead")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.tables:
        tables_part(args.contamination)
    elif args.series:
        series_part()
    else:
        images_part(args.contamination, args.mnist_digits)


if __name__ == "__main__":
    main()
