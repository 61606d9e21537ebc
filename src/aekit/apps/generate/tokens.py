"""The decoder as a generator, sharp: a VQ-VAE's token grids and a transformer prior over them."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from ...checks import MAX_SAMPLES, MAX_WIDTH, check_choice, check_float, check_image_size, check_int, check_sizes
from ...data.images import ImageSpec
from ...errors import DataError
from ...estimator import FittedModel
from ...nn.tokens import RECONSTRUCTIONS, TokenAutoEncoder, TokenModel, TokenPrior
from ...training import patience_in_updates, steps_to_epochs
from .generator import PATIENCE_UPDATES, one_image

BLOCK = 512  # images per forward pass
AUTO_UPDATES = 2000  # optimizer steps of each stage with epochs="auto"
MAX_AUTO_EPOCHS = 300
SAMPLE_BLOCK = 2048  # sequences sampled together (the key/value cache grows with it)


class TokenGenerator(FittedModel):
    """Images ``[N, C, H, W]`` in [0, 1] as grids of codebook tokens; new images are grids
    drawn from a transformer prior, decoded.

    ``fit`` trains in two stages (van den Oord et al. 2017): the VQ-VAE (``nn.tokens``:
    ``len(channels)`` stride-2 stages, so a 28x28 image is a 7x7 grid, ``codebook_size``
    vectors of ``dim`` numbers, loss ``reconstruction``) for ``epochs``, then the prior over
    the training images' grids, read row by row, for ``prior_epochs`` (``"auto"``: about 2,000
    optimizer steps each, at least 5 and 10 epochs, at most 300: MNIST's 5 and 10, and on 150
    images 300 epochs rather than 5). ``patience`` epochs hold at least 60 steps. ``temperature``
    < 1 samples the prior's likelier tokens (on MNIST that collapsed the samples onto a few
    digits; see BENCHMARKS.md). ``VAEGenerator``'s default, a VAE whose images pass through a
    VQ-VAE like this one, did better on MNIST within a CPU budget.

    ``X`` is an array ``[N, H, W]`` / ``[N, C, H, W]``, an ``ImageSet``, or a source for
    ``load_images`` (a folder of PNG/JPEG, an ``.npz`` file, or ``digits`` / ``lfw_subset``).
    """

    _kind = "generate.TokenGenerator"
    _network_class = TokenModel
    data: ClassVar[str] = "image"  # always images (not a parameter)

    def __init__(
        self,
        *,
        image_size: Sequence[int] | None = None,
        channels: Sequence[int] = (32, 64),
        codebook_size: int = 64,
        dim: int = 16,
        reconstruction: str = "bce",
        prior_width: int = 128,
        prior_layers: int = 4,
        temperature: float = 1.0,
        epochs: int | str = "auto",
        prior_epochs: int | str = "auto",
        batch_size: int = 128,
        lr: float = 2e-3,
        prior_lr: float = 1e-3,
        lr_decay: float = 0.05,
        patience: int = 5,
        validation_fraction: float = 0.1,
        random_state: int = 0,
        verbose: int = 0,
        checkpoint_dir: str | None = None,
        resume: bool = False,
    ) -> None:
        self.image_size = image_size
        self.channels = channels
        self.codebook_size = codebook_size
        self.dim = dim
        self.reconstruction = reconstruction
        self.prior_width = prior_width
        self.prior_layers = prior_layers
        self.temperature = temperature
        self.epochs = epochs
        self.prior_epochs = prior_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.prior_lr = prior_lr
        self.lr_decay = lr_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        super()._check_params()
        check_image_size(self.image_size)
        check_sizes(self.channels, "channels")
        check_int(self.codebook_size, "codebook_size", 2, MAX_WIDTH)
        check_int(self.dim, "dim", 1, MAX_WIDTH)
        check_choice(self.reconstruction, "reconstruction", RECONSTRUCTIONS)
        check_int(self.prior_width, "prior_width", 8, MAX_WIDTH)
        check_int(self.prior_layers, "prior_layers", 1, 64)
        check_float(self.temperature, "temperature", 0, 10, low_open=True)
        if self.prior_epochs != "auto":
            check_int(self.prior_epochs, "prior_epochs", 1, 10_000)
        check_float(self.prior_lr, "prior_lr", 0, 10, low_open=True)
        check_float(self.lr_decay, "lr_decay", 0, 1)
        check_int(self.patience, "patience", 1)

    def fit(self, X: Any, y: Any = None) -> TokenGenerator:
        """Train the VQ-VAE, then the prior over its token grids, on images ``X`` (``y`` is ignored)."""
        self._check_params()
        Z = self._fit_adapter(X)
        train_idx, val_idx = self._split(len(Z))
        torch.manual_seed(self.random_state)
        c, h, w = Z.shape[1:]
        autoencoder = TokenAutoEncoder(c, h, w, self.codebook_size, self.dim, self.channels, self.reconstruction,
                                       dead_after=max(1, len(train_idx) // self.batch_size))
        gh, gw = autoencoder.grid
        heads = 4 if self.prior_width % 4 == 0 else 1
        model = TokenModel(autoencoder, TokenPrior(self.codebook_size, gh * gw, self.prior_width, self.prior_layers, heads))
        # "auto": about AUTO_UPDATES steps each, the epochs MNIST's 60,000 images had (5 and 10);
        # 150 images are one step an epoch, and 5 epochs left the VQ-VAE untrained
        n, batch = len(train_idx), self.batch_size
        epochs = steps_to_epochs(n, batch, AUTO_UPDATES, 5, MAX_AUTO_EPOCHS) if self.epochs == "auto" else self.epochs
        prior_epochs = (steps_to_epochs(n, batch, AUTO_UPDATES, 10, MAX_AUTO_EPOCHS) if self.prior_epochs == "auto"
                        else self.prior_epochs)
        patience = patience_in_updates(n, batch, PATIENCE_UPDATES, self.patience)
        history = {"autoencoder": self._train(autoencoder, Z[train_idx], Z[val_idx] if len(val_idx) else None,
                                              seed=self.random_state, name="autoencoder", desc="VQ-VAE",
                                              epochs=epochs, patience=patience).history}
        tokens = self._batched(autoencoder.encode_indices, Z, BLOCK).flatten(1)
        history["prior"] = self._train(model.prior, tokens[train_idx], tokens[val_idx] if len(val_idx) else None,
                                       seed=self.random_state, name="prior", desc="token prior",
                                       epochs=prior_epochs, lr=self.prior_lr, patience=patience).history
        self.training_history_ = history
        self.model_ = model.eval()
        return self

    # ------------------------------------------------------------------ the generator surface
    @torch.inference_mode()
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` new images ``[n, C, H, W]`` in [0, 1]: token grids drawn from the prior,
        decoded. The same ``seed`` gives the same images."""
        self._check_fitted()
        check_int(n, "the number of samples", 1, MAX_SAMPLES)
        gen = torch.Generator().manual_seed(seed)
        grid = self.model_.autoencoder.grid
        parts = [self.model_.prior.sample(min(SAMPLE_BLOCK, n - s), gen, self.temperature).view(-1, *grid)
                 for s in range(0, n, SAMPLE_BLOCK)]
        return self._decode(torch.cat(parts))

    def encode(self, X: Any) -> np.ndarray:
        """Token grids ``[N, h, w]`` (int64) of the images."""
        return self._batched(self.model_.autoencoder.encode_indices, self._inputs(X), BLOCK).numpy()

    def decode(self, tokens: Any) -> np.ndarray:
        """Images ``[N, C, H, W]`` in [0, 1] from token grids ``[N, h, w]``."""
        self._check_fitted()
        t = np.asarray(tokens)
        grid = self.model_.autoencoder.grid
        if t.ndim != 3 or t.shape[1:] != grid or not np.issubdtype(t.dtype, np.integer) or \
                (t.size and (t.min() < 0 or t.max() >= self.codebook_size)):
            raise DataError(f"tokens must be integers in 0..{self.codebook_size - 1} of shape [N, {grid[0]}, "
                            f"{grid[1]}], got {t.dtype} {t.shape}")
        return self._decode(torch.as_tensor(t, dtype=torch.long))

    def reconstruct(self, X: Any) -> np.ndarray:
        """``decode(encode(X))``."""
        return self._batched(self.model_.autoencoder.reconstruct, self._inputs(X), BLOCK).numpy()

    @torch.inference_mode()
    def interpolate(self, a: Any, b: Any, steps: int = 10) -> np.ndarray:
        """``steps`` images on the path from image ``a`` to image ``b`` (both ends included):
        the encoder's continuous outputs mixed along a straight line, each quantized and
        decoded. ``a`` and ``b`` are single images ``[H, W]`` / ``[C, H, W]``."""
        check_int(steps, "steps", 2, 1000)
        ae = self.model_.autoencoder
        za, zb = (ae.features(self._inputs(one_image(x))) for x in (a, b))
        t = torch.linspace(0.0, 1.0, steps).view(-1, 1, 1, 1)
        return ae.decode_quantized(ae.quantize((1 - t) * za + t * zb)[0]).numpy()

    @property
    def image_spec_(self) -> ImageSpec:
        """Channels and size of the images the model makes (and converts inputs to)."""
        self._check_fitted()
        return self.adapter_.spec

    def _decode(self, tokens: torch.Tensor) -> np.ndarray:
        return self._batched(self.model_.autoencoder.decode_indices, tokens, BLOCK).numpy()

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        runs = {k: len(v) for k, v in getattr(self, "training_history_", {}).items()}
        return {"epochs_run": runs}, {}

    def _set_state(self, networks: dict[str, Any], state: dict[str, Any], groups: dict[str, Any]) -> None:
        self.model_ = networks["model"].eval()
        self.training_history_ = {}
