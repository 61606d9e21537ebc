"""Time-series anomaly detection on the Numenta Anomaly Benchmark (../shared/data/timeseries/nab).

Protocol (the data README's, no point adjustment): each series is trained on its first 15%
(NAB's probationary period) and every timestamp is scored; the metrics are over the
timestamps after that prefix, labelled 1 inside a labelled window. Per series: AUC-ROC,
AUC-PR (average precision) and event recall at a 1% false-alarm rate (the threshold flags 1%
of the out-of-window timestamps after the prefix; a window counts as found when one of its
timestamps is flagged). Means per category and over the development and reported halves;
series are read in file order (repeated timestamps kept, as the README asks), so the
methods see values, not timestamps.

Categories are split before any result was seen: defaults are chosen on DEVELOPMENT and
reported on REPORTED.

    python benchmarks/anomaly_timeseries.py                       # every method, every category
    python benchmarks/anomaly_timeseries.py --categories realTraffic --methods aekit zscore
    python benchmarks/anomaly_timeseries.py --methods "aekit:window=32" aekit
    python benchmarks/anomaly_timeseries.py --speed                # training and scoring rates

Methods: ``random`` (the floor), ``zscore`` (a rolling z-score over the previous WINDOW
values), ``iforest`` and ``pca`` on windows, ``discord`` (the matrix profile of each window
against the training prefix, stumpy's AB-join), and ``aekit`` (``SeriesAnomalyDetector``
defaults; ``aekit:k=v,...`` passes options). Window methods turn window scores into row
scores the same way aekit does: a row's score is the mean over the windows that cover it.
``fleet`` is aekit with one model per category instead of one per series: every series of the
category in one table (``id_col``), trained on all their prefixes at once, each series scored
on its own; it measures what sharing a model across series costs (a fleet of machines).

    python benchmarks/anomaly_timeseries.py --methods aekit fleet --seeds 1
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, Timer, parse_spec, set_threads, table  # noqa: E402

NAB = SHARED / "timeseries" / "nab"
DEVELOPMENT = ["artificialWithAnomaly", "realAdExchange", "realTraffic"]
REPORTED = ["realAWSCloudwatch", "realKnownCause", "realTweets"]
PREFIX = 0.15
WINDOW = 64  # the window of the baselines (aekit's default window)
FALSE_ALARM_RATE = 0.01
DEFAULT_METHODS = ["random", "zscore", "iforest", "pca", "discord", "aekit"]


def load_series(category: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, values [T], labels [T])`` for every file of a category with a window."""
    windows = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    out = []
    for path in sorted((NAB / category).glob("*.csv")):
        spans = windows[f"{category}/{path.name}"]
        if not spans:
            continue
        frame = pd.read_csv(path)
        stamps = pd.to_datetime(frame["timestamp"]).to_numpy()
        labels = np.zeros(len(frame), dtype=int)
        for start, end in spans:
            labels[(stamps >= np.datetime64(start[:19])) & (stamps <= np.datetime64(end[:19]))] = 1
        out.append((path.stem, frame["value"].to_numpy(dtype=np.float64), labels))
    return out


# ---------------------------------------------------------------------- metrics
def evaluate(scores: np.ndarray, labels: np.ndarray, start: int) -> dict[str, float] | None:
    """AUC-ROC, AUC-PR and event recall over the timestamps from ``start`` on (None when no
    labelled timestamp lies there)."""
    s, y = scores[start:], labels[start:]
    if not y.any() or y.all():
        return None
    threshold = np.quantile(s[y == 0], 1 - FALSE_ALARM_RATE)
    flagged = s > threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], y, [0]])))
    events = [flagged[a:b].any() for a, b in zip(edges[::2], edges[1::2], strict=True)]
    return {"auc_roc": roc_auc_score(y, s), "auc_pr": average_precision_score(y, s),
            "event_recall": float(np.mean(events)), "events": len(events)}


# ---------------------------------------------------------------------- window helpers
def windows_of(values: np.ndarray, width: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(values, width)


def rows_from_windows(window_scores: np.ndarray, n: int, width: int) -> np.ndarray:
    """Each row's mean over the stride-1 windows that cover it."""
    total = np.convolve(window_scores, np.ones(width))[:n]
    count = np.convolve(np.ones(len(window_scores)), np.ones(width))[:n]
    return total / count


def scaled(train: np.ndarray, values: np.ndarray) -> np.ndarray:
    return (values - train.mean()) / (train.std() + 1e-12)


# ---------------------------------------------------------------------- methods
def method_random(train: np.ndarray, values: np.ndarray, seed: int, **_: object) -> np.ndarray:
    return np.random.default_rng(seed).random(len(values))


def method_zscore(train: np.ndarray, values: np.ndarray, seed: int, window: int = WINDOW, **_: object) -> np.ndarray:
    """|x - mean| / std of the previous ``window`` values (the first rows use what there is)."""
    s = pd.Series(values)
    past = s.shift(1)
    mean = past.rolling(window, min_periods=1).mean()
    std = past.rolling(window, min_periods=2).std()
    z = ((s - mean).abs() / (std + 1e-9 * (abs(s).mean() + 1))).fillna(0.0)
    return z.to_numpy()


def method_iforest(train: np.ndarray, values: np.ndarray, seed: int, window: int = WINDOW, **_: object) -> np.ndarray:
    from sklearn.ensemble import IsolationForest

    x, t = scaled(train, values), scaled(train, train)
    model = IsolationForest(random_state=seed).fit(windows_of(t, window))
    return rows_from_windows(-model.score_samples(windows_of(x, window)), len(values), window)


def method_pca(train: np.ndarray, values: np.ndarray, seed: int, window: int = WINDOW, **_: object) -> np.ndarray:
    from sklearn.decomposition import PCA

    x, t = scaled(train, values), scaled(train, train)
    pca = PCA(n_components=0.9, random_state=seed).fit(windows_of(t, window))
    w = windows_of(x, window)
    error = ((pca.inverse_transform(pca.transform(w)) - w) ** 2).mean(1)
    return rows_from_windows(error, len(values), window)


def method_discord(train: np.ndarray, values: np.ndarray, seed: int, window: int = WINDOW, **_: object) -> np.ndarray:
    import stumpy

    profile = stumpy.stump(values.astype(np.float64), window, T_B=train.astype(np.float64), ignore_trivial=False)
    distance = np.nan_to_num(profile[:, 0].astype(np.float64), posinf=0.0)
    return rows_from_windows(distance, len(values), window)


def method_aekit(train: np.ndarray, values: np.ndarray, seed: int, **options: object) -> np.ndarray:
    from aekit.apps.anomaly import SeriesAnomalyDetector

    det = SeriesAnomalyDetector(random_state=seed, **options).fit(train)
    return det.decision_function(values)


METHODS = {name[len("method_"):]: fn for name, fn in globals().items() if name.startswith("method_")}


def fleet_scores(series: list[tuple[str, np.ndarray, np.ndarray]], seed: int,
                 **options: object) -> tuple[dict[str, np.ndarray], float]:
    """Every series' scores from one ``SeriesAnomalyDetector`` trained on all the series'
    prefixes (one table, ``id_col``), and the seconds it took (training and scoring)."""
    from aekit.apps.anomaly import SeriesAnomalyDetector

    def table_of(part: str) -> pd.DataFrame:
        return pd.concat([pd.DataFrame({"series": name, "value": values[:int(PREFIX * len(values))]
                                        if part == "prefix" else values}) for name, values, _ in series],
                         ignore_index=True)

    with warnings.catch_warnings(), Timer() as timer:
        warnings.simplefilter("ignore")
        det = SeriesAnomalyDetector(id_col="series", random_state=seed, **options).fit(table_of("prefix"))
        everything = table_of("all")
        scores = det.decision_function(everything)
    return {name: scores[(everything.series == name).to_numpy()] for name, _, _ in series}, timer.seconds


# ---------------------------------------------------------------------- the run
def run(methods: list[str], categories: list[str], seeds: int) -> dict:
    results: dict = defaultdict(lambda: defaultdict(list))  # method -> category -> [per series dicts]
    for category in categories:
        series = load_series(category)
        total_rows = sum(len(values) for _, values, _ in series)
        fleets = {(spec, seed): fleet_scores(series, seed, **parse_spec(spec)[1])
                  for spec in methods if parse_spec(spec)[0] == "fleet" for seed in range(seeds)}
        for name, values, labels in series:
            start = int(PREFIX * len(values))
            train = values[:start]
            for spec in methods:
                method, options = parse_spec(spec)
                for seed in range(seeds if method in ("aekit", "fleet", "iforest", "random") else 1):
                    if method == "fleet":  # its share of the category's one model's time
                        scores, seconds = fleets[spec, seed][0][name], fleets[spec, seed][1] * len(values) / total_rows
                    else:
                        with warnings.catch_warnings(), Timer() as timer:
                            warnings.simplefilter("ignore")
                            scores = METHODS[method](train, values, seed, **options)
                        seconds = timer.seconds
                    metrics = evaluate(scores, labels, start)
                    if metrics is None:
                        continue
                    metrics.update(series=name, seconds=seconds, rows=len(values), seed=seed)
                    results[spec][category].append(metrics)
            print(f"  {category}/{name}: " + ", ".join(
                f"{spec} {results[spec][category][-1]['auc_pr']:.3f}" for spec in methods
                if results[spec][category]), file=sys.stderr)
    return results


def summarise(results: dict, categories: list[str]) -> str:
    lines = []
    for metric in ("auc_pr", "auc_roc", "event_recall"):
        header = ["method", *categories]
        halves = [("development", DEVELOPMENT), ("reported", REPORTED)]
        header += [h for h, cats in halves if set(cats) <= set(categories)]
        rows = []
        for spec, by_cat in results.items():
            means = {c: np.mean([r[metric] for r in by_cat[c]]) for c in categories if by_cat[c]}
            row = [spec] + [f"{means[c]:.3f}" if c in means else "-" for c in categories]
            for _, cats in halves:
                if set(cats) <= set(categories):
                    row.append(f"{np.mean([means[c] for c in cats if c in means]):.3f}")
            rows.append(row)
        lines += [f"\nmean {metric} per category (mean over series and seeds; halves: mean of categories)",
                  table(rows, header)]
    medians = []
    for spec, by_cat in results.items():
        row = [spec]
        for _, cats in (("development", DEVELOPMENT), ("reported", REPORTED)):
            values = [r[m] for c in cats for r in by_cat[c] for m in ("auc_pr",)]
            row.append(f"{np.median(values):.3f}" if values else "-")
        medians.append(row)
    lines += ["\nmedian auc_pr over the series (and seeds) of each half", table(medians, ["method", "development",
                                                                                      "reported"])]
    timing = []
    for spec, by_cat in results.items():
        records = [r for c in by_cat.values() for r in c]
        rows_total = sum(r["rows"] for r in records)
        seconds = sum(r["seconds"] for r in records)
        timing.append([spec, f"{seconds:.1f}", f"{rows_total / max(seconds, 1e-9):,.0f}"])
    lines += ["\ntime (training on the prefix and scoring every row)",
              table(timing, ["method", "seconds", "rows/s"])]
    return "\n".join(lines)


def speed(rows: int = 1_000_000, train_rows: int = 20_000) -> str:
    """Training on ``train_rows`` points, then scoring ``rows`` in process and through the CLI
    (a CSV with a time column, in a new process: reading, scoring, writing the output CSV)."""
    import subprocess
    import tempfile

    from aekit.apps.anomaly import SeriesAnomalyDetector

    rng = np.random.default_rng(0)
    values = np.sin(2 * np.pi * np.arange(rows) / 100) + 0.1 * rng.standard_normal(rows)
    frame = pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=rows, freq="min")
                          .strftime("%Y-%m-%d %H:%M:%S"), "value": values.round(5)})
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        frame.iloc[:train_rows].to_csv(f"{tmp}/train.csv", index=False)
        frame.to_csv(f"{tmp}/all.csv", index=False)
        with Timer() as fit:
            det = SeriesAnomalyDetector().fit(values[:train_rows])
        with Timer() as score:
            det.decision_function(values)
        cli = [sys.executable, "-m", "aekit", "anomaly"]
        with Timer() as cli_fit:
            subprocess.run([*cli, "train", f"{tmp}/train.csv", "--time-col", "timestamp", "--out", f"{tmp}/m",
                            "--quiet"], check=True, capture_output=True)
        with Timer() as cli_score:
            subprocess.run([*cli, "score", f"{tmp}/all.csv", "--model", f"{tmp}/m", "--out", f"{tmp}/s.csv",
                            "--quiet"], check=True, capture_output=True)
    out.append(["train (in process)", f"{train_rows:,}", f"{fit.seconds:.1f}", f"{train_rows / fit.seconds:,.0f}"])
    out.append(["train (aekit anomaly train, new process)", f"{train_rows:,}", f"{cli_fit.seconds:.1f}",
                f"{train_rows / cli_fit.seconds:,.0f}"])
    out.append(["score (in process)", f"{rows:,}", f"{score.seconds:.2f}", f"{rows / score.seconds:,.0f}"])
    out.append(["score (aekit anomaly score, CSV to CSV, new process)", f"{rows:,}", f"{cli_score.seconds:.2f}",
                f"{rows / cli_score.seconds:,.0f}"])
    return "\nspeed: a univariate series (sine and noise), SeriesAnomalyDetector defaults\n" + table(
        out, ["step", "rows", "seconds", "rows/s"])


def write_labelled(name: str, out: str) -> None:
    """A NAB series (``category/name``) as a CSV with a 0/1 ``label`` column from its windows."""
    category, stem = name.split("/")
    for series, _, labels in load_series(category):
        if series == stem:
            pd.read_csv(NAB / category / f"{stem}.csv").assign(label=labels).to_csv(out, index=False)
            return
    raise SystemExit(f"no labelled series {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=DEFAULT_METHODS)
    parser.add_argument("--categories", nargs="+", default=DEVELOPMENT + REPORTED)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--speed", action="store_true", help="only the speed table (training and scoring rates)")
    parser.add_argument("--labelled", nargs=2, metavar=("CATEGORY/NAME", "OUT"),
                        help="only write that series as a CSV with a 0/1 label column (for aekit anomaly eval)")
    args = parser.parse_args()
    set_threads()
    if args.labelled:
        write_labelled(*args.labelled)
        return
    if args.speed:
        print(speed())
        return
    results = run(args.methods, args.categories, args.seeds)
    print(summarise(results, args.categories))


if __name__ == "__main__":
    main()
