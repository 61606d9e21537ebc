"""A prior fit after training: a full-covariance Gaussian mixture on the codes the encoder
actually gives the training images (the aggregate posterior).

Why: a VAE's decoder only learned to decode the codes that training images produce; prior
samples that fall between those codes ("holes") decode to blurred, in-between images. The
prior learned with the model is a compromise with the KL term; fitting a density to the
aggregate posterior after training ("ex-post density estimation": Ghosh et al. 2020, Dai &
Wipf 2019) puts prior mass where the decoder is good. The number of components is chosen by
the log-likelihood of held-out images' codes, so the fit generalises rather than memorising
the training codes: more components keep lowering the sample Fréchet distance while the
samples drift towards copies of training images (benchmarks/generation.py reports both).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from torch import Tensor

CANDIDATE_COMPONENTS = (1, 2, 5, 10, 20, 30, 50)
MIN_CODES_PER_COMPONENT = 20  # fewer codes than this per component and EM fits noise
REG_COVAR = 1e-3  # added to each covariance's diagonal; codes are on the scale of the prior (about 1)


class FittedLatentPrior:
    """A Gaussian mixture ``sum_k w_k N(m_k, L_k L_k^T)`` over codes, held as torch tensors so
    that it saves to safetensors and evaluates ``log_prob`` inside the likelihood bounds."""

    def __init__(self, weights: Tensor, means: Tensor, cholesky: Tensor) -> None:
        if weights.ndim != 1 or means.shape[0] != len(weights) or cholesky.shape != (*means.shape, means.shape[1]):
            raise ValueError("a fitted prior needs weights [K], means [K, d] and Cholesky factors [K, d, d]")
        self.weights, self.means, self.cholesky = weights.float(), means.float(), cholesky.float()

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @classmethod
    def fit(cls, codes: np.ndarray, held_out: np.ndarray, candidates: Sequence[int] = CANDIDATE_COMPONENTS,
            seed: int = 0) -> tuple[FittedLatentPrior, dict[int, float]]:
        """Choose the number of components by the mean log-likelihood of ``held_out`` codes
        under a mixture fit to ``codes``, then refit that many on both. Returns the prior and
        the held-out score of every candidate tried."""
        codes, held_out = np.asarray(codes, np.float64), np.asarray(held_out, np.float64)
        usable = [k for k in candidates if k == 1 or len(codes) >= k * MIN_CODES_PER_COMPONENT]
        scores = {k: float(_mixture(k, seed).fit(codes).score(held_out)) for k in usable}
        best = max(scores, key=scores.__getitem__)
        return cls.from_sklearn(_mixture(best, seed).fit(np.concatenate([codes, held_out]))), scores

    @classmethod
    def from_sklearn(cls, gm: GaussianMixture) -> FittedLatentPrior:
        chol = np.linalg.cholesky(gm.covariances_)
        return cls(torch.from_numpy(gm.weights_), torch.from_numpy(gm.means_), torch.from_numpy(chol))

    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z)`` per row, in nats."""
        diff = (z[:, None, :] - self.means).unsqueeze(-1)  # [n, K, d, 1]
        whitened = torch.linalg.solve_triangular(self.cholesky, diff, upper=False).squeeze(-1)
        log_det = torch.log(torch.diagonal(self.cholesky, dim1=-2, dim2=-1)).sum(-1)  # half the log-determinant
        per_component = -0.5 * whitened.pow(2).sum(-1) - log_det - 0.5 * z.shape[1] * math.log(2 * math.pi)
        return torch.logsumexp(per_component + torch.log(self.weights), dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` codes drawn from the mixture."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], 1, generator=generator)
        return self.means[comp] + (self.cholesky[comp] @ eps).squeeze(-1)

    def tensors(self, prefix: str) -> dict[str, Tensor]:
        return {f"{prefix}weights": self.weights, f"{prefix}means": self.means, f"{prefix}cholesky": self.cholesky}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], prefix: str) -> FittedLatentPrior:
        return cls(tensors[f"{prefix}weights"], tensors[f"{prefix}means"], tensors[f"{prefix}cholesky"])


def _mixture(k: int, seed: int) -> GaussianMixture:
    return GaussianMixture(k, covariance_type="full", reg_covar=REG_COVAR, random_state=seed)
