"""The decoder as a generator: a VAE on images whose decoder turns prior samples into images."""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ...autoencoder import AutoEncoder
from ...data.images import ImageSpec, as_image_array, fit_image_spec, images_for
from ...errors import DataError, ModelFileError, NotFittedError
from ...io import load_model_dir, save_model_dir
from ...training import TrainConfig, train
from ..anomaly.base import check_train_rows
from .latent_prior import CANDIDATE_COMPONENTS, FittedLatentPrior

LIKELIHOODS = {"gaussian": "gaussian_sigma", "bernoulli": "bernoulli"}
PRIORS = ("fitted", "learned")
POSTERIOR_DRAWS = 5  # codes drawn per image when fitting the prior to the aggregate posterior
SELECTION_FRACTION = 0.2  # images held out to choose the fitted prior's size when there is no validation split
FITTED_PREFIX = "fitted_prior."
BLOCK = 512  # images per forward pass
BOUND_BLOCK = 4096  # (image, draw) pairs per forward pass in the likelihood bounds


class VAEGenerator(BaseEstimator):
    """Variational autoencoder for images ``[N, C, H, W]`` in [0, 1]; new images come from the
    decoder applied to samples of the prior.

    The network is ``AutoEncoder.conv`` (sized by the images) with a Gaussian code of
    ``code_size``. ``prior_components=K`` learns a mixture-of-Gaussians prior with the model
    (0: the standard N(0, I)); ``likelihood`` is ``"gaussian"`` (one learned noise level) or
    ``"bernoulli"``. KL weight ``beta`` is warmed up from 0 over ``kl_warmup`` of training.

    ``prior`` is what ``sample`` draws codes from: ``"fitted"`` (default), a full-covariance
    Gaussian mixture fit after training to the codes of the training images, whose size and
    smoothing are chosen by the likelihood of the validation images' codes (``fitted_prior_``;
    ``prior_selection_`` holds the score of each (components, smoothing) tried;
    ``fitted_components=K`` fixes the size; see ``latent_prior.py``), or ``"learned"``, the
    prior trained with the model. The likelihood bounds use the same prior as ``sample``.
    Defaults were chosen on digits in benchmarks/generation.py (see BENCHMARKS.md).

    ``X`` is an array ``[N, H, W]`` / ``[N, C, H, W]``, an ``ImageSet``, or a source for
    ``load_images`` (a folder of PNG/JPEG, an ``.npz`` file, or ``digits`` / ``lfw_subset``).
    """

    _kind = "generate.VAEGenerator"

    def __init__(
        self,
        *,
        image_size: Sequence[int] | None = None,
        architecture: str = "conv",
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        code_size: int = 16,
        prior_components: int = 50,
        prior: str = "fitted",
        fitted_components: int | None = None,
        likelihood: str = "gaussian",
        beta: float = 1.0,
        kl_warmup: float = 0.3,
        epochs: int = 300,
        batch_size: int = 64,
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        patience: int = 30,
        validation_fraction: float = 0.1,
        random_state: int = 0,
        verbose: int = 0,
        checkpoint_dir: str | None = None,
        resume: bool = False,
    ) -> None:
        self.image_size = image_size
        self.architecture = architecture
        self.channels = channels
        self.hidden = hidden
        self.code_size = code_size
        self.prior_components = prior_components
        self.prior = prior
        self.fitted_components = fitted_components
        self.likelihood = likelihood
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None) -> VAEGenerator:
        """Train on images ``X`` (``y`` is ignored)."""
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {sorted(LIKELIHOODS)}, got {self.likelihood!r}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.fitted_components is not None and self.fitted_components < 1:
            raise ValueError(f"fitted_components must be >= 1, got {self.fitted_components}")
        images = as_image_array(X)
        check_train_rows(len(images))
        images, self.image_spec_ = fit_image_spec(images, self.image_size)
        Z = torch.from_numpy(images)
        perm = np.random.default_rng(self.random_state).permutation(len(Z))
        n_val = int(round(self.validation_fraction * len(Z))) if len(Z) >= 20 else 0
        torch.manual_seed(self.random_state)
        self.model_ = self._build_model(tuple(Z.shape[1:]))
        cfg = TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                          patience=self.patience,
                          seed=self.random_state, verbose=self.verbose, checkpoint_dir=self.checkpoint_dir,
                          resume=self.resume, desc="VAE")
        result = train(self.model_, Z[perm[n_val:]], Z[perm[:n_val]] if n_val else None, cfg)
        self.training_history_ = result.history
        self.model_.eval()
        self.fitted_prior_, self.prior_selection_ = None, {}
        if self.prior == "fitted":
            if not n_val:  # hold some training images out, for choosing the prior's size only
                n_val = max(1, int(round(SELECTION_FRACTION * len(Z))))
            components = (self.fitted_components,) if self.fitted_components else CANDIDATE_COMPONENTS
            self.fitted_prior_, self.prior_selection_ = FittedLatentPrior.fit(
                self._posterior_draws(Z[perm[n_val:]]), self._posterior_draws(Z[perm[:n_val]]), components,
                seed=self.random_state)
        return self

    @torch.inference_mode()
    def _posterior_draws(self, Z: torch.Tensor) -> torch.Tensor:
        """``POSTERIOR_DRAWS`` codes per image from ``q(z|x)``: samples of the aggregate posterior."""
        gen = torch.Generator().manual_seed(self.random_state)
        neck, out = self.model_.bottleneck, []
        for block in self._blocks(Z):
            mu, logvar = neck.distribution(self.model_.encoder(block))
            eps = torch.randn(POSTERIOR_DRAWS, *mu.shape, generator=gen)
            out.append((mu + eps * torch.exp(0.5 * logvar)).reshape(-1, mu.shape[1]))
        return torch.cat(out).double()

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        code = dict(code_size=self.code_size, bottleneck="gaussian", reconstruction=LIKELIHOODS[self.likelihood],
                    beta=self.beta, kl_warmup=self.kl_warmup, prior_components=self.prior_components)
        if self.architecture == "conv":
            return AutoEncoder.conv(shape, channels=self.channels, hidden=self.hidden, **code)
        if self.architecture == "mlp":
            return AutoEncoder.mlp(math.prod(shape), hidden=(self.hidden, self.hidden // 2), out_shape=shape, **code)
        raise ValueError(f"architecture must be 'conv' or 'mlp', got {self.architecture!r}")

    # ------------------------------------------------------------------ the generator surface
    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` new images ``[n, C, H, W]`` in [0, 1]: the decoder's mean at prior samples.
        The same ``seed`` gives the same images."""
        self._check_fitted()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        gen = torch.Generator().manual_seed(seed)
        prior = self.fitted_prior_
        z = prior.sample(n, gen) if prior is not None else self.model_.bottleneck.sample_prior(n, gen)
        return self._decode(z)

    @torch.inference_mode()
    def encode(self, X: Any) -> np.ndarray:
        """Codes ``[N, code_size]``: the posterior means of the images."""
        self._check_fitted()
        return torch.cat([self.model_.encode(b) for b in self._blocks(self._inputs(X))]).numpy()

    @torch.inference_mode()
    def decode(self, codes: Any) -> np.ndarray:
        """Images ``[N, C, H, W]`` in [0, 1] from codes ``[N, code_size]``."""
        self._check_fitted()
        z = torch.as_tensor(np.asarray(codes, dtype=np.float32))
        if z.ndim != 2 or z.shape[1] != self.code_size or not torch.isfinite(z).all():
            raise DataError(f"codes must be finite, of shape [N, {self.code_size}], got {tuple(z.shape)}")
        return self._decode(z)

    def reconstruct(self, X: Any) -> np.ndarray:
        """``decode(encode(X))``."""
        return self.decode(self.encode(X))

    def interpolate(self, a: Any, b: Any, steps: int = 10) -> np.ndarray:
        """``steps`` images decoded from codes on the straight line from image ``a``'s code to
        image ``b``'s (both ends included). ``a`` and ``b`` are single images ``[H, W]`` /
        ``[C, H, W]``."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        za, zb = self.encode(_one_image(a)), self.encode(_one_image(b))
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.decode((1 - t) * za + t * zb)

    # ------------------------------------------------------------------ likelihood bounds
    @torch.inference_mode()
    def elbo(self, X: Any, n_samples: int = 1, seed: int = 0) -> np.ndarray:
        """The evidence lower bound ``E_q[log p(x|z)] - KL(q(z|x) || p(z))`` of each image in
        nats (beta = 1), estimated with ``n_samples`` draws from q."""
        log_w = self._log_weights(self._inputs(X), n_samples, seed)
        return log_w.mean(1).double().numpy()

    @torch.inference_mode()
    def log_likelihood_bound(self, X: Any, k: int = 100, seed: int = 0) -> np.ndarray:
        """The importance-weighted bound (IWAE, Burda et al. 2016) on ``log p(x)`` with ``k``
        samples, in nats per image; tighter than the ELBO and approaching ``log p(x)`` as k grows."""
        log_w = self._log_weights(self._inputs(X), k, seed).double()
        return (torch.logsumexp(log_w, 1) - math.log(k)).numpy()

    def _log_weights(self, Z: torch.Tensor, k: int, seed: int) -> torch.Tensor:
        """``log p(x|z) + log p(z) - log q(z|x)`` for ``k`` draws ``z ~ q(z|x)``: ``[N, k]``."""
        self._check_fitted()
        if k < 1:
            raise ValueError(f"the number of samples must be >= 1, got {k}")
        gen = torch.Generator().manual_seed(seed)
        model, neck = self.model_, self.model_.bottleneck
        out = []
        for block in self._blocks(Z, max(1, BOUND_BLOCK // k)):
            mu, logvar = neck.distribution(model.encoder(block))
            eps = torch.randn(k, *mu.shape, generator=gen)
            z = (mu + eps * torch.exp(0.5 * logvar)).reshape(-1, mu.shape[1])  # [k * n, d], draw-major
            x = block.repeat(k, *([1] * (block.dim() - 1)))
            mu_k, logvar_k = mu.repeat(k, 1), logvar.repeat(k, 1)
            log_prior = self.fitted_prior_.log_prob(z) if self.fitted_prior_ is not None else neck.log_prior(z)
            log_w = model.log_likelihood(x, model.decoder(z)) + log_prior - neck.log_posterior(z, mu_k, logvar_k)
            out.append(log_w.view(k, -1).T)
        return torch.cat(out)

    # ------------------------------------------------------------------ helpers
    def _inputs(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        return torch.from_numpy(images_for(X, self.image_spec_))

    def _decode(self, z: torch.Tensor) -> np.ndarray:
        out = torch.cat([self.model_.decode(b) for b in self._blocks(z)])
        return out.clamp_(0, 1).numpy()  # a Gaussian decoder's mean can leave the pixel range

    @staticmethod
    def _blocks(t: torch.Tensor, size: int = BLOCK) -> list[torch.Tensor]:
        return [t[s:s + size] for s in range(0, len(t), size)] or [t]

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write the model directory (config.json + model.safetensors), atomically."""
        self._check_fitted()
        params = {**self.get_params(), "verbose": 0, "checkpoint_dir": None, "resume": False}
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        config = {"params": params, "model": self.model_.spec(), "image_spec": self.image_spec_.to_dict(),
                  "training": {"epochs_run": len(self.training_history_)},
                  "prior_selection": [[k, r, score] for (k, r), score in self.prior_selection_.items()]}
        tensors = dict(self.model_.state_dict())
        if self.fitted_prior_ is not None:
            tensors.update(self.fitted_prior_.tensors(FITTED_PREFIX))
        return save_model_dir(path, self._kind, config, tensors)

    @classmethod
    def load(cls, path: str | Path) -> VAEGenerator:
        """Read a model directory written by ``save`` (never unpickles anything)."""
        config, tensors = load_model_dir(path, (cls._kind,))
        gen = cls(**config["params"])
        gen.image_spec_ = ImageSpec.from_dict(config["image_spec"])
        gen.model_ = AutoEncoder.from_spec(config["model"])
        fitted = {k: tensors.pop(k) for k in [k for k in tensors if k.startswith(FITTED_PREFIX)]}
        gen.model_.load_state_dict(tensors)
        gen.model_.eval()
        if gen.prior == "fitted" and len(fitted) != 3:
            raise ModelFileError(f"{path}: the model says prior='fitted' but its weights hold no fitted prior")
        gen.fitted_prior_ = FittedLatentPrior.from_tensors(fitted, FITTED_PREFIX) if gen.prior == "fitted" else None
        gen.prior_selection_ = {(int(k), float(r)): score for k, r, score in config.get("prior_selection", [])}
        gen.training_history_ = []
        return gen


def _one_image(x: Any) -> np.ndarray:
    """One image ``[H, W]``, ``[C, H, W]`` or ``[1, C, H, W]`` as a batch of one."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 2:
        return arr[None, None]
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        return arr[None]
    if arr.ndim == 4 and len(arr) == 1:
        return arr
    raise DataError(f"interpolate needs one image at each end ([H, W] or [C, H, W]), got shape {arr.shape}")
