"""File-level jobs behind ``aekit generate ...``: train on images, write sample grids and
interpolation strips. The CLI only parses arguments and calls these."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ... import plots
from ...checks import check_image_size
from ...data.images import images_of_class, resolve_image
from ... import marks
from ...errors import OutputError
from ...io import (atomic_dir, check_model_output, check_output_dir, check_output_file, claim_output_dir, model_kind_at,
                   write_npz)
from .generator import VAEGenerator
from .tokens import TokenGenerator

Generator = VAEGenerator | TokenGenerator
SAMPLES_KIND = "generated images (PNG files)"  # the marker of a --png-dir folder (io.check_output_dir)
GENERATORS: dict[str, type[VAEGenerator] | type[TokenGenerator]] = {"vae": VAEGenerator, "tokens": TokenGenerator}


def _generator(model: str | os.PathLike[str] | Generator) -> Generator:
    if isinstance(model, (VAEGenerator, TokenGenerator)):
        return model
    # a token generator's directory loads as one; anything else gets the VAE's checks and errors
    return (TokenGenerator if model_kind_at(model) == TokenGenerator._kind else VAEGenerator).load(model)


def _model_files(model: str | os.PathLike[str] | Generator) -> list[str | os.PathLike[str]]:
    """The model's directory among a job's inputs (none for a generator passed in memory)."""
    return [model] if isinstance(model, (str, os.PathLike)) else []


def train_images(data: str | os.PathLike[str], out: str | os.PathLike[str], *, generator: str = "vae",
                 class_name: str | None = None, resume: bool = False, **params: Any) -> Generator:
    """Train a generator (``"vae"``: ``VAEGenerator``, ``"tokens"``: ``TokenGenerator``) on
    an image source (folder, ``.npz``, bundled name) and save it; with class subfolders,
    ``class_name`` keeps only that class."""
    cls = GENERATORS[generator]
    check_model_output(out, cls._kind, inputs=[data])
    size = check_image_size(params.get("image_size"), "--image-size")
    images = images_of_class(data, class_name, size=size)
    return cls(**params).fit_to(images, out, resume=resume, inputs=[data])


def sample_grid(model: str | os.PathLike[str] | Generator, n: int, out: str | os.PathLike[str], seed: int = 0,
                npz: str | os.PathLike[str] | None = None, png_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
    """``n`` samples as a PNG grid (and, optionally, as ``images`` in an ``.npz``, and as one
    PNG file each in the folder ``png_dir``, which replaces its earlier self whole)."""
    files = _model_files(model)
    check_output_file(out, marks.FIGURE, inputs=files, suffixes=(".png",))
    if npz is not None:
        check_output_file(npz, marks.GENERATED_IMAGES, inputs=[*files, out], suffixes=(".npz",), option="--npz")
    if png_dir is not None:
        check_output_dir(png_dir, SAMPLES_KIND, inputs=files, option="--png-dir")
        for other, flag in ((out, "--out"), (npz, "--npz")):  # the folder replaces itself whole
            if other is not None and Path(png_dir).resolve() in Path(other).resolve().parents:
                raise OutputError(f"{flag} {other} is inside --png-dir {png_dir}, which is replaced whole: write it "
                                  "elsewhere")
    gen = _generator(model)
    images = gen.sample(n, seed=seed)
    plots.image_grid(images, out, ncols=int(np.ceil(np.sqrt(n))))
    if png_dir is not None:
        _write_pngs(images, png_dir)
    if npz is not None:
        write_npz(npz, marks.GENERATED_IMAGES, compressed=True, images=images)
    return images


def interpolation_strip(model: str | os.PathLike[str] | Generator, a: str, b: str, out: str | os.PathLike[str],
                        steps: int = 10) -> np.ndarray:
    """Decode ``steps`` codes on the line between images ``a`` and ``b`` (see
    ``resolve_image``); write the strip, the two inputs at its ends, as a PNG."""
    check_output_file(out, marks.FIGURE, inputs=[*_model_files(model), a, b], suffixes=(".png",))
    gen = _generator(model)
    # both ends at the model's channels and size, whatever the files are
    first, last = resolve_image(a, gen.image_spec_), resolve_image(b, gen.image_spec_)
    strip = gen.interpolate(first, last, steps)
    plots.image_grid(np.concatenate([first[None], strip, last[None]]), out, ncols=steps + 2,
                     title="input A | decoded path from A to B | input B")
    return strip


def _write_pngs(images: np.ndarray, folder: str | os.PathLike[str]) -> None:
    """Images ``[N, C, H, W]`` in [0, 1] as ``sample_00000.png``, ... (8-bit gray or RGB) in a
    new folder that replaces ``folder`` at once: no file of an earlier, larger run is left
    among the new ones (an FID tool reads every image in the folder)."""
    from PIL import Image

    pixels = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)
    options = marks.pillow_options(marks.GENERATED_IMAGES, "PNG")
    with atomic_dir(folder) as staging:
        claim_output_dir(staging, SAMPLES_KIND)
        for i, image in enumerate(pixels):
            picture = Image.fromarray(image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0))
            picture.save(staging / f"sample_{i:05d}.png", format="PNG", **options)
