"""File-level jobs behind ``aekit generate ...``: train on images, write sample grids and
interpolation strips. The CLI only parses arguments and calls these."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ... import plots
from ...checks import check_image_size
from ...data.images import images_of_class, resolve_image
from ... import marks
from ...io import atomic_path, check_model_output, check_output_file, model_kind_at
from .generator import VAEGenerator
from .tokens import TokenGenerator

Generator = VAEGenerator | TokenGenerator
GENERATORS: dict[str, type[VAEGenerator] | type[TokenGenerator]] = {"vae": VAEGenerator, "tokens": TokenGenerator}


def _generator(model: str | os.PathLike[str] | Generator) -> Generator:
    if isinstance(model, (VAEGenerator, TokenGenerator)):
        return model
    # a token generator's directory loads as one; anything else gets the VAE's checks and errors
    return (TokenGenerator if model_kind_at(model) == TokenGenerator._kind else VAEGenerator).load(model)


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
                npz: str | os.PathLike[str] | None = None) -> np.ndarray:
    """``n`` samples as a PNG grid (and, optionally, as ``images`` in an ``.npz``)."""
    check_output_file(out, marks.FIGURE, inputs=[model], suffixes=(".png",))
    if npz is not None:
        check_output_file(npz, marks.GENERATED_IMAGES, inputs=[model, out], suffixes=(".npz",), option="--npz")
    gen = _generator(model)
    images = gen.sample(n, seed=seed)
    plots.image_grid(images, out, ncols=int(np.ceil(np.sqrt(n))))
    if npz is not None:
        with atomic_path(npz) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, images=images)
            marks.mark_zip(tmp, marks.GENERATED_IMAGES)
    return images


def interpolation_strip(model: str | os.PathLike[str] | Generator, a: str, b: str, out: str | os.PathLike[str],
                        steps: int = 10) -> np.ndarray:
    """Decode ``steps`` codes on the line between images ``a`` and ``b`` (see
    ``resolve_image``); write the strip, the two inputs at its ends, as a PNG."""
    check_output_file(out, marks.FIGURE, inputs=[model, a, b], suffixes=(".png",))
    gen = _generator(model)
    # both ends at the model's channels and size, whatever the files are
    first, last = resolve_image(a, gen.image_spec_), resolve_image(b, gen.image_spec_)
    strip = gen.interpolate(first, last, steps)
    plots.image_grid(np.concatenate([first[None], strip, last[None]]), out, ncols=steps + 2,
                     title="input A | decoded path from A to B | input B")
    return strip
