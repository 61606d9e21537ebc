"""A learned lossy image codec: the encoder is the compressor, the decoder the decompressor.

``ImageCodec().fit(photos)`` trains one mean-scale hyperprior network (``nn.codec``) for
every quality level at once (gain units, one lambda each); ``compress(image, quality)``
returns the bytes of an ``.aek`` file (``bitstream``), ``decompress(data)`` the image.
Images of any size are padded (edge replication) to a multiple of 64 and cropped back.
"""
from __future__ import annotations

import hashlib
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...checks import check_device, check_float, check_int
from ...data.images import IMAGE_SUFFIXES, as_shown, exif_orientation, undecodable
from ...errors import DataError, DataNotice, ParameterError, first_line
from ...estimator import FittedModel, TensorGroups
from ...nn.codec import CONTEXTS, LAMBDAS, LATENT_STRIDE, STRIDE, HyperpriorCodec
from . import entropy
from .bitstream import Compressed

DEFAULT_MODEL = Path(__file__).resolve().parent / "default_model"
MAX_REFINE = 10_000
# what refinement holds (its gradients through the whole image, which tiles cannot split):
# about 0.6 GB and 760 bytes a pixel (1.4 GB at 1 megapixel, 3.6 GB at 3.9; measured)
REFINE_BASE_BYTES, REFINE_BYTES_PER_PIXEL = 600e6, 760
Z_SUPPORT = 32  # side-information symbols live in -32..32 (clamped; the tails hold the rest)
Image = str | os.PathLike[str] | np.ndarray


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file at its full size as ``[H, W, 3]`` uint8 (a codec keeps every pixel, so
    unlike the models' image reader there is no size cap; decompression bombs are refused).
    Of an animation or a multi-page file, the first frame, with a note."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with warnings.catch_warnings(), PILImage.open(path) as im:
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            frames = im.n_frames if getattr(im, "is_animated", False) else 1
            image = np.asarray(as_shown(im, str(path), "RGB", exif_orientation(im)))
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except DataError:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise DataError(f"{path} decodes to too many pixels (a decompression bomb?); refused") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise undecodable(str(path), exc) from None
    if frames > 1:  # the codec writes one still image: say what is left out
        warnings.warn(f"{path} holds {frames} frames (an animation or pages); only the first is encoded", DataNotice,
                      stacklevel=2)
    return image


def _check_memory_for_refine(pixels: int) -> None:
    """Refuse refinement where it would need more memory than the system has free (Linux's
    MemAvailable; elsewhere nothing is checked): a 24-megapixel photo needs about 19 GB, and
    running out would end in the system killing the process, or swapping the machine to a
    halt."""
    need = REFINE_BASE_BYTES + REFINE_BYTES_PER_PIXEL * pixels
    free = _available_bytes()
    if free is not None and need > free:
        megapixels = f"{pixels / 1e6:.1f}" if pixels >= 1e6 else f"{pixels / 1e6:.2f}"
        raise DataError(f"refining the latents of this {megapixels}-megapixel image (--refine) needs about "
                        f"{need / 1e9:.1f} GB, and {free / 1e9:.1f} GB are free: encode it without refinement (its "
                        "file is about 4% larger), or refine a smaller image")


def _available_bytes() -> int | None:
    """The memory the system can give now (Linux's MemAvailable), or None where it cannot tell."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def as_rgb(image: Image) -> np.ndarray:
    """An RGB image ``[H, W, 3]`` uint8 from a file or an array (gray is repeated)."""
    if isinstance(image, (str, os.PathLike)):
        a = read_rgb(image)
    else:
        a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise DataError(f"an image must be [H, W] or [H, W, 3], got shape {a.shape}")
    if a.dtype != np.uint8:
        if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
            raise DataError("image values must be finite numbers")
        if a.min() < 0 or a.max() > 255:
            raise DataError(f"image values must be in [0, 255], got [{a.min()}, {a.max()}]")
        if a.max() <= 1 and (a != np.round(a)).any():  # rounded, a [0, 1] image would be black
            raise DataError("image values are fractions in [0, 1]; the codec takes 0-255: pass "
                            "(image * 255).round().astype(np.uint8)")
        a = np.round(a).astype(np.uint8)
    a = a[:, :, :3] if a.shape[2] == 4 else a
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise DataError("the image is empty")
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def _padded(rgb: np.ndarray) -> torch.Tensor:
    h, w = rgb.shape[:2]
    ph, pw = -h % STRIDE, -w % STRIDE
    x = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return torch.from_numpy(x.transpose(2, 0, 1)).float().div_(255.0).unsqueeze(0)  # one float copy, not two


class ImageCodec(FittedModel):
    """A learned image codec with ``len(lambdas)`` quality levels (1 = smallest files).

    ``fit(X)``: photos (a folder, a list of files, or an array ``[N, H, W, 3]``); each gives
    ``crops_per_image`` random ``crop`` x ``crop`` crops (each flipped left-right at random)
    after downsampling by ``downsample`` (2 hides the artefacts of small, heavily compressed
    JPEG sources; photos at full quality train best at 1). ``latent_channels`` caps the
    fidelity of the best quality: 16 x 16 x 3 pixels become that many numbers. ``context``:
    ``"checkerboard"`` codes the latents in two parallel groups, the second conditioned on the
    first (He et al. report about 5% fewer bytes; the bundled codec's, briefly trained, buys
    0.4%), ``"none"`` in one.
    ``init_model``: a saved codec of the same widths whose weights start the training (a
    fine-tune; its quality levels' gains are interpolated to ``lambdas``, in log lambda). Adam
    at ``lr`` falls to ``lr * lr_decay`` along a cosine: short CPU trainings need the large
    early steps. ``device``: where training runs (``"cuda"`` for a GPU); the codec codes on
    the CPU."""

    _kind = "compress.ImageCodec"
    _network_class = HyperpriorCodec
    _min_rows = 1

    def __init__(self, *, channels: int = 64, latent_channels: int = 192, lambdas: tuple[float, ...] = LAMBDAS,
                 context: str = "checkerboard", crop: int = 256, crops_per_image: int = 4, downsample: int = 1,
                 epochs: int = 40, batch_size: int = 8, lr: float = 1e-3, lr_decay: float = 0.05,
                 patience: int = 40, validation_fraction: float = 0.05, init_model: str | None = None,
                 device: str = "cpu", random_state: int = 0, verbose: int = 0, checkpoint_dir: str | None = None,
                 resume: bool = False) -> None:
        self.channels = channels
        self.latent_channels = latent_channels
        self.lambdas = lambdas
        self.context = context
        self.crop = crop
        self.crops_per_image = crops_per_image
        self.downsample = downsample
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.init_model = init_model
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.channels, "channels", 1, 1024)
        check_int(self.latent_channels, "latent_channels", 1, 1024)
        check_int(self.crop, "crop", STRIDE, 4096)
        if self.crop % STRIDE:
            raise ParameterError(f"crop must be a multiple of {STRIDE}, got {self.crop}")
        check_int(self.crops_per_image, "crops_per_image", 1, 1000)
        check_int(self.downsample, "downsample", 1, 16)
        if self.context not in CONTEXTS:
            raise ParameterError(f"context must be one of {list(CONTEXTS)}, got {self.context!r}")
        check_device(self.device)
        for v in self.lambdas:
            check_float(v, "lambdas", 0, 100, low_open=True)

    @property
    def qualities(self) -> int:
        return len(self.lambdas)

    # ------------------------------------------------------------------ training
    def _crops(self, X: Any, rng: np.random.Generator) -> torch.Tensor:
        from PIL import Image as PILImage

        if isinstance(X, (str, os.PathLike)):
            root = Path(X)
            if not root.is_dir():
                raise DataError(f"{root} is not a folder of images")
            X = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not X:
                raise DataError(f"{root} holds no images")
        crops = []
        for item in X:
            rgb = as_rgb(item)
            if self.downsample > 1:
                h, w = rgb.shape[0] // self.downsample, rgb.shape[1] // self.downsample
                rgb = np.asarray(PILImage.fromarray(rgb).resize((w, h), PILImage.Resampling.LANCZOS))
            h, w = rgb.shape[:2]
            if min(h, w) < self.crop:
                continue
            for _ in range(self.crops_per_image):
                top, left = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
                crop = rgb[top:top + self.crop, left:left + self.crop]
                crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
        if not crops:
            raise DataError(f"no training image is at least {self.crop} pixels a side after downsampling "
                            f"by {self.downsample}")
        # bytes, not floats: a quarter of the memory (the network's loss converts each batch)
        return torch.from_numpy(np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2)))

    def fit(self, X: Any, y: Any = None) -> ImageCodec:
        """Train on the photos in ``X`` (``y`` is ignored)."""
        self._check_params()
        from ...data.adapters import ArrayAdapter

        rng = np.random.default_rng(self.random_state)
        crops = self._crops(X, rng)
        self.adapter_ = ArrayAdapter()  # the codec reads images itself; the adapter records nothing
        self.adapter_.fit_transform(np.zeros((1, 1), np.float32))
        train_idx, val_idx = self._split(len(crops))
        torch.manual_seed(self.random_state)
        model = HyperpriorCodec(self.channels, self.latent_channels, tuple(self.lambdas), self.context)
        if self.init_model is not None:
            self._start_from(model, ImageCodec.load(self.init_model).model_)
        result = self._train(model, crops[train_idx], crops[val_idx] if len(val_idx) else None,
                             seed=self.random_state, name="model", desc="image codec", device=self.device)
        self.training_history_ = result.history
        self._set_model(model)
        return self

    def _start_from(self, model: HyperpriorCodec, source: HyperpriorCodec) -> None:
        """Copy ``source``'s weights into ``model`` (same widths); the gains of ``model``'s
        quality levels are interpolated (or extrapolated) from ``source``'s in log lambda."""
        widths = ("channels", "latent_channels")
        if any(source.config[k] != model.config[k] for k in widths):
            raise ParameterError(f"init_model {self.init_model} has widths "
                                 f"{[source.config[k] for k in widths]}, this codec {[model.config[k] for k in widths]}")
        state = {k: v for k, v in source.state_dict().items() if k not in ("gain", "inverse_gain")}
        own = model.state_dict()
        unknown = [k for k in state if k not in own]  # e.g. a context model this codec has not
        model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        old = torch.tensor(source.config["lambdas"]).log()
        with torch.no_grad():
            for name in ("gain", "inverse_gain"):
                table = getattr(source, name)
                for i, lam in enumerate(model.config["lambdas"]):
                    if len(old) == 1:
                        getattr(model, name)[i] = table[0]
                        continue
                    k = int(torch.searchsorted(old, torch.tensor(lam).log()).clamp(1, len(old) - 1)) - 1
                    t = (math.log(lam) - old[k]) / (old[k + 1] - old[k])
                    getattr(model, name)[i] = table[k] + t * (table[k + 1] - table[k])
        if unknown and self.verbose:
            print(f"init_model: left out {len(unknown)} tensors this codec does not have")

    # ------------------------------------------------------------------ coding
    def _set_model(self, model: HyperpriorCodec) -> None:
        """Keep ``model`` and ``model_id_``: 16 bytes that identify its weights (a file made
        by another codec is refused), hashed once here rather than on every file."""
        h = hashlib.sha256()
        for name, t in sorted(model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().contiguous().numpy().tobytes())
        self.model_id_ = h.digest()[:16]
        self.model_ = model

    def _quality(self, quality: int) -> int:
        check_int(quality, "quality", 1, self.qualities)
        return quality - 1

    def compress(self, image: Image, quality: int, refine: int = 0) -> bytes:
        """The ``.aek`` bytes of ``image`` (a file or ``[H, W, 3]`` uint8) at ``quality``.
        ``refine``: steps of encode-time refinement of the latents (``HyperpriorCodec.refine``;
        0 = none): fewer bytes for the same fidelity at the cost of encoder time, decoded
        by any aekit as usual."""
        self._check_fitted()
        q = self._quality(quality)
        check_int(refine, "refine", 0, MAX_REFINE)
        rgb = as_rgb(image)
        x = _padded(rgb)
        if refine:
            _check_memory_for_refine(x.shape[2] * x.shape[3])
        y = self.model_.refine(x, q, refine) if refine else None
        z, _, residuals, scales = self._code(x, q, y)
        pmf = self.model_.prior.pmf(Z_SUPPORT)
        grey = bool(np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]))
        return Compressed(self.model_id_, quality, rgb.shape[0], rgb.shape[1], entropy.encode_z(z, pmf, Z_SUPPORT),
                          entropy.encode_y(torch.cat(residuals), torch.cat(scales)), grey=grey).to_bytes()

    @torch.inference_mode()
    def _code(self, x: torch.Tensor, q: int, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                    list[torch.Tensor], list[torch.Tensor]]:
        """What the encoder writes for the padded image ``x`` at quality index ``q``: ``z``, the
        latents the decoder will rebuild, and each group's residuals and scales."""
        z, y = self.model_.analyse(x, q, Z_SUPPORT, y)
        hyper = self.model_.hyper(z)
        y_hat, residuals, scales = torch.zeros_like(y), [], []
        # each group is coded from what the decoder will have decoded before it, the same way
        for group, mask in enumerate(self.model_.group_masks(*y.shape[2:])):
            mean, scale = self.model_.coding_params(hyper, y_hat, group)
            residual = torch.round(y - mean)[..., mask].clamp(-entropy.Y_SUPPORT, entropy.Y_SUPPORT)
            y_hat[..., mask] = residual + mean[..., mask]
            residuals.append(residual.flatten())
            scales.append(scale[..., mask].flatten())
        return z, y_hat, residuals, scales

    @torch.inference_mode()
    def decompress(self, data: bytes, name: str = "the file") -> np.ndarray:
        """The image ``[H, W, 3]`` uint8 of ``.aek`` bytes made by this codec, or ``[H, W]``
        where the image coded was grey (its channels' mean: the decoder's channels differ by
        a little)."""
        self._check_fitted()
        c = Compressed.from_bytes(data, name)
        if c.model_id != self.model_id_:
            raise DataError(f"{name} was made by another codec model (model id {c.model_id.hex()[:12]}, "
                            f"this one is {self.model_id_.hex()[:12]})")
        if not 1 <= c.quality <= self.qualities:  # a valid checksum over a bad header: made elsewhere
            raise DataError(f"{name} asks for quality {c.quality}; this codec has 1-{self.qualities}")
        q = c.quality - 1
        ph, pw = c.height + (-c.height % STRIDE), c.width + (-c.width % STRIDE)
        m = self.model_.config
        z_shape = (1, m["channels"], ph // STRIDE, pw // STRIDE)
        pmf = self.model_.prior.pmf(Z_SUPPORT)
        # a size the payload cannot hold is refused before anything that size is allocated
        least = z_shape[2] * z_shape[3] * entropy.min_z_bits(pmf) / 8
        if least > len(c.z) + 8:
            raise DataError(f"{name} is damaged or forged: its header's {c.width}x{c.height} image needs at least "
                            f"{least:,.0f} bytes of side information, and the file holds {len(c.z):,}")
        try:
            z = entropy.decode_z(c.z, z_shape, pmf, Z_SUPPORT)
            hyper = self.model_.hyper(z)
            y_hat = torch.zeros(1, m["latent_channels"], ph // LATENT_STRIDE, pw // LATENT_STRIDE)
            decoder = entropy.YDecoder(c.y)
            for group, mask in enumerate(self.model_.group_masks(ph // LATENT_STRIDE, pw // LATENT_STRIDE)):
                mean, scale = self.model_.coding_params(hyper, y_hat, group)
                y_hat[..., mask] = decoder.take(scale[..., mask]) + mean[..., mask]
            decoder.finish()
        except Exception as exc:  # noqa: BLE001 - the range coder's asserts too: a bad payload, never a crash
            raise DataError(f"{name} is damaged: its payload does not decode to a {c.width}x{c.height} image "
                            f"({first_line(exc, 120)})") from None
        x = self.model_.synthesise(y_hat, q)[0, :, :c.height, :c.width]
        if c.grey:
            x = x.mean(0, keepdim=True)
        # in place: each float copy of a 24-megapixel image is 0.3 GB
        image = x.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
        return image[:, :, 0] if c.grey else image

    @torch.inference_mode()
    def estimated_bits(self, image: Image, quality: int) -> float:
        """Bits the entropy model expects for ``image`` (its likelihoods), without coding."""
        self._check_fitted()
        out = self.model_.forward(_padded(as_rgb(image)), self._quality(quality))
        return float(sum(-lik.log2().sum() for lik in out["likelihoods"].values()))

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        return {"epochs_run": len(getattr(self, "training_history_", []))}, {}

    def _set_state(self, networks: dict[str, Any], state: dict[str, Any], groups: TensorGroups) -> None:
        self.context = networks["model"].config["context"]  # a codec saved before contexts has none
        self._set_model(networks["model"])
        self.training_history_ = []


def default_model() -> ImageCodec:
    """The bundled codec, qualities 1-10 (photos of ``../shared/data``; ``scripts/make_default_codec.py``)."""
    return ImageCodec.load_bundled(DEFAULT_MODEL, "aekit compress train")
