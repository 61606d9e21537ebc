"""The VAE anomaly detector: the same surface, a Gaussian code."""
from __future__ import annotations

import inspect
from typing import Any

import torch

from ...autoencoder import AutoEncoder
from ...checks import check_choice, check_float, check_int
from .detector import AnomalyDetector

SCORES = ("reconstruction", "elbo")


class VAEAnomalyDetector(AnomalyDetector):
    """Variational autoencoder anomaly detector (Gaussian code, KL to N(0, I)), on tables
    or (``data="auto"`` with an image source, or ``data="image"``) on images.

    score="reconstruction" (default): the expected reconstruction error under q(z|x),
    estimated with ``n_samples`` draws, standardised per feature as in ``AnomalyDetector``.
    score="elbo": the negative ELBO, ``0.5 * sum_j err_j + KL(q(z|x) || p(z))`` in scaled units;
    ``explain`` then attributes only the reconstruction part to features.

    The draws are a fixed set of ``n_samples`` noise vectors from ``random_state``, shared by
    all rows: a row's score does not depend on which other rows it is scored with.
    KL weight ``beta`` is warmed up from 0 over the first ``kl_warmup`` fraction of training;
    log-variances are clamped, so hard data cannot produce NaN.
    """

    _kind = "anomaly.VAEAnomalyDetector"
    _bottleneck = "gaussian"

    def __init__(self, *, beta: float = 1.0, kl_warmup: float = 0.3, score: str = "reconstruction",
                 n_samples: int = 8, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.score = score
        self.n_samples = n_samples

    def _check_params(self) -> None:
        super()._check_params()
        check_choice(self.score, "score", SCORES)
        check_int(self.n_samples, "n_samples", 1, 1000)
        check_float(self.beta, "beta", 0)
        check_float(self.kl_warmup, "kl_warmup", 0, 1)

    def _bottleneck_options(self) -> dict[str, Any]:
        return {"beta": self.beta, "kl_warmup": self.kl_warmup}

    def _noise(self, code_size: int) -> torch.Tensor:
        """The fixed draws, made once per setting (a constant, so the ONNX export keeps them)."""
        code_size = int(code_size)  # the tracer hands sizes over as tensors
        key = (self.n_samples, code_size, self.random_state)
        cache = self.__dict__.setdefault("_noise_cache", {})
        if key not in cache:
            generator = torch.Generator().manual_seed(self.random_state)
            cache[key] = torch.randn(self.n_samples, code_size, generator=generator)
        return cache[key]

    def _reconstruction_errors(self, model: AutoEncoder, Z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = model.posterior(Z)
        std = torch.exp(0.5 * logvar)
        acc = torch.zeros_like(Z)
        for eps in self._noise(mu.shape[1]):
            acc.add_((model.decode(mu + std * eps) - Z).pow_(2))
        return acc.div_(self.n_samples), mu

    def _feature_weights(self, model: AutoEncoder, Z: torch.Tensor) -> torch.Tensor:
        if self.score == "elbo":
            return torch.full(Z.shape[1:], 0.5)  # the Gaussian log-likelihood term
        return super()._feature_weights(model, Z)

    def _median_units(self) -> bool:
        return super()._median_units() and self.score != "elbo"  # the ELBO keeps its own units

    def _member_extra(self, k: int, Z: torch.Tensor, code: torch.Tensor) -> torch.Tensor | None:
        latent = super()._member_extra(k, Z, code)
        if self.score != "elbo":
            return latent
        kl = self.models_[k].code_output(Z).aux_losses["kl"]
        return kl if latent is None else kl + latent


# scikit-learn reads parameter names from the __init__ signature; publish the full one
# (the VAE's own options plus every AnomalyDetector option) so get_params/clone see them all.
_own = [p for p in inspect.signature(VAEAnomalyDetector.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY]
_base = [p for name, p in inspect.signature(AnomalyDetector.__init__).parameters.items() if name != "self"]
VAEAnomalyDetector.__init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *_own, *_base])
