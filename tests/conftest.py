"""Shared fixtures: small real and synthetic tables written to temporary files."""
from __future__ import annotations

import os
from pathlib import Path

# One thread per process: the tests' networks are tiny, and on a loaded 2-core machine
# torch's second thread spins against the load (the suite ran 7x slower with two).
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)

import numpy as np
import pandas as pd
import pytest

from aekit.data import load_breast_cancer_frame
from aekit.data.recipes import CARD_COLUMNS, KDD_FEATURES

def rewrite_config(model_dir: Path, change) -> None:
    """Apply ``change(config)`` to a model's config.json and re-sign it, as a careful
    tamperer would: what the loader's validation must catch beyond the checksum."""
    import json

    from aekit import io as aeio

    path = Path(model_dir) / "config.json"
    config = json.loads(path.read_text())
    change(config)
    config["config_sha256"] = aeio._config_digest(config)
    path.write_text(json.dumps(config))


def rewrite_tensors(model_dir: Path, change) -> None:
    """Apply ``change(tensors)`` to a model's stored tensors and re-sign the files (the weights'
    checksum, then the config), as ``rewrite_config`` does for the config alone."""
    import hashlib

    from safetensors.torch import load_file, save_file

    weights = Path(model_dir) / "model.safetensors"
    tensors = load_file(weights)
    change(tensors)
    save_file(tensors, weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    rewrite_config(model_dir, lambda c: c.update(weights_sha256=digest))


# Small, fast settings: the tests check behaviour, the benchmarks check quality.
FAST = dict(n_estimators=2, epochs=40, patience=8, batch_size=64, verbose=0)


@pytest.fixture(scope="session")
def cancer() -> tuple[pd.DataFrame, np.ndarray]:
    """(features, y) of scikit-learn's breast cancer data; y = 1 for malignant."""
    df = load_breast_cancer_frame()
    y = (df.pop("diagnosis") == "malignant").to_numpy(dtype=int)
    return df, y


@pytest.fixture(scope="session")
def cancer_split(cancer):
    """Train on 60% of the benign rows; test on the rest plus every malignant row."""
    X, y = cancer
    benign = np.flatnonzero(y == 0)
    train = np.sort(np.random.default_rng(0).permutation(benign)[: int(0.6 * len(benign))])
    test = np.setdiff1d(np.arange(len(y)), train)
    return X.iloc[train], X.iloc[test], y[test]


def make_kdd_rows(n_normal: int, n_attack: int, seed: int = 0) -> pd.DataFrame:
    """KDD Cup 99-shaped records (41 features + label): normal traffic is mostly tcp/http/SF
    with correlated byte counts; attacks are smurf (icmp floods) and neptune (SYN floods)."""
    rng = np.random.default_rng(seed)
    n = n_normal + n_attack
    df = pd.DataFrame(0.0, index=range(n), columns=KDD_FEATURES)
    df["protocol_type"] = rng.choice(["tcp", "udp"], n, p=[0.85, 0.15])
    df["service"] = rng.choice(["http", "smtp", "ftp_data", "domain_u"], n, p=[0.6, 0.2, 0.1, 0.1])
    df["flag"] = "SF"
    size = rng.lognormal(6, 1, n)
    df["src_bytes"] = np.round(size)
    df["dst_bytes"] = np.round(size * rng.lognormal(2, 0.3, n))
    df["logged_in"] = 1.0
    df["count"] = rng.integers(1, 20, n)
    df["srv_count"] = df["count"] + rng.integers(0, 3, n)
    df["same_srv_rate"] = 1.0
    df["dst_host_count"] = rng.integers(50, 255, n)
    df["dst_host_srv_count"] = rng.integers(50, 255, n)
    df["dst_host_same_srv_rate"] = rng.uniform(0.8, 1.0, n)
    df["label"] = "normal."
    attacks = np.arange(n_normal, n)
    smurf, neptune = attacks[: len(attacks) // 2], attacks[len(attacks) // 2:]
    df.loc[smurf, ["protocol_type", "service", "src_bytes", "dst_bytes", "logged_in"]] = ["icmp", "ecr_i", 1032, 0, 0]
    df.loc[smurf, ["count", "srv_count", "label"]] = [511, 511, "smurf."]
    df.loc[neptune, ["service", "flag", "src_bytes", "dst_bytes", "logged_in"]] = ["private", "S0", 0, 0, 0]
    df.loc[neptune, ["count", "serror_rate", "srv_serror_rate", "same_srv_rate", "label"]] = [150, 1.0, 1.0, 0.05, "neptune."]
    return df


def make_card_rows(n_normal: int, n_fraud: int, seed: int = 0) -> pd.DataFrame:
    """Card-transaction-shaped rows (Time, V1..V28, Amount, Class): normal V's lie near a
    4-dimensional subspace; frauds are off it and have large amounts."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(4, 28))
    normal = rng.normal(size=(n_normal, 4)) @ basis + 0.1 * rng.normal(size=(n_normal, 28))
    fraud = rng.normal(scale=3.0, size=(n_fraud, 28))
    V = np.vstack([normal, fraud])
    df = pd.DataFrame(V, columns=[f"V{i}" for i in range(1, 29)])
    df.insert(0, "Time", np.sort(rng.uniform(0, 172_800, len(df))))
    df["Amount"] = np.concatenate([rng.lognormal(3, 1, n_normal), rng.lognormal(6, 1, n_fraud)]).round(2)
    df["Class"] = np.r_[np.zeros(n_normal, int), np.ones(n_fraud, int)]
    return df[CARD_COLUMNS]


@pytest.fixture
def kdd_csv(tmp_path: Path) -> Path:
    path = tmp_path / "kdd.csv"
    make_kdd_rows(600, 60).sample(frac=1, random_state=0).to_csv(path, index=False)
    return path


@pytest.fixture
def card_csv(tmp_path: Path) -> Path:
    path = tmp_path / "card.csv"
    make_card_rows(800, 40).to_csv(path, index=False)
    return path


@pytest.fixture
def cancer_csv(tmp_path: Path, cancer) -> Path:
    X, y = cancer
    path = tmp_path / "cancer.csv"
    X.assign(label=y).to_csv(path, index=False)
    return path
