"""MNIST for the benchmarks: the arrays, and a small classifier whose features and class
probabilities judge generated digits (the "FID for MNIST"). Not part of the package."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from _common import SHARED

MNIST = SHARED / "mnist" / "mnist.npz"


def load_mnist(path: Path = MNIST) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``x_train, y_train, x_test, y_test``; images ``[N, 1, 28, 28]`` float32 in [0, 1]."""
    with np.load(path, allow_pickle=False) as f:
        x_train, y_train, x_test, y_test = (f[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    scaled = lambda x: (x.astype(np.float32) / 255.0)[:, None]  # noqa: E731
    return scaled(x_train), y_train.astype(int), scaled(x_test), y_test.astype(int)


class DigitClassifier(nn.Module):
    """Two conv blocks and a 128-unit layer whose activations are the feature space."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    @classmethod
    def train_on(cls, x: np.ndarray, y: np.ndarray, epochs: int = 2, seed: int = 0) -> DigitClassifier:
        torch.manual_seed(seed)
        net, X, Y = cls(), torch.from_numpy(x), torch.from_numpy(y).long()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(epochs):
            for idx in torch.randperm(len(X), generator=gen).split(128):
                loss = F.cross_entropy(net.head(net.features(X[idx])), Y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return net.eval()

    @torch.inference_mode()
    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features ``[N, 128]`` and class probabilities ``[N, 10]`` of images ``[N, 1, 28, 28]``."""
        feats, probs = [], []
        for block in torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).split(2048):
            f = self.features(block)
            feats.append(f)
            probs.append(self.head(f).softmax(1))
        return torch.cat(feats).double().numpy(), torch.cat(probs).double().numpy()


def nearest_distances(reference: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) from each query image to its nearest reference image."""
    ref = torch.from_numpy(reference.reshape(len(reference), -1))
    sq = (ref * ref).sum(1)
    out = []
    for block in torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32).reshape(len(queries), -1)).split(1024):
        d2 = torch.addmm(sq, block, ref.T, alpha=-2).min(1).values + (block * block).sum(1)
        out.append(d2.clamp_min(0).sqrt())
    return torch.cat(out).numpy()
