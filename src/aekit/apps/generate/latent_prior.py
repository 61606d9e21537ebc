"""A prior fit after training: a full-covariance Gaussian mixture on the codes the encoder
actually gives the training images (the aggregate posterior).

Why: a VAE's decoder only learned to decode the codes that training images produce; prior
samples that fall between those codes ("holes") decode to blurred, in-between images. The
prior learned with the model is a compromise with the KL term; fitting a density to the
aggregate posterior after training ("ex-post density estimation": Ghosh et al. 2020, Dai &
Wipf 2019) puts prior mass where the decoder is good. The number of components is chosen by
the log-likelihood of held-out images' codes, and so is a floor on the covariances (the
smoothing), so the fit generalises rather than memorising the training codes: more components
keep lowering the sample Fréchet distance while the samples drift towards copies of training
images (benchmarks/generation.py reports both).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ...errors import ParameterError
from torch import Tensor

CANDIDATE_COMPONENTS = (1, 5, 10, 20, 50, 100)
# covariance floor added to every component, as a fraction of the codes' mean variance: the
# mixture's smoothing. EM's maximum-likelihood covariances shrink onto the training codes; a
# floor lets more components generalise (held-out likelihood rises) without copying them.
CANDIDATE_SMOOTHING = (0.01, 0.03, 0.1)
MIN_CODES_PER_COMPONENT = 20  # fewer codes than this per component and EM fits noise


class FittedLatentPrior:
    """A Gaussian mixture ``sum_k w_k N(m_k, L_k L_k^T)`` over codes, held as torch tensors so
    that it saves to safetensors and evaluates ``log_prob`` inside the likelihood bounds."""

    def __init__(self, weights: Tensor, means: Tensor, cholesky: Tensor) -> None:
        if weights.ndim != 1 or means.shape[0] != len(weights) or cholesky.shape != (*means.shape, means.shape[1]):
            raise ParameterError("a fitted prior needs weights [K], means [K, d] and Cholesky factors [K, d, d]")
        self.weights, self.means, self.cholesky = weights.float(), means.float(), cholesky.float()

    @property
    def n_components(self) -> int:
        return len(self.weights)

    @classmethod
    def fit(cls, codes: np.ndarray | Tensor, held_out: np.ndarray | Tensor, components: Sequence[int] = CANDIDATE_COMPONENTS,
            smoothing: Sequence[float] = CANDIDATE_SMOOTHING,
            seed: int = 0) -> tuple[FittedLatentPrior, dict[tuple[int, float], float]]:
        """Choose the number of components and the smoothing by the mean log-likelihood of
        ``held_out`` codes under a mixture fit to ``codes``, then refit the best on both.
        Sizes are tried in increasing order until the best held-out score falls. Returns the
        prior and the held-out score of every (components, smoothing) tried."""
        codes, held_out = torch.as_tensor(codes, dtype=torch.float64), torch.as_tensor(held_out, dtype=torch.float64)
        usable = [k for k in components if k == 1 or len(codes) >= k * MIN_CODES_PER_COMPONENT]
        if not usable:
            raise ParameterError(f"{len(codes)} codes are too few for a mixture of {min(components)} components "
                             f"(at least {MIN_CODES_PER_COMPONENT} per component)")
        scale = float(codes.var(0).mean())
        scores: dict[tuple[int, float], float] = {}
        for k in sorted(usable):
            best_so_far = max(scores.values(), default=-math.inf)
            for r in smoothing:
                weights, means, chol = _em(codes, k, r * scale, seed)
                scores[(k, r)] = float(_log_mixture(held_out, weights, means, chol).mean())
            if max(scores[(k, r)] for r in smoothing) < best_so_far:
                break  # past the best size: more components only fit the training codes closer
        k, r = max(scores, key=scores.__getitem__)
        return cls(*_em(torch.cat([codes, held_out]), k, r * scale, seed)), scores

    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z)`` per row, in nats."""
        return _log_mixture(z, self.weights, self.means, self.cholesky)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` codes drawn from the mixture."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.means.shape[1], generator=generator)
        for k in comp.unique():  # per component: memory n * d, never n * d * d
            rows = comp == k
            z[rows] = self.means[k] + z[rows] @ self.cholesky[k].T
        return z

    def tensors(self, prefix: str) -> dict[str, Tensor]:
        return {f"{prefix}weights": self.weights, f"{prefix}means": self.means, f"{prefix}cholesky": self.cholesky}

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor], prefix: str) -> FittedLatentPrior:
        return cls(tensors[f"{prefix}weights"], tensors[f"{prefix}means"], tensors[f"{prefix}cholesky"])


def _log_mixture(z: Tensor, weights: Tensor, means: Tensor, chol: Tensor) -> Tensor:
    """``log sum_k w_k N(z; m_k, L_k L_k^T)`` per row of ``z``."""
    return torch.logsumexp(_log_components(z, means, chol) + torch.log(weights), dim=1)


def _log_components(z: Tensor, means: Tensor, chol: Tensor) -> Tensor:
    """``log N(z; m_k, L_k L_k^T)``: ``[n, K]``. Batched over components as ``[K, n, d]``, so
    memory grows with n * K * d, never n * K * d * d."""
    diff = z[None] - means[:, None]  # [K, n, d]
    whitened = torch.linalg.solve_triangular(chol, diff.transpose(1, 2), upper=False)  # [K, d, n]
    half_log_det = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # [K]
    log_p = -0.5 * whitened.pow(2).sum(1) - half_log_det[:, None] - 0.5 * z.shape[1] * math.log(2 * math.pi)
    return log_p.T


def _em(x: Tensor, k: int, reg_covar: float, seed: int, max_iter: int = 100,
        tol: float = 1e-3) -> tuple[Tensor, Tensor, Tensor]:
    """Expectation-maximisation for a full-covariance mixture of ``k`` Gaussians, started from
    k-means; ``reg_covar`` is added to each covariance's diagonal. Vectorised over components:
    the whole size-and-smoothing search takes 3-10 s on the digits' codes, where scikit-learn's
    GaussianMixture (a Python loop over components) took over a minute."""
    from sklearn.cluster import KMeans  # here: sampling a saved prior needs no scikit-learn (2.7 s to import)

    labels = KMeans(k, n_init=1, random_state=seed).fit(x.numpy()).labels_ if k > 1 else np.zeros(len(x), int)
    resp = torch.nn.functional.one_hot(torch.from_numpy(labels).long(), k).to(x.dtype)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    previous = -math.inf
    for _ in range(max_iter):
        counts = resp.sum(0) + 1e-10  # M-step
        weights, means = counts / len(x), (resp.T @ x) / counts[:, None]
        diff = x[None] - means[:, None]  # [K, n, d]
        cov = (diff * resp.T[..., None]).transpose(1, 2) @ diff / counts[:, None, None] + reg_covar * eye
        chol = torch.linalg.cholesky(cov)
        log_joint = _log_components(x, means, chol) + torch.log(weights)  # E-step
        log_px = torch.logsumexp(log_joint, dim=1)
        resp = torch.exp(log_joint - log_px[:, None])
        mean_ll = float(log_px.mean())
        if mean_ll - previous < tol:
            break
        previous = mean_ll
    return weights, means, chol
