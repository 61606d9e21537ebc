"""ONNX export: onnxruntime against aekit on the same rows, side by side.

The model: AnomalyDetector defaults (and a 3-network ensemble) on scikit-learn's breast
cancer table (30 columns). Rows/s of ``decision_function`` (aekit, from a float32 array) and
of the exported graph in onnxruntime (one session, 1 and 2 intra-op threads), for 1 row
per call and for 10,000 and 100,000 rows per call; the largest score difference.

Then a time-series model (SeriesAnomalyDetector defaults, window 64, on 20,000 rows of a
noisy sine and cosine): one series of 64 rows per call (the newest row's score, as a stream
monitor asks it), 1,000 and 10,000 rows.

    python benchmarks/onnx_speed.py
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, table  # noqa: E402


def rate(fn, rows: int, seconds: float = 1.0) -> float:
    calls, spent = 0, 0.0
    while spent < seconds:
        with Timer() as t:
            fn()
        spent += t.seconds
        calls += 1
    return calls * rows / spent


def series_rows(work: Path, ort) -> list[list[str]]:
    from aekit.apps.anomaly import SeriesAnomalyDetector
    from aekit.apps.anomaly.export import export_onnx

    rng = np.random.default_rng(0)

    def series(n: int) -> np.ndarray:
        t = np.arange(n)
        return np.c_[np.sin(2 * np.pi * t / 50), np.cos(2 * np.pi * t / 50)] + 0.05 * rng.standard_normal((n, 2))

    det = SeriesAnomalyDetector(random_state=0).fit(series(20_000))
    det.save(work / "series")
    export_onnx(work / "series", work / "series.onnx")
    sessions = {}
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        sessions[threads] = ort.InferenceSession(str(work / "series.onnx"), options, providers=["CPUExecutionProvider"])
    out = []
    for rows in (64, 1_000, 10_000):
        x = series(rows).astype(np.float32)
        aekit = rate(lambda: det.decision_function(x), rows)
        onnx = {t: rate(lambda s=s: s.run(None, {"x": x}), rows) for t, s in sessions.items()}
        diff = np.max(np.abs(sessions[1].run(None, {"x": x})[0] / det.decision_function(x) - 1))
        out.append(["series, window 64", f"{rows:,}", f"{aekit:,.0f}", f"{onnx[1]:,.0f}", f"{onnx[2]:,.0f}",
                    f"{max(onnx.values()) / aekit:.2f}x", f"{diff:.1e}"])
    return out


def main() -> None:
    import onnxruntime as ort
    import torch

    from aekit.apps.anomaly import AnomalyDetector
    from aekit.apps.anomaly.export import export_onnx
    from aekit.data import load_breast_cancer_frame

    torch.set_num_threads(2)
    frame = load_breast_cancer_frame().drop(columns="diagnosis")
    work = Path(tempfile.mkdtemp(prefix="aekit_onnx_"))
    rng = np.random.default_rng(0)
    out = []
    for name, params in (("1 network", {}), ("3 networks", {"n_estimators": 3})):
        det = AnomalyDetector(random_state=0, **params).fit(frame)
        det.save(work / name)
        export_onnx(work / name, work / f"{name}.onnx")
        sessions = {}
        for threads in (1, 2):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            sessions[threads] = ort.InferenceSession(str(work / f"{name}.onnx"), options,
                                                     providers=["CPUExecutionProvider"])
        for rows in (1, 10_000, 100_000):
            x = frame.to_numpy(np.float32)[rng.integers(0, len(frame), rows)]
            aekit = rate(lambda: det.decision_function(x), rows)
            onnx = {t: rate(lambda s=s: s.run(None, {"x": x}), rows) for t, s in sessions.items()}
            diff = np.max(np.abs(sessions[1].run(None, {"x": x})[0] / det.decision_function(x) - 1))
            out.append([name, f"{rows:,}", f"{aekit:,.0f}", f"{onnx[1]:,.0f}", f"{onnx[2]:,.0f}",
                        f"{max(onnx.values()) / aekit:.2f}x", f"{diff:.1e}"])
    out += series_rows(work, ort)
    print("rows/s of decision_function (aekit, torch 2 threads) and of the exported graph (onnxruntime)")
    print(table(out, ["model", "rows per call", "aekit", "onnxruntime 1 thread", "onnxruntime 2 threads",
                      "best onnx / aekit", "max relative difference"]))


if __name__ == "__main__":
    main()
