"""Training that tolerates anomalies in the training rows: a trimmed reconstruction loss.

Most training tables are not clean. An autoencoder trained on every row learns to rebuild the
anomalies it is shown, and then scores them as normal. ``TrimmedObjective`` leaves the
``fraction`` worst-rebuilt rows of each batch out of the loss once the network has learned the
bulk of the data (after ``warmup`` of training): those rows are the likeliest anomalies, and a
network that never fits them keeps scoring them high. On clean data it drops the hardest
normal rows of each batch, which the network would rebuild a little better otherwise.
"""
from __future__ import annotations

from torch import Tensor, nn

from ...autoencoder import AutoEncoder


class TrimmedObjective(nn.Module):
    """``model``'s training loss with the ``fraction`` largest per-row reconstruction losses of
    each batch left out, from ``warmup`` of training on (in eval mode too, so that validation
    measures the same objective)."""

    def __init__(self, model: AutoEncoder, fraction: float, warmup: float = 0.2) -> None:
        super().__init__()
        self.model = model
        self.fraction = fraction
        self.warmup = warmup

    def loss(self, x: Tensor, progress: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        return self.model.loss(x, progress, None, self.fraction if progress >= self.warmup else 0.0)
