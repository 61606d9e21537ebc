"""Data sets that ship inside dependencies, so demos and tests work offline."""
from __future__ import annotations

import pandas as pd


def load_breast_cancer_frame() -> pd.DataFrame:
    """scikit-learn's breast cancer data (569 x 30) with a ``diagnosis`` column
    (``benign`` = normal, 357 rows; ``malignant`` = anomaly, 212 rows)."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    df = bunch.frame.drop(columns=["target"])
    # sklearn codes malignant as 0 and benign as 1
    df["diagnosis"] = bunch.target.map({0: "malignant", 1: "benign"})
    return df
