"""The decoder as a generator: a VAE on images whose decoder turns prior samples into images."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from typing import ClassVar

import numpy as np
import torch

from ...autoencoder import AutoEncoder
from ...checks import MAX_SAMPLES, MAX_WIDTH, check_choice, check_float, check_image_size, check_int, check_sizes
from ...data.images import ImageSpec
from ...errors import DataError, ModelFileError, ParameterError
from ...estimator import FittedModel, TensorGroups
from ...nn.conv import grid_side
from ...nn.tokens import TokenAutoEncoder
from ...training import patience_in_updates
from .latent_prior import CANDIDATE_COMPONENTS, FittedLatentPrior

LIKELIHOODS = {"gaussian": "gaussian_sigma", "bernoulli": "bernoulli"}
PRIORS = ("fitted", "learned")
POSTERIOR_DRAWS = 5  # codes drawn per image when fitting the prior to the aggregate posterior
# at most this many codes go into the fitted prior (fewer draws per image, then a random subset
# of images, beyond): EM's memory and time grow with codes x components
MAX_PRIOR_CODES = 30_000
SELECTION_FRACTION = 0.2  # images held out to choose the fitted prior's size when there is no validation split
BLOCK = 512  # images per forward pass
BOUND_BLOCK = 4096  # (image, draw) pairs per forward pass in the likelihood bounds
# the refiner: a VQ-VAE whose tokens are patches of about 4x4 pixels (stride-2 stages until the
# grid's shorter side is at most REFINER_GRID), with these channels per stage
REFINER_GRID = 8
REFINER_CHANNELS = (32, 64, 128, 128, 128, 128)
REFINER_DIM = 16
REFINER_BATCH = 128
REFINER_LR = 2e-3
REFINER_UPDATES = 2000
REFINER_MAX_EPOCHS = 300  # a few hundred images: fewer updates rather than an epoch (and checkpoint) per batch
PATIENCE_UPDATES = 60  # updates without a better validation loss before a token model stops


class VAEGenerator(FittedModel):
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

    The refiner sharpens what the decoder draws (``refine_steps`` > 0, the default 3): a
    VQ-VAE (``nn.tokens.TokenAutoEncoder``, ``codebook_size`` tokens of about 4x4 pixels)
    trained on the same images re-encodes each decoded image as a grid of codebook tokens and
    redraws it, ``refine_steps`` times. It trains for ``refine_epochs``, by default enough for
    ``REFINER_UPDATES`` batches (at most ``REFINER_MAX_EPOCHS`` epochs; 5 on MNIST). A Gaussian decoder draws the
    mean of what a code could be, a blur; the refiner can only draw patches of real images,
    so the blurred strokes snap to sharp ones. Every image ``sample``, ``decode``,
    ``reconstruct`` and ``interpolate`` return passes through it; the likelihood bounds are
    the VAE's own. ``refine_steps=0`` trains no refiner.

    ``X`` is an array ``[N, H, W]`` / ``[N, C, H, W]``, an ``ImageSet``, or a source for
    ``load_images`` (a folder of PNG/JPEG, an ``.npz`` file, or ``digits`` / ``lfw_subset``).
    """

    _kind = "generate.VAEGenerator"
    _network_classes: ClassVar[dict[str, type]] = {"refiner": TokenAutoEncoder}
    data: ClassVar[str] = "image"  # always images (not a parameter)

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
        refine_steps: int = 3,
        codebook_size: int = 64,
        refine_epochs: int | None = None,
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
        self.refine_steps = refine_steps
        self.codebook_size = codebook_size
        self.refine_epochs = refine_epochs
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
    def _check_params(self) -> None:
        super()._check_params()
        check_choice(self.likelihood, "likelihood", tuple(LIKELIHOODS))
        check_choice(self.prior, "prior", PRIORS)
        check_choice(self.architecture, "architecture", ("conv", "mlp"))
        if self.fitted_components is not None:
            check_int(self.fitted_components, "fitted_components", 1, 1000)
        check_int(self.code_size, "code_size", 1, MAX_WIDTH)
        check_int(self.hidden, "hidden", 2, MAX_WIDTH)
        check_sizes(self.channels, "channels")
        check_int(self.prior_components, "prior_components", 0, 10_000)
        check_float(self.beta, "beta", 0)
        check_image_size(self.image_size)
        check_int(self.refine_steps, "refine_steps", 0, 20)
        check_int(self.codebook_size, "codebook_size", 2, MAX_WIDTH)
        if self.refine_epochs is not None:
            check_int(self.refine_epochs, "refine_epochs", 1, 100_000)

    def fit(self, X: Any, y: Any = None) -> VAEGenerator:
        """Train on images ``X`` (``y`` is ignored)."""
        self._check_params()
        Z = self._fit_adapter(X)
        train_idx, val_idx = self._split(len(Z))
        torch.manual_seed(self.random_state)
        self.model_ = self._build_model(tuple(Z.shape[1:]))
        result = self._train(self.model_, Z[train_idx], Z[val_idx] if len(val_idx) else None,
                             seed=self.random_state, name="vae", desc="VAE")
        self.training_history_ = result.history
        self.refiner_ = self._train_refiner(Z, train_idx, val_idx) if self.refine_steps else None
        self.fitted_prior_, self.prior_selection_ = None, {}
        if self.prior == "fitted":
            if not len(val_idx):  # hold some training images out, for choosing the prior's size only
                perm = np.random.default_rng(self.random_state).permutation(len(Z))
                n_sel = max(1, int(round(SELECTION_FRACTION * len(Z))))
                train_idx, val_idx = perm[n_sel:], perm[:n_sel]
            components = (self.fitted_components,) if self.fitted_components else CANDIDATE_COMPONENTS
            share = len(train_idx) / (len(train_idx) + len(val_idx))
            self.fitted_prior_, self.prior_selection_ = FittedLatentPrior.fit(
                self._posterior_draws(Z[train_idx], round(MAX_PRIOR_CODES * share)),
                self._posterior_draws(Z[val_idx], round(MAX_PRIOR_CODES * (1 - share)) or 1), components,
                seed=self.random_state)
        return self

    def _train_refiner(self, Z: torch.Tensor, train_idx: np.ndarray, val_idx: np.ndarray) -> TokenAutoEncoder:
        c, h, w = Z.shape[1:]
        stages = 1
        while min(grid_side(h, stages), grid_side(w, stages)) > REFINER_GRID and stages < len(REFINER_CHANNELS):
            stages += 1
        per_epoch = max(1, len(train_idx) // REFINER_BATCH)  # full batches: updates an epoch
        refiner = TokenAutoEncoder(c, h, w, self.codebook_size, REFINER_DIM, REFINER_CHANNELS[:stages],
                                   dead_after=per_epoch)
        # its own schedule (TokenGenerator's defaults): a cosine to 5% of the rate, and by
        # default a fixed number of updates, however many images there are
        epochs = self.refine_epochs or min(REFINER_MAX_EPOCHS, -(-REFINER_UPDATES // per_epoch))
        # patience counted in updates, as the digits' 12 updates an epoch gave it: with one
        # update an epoch (150 photos), 5 epochs' patience stopped it untrained, drawing gray
        patience = patience_in_updates(len(train_idx), REFINER_BATCH, PATIENCE_UPDATES, 5)
        self._train(refiner, Z[train_idx], Z[val_idx] if len(val_idx) else None, seed=self.random_state,
                    name="refiner", desc="token refiner", epochs=epochs, batch_size=REFINER_BATCH,
                    lr=REFINER_LR, lr_decay=0.05, patience=patience)
        return refiner

    @torch.inference_mode()
    def _posterior_draws(self, Z: torch.Tensor, max_codes: int) -> torch.Tensor:
        """Up to ``POSTERIOR_DRAWS`` codes per image from ``q(z|x)``, at most ``max_codes``
        in all: samples of the aggregate posterior."""
        gen = torch.Generator().manual_seed(self.random_state)
        if len(Z) > max_codes:
            Z = Z[torch.randperm(len(Z), generator=gen)[:max_codes]]
        draws = min(POSTERIOR_DRAWS, max(1, max_codes // len(Z)))
        out = []
        for block in self._blocks(Z):
            mu, logvar = self.model_.posterior(block)
            eps = torch.randn(draws, *mu.shape, generator=gen)
            out.append((mu + eps * torch.exp(0.5 * logvar)).reshape(-1, mu.shape[1]))
        return torch.cat(out).double()

    def _build_model(self, shape: tuple[int, ...]) -> AutoEncoder:
        code = dict(code_size=self.code_size, bottleneck="gaussian", reconstruction=LIKELIHOODS[self.likelihood],
                    beta=self.beta, kl_warmup=self.kl_warmup, prior_components=self.prior_components)
        if self.architecture == "conv":
            return AutoEncoder.conv(shape, channels=self.channels, hidden=self.hidden, **code)
        if self.architecture == "mlp":
            return AutoEncoder.mlp(math.prod(shape), hidden=(self.hidden, self.hidden // 2), out_shape=shape, **code)
        raise ParameterError(f"architecture must be 'conv' or 'mlp', got {self.architecture!r}")

    # ------------------------------------------------------------------ the generator surface
    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` new images ``[n, C, H, W]`` in [0, 1]: the decoder's mean at prior samples.
        The same ``seed`` gives the same images."""
        self._check_fitted()
        check_int(n, "the number of samples", 1, MAX_SAMPLES)
        gen = torch.Generator().manual_seed(seed)
        prior = self.fitted_prior_
        z = prior.sample(n, gen) if prior is not None else self.model_.bottleneck.sample_prior(n, gen)
        return self._decode(z)

    @torch.inference_mode()
    def encode(self, X: Any) -> np.ndarray:
        """Codes ``[N, code_size]``: the posterior means of the images."""
        self._check_fitted()
        return self._batched(self.model_.encode, self._inputs(X), BLOCK).numpy()

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
        check_int(steps, "steps", 2, 1000)
        za, zb = self.encode(one_image(a)), self.encode(one_image(b))
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
        check_int(k, "the number of samples", 1, 100_000)
        gen = torch.Generator().manual_seed(seed)
        model, neck = self.model_, self.model_.bottleneck
        out = []
        for block in self._blocks(Z, max(1, BOUND_BLOCK // k)):
            mu, logvar = model.posterior(block)
            eps = torch.randn(k, *mu.shape, generator=gen)
            z = (mu + eps * torch.exp(0.5 * logvar)).reshape(-1, mu.shape[1])  # [k * n, d], draw-major
            x = block.repeat(k, *([1] * (block.dim() - 1)))
            mu_k, logvar_k = mu.repeat(k, 1), logvar.repeat(k, 1)
            log_prior = self.fitted_prior_.log_prob(z) if self.fitted_prior_ is not None else neck.log_prior(z)
            log_w = model.log_likelihood(x, model.decoder(z)) + log_prior - neck.log_posterior(z, mu_k, logvar_k)
            out.append(log_w.view(k, -1).T)
        return torch.cat(out)

    # ------------------------------------------------------------------ helpers
    @property
    def image_spec_(self) -> ImageSpec:
        """Channels and size of the images the model makes (and converts inputs to)."""
        self._check_fitted()
        return self.adapter_.spec

    def _decode(self, z: torch.Tensor) -> np.ndarray:
        return self._batched(self._draw, z, BLOCK).numpy()

    def _draw(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes: the decoder's mean, then the refiner's passes."""
        x = self.model_.decode(z).clamp_(0, 1)  # a Gaussian decoder's mean can leave the pixel range
        for _ in range(self.refine_steps if self.refiner_ is not None else 0):
            x = self.refiner_.reconstruct(x)
        return x

    @staticmethod
    def _blocks(t: torch.Tensor, size: int = BLOCK) -> list[torch.Tensor]:
        return [t[s:s + size] for s in range(0, len(t), size)] or [t]

    # ------------------------------------------------------------------ persistence
    def _networks(self) -> dict[str, Any]:
        return {"model": self.model_, **({"refiner": self.refiner_} if self.refiner_ is not None else {})}

    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        state = {"training": {"epochs_run": len(self.training_history_)},
                 "prior_selection": [[k, r, score] for (k, r), score in self.prior_selection_.items()]}
        groups = {"fitted_prior": self.fitted_prior_.tensors("")} if self.fitted_prior_ is not None else {}
        return state, groups

    def _set_state(self, networks: dict[str, AutoEncoder], state: dict[str, Any], groups: TensorGroups) -> None:
        self.model_ = networks["model"]
        self.refiner_ = networks.get("refiner")
        if self.refine_steps and self.refiner_ is None:
            raise ModelFileError(f"the model says refine_steps={self.refine_steps} but its weights hold no refiner")
        fitted = groups.get("fitted_prior", {})
        if self.prior == "fitted" and len(fitted) != 3:
            raise ModelFileError("the model says prior='fitted' but its weights hold no fitted prior")
        self.fitted_prior_ = FittedLatentPrior.from_tensors(fitted, "") if self.prior == "fitted" else None
        if self.fitted_prior_ is not None and self.fitted_prior_.means.shape[1] != self.model_.bottleneck.code_size:
            raise ModelFileError("the fitted prior does not match the network's code size")
        self.prior_selection_ = {(int(k), float(r)): score for k, r, score in state.get("prior_selection", [])}
        self.training_history_ = []


def one_image(x: Any) -> np.ndarray:
    """One image ``[H, W]``, ``[C, H, W]`` or ``[1, C, H, W]`` as a batch of one."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 2:
        return arr[None, None]
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        return arr[None]
    if arr.ndim == 4 and len(arr) == 1:
        return arr
    raise DataError(f"interpolate needs one image at each end ([H, W] or [C, H, W]), got shape {arr.shape}")
