"""A Dask or Spark worker's share of a fleet: one partition of whole series, rows in any order.

``score_series_partition`` (what each worker runs) against ``decision_function`` on the same
rows already sorted series by series (the in-process floor), for partitions of a few long
series and of many short ones. The model: SeriesAnomalyDetector, window 32, on 20 synthetic
machines of 2 channels (a sine and a cosine, each machine its own level and phase).

    python benchmarks/series_partitions.py
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, table  # noqa: E402
from serve_load import machines  # noqa: E402


def main() -> None:
    from aekit.apps.anomaly import SeriesAnomalyDetector
    from aekit.apps.anomaly.batch import model_files, score_series_partition

    warnings.simplefilter("ignore")  # the notes on machines the model did not see
    work = Path(tempfile.mkdtemp(prefix="aekit_partitions_"))
    det = SeriesAnomalyDetector(time_col="time", id_col="machine", window=32, random_state=0).fit(machines(1500, 20, 0))
    det.save(work / "m")
    files = model_files(work / "m", series=True)
    rows = []
    for count, length in ((20, 5000), (2000, 200)):
        part = machines(length, count, 1).sample(frac=1, random_state=0)  # a shuffle leaves rows in any order
        ordered = part.sort_values(["machine", "time"], kind="stable")
        with Timer() as worker:
            out = score_series_partition(part, files, None, 3)
        with Timer() as floor:
            det.decision_function(ordered)
        assert len(out) == len(part) and np.isfinite(out.score).all()
        rows.append([f"{count:,} series x {length:,} rows", f"{len(part):,}", f"{worker.seconds:.2f}",
                     f"{len(part) / worker.seconds:,.0f}", f"{floor.seconds:.2f}"])
    print(table(rows, ["partition", "rows", "score_series_partition s", "rows/s",
                       "decision_function on the sorted rows s"]))


if __name__ == "__main__":
    main()
