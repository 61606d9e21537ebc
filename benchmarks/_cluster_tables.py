"""A panel of labelled tables for unsupervised classification, built offline (labels are used
only to score). Half of it (DEVELOPMENT) is where the clustering defaults are chosen; the other
half (REPORTED) is only reported.

- digits: scikit-learn's 1,797 8x8 digits as 64 pixel columns (10 classes)
- wine, iris, breast_cancer: scikit-learn's bundled tables (3, 3, 2 classes)
- mnist_test: MNIST's 10,000 test images as 784 pixel columns (10 classes)
- fsdd_digit / fsdd_speaker: the Free Spoken Digit Dataset's 2,000 recordings as 40 columns
  (mean and standard deviation of 20 MFCCs), labelled by the digit said (10) or by the speaker (4)
- vcc_speaker: VCC2016's 750 read sentences as the same 40 columns, labelled by speaker (5)
- blobs_scaled: 6 Gaussian groups in 8 columns, each column on its own scale (units from
  0.01 to 1,000), plus 12 columns of noise, 1,200 rows (a synthetic check of the scaling)
- lfw_subset: scikit-image's 200 25x25 grey faces and non-faces as 625 columns (2 classes)

Audio features are cached under build/cluster_tables/.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
CACHE = ROOT / "build" / "cluster_tables"
DEVELOPMENT = ("digits", "wine", "mnist_test", "fsdd_digit", "blobs_scaled")
REPORTED = ("iris", "breast_cancer", "vcc_speaker", "fsdd_speaker", "lfw_subset")


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(X [rows, columns] float32, y [rows] int) of one table of the panel."""
    from sklearn import datasets

    bundled = {"digits": datasets.load_digits, "wine": datasets.load_wine, "iris": datasets.load_iris,
               "breast_cancer": datasets.load_breast_cancer}
    if name in bundled:
        d = bundled[name]()
        return d.data.astype(np.float32), d.target.astype(np.int64)
    if name == "mnist_test":
        with np.load(SHARED / "mnist" / "mnist.npz") as f:
            return f["x_test"].reshape(-1, 784).astype(np.float32), f["y_test"].astype(np.int64)
    if name.startswith("fsdd_"):
        X, digit, speaker = _fsdd()
        return X, (digit if name == "fsdd_digit" else speaker)
    if name == "vcc_speaker":
        return _audio_table("vcc", sorted((SHARED / "speech" / "vcc2016").rglob("*.flac")), 16_000,
                            lambda p: p.parent.name)
    if name == "blobs_scaled":
        return _blobs()
    if name == "lfw_subset":
        from skimage.data import lfw_subset

        x = lfw_subset()
        return x.reshape(len(x), -1).astype(np.float32), np.repeat([1, 0], 100)
    raise KeyError(name)


def _fsdd() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    files = sorted((SHARED / "fsdd").glob("*.wav"))
    X, speakers = _audio_table("fsdd", files, 8_000, lambda p: p.stem.split("_")[1])
    digits = np.array([int(p.stem.split("_")[0]) for p in files])
    return X, digits, speakers


def _audio_table(tag: str, files: list[Path], rate: int, label) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over frames of 20 MFCCs per recording, and integer labels."""
    cache = CACHE / f"{tag}.npz"
    names = np.array([label(p) for p in files])
    _, y = np.unique(names, return_inverse=True)
    if cache.exists():
        with np.load(cache) as f:
            return f["X"], y
    import librosa

    rows = []
    for p in files:
        wave, _ = librosa.load(p, sr=rate)
        m = librosa.feature.mfcc(y=wave, sr=rate, n_mfcc=20, n_fft=512 if rate < 16_000 else 1024)
        rows.append(np.concatenate([m.mean(1), m.std(1)]))
    X = np.stack(rows).astype(np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache, X=X)
    return X, y


def _blobs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    centres = rng.normal(0, 4, size=(6, 8))
    y = rng.integers(0, 6, size=1200)
    signal = centres[y] + rng.normal(size=(1200, 8))
    noise = rng.normal(size=(1200, 12)) * rng.uniform(0.5, 3, size=12)
    units = 10.0 ** rng.uniform(-2, 3, size=20)
    return (np.hstack([signal, noise]) * units).astype(np.float32), y.astype(np.int64)
