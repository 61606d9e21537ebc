"""What the compress commands do, callable from Python: train, encode, decode, evaluate."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...checks import check_int
from ...errors import DataError
from ... import marks
from ...io import atomic_path, check_output_file
from .codec import ImageCodec, as_rgb, default_model
from .metrics import bd_rate, bpp, psnr

IMAGE_OUT = (".png", ".bmp", ".tif", ".tiff")  # lossless: a decoded image is never re-compressed on save


def train_codec(data: str | os.PathLike[str], out: str | os.PathLike[str], *, resume: bool = False,
                **params: object) -> ImageCodec:
    """Train on the photos under ``data`` and save the codec at ``out`` (never over ``data`` or
    the ``init_model`` it starts from)."""
    inputs = [data] + ([params["init_model"]] if params.get("init_model") else [])
    return ImageCodec(**params).fit_to(data, out, resume=resume, inputs=inputs)


Model = str | os.PathLike[str] | None  # None: the bundled codec


def load_codec(model: Model) -> ImageCodec:
    """The codec saved at ``model``, or the bundled one."""
    return ImageCodec.load(model) if model is not None else default_model()


def encode_file(image: str | os.PathLike[str], out: str | os.PathLike[str], quality: int,
                model: Model = None, refine: int = 0) -> tuple[Path, float]:
    """Compress ``image`` to the ``.aek`` file ``out`` with ``model`` (default: the bundled codec)
    and ``refine`` steps of encode-time refinement; the path and its bits per pixel."""
    out = check_output_file(out, marks.COMPRESSED_IMAGE, inputs=[image], suffixes=(".aek",))
    codec = load_codec(model)
    check_int(quality, "--quality", 1, codec.qualities)  # the codec's own levels (the bundled one has 8)
    rgb = as_rgb(image)
    data = codec.compress(rgb, quality, refine=refine)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return out, bpp(len(data), *rgb.shape[:2])


def decode_file(source: str | os.PathLike[str], out: str | os.PathLike[str],
                model: Model = None) -> Path:
    """Decompress the ``.aek`` file ``source`` into a lossless image file ``out``."""
    from PIL import Image

    out = check_output_file(out, marks.DECODED_IMAGE, inputs=[source], suffixes=IMAGE_OUT)
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{source} does not exist") from None
    image = load_codec(model).decompress(data, name=str(source))  # fully decoded before anything is written
    fmt = Image.registered_extensions()[out.suffix.lower()]
    with atomic_path(out) as tmp:
        Image.fromarray(image).save(tmp, format=fmt, **marks.pillow_options(marks.DECODED_IMAGE, fmt))
    return out


PEER_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


def peer_formats() -> list[tuple[str, str]]:
    """(name, Pillow format) of what a user would otherwise pick: JPEG and WebP, and AVIF where
    this Pillow writes it."""
    from PIL import features

    return [("JPEG", "JPEG"), ("WebP", "WEBP")] + ([("AVIF", "AVIF")] if features.check("avif") else [])


def _files_of(images: list[str | os.PathLike[str]]) -> list[str | os.PathLike[str]]:
    """``images`` with each folder replaced by the image files under it (sorted)."""
    from ...data.images import image_files

    return [f for p in images for f in (image_files(p)[0] if os.path.isdir(p) else [p])]


def _pillow_bytes(rgb: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    """The size of ``rgb`` written by Pillow as ``fmt`` at ``quality``, and the image read back."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, quality=quality)
    size = buf.tell()  # before decoding, which moves the position
    with Image.open(buf) as im:
        return size, np.asarray(im.convert("RGB"))


def evaluate(images: list[str | os.PathLike[str]], model: Model = None, peers: bool = True, refine: int = 0,
             progress: bool = True) -> list[dict[str, float | str]]:
    """Mean bits per pixel (from the bytes written) and PSNR of ``images`` (files, or folders
    of them) at every quality of the codec (encoded with ``refine`` steps of refinement) and,
    with ``peers``, of Pillow's JPEG, WebP and AVIF at qualities 5-95 (``peer_formats``): one
    row per ``(codec, quality)``."""
    from tqdm import tqdm

    codec = load_codec(model)
    rgbs = [as_rgb(p) for p in _files_of(images)]

    def mean_row(name: str, quality: int, coded: list[tuple[int, np.ndarray]]) -> dict[str, float | str]:
        return {"codec": name, "quality": quality,
                "bpp": float(np.mean([bpp(n, *rgb.shape[:2]) for (n, _), rgb in zip(coded, rgbs, strict=True)])),
                "psnr": float(np.mean([psnr(rgb, out) for (_, out), rgb in zip(coded, rgbs, strict=True)]))}

    rows = []
    bar = tqdm(total=codec.qualities * len(rgbs), desc="aekit codec", unit="image", leave=False,
               disable=None if progress else True)  # None: only on a terminal
    for quality in range(1, codec.qualities + 1):
        coded = []
        for rgb in rgbs:
            data = codec.compress(rgb, quality, refine=refine)
            coded.append((len(data), as_rgb(codec.decompress(data))))  # a grey image as the RGB it came as
            bar.update()
        rows.append(mean_row("aekit", quality, coded))
    bar.close()
    if peers:
        rows += [mean_row(name, q, [_pillow_bytes(rgb, fmt, q) for rgb in rgbs])
                 for name, fmt in peer_formats() for q in PEER_QUALITIES]
    return rows


def bd_rate_lines(rows: list[dict[str, float | str]]) -> list[str]:
    """'BD-rate against JPEG: ...' (and each other peer) for ``evaluate``'s rows, or why there is no number."""
    curves: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        curves.setdefault(str(r["codec"]), []).append((float(r["bpp"]), float(r["psnr"])))
    lines = []
    for name, _ in peer_formats():
        if name not in curves:
            continue
        try:
            change = bd_rate(curves[name], curves["aekit"])
            lines.append(f"BD-rate against {name}: {change:+.1f}% (negative: fewer bytes at equal PSNR)")
        except DataError as exc:
            lines.append(f"BD-rate against {name}: none ({exc})")
    return lines


def rd_plot(rows: list[dict[str, float | str]], path: str | os.PathLike[str],
            inputs: list[str | os.PathLike[str]] = ()) -> Path:
    """The rate-distortion curves of ``evaluate``'s rows as a PNG at ``path`` (never over an input)."""
    from ...plots import line_plot

    path = check_output_file(path, marks.FIGURE, inputs=inputs, suffixes=(".png",), option="--plot")
    curves: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        curves.setdefault(str(r["codec"]), []).append((float(r["bpp"]), float(r["psnr"])))
    return line_plot(curves, path, xlabel="bits per pixel (file bytes)", ylabel="PSNR (dB, RGB)",
                     title="Rate-distortion")
