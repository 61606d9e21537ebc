"""A Gaussian mixture over the codes of normal rows: the code density term where the codes of
normal data fall into several groups.

The code term was the squared Mahalanobis distance of a row's code to the training codes: one
Gaussian. Where normal codes form several groups, a row between them sits near their common
mean, and that term ranks it as very normal. It scored below chance on 6 of 20 development
sets (vowels 0.26, s1_clusters 0.16 AUC-ROC alone). A mixture with its number of components
chosen by BIC (one Gaussian where the codes are one group) scores those rows as rare.

A mixture also gives a component to a tight group of anomalies among the training rows,
which then look normal to it (contaminated cardio: 0.887 -> 0.825 with the mixture in place
of the Mahalanobis term). So the detector takes the larger of the two, each in units of its
median on held-out rows: a row is as rare as the stricter of the two models says
(BENCHMARKS.md, issue 33).

The term of a code ``c``: ``-logsumexp_k(offset_k - |c F_k - b_k|^2 / 2) * scale``, where
``F_k`` is component ``k``'s precision's Cholesky factor and ``offset_k`` holds its log weight
and log determinant. ``locate`` puts its zero at the most typical held-out code and its unit
at their median. One product ``c @ factors`` gives every component's whitened code, and
torch, numpy (``light``) and ONNX compute it the same way.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .light import MIXTURE_TENSORS

MAX_COMPONENTS = 6  # BIC picks 5-6 on most development sets; at most 10 scored within 0.002 of 6, at most 3 lost 0.013 on the digit sets
ROWS_PER_COMPONENT = 20  # at least this many training codes per component
FIT_ROWS = 4096  # training codes the mixture is fitted on (a random subset of more)
REGULARISATION = 1e-3  # added to each component's covariance, in units of the codes' mean variance


@dataclass
class CodeMixture:
    """The fitted mixture, as the score reads it (float32): ``factors [code, K * code]``,
    ``shift [K * code]``, ``offsets [K]``, ``scale [1]``."""

    factors: torch.Tensor
    shift: torch.Tensor
    offsets: torch.Tensor
    scale: torch.Tensor

    def tensors(self) -> dict[str, torch.Tensor]:
        return dict(zip(MIXTURE_TENSORS, (self.factors, self.shift, self.offsets, self.scale), strict=True))

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], code_size: int) -> CodeMixture | None:
        """The mixture stored with a member (None in models saved before it); ``ValueError``
        names what does not fit."""
        present = [n in tensors for n in MIXTURE_TENSORS]
        if not any(present):
            return None
        if not all(present):
            raise ValueError("the code mixture's tensors are incomplete")
        factors, shift, offsets, scale = (tensors[n].float() for n in MIXTURE_TENSORS)
        k = len(offsets) if offsets.dim() == 1 else 0
        if not k or tuple(factors.shape) != (code_size, k * code_size) or tuple(shift.shape) != (k * code_size,) \
                or tuple(scale.shape) != (1,):
            raise ValueError("the code mixture's tensors do not match the code size")
        if not all(torch.isfinite(t).all() for t in (factors, shift, offsets, scale)) or float(scale) <= 0:
            raise ValueError("the code mixture holds NaN, inf or a scale <= 0")
        return cls(factors, shift, offsets, scale)

    def locate(self, held_out: torch.Tensor, unit: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Zero at the most typical of the ``held_out`` codes, and ``unit(values)`` (their
        median) as 1: the Gaussian term's zero is its mean, where no row may lie, and a
        mixture's floor lies further below its typical values the more components it has, so
        a floor as zero would squeeze its spread into a fraction of the unit."""
        with torch.inference_mode():
            values = self.term(held_out)
            low = values.min()
            self.offsets = self.offsets + low * self.scale.reciprocal()  # term = -logsumexp(...) * scale - low
            self.scale = unit(values - low).reciprocal().view(1) * self.scale

    def term(self, code: torch.Tensor) -> torch.Tensor:
        """``[rows]``: the term of each code, in its held-out median units. The whitened codes
        are laid out ``[components * code, rows]``, as ``light._CodeMixture`` lays them, so
        that each sum and maximum over them runs down contiguous rows: 1.2 ms for 34,952
        rows of 6 components of 8 against 11.7 ms ``[rows, components, code]`` (one thread)."""
        k, width = len(self.offsets), self.factors.shape[0]
        white = torch.addmm(self.shift.neg().unsqueeze(1), self.factors.T, code.T).square_().view(k, width, -1)
        return torch.logsumexp(white.sum(1).mul_(-0.5).add_(self.offsets.unsqueeze(1)), 0).neg_().mul_(self.scale)


def fit_code_mixture(codes: torch.Tensor, seed: int) -> CodeMixture:
    """The mixture of the training ``codes``, with 1 to ``MAX_COMPONENTS`` components by BIC;
    zero and unit are set by ``locate``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    x = codes.double().numpy()
    if len(x) > FIT_ROWS:
        x = x[np.random.default_rng(seed).choice(len(x), FIT_ROWS, replace=False)]
    # fitted on the codes as they are: their k-means start then splits along the directions the
    # codes vary most in (whitened, noise directions count as much, and s3_digits scored 0.832
    # against 0.849); the regularisation in units of the codes' mean variance
    scale = float(x.var(0).mean()) + 1e-12
    # no more components than distinct codes (duplicated rows), nor than the rows support
    most = max(1, min(MAX_COMPONENTS, len(x) // ROWS_PER_COMPONENT, len(np.unique(x, axis=0))))
    best, best_bic = None, math.inf
    with warnings.catch_warnings():  # EM stopped at max_iter still gives a usable density
        warnings.simplefilter("ignore", ConvergenceWarning)
        for k in range(1, most + 1):
            gmm = GaussianMixture(k, covariance_type="full", reg_covar=REGULARISATION * scale, random_state=seed).fit(x)
            bic = gmm.bic(x)
            if bic < best_bic:
                best, best_bic = gmm, bic
    chol = best.precisions_cholesky_  # [K, d, d]: component k's whitened code is (c - mean_k) chol_k
    shift = np.einsum("kd,kdf->kf", best.means_, chol)
    log_weights = np.log(best.weights_) + np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
    offsets = log_weights - log_weights.max() - math.log(len(log_weights))
    d = codes.shape[1]
    return CodeMixture(torch.from_numpy(chol.transpose(1, 0, 2).reshape(d, -1)).float(),
                       torch.from_numpy(shift.reshape(-1)).float(), torch.from_numpy(offsets).float(), torch.ones(1))
