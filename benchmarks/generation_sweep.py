"""Option sweep for the VAE generator on digits, one process per option set (made for a
many-core machine): each set is trained with 2 seeds, and FD (PCA-16, 1,000 samples, mean of
2 sample seeds) and held-out -ELBO are printed per set.

    python benchmarks/generation_sweep.py "" "prior_components=100" "batch_size=32,lr=1e-3"
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from multiprocessing import Pool

os.environ["OMP_NUM_THREADS"] = "1"  # one core per option set

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anomaly_images import parse_variants  # noqa: E402


def run(options: str) -> str:
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from sklearn.model_selection import train_test_split

    from aekit.apps.generate import VAEGenerator, pca_frechet_distance
    from aekit.data.images import load_images

    kw = list(parse_variants([options]).values())[-1]  # "" gives the defaults
    digits = load_images("digits")
    X, y = digits.images, digits.labels
    tr, te = train_test_split(np.arange(len(y)), test_size=0.5, random_state=0, stratify=y)
    flat = lambda a: a.reshape(len(a), -1) * 16  # noqa: E731
    start, rows = time.time(), []
    for seed in (0, 1):
        gen = VAEGenerator(random_state=seed, **kw).fit(X[tr])
        fd = np.mean([pca_frechet_distance(flat(X[tr]), flat(X[te]), flat(gen.sample(1000, seed=s))) for s in (0, 1)])
        rows.append((fd, -gen.elbo(X[te]).mean(), len(gen.training_history_)))
    r = np.array(rows)
    return (f"{kw} FD={r[:, 0].mean():.1f} ({r[0, 0]:.1f},{r[1, 0]:.1f}) negELBO={r[:, 1].mean():.1f} "
            f"epochs={r[:, 2].tolist()} {time.time() - start:.0f}s")


if __name__ == "__main__":
    with Pool(min(os.cpu_count() or 1, len(sys.argv) - 1)) as pool:
        for line in pool.imap(run, sys.argv[1:]):
            print(line, flush=True)
