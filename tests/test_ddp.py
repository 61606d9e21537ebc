"""Data-parallel training under torchrun (2 processes, gloo) matches one process."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import torch.distributed as dist
    from aekit import AnomalyDetector
    from aekit.apps.anomaly import SeriesAnomalyDetector
    from aekit.data import load_breast_cancer_frame

    X = load_breast_cancer_frame().query("diagnosis == 'benign'").drop(columns="diagnosis")
    det = AnomalyDetector(n_estimators=1, epochs=15, patience=100, batch_size=64, verbose=0).fit(X)
    det.save(sys.argv[1] + "/model")  # only rank 0 writes
    rank = dist.get_rank() if dist.is_initialized() else 0
    np.save(f"{sys.argv[1]}/scores_rank{rank}.npy", det.decision_scores_)
    # a time series' windows are sharded the same way
    t = np.arange(2000)
    series = np.c_[np.sin(t / 6), np.cos(t / 6)] + 0.05 * np.random.default_rng(0).standard_normal((2000, 2))
    det = SeriesAnomalyDetector(window=32, epochs=4, patience=100, verbose=0).fit(series)
    np.save(f"{sys.argv[1]}/series_rank{rank}.npy", det.decision_scores_)
""")


def test_two_process_ddp_matches_single_process(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (tmp_path / "single").mkdir()
    (tmp_path / "ddp").mkdir()
    subprocess.run([sys.executable, str(script), str(tmp_path / "single")], env=env, check=True)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(script), str(tmp_path / "ddp")], env=env, check=True, capture_output=True)
    single = np.load(tmp_path / "single" / "scores_rank0.npy")
    rank0, rank1 = (np.load(tmp_path / "ddp" / f"scores_rank{r}.npy") for r in (0, 1))
    np.testing.assert_allclose(rank0, rank1, rtol=1e-6)  # every rank holds the same model
    np.testing.assert_allclose(rank0, single, rtol=1e-3, atol=1e-4)  # equal up to float rounding
    series = [np.load(tmp_path / run / f"series_rank{r}.npy") for run, r in (("single", 0), ("ddp", 0), ("ddp", 1))]
    np.testing.assert_allclose(series[1], series[2], rtol=1e-6)
    np.testing.assert_allclose(series[1], series[0], rtol=1e-3)
    assert (tmp_path / "ddp" / "model" / "config.json").exists()
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "ddp").iterdir())
