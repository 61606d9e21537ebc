"""What the compress commands do, callable from Python: train, encode, decode, evaluate."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import DataError
from ...io import atomic_path, check_output_file
from .codec import ImageCodec, as_rgb
from .metrics import bpp, psnr

IMAGE_OUT = (".png", ".bmp", ".tif", ".tiff")  # lossless: a decoded image is never re-compressed on save


def train_codec(data: str | os.PathLike[str], out: str | os.PathLike[str], *, resume: bool = False,
                **params: object) -> ImageCodec:
    """Train on the photos under ``data`` and save the codec at ``out``."""
    return ImageCodec(**params).fit_to(data, out, resume=resume, inputs=[data])


def encode_file(image: str | os.PathLike[str], out: str | os.PathLike[str], quality: int,
                model: str | os.PathLike[str]) -> tuple[Path, float]:
    """Compress ``image`` to the ``.aek`` file ``out``; the path and its bits per pixel."""
    out = check_output_file(out, inputs=[image], suffixes=(".aek",))
    codec = ImageCodec.load(model)
    rgb = as_rgb(image)
    data = codec.compress(rgb, quality)
    with atomic_path(out) as tmp:
        tmp.write_bytes(data)
    return out, bpp(len(data), *rgb.shape[:2])


def decode_file(source: str | os.PathLike[str], out: str | os.PathLike[str],
                model: str | os.PathLike[str]) -> Path:
    """Decompress the ``.aek`` file ``source`` into a lossless image file ``out``."""
    from PIL import Image

    out = check_output_file(out, inputs=[source], suffixes=IMAGE_OUT)
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{source} does not exist") from None
    image = ImageCodec.load(model).decompress(data, name=str(source))  # fully decoded before anything is written
    with atomic_path(out) as tmp:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions()[out.suffix.lower()])
    return out


def evaluate(images: list[str | os.PathLike[str]], model: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Mean bits per pixel (from the bytes written) and PSNR of ``images`` at every quality."""
    codec = ImageCodec.load(model)
    rgbs = [as_rgb(p) for p in images]
    rows = []
    for quality in range(1, codec.qualities + 1):
        rates, psnrs = [], []
        for rgb in rgbs:
            data = codec.compress(rgb, quality)
            rates.append(bpp(len(data), *rgb.shape[:2]))
            psnrs.append(psnr(rgb, codec.decompress(data)))
        rows.append({"quality": quality, "bpp": float(np.mean(rates)), "psnr": float(np.mean(psnrs))})
    return rows
