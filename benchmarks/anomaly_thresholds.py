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
prefix holds no labelled window (anomaly_timeseries.py's protocol), and on the first 400,
1,000 or 3,000 rows of synthetic stationary series with 10 events in their next 6,000 rows:
the share of the later normal rows it flags, and of the events it catches, at its threshold
(a bound over the held-out windows), at the held-out rows' own 99th percentile (before
0.9.14) and at the oracle's (exactly 1% of the later normal rows).

False-alarm thresholds (``--fpr``): an ``fpr:R`` threshold promises that new normal samples
score above it R of the time. On the development tables (grouped as anomaly_tabular.py's
studies, 2 seeds), the 8x8 digits (120 training images of digits 1, 3 and 7, 3 seeds) and
the breast-cancer demo's split (5 seeds): the share of new normal samples flagged, at R = 0.05
and 0.01, by the held-out samples' quantile read three ways: numpy's default (linear between
order statistics: the k-th smallest of n is exceeded by a new sample (n + 1 - k) / (n + 1) of
the time, more than R near the top), at the position (n + 1)(1 - R) (``weibull``, which
new samples exceed R of the time on average), and that over the held-out and the training
samples' leave-one-out scores together.

    python benchmarks/anomaly_thresholds.py [--contamination 0.1] [--mnist-digits 0] [--tables | --series | --fpr]
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


FPR_RULES = ("held-out, linear", "held-out, weibull", "held-out + training, weibull")


def fpr_cuts(det: AnomalyDetector | ImageAnomalyDetector, n_train: int, rate: float) -> list[float]:
    """The thresholds ``FPR_RULES`` read from a fitted detector's scores."""
    held = det.decision_scores_[det._split(n_train)[1]]
    return [float(np.quantile(held, 1 - rate)), float(np.quantile(held, 1 - rate, method="weibull")),
            float(np.quantile(det.decision_scores_, 1 - rate, method="weibull"))]


def fpr_part() -> None:
    from anomaly_tabular import study_groups
    from sklearn.datasets import load_breast_cancer

    rates = (0.05, 0.01)
    cases: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray, int, bool]]] = {}
    for group, names in study_groups().items():
        for name in names:
            X, y = load_set(name)
            cases.setdefault(f"tables {group}", []).extend(
                (X[train], X[test][y[test] == 0], name, seed, False) for seed in range(2) for train, test in [split(y, seed)])
    X, y = load_breast_cancer(return_X_y=True)
    benign = np.flatnonzero(y == 1)
    for seed in range(5):
        order = np.random.default_rng(seed).permutation(benign)
        cut = int(0.6 * len(order))
        cases.setdefault("breast cancer (the demo's split)", []).append((X[order[:cut]], X[order[cut:]], "bc", seed, False))
    digits = load_images("digits")
    for digit in (1, 3, 7):
        mine = np.flatnonzero(digits.labels == digit)
        for seed in range(3):
            order = np.random.default_rng(seed).permutation(mine)
            cases.setdefault("8x8 digit images", []).append(
                (digits.images[order[:120]], digits.images[order[120:]], f"digit {digit}", seed, True))
    rows = []
    for case, runs in cases.items():
        flagged = []  # [runs, rates, rules]
        for train, normal, name, seed, images in runs:
            det = (ImageAnomalyDetector if images else AnomalyDetector)(random_state=seed).fit(train)
            new = det.decision_function(normal)
            flagged.append([[float((new > c).mean()) for c in fpr_cuts(det, len(train), r)] for r in rates])
            print(f"{case} {name} seed {seed}: {np.round(flagged[-1], 3).tolist()}", flush=True)
        mean, spread = np.mean(flagged, 0), np.mean(np.abs(np.asarray(flagged) - np.asarray(rates)[:, None]), 0)
        rows.append([case, str(len(runs)), *[f"{m:.1%} ({d:.1%})" for r in range(len(rates))
                                            for m, d in zip(mean[r], spread[r])]])
    print("\nnew normal samples flagged, mean over fits (mean distance from the promised rate)")
    print(table(rows, ["case", "fits", *[f"fpr:{r:g} {rule}" for r in rates for rule in FPR_RULES]]))


def series_part() -> None:
    """NAB (the prefix protocol) and synthetic stationary series: later normal rows flagged and
    events caught by the model's threshold (a bound over the held-out windows, 0.9.14) beside
    the held-out rows' own 99th percentile (the threshold before it), and beside the oracle
    that flags exactly 1% of the later normal rows."""
    from anomaly_timeseries import DEVELOPMENT, PREFIX, REPORTED, load_series

    cases = [(f"NAB {'development' if c in DEVELOPMENT else 'reported'}", f"{c}/{name}", values, int(PREFIX * len(values)),
              labels.astype(bool)) for c in DEVELOPMENT + REPORTED for name, values, labels in load_series(c)]
    cases = [case for case in cases if not case[4][:case[3]].any()]  # a prefix without a labelled window
    for kind in ("sine", "noise", "ar", "two channels"):
        for n_train in (400, 1000, 3000):
            for seed in (0, 1):
                values, labels = synthetic_series(kind, n_train, 6000, seed)
                cases.append(("synthetic", f"{kind}/{n_train}/{seed}", values, n_train, labels))
    results: dict[str, list[list[float]]] = {}
    for group, name, values, n, labels in cases:
        row = series_shares(values, n, labels)
        results.setdefault(group, []).append(row)
        print(group, name, " ".join(f"{v:.3f}" for v in row), flush=True)
    rules = ["bound (0.9.14)", "held-out quantile (before)", "oracle (1% of the later normal rows)"]
    out = []
    for group, rows in results.items():
        a = np.array(rows)
        for i, rule in enumerate(rules):
            out.append([group, rule, f"{np.median(a[:, 2 * i]):.1%}", f"{np.mean(a[:, 2 * i]):.1%}",
                        f"{np.nanmean(a[:, 2 * i + 1]):.3f}"])
    print("\nlater normal rows flagged (those within a window of an event left out) and events with a flagged row")
    print(table(out, ["series", "threshold", "flagged: median", "flagged: mean", "event recall"]))


def synthetic_series(kind: str, n_train: int, n_later: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stationary series (a noisy sine, white noise, an AR(1) at 0.9, or two channels with
    heavy-tailed noise) of ``n_train + n_later`` rows, with 10 events in the later rows
    (bursts of +3 standard deviations, stuck stretches, noise bursts); and its labels."""
    rng = np.random.default_rng(seed)
    n = n_train + n_later
    t = np.arange(n)
    if kind == "sine":
        x = np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=n)
    elif kind == "noise":
        x = rng.normal(size=n)
    elif kind == "ar":
        x, e = np.zeros(n), rng.normal(size=n)
        for i in range(1, n):
            x[i] = 0.9 * x[i - 1] + e[i]
    else:
        x = np.c_[np.sin(2 * np.pi * t / 50) + 0.2 * rng.normal(size=n),
                  2 * np.cos(2 * np.pi * t / 50) + 0.3 * rng.standard_t(4, size=n)]
    labels = np.zeros(n, dtype=bool)
    sd = x[:n_train].std(axis=0)
    events = np.random.default_rng(100 + seed)
    for k, at in enumerate(np.sort(events.choice(np.arange(n_train + 200, n - 50, 400), 10, replace=False))):
        length = 30 if k % 3 == 1 else 10
        if k % 3 == 0:
            x[at:at + length] += 3 * sd
        elif k % 3 == 1:
            x[at:at + length] = x[at]
        else:
            x[at:at + length] += 2 * sd * events.normal(size=x[at:at + length].shape)
        labels[at:at + length] = True
    return x, labels


def series_shares(values: np.ndarray, n: int, labels: np.ndarray) -> list[float]:
    """(flagged, event recall) for the default detector trained on ``values[:n]``, at its
    threshold, at the held-out rows' 99th percentile, and at the oracle's."""
    from aekit.apps.anomaly import SeriesAnomalyDetector

    det = SeriesAnomalyDetector(random_state=0, verbose=0).fit(values[:n])
    scores, later = det.decision_function(values)[n:], labels[n:]
    start = det._validation_starts[0]  # the held-out rows, as the threshold reads them
    clean = det.decision_scores_[start * det.train_stride_:] if start is not None else det.decision_scores_
    edges = np.flatnonzero(np.diff(np.r_[0, later.astype(int), 0]))
    events = list(zip(edges[::2], edges[1::2]))
    near = later.copy()
    for a, b in events:
        near[max(a - det.window_, 0):b + det.window_] = True
    normal = ~near & np.isfinite(scores)
    row = []
    for cut in (det.threshold_, np.nanquantile(clean, 0.99), np.quantile(scores[normal], 0.99)):
        flagged = scores > cut
        row += [float(flagged[normal].mean()), np.mean([flagged[a:b].any() for a, b in events]) if events else np.nan]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contamination", type=float, default=0.1)
    ap.add_argument("--mnist-digits", type=int, nargs="*", default=[0])
    ap.add_argument("--tables", action="store_true", help="the table detector on the development sets instead")
    ap.add_argument("--series", action="store_true", help="the time-series detector on NAB instead")
    ap.add_argument("--fpr", action="store_true", help="fpr: thresholds' false alarms on tables and digits instead")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    if args.tables:
        tables_part(args.contamination)
    elif args.series:
        series_part()
    elif args.fpr:
        fpr_part()
    else:
        images_part(args.contamination, args.mnist_digits)


if __name__ == "__main__":
    main()
