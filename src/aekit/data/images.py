"""Images in: a folder of PNG/JPEG files (optionally one subfolder per class), a ``.npz``
array, or a bundled set; out: float32 arrays ``[N, C, H, W]`` in [0, 1].

The fitted size and channel count (``ImageSpec``) are saved with a model, so images scored
later are converted exactly like the training images.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..checks import MAX_IMAGE_SIDE, check_image_size, check_int
from ..errors import DataError, DataNotice, first_line
from .arrays import read_npz
from ..parquet_folders import parquet_parts

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# image files larger than this a side are read, without a chosen size, at this longer side: a
# photo's own size (1024x683, 4032x3024) trains for hours on a CPU, and tens of times faster here
DEFAULT_IMAGE_SIDE = 128
BUNDLED = ("digits", "lfw_subset")


@dataclass
class ImageSet:
    """Images ``[N, C, H, W]`` in [0, 1], optional integer labels, class names and sources."""

    images: np.ndarray
    labels: np.ndarray | None = None
    classes: list[str] | None = None
    names: list[str] | None = None
    unreadable: dict[str, str] | None = None  # files left out (``skip_unreadable``): name -> why


@dataclass(frozen=True)
class ImageSpec:
    """How images are converted: ``channels`` (1 gray, 3 RGB) and ``size`` (H, W)."""

    channels: int
    height: int
    width: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageSpec:
        h, w = check_image_size((d["height"], d["width"]), "image size")
        return cls(check_int(d["channels"], "image channels", 1, 4), h, w)


def is_bundled_name(source: str) -> bool:
    """Whether ``source`` names a bundled set: a file or folder of that name (the user's own
    ``digits/``, say) is read as what it is, never shadowed by the bundled set."""
    return source in BUNDLED and not Path(source).exists()


def load_bundled(name: str) -> ImageSet:
    """``digits``: scikit-learn's 1,797 8x8 digits with labels 0-9.
    ``lfw_subset``: scikit-image's 200 25x25 patches, the first 100 faces (label 1), the
    last 100 non-faces (label 0). Both ship inside the packages: nothing is downloaded."""
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return ImageSet((d.images / 16.0).astype(np.float32)[:, None], d.target.astype(int),
                        [str(i) for i in range(10)])
    if name == "lfw_subset":
        from skimage import data

        x = data.lfw_subset().astype(np.float32)[:, None]
        return ImageSet(x, np.r_[np.ones(100, int), np.zeros(100, int)], ["non-face", "face"])
    raise DataError(f"unknown bundled image set {name!r}; choose from {list(BUNDLED)}")


def load_npz(path: str | os.PathLike[str]) -> ImageSet:
    """An ``.npz`` with ``images`` (or ``X``) as ``[N, H, W]``, ``[N, H, W, C]`` or
    ``[N, C, H, W]`` (uint8 0-255 or floats in [0, 1]) and optional ``labels`` (or ``y``); or
    in Keras' layout (``mnist.npz``: ``x_train``, ``x_test`` and optional ``y_train``,
    ``y_test``), read as the training images followed by the test images."""
    x, y, x_train, x_test, y_train, y_test = read_npz(path, ("images", "X"), ("labels", "y"), ("x_train",),
                                                      ("x_test",), ("y_train",), ("y_test",))
    if x is None and x_train is not None and x_test is not None:
        if (y_train is None) != (y_test is None):
            raise DataError(f"{path} has labels for only one of x_train and x_test")
        x = _concatenate(path, x_train, x_test)
        y = None if y_train is None else _concatenate(path, y_train, y_test)
    if x is None:
        raise DataError(f"{path} has no 'images' (or 'X') array, nor 'x_train' and 'x_test'")
    if y is not None and (np.ndim(y) != 1 or len(y) != len(x)):
        raise DataError(f"{path}: {len(x)} images but labels of shape {list(np.shape(y))}")
    return ImageSet(_to_nchw(np.asarray(x), str(path)), None if y is None else np.asarray(y))


def _concatenate(path: str | os.PathLike[str], first: np.ndarray, second: np.ndarray) -> np.ndarray:
    if first.shape[1:] != second.shape[1:]:
        raise DataError(f"{path}: the training and test arrays differ in shape: {list(first.shape)} vs "
                        f"{list(second.shape)}")
    return np.concatenate([first, second])


DEEP_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # Pillow's gray modes of more than 8 bits
GRAY_MODES = ("1", "L", "LA", "La", *DEEP_GRAY_MODES)  # read as one channel where the image sets the channels


TURNED = (5, 6, 7, 8)  # the EXIF orientations that swap width and height (a phone held upright)


def exif_orientation(im: Any) -> int:
    """A Pillow image's EXIF orientation (1: as stored; 2-8: mirrored and/or turned), read
    from the file's header: a phone photo is stored as the sensor saw it and tagged with how
    to turn it."""
    try:
        orientation = int(im.getexif().get(0x0112, 1))
    except (ValueError, TypeError, OSError, SyntaxError):  # a damaged EXIF block: as stored
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def upright(im: Any, orientation: int) -> Any:
    """``im`` turned as ``orientation`` says, as every viewer shows it (Pillow's
    ``ImageOps.exif_transpose`` without its copy of an image that needs no turn)."""
    if orientation == 1:
        return im
    from PIL import Image

    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}[orientation]
    return im.transpose(method)


TRANSPARENT_MODES = ("RGBA", "LA", "PA", "La", "RGBa")  # Pillow's modes with an alpha channel


def opaque(im: Any) -> Any:
    """``im`` with its transparent parts laid on white, as a viewer shows it on a white page
    (aekit's models and codec read colour only; dropping the alpha channel would show what
    the file stores under it, often black). Said once per process, as a ``DataNotice``."""
    if im.mode not in TRANSPARENT_MODES and "transparency" not in im.info:
        return im
    from PIL import Image

    rgba = im.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == 255:  # an alpha channel, every pixel opaque
        return im
    warnings.warn("images with transparent parts are read laid on white (aekit reads colour only)", DataNotice,
                  stacklevel=2)
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def as_shown(im: Any, name: str, mode: str, orientation: int) -> Any:
    """A loaded Pillow image as a viewer shows it, in ``mode`` (``"L"`` or ``"RGB"``): 8 bits
    a channel, transparent parts on white, turned as its EXIF ``orientation`` says. The one
    conversion both the models' reader and the codec's apply."""
    return upright(opaque(to_eight_bit(im, name)).convert(mode), orientation)


def to_eight_bit(im: Any, name: str) -> Any:
    """The Pillow image ``im`` with 8 bits a channel: a 16-bit gray image (an X-ray, a
    microscope's frame) scaled by 257, a 32-bit integer or float one by the range its values
    fill (up to 1, 255 or 65,535). Pillow's own ``convert`` clips them at 255, which turns a
    16-bit image white. Other modes are returned as they are."""
    if im.mode not in DEEP_GRAY_MODES:
        return im
    from PIL import Image

    a = np.asarray(im, dtype=np.float64)
    if im.mode.startswith("I;16"):
        scale = 257.0
    else:
        if a.size and (not np.isfinite(a).all() or a.min() < 0):
            raise DataError(f"{name} holds negative or non-finite values ({im.mode} mode); aekit reads images of "
                            "8 or 16 bits a channel")
        top = float(a.max()) if a.size else 0.0
        ranges = ((1.0, 1 / 255), (255.0, 1.0), (65535.0, 257.0)) if im.mode == "F" else ((255.0, 1.0), (65535.0, 257.0))
        scale = next((s for limit, s in ranges if top <= limit), 0.0)
        if not scale:
            raise DataError(f"{name} holds values up to {top:g} ({im.mode} mode); aekit reads images of 8 or 16 bits "
                            "a channel")
    return Image.fromarray(np.clip(np.round(a / scale), 0, 255).astype(np.uint8), "L")


def undecodable(name: str, exc: BaseException, path: Any = None) -> DataError:
    """The error for a file Pillow cannot decode: an empty file, a file cut short, bytes it
    recognises as no image format, or else what it said; a folder is named as one (where one
    image is read)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, IsADirectoryError):
        return DataError(f"{name} is a folder; give one image file")
    if isinstance(path, (str, os.PathLike)) and os.path.isfile(path) and os.path.getsize(path) == 0:
        reason = "an empty file"
    elif isinstance(exc, UnidentifiedImageError):
        reason = "not a format Pillow reads"
    elif str(exc).startswith("image file is truncated"):  # Pillow adds how many bytes: one reason for all
        reason = "the file is cut short"
    else:
        reason = first_line(exc, 120)
    return DataError(f"{name} cannot be decoded as an image ({reason})")


def read_image_file(path: str | os.PathLike[str] | BinaryIO, spec: ImageSpec | None = None,
                    resize: bool = True, size: tuple[int, int] | None = None,
                    natural: list[tuple[int, int]] | None = None, name: str | None = None
                    ) -> tuple[np.ndarray, ImageSpec]:
    """One PNG/JPEG/... file (or a file object: the bytes of one, ``name`` naming it in
    errors) as ``[C, H, W]`` in [0, 1], converted to ``spec`` (by default the file's own
    channels, gray or RGB, at ``size`` or its own size); returns the array and the spec
    used, and appends the file's own (width, height) to ``natural`` if given. Without a
    ``spec`` or ``size``, a file over ``DEFAULT_IMAGE_SIDE`` pixels a side is read with its
    longer side at that size (a note says so); decompression bombs are refused."""
    from PIL import Image, UnidentifiedImageError

    name = name or str(path)
    try:
        # Pillow refuses over twice MAX_IMAGE_PIXELS and only warns below; the check here
        # refuses from MAX_IMAGE_PIXELS on (a warnings filter would not be thread-safe)
        with Image.open(path) as im:
            if Image.MAX_IMAGE_PIXELS and im.width * im.height > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombError(f"{im.width * im.height} pixels")
            orientation = exif_orientation(im)
            width, height = (im.height, im.width) if orientation in TURNED else im.size  # as viewers show it
            if natural is not None:
                natural.append((width, height))
            if spec is None:
                h, w = size if size is not None else working_size(Path(name).name, height, width)
                spec = ImageSpec(1 if im.mode in GRAY_MODES else 3, h, w)
            if width * height > 4 * MAX_IMAGE_SIDE ** 2 and not resize:
                raise DataError(f"{name} is {width}x{height}, too large to read without resizing")
            target = (spec.height, spec.width) if orientation in TURNED else (spec.width, spec.height)
            im.draft("L" if spec.channels == 1 else "RGB", target)  # JPEG: decode near the target size
            im.load()
            im = as_shown(im, name, "L" if spec.channels == 1 else "RGB", orientation)
            if im.size != (spec.width, spec.height):
                if not resize:
                    raise DataError(f"{name} is {im.width}x{im.height}, expected {spec.width}x{spec.height} "
                                    "(resizing is off)")
                im = im.resize((spec.width, spec.height), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except DataError:
        raise
    except Image.DecompressionBombError:
        raise DataError(f"{name} decodes to too many pixels (a decompression bomb?); refused") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise undecodable(name, exc, path) from None
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), spec


def working_size(label: str, height: int, width: int) -> tuple[int, int]:
    """The size images are read at when none was chosen: ``height`` x ``width`` (the one
    file's, or a folder's most common), or, over ``DEFAULT_IMAGE_SIDE`` pixels a side, that
    shape with that longer side, with a note that starts with ``label``."""
    longest = max(height, width)
    if longest <= DEFAULT_IMAGE_SIDE:
        return height, width
    h, w = (max(1, round(side * DEFAULT_IMAGE_SIDE / longest)) for side in (height, width))
    warnings.warn(f"{label} is {width}x{height}: images are read at {w}x{h} (its shape, the longer side "
                  f"{DEFAULT_IMAGE_SIDE} pixels), which trains in minutes on a CPU; choose a size with "
                  "--image-size H W (image_size=(H, W))", DataNotice, stacklevel=4)
    return h, w


def image_files(path: str | os.PathLike[str]) -> tuple[list[Path], list[str] | None, np.ndarray | None]:
    """``(files, class names, labels)`` of a folder of images: the files in sorted order;
    with subfolders each is a class (sorted names), and a file outside them has label -1."""
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is neither a folder of images nor an image file ({', '.join(sorted(IMAGE_SUFFIXES))})"
                        " nor an .npz")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    parts = [p.relative_to(root).parts for p in files]
    class_names = sorted({q[0] for q in parts if len(q) > 1})
    if not class_names:
        return files, None, None
    index = {c: i for i, c in enumerate(class_names)}
    return files, class_names, np.array([index[q[0]] if len(q) > 1 else -1 for q in parts])


def load_folder(path: str | os.PathLike[str], spec: ImageSpec | None = None, resize: bool = True,
                size: tuple[int, int] | None = None) -> ImageSet:
    """All images under ``path``. With subfolders, each subfolder is a class (sorted names).
    Without ``spec`` the images set the channel count, and the size unless ``size``
    (``_folder_spec``)."""
    files, class_names, labels = image_files(path)
    images = _read_files(files, spec, resize, size, f"in {path}")
    return ImageSet(images, labels, class_names, [str(p.relative_to(path)) for p in files])


def load_files(files: list[str | os.PathLike[str]], spec: ImageSpec | None = None,
               size: tuple[int, int] | None = None) -> ImageSet:
    """Image files named one by one (a list of paths, as a user's own selection), as
    ``load_folder`` reads a folder's."""
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise DataError(f"{len(missing)} of the {len(files)} image files do not exist: {missing[:3]}")
    return ImageSet(_read_files(files, spec, True, size, "given"), names=[str(f) for f in files])


def is_file_list(X: Any) -> bool:
    """A non-empty list or tuple of paths (``load_files``' input)."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(isinstance(f, (str, os.PathLike)) for f in X)


def _read_files(files: list[Any], spec: ImageSpec | None, resize: bool, size: tuple[int, int] | None,
                where: str) -> np.ndarray:
    """``files`` read at ``spec`` (or at the one ``_folder_spec`` chooses), ``[N, C, H, W]``;
    files that cannot be read are refused all at once (a user fixes them in one go)."""
    if spec is None and len(files) > 1:
        spec = _folder_spec(files, size, where)
    images, unreadable = decode_readable(files, spec, resize, size)
    if unreadable:
        raise unreadable_error({str(files[i]): why for i, why in unreadable.items()},
                               f"{len(unreadable)} of the {len(files)} images {where}")
    return images


def decode_readable(files: list[Any], spec: ImageSpec | None, resize: bool = True,
                    size: tuple[int, int] | None = None) -> tuple[np.ndarray, dict[int, str]]:
    """The images of ``files`` that can be read (``read_image_file``), ``[n, C, H, W]``, and
    why each of the others cannot, by its position among ``files``."""
    images, unreadable = [], {}
    for i, f in enumerate(files):
        try:
            images.append(read_image_file(f, spec, resize, size)[0])
        except DataError as exc:
            # read_image_file's errors start with the file's name: the reason is the rest
            unreadable[i] = str(exc).removeprefix(str(f)).strip()
    if not images:
        return np.zeros((0, spec.channels, spec.height, spec.width) if spec else (0, 1, 1, 1), np.float32), unreadable
    return np.stack(images), unreadable


def unreadable_error(unreadable: dict[str, str], several: str, hint: str = "") -> DataError:
    """One error naming the files that cannot be read (name -> why) and ending in ``hint``:
    one file as ``read_image_file`` says it, more as ``several`` (``"3 of the 150 images in
    tr"``) and the first few."""
    (name, why), *_ = unreadable.items()
    if len(unreadable) == 1:
        return DataError(f"{name} {why}{hint}")
    shown = "; ".join(f"{n} {w}" for n, w in list(unreadable.items())[:UNREADABLE_SHOWN])
    more = f"; and {len(unreadable) - UNREADABLE_SHOWN} more" if len(unreadable) > UNREADABLE_SHOWN else ""
    return DataError(f"{several} cannot be read: {shown}{more}{hint}")


UNREADABLE_SHOWN = 3  # files an error or a note names of several unreadable ones
SKIP_HINT = "; --skip-unreadable scores the rest and names the files it left out"  # where a folder is scored


def _folder_spec(files: list[Any], size: tuple[int, int] | None, where: str) -> ImageSpec | None:
    """The spec several image files are read at when none was chosen, from their headers:
    colour if any of them is (read as colour a gray image loses nothing, read as gray a colour
    photo loses its colours), at ``size`` or their most common size as viewers show them (the
    first such size on a tie, the first file's where no two share one; over
    ``DEFAULT_IMAGE_SIDE`` pixels a side, that shape at that side), with a note saying how
    many differ from it. It was the first file's channels and size, so a folder of photos
    whose first happened to be gray, or cropped, was read so. None where no file's header
    can be read."""
    from collections import Counter

    from PIL import Image, UnidentifiedImageError

    shapes: list[tuple[int, int]] = []  # (width, height)
    colour = False
    for f in files:
        try:
            with Image.open(f) as im:
                turned = exif_orientation(im) in TURNED
                shapes.append((im.height, im.width) if turned else im.size)
                colour = colour or im.mode not in GRAY_MODES
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            continue  # decoding it fails too, and names it with every other unreadable file
    if not shapes:
        return None
    (width, height), count = Counter(shapes).most_common(1)[0]  # the first seen of equal counts
    if size is not None:
        return ImageSpec(3 if colour else 1, *size)
    if count > 1:
        label, chosen = f"the most common image size {where}", "the most common"
    else:  # no size is more common than another: the first file's
        label, chosen = f"no two images {where} share a size; the first", "the first"
    h, w = working_size(label, height, width)
    if count < len(shapes):  # of the files whose headers read: decoding names the others
        warnings.warn(f"{len(shapes) - count} of the {len(shapes)} images {where} differ in size from {chosen} "
                      f"({width}x{height}); all were resized to {w}x{h}, shapes not kept: choose a size with "
                      "--image-size H W (image_size=(H, W))", DataNotice, stacklevel=4)
    return ImageSpec(3 if colour else 1, h, w)


def image_chunks(source: str | os.PathLike[str], spec: ImageSpec, chunk: int = 1024,
                 workers: int = 1, skip_unreadable: bool = False) -> tuple[int, Iterator[ImageSet]]:
    """``(count, chunks)``: the images of ``source`` converted to ``spec``, ``chunk`` at a
    time, in ``load_images``' order, each chunk with its labels and names (and all the class
    names). A folder is decoded by ``workers`` background threads, a chunk each, at most
    ``workers`` chunks ahead of the reader: memory holds ``workers + 1`` chunks whatever the
    folder's size, and decoding overlaps the reader's work (scoring in torch releases the
    GIL). One worker is fastest for small images, whose decoding is mostly Python; large
    JPEGs, decoded in C with the GIL released, gain from more. A folder's file that cannot be
    read stops the stream with an error naming it (and the chunk's others), or, with
    ``skip_unreadable``, is left out and named in its chunk's ``unreadable``. An ``.npz`` or
    bundled set is read whole, then handed out in chunks."""
    check_int(chunk, "chunk", 1)
    check_int(workers, "workers", 1, 256)
    s = os.fspath(source)
    if Path(s).is_dir():
        files, class_names, labels = image_files(s)
        names = [str(p.relative_to(s)) for p in files]
        return len(files), _decoded_chunks(files, names, labels, class_names, spec, chunk, workers, skip_unreadable)
    whole = load_images(s, spec)
    names = whole.names or [f"image_{i}" for i in range(len(whole.images))]

    def sliced() -> Iterator[ImageSet]:
        for at in range(0, len(whole.images), chunk):
            part = slice(at, at + chunk)
            yield ImageSet(whole.images[part], None if whole.labels is None else whole.labels[part], whole.classes,
                           names[part])

    return len(whole.images), sliced()


def decode_files(files: list[Path] | list[str], spec: ImageSpec) -> np.ndarray:
    """Image files read at ``spec`` (``read_image_file``), ``[N, C, H, W]``."""
    return np.stack([read_image_file(f, spec)[0] for f in files])


def _decoded_chunks(files: list[Path], names: list[str], labels: np.ndarray | None, class_names: list[str] | None,
                    spec: ImageSpec, chunk: int, workers: int, skip_unreadable: bool) -> Iterator[ImageSet]:
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    starts = iter(range(0, len(files), chunk))
    pool = ThreadPoolExecutor(max_workers=workers)
    ahead: deque[tuple[int, Future]] = deque()

    def refill() -> None:
        while len(ahead) < workers and (at := next(starts, None)) is not None:
            ahead.append((at, pool.submit(decode_readable, files[at:at + chunk], spec)))

    try:
        refill()
        while ahead:
            at, future = ahead.popleft()
            images, unreadable = future.result()
            if unreadable and not skip_unreadable:
                raise unreadable_error({str(files[at + i]): why for i, why in unreadable.items()},
                                       f"{len(unreadable)} images", SKIP_HINT)
            part = np.delete(np.arange(at, min(at + chunk, len(files))), list(unreadable))  # the images read
            refill()
            yield ImageSet(images, None if labels is None else labels[part], class_names, [names[i] for i in part],
                           {names[at + i]: why for i, why in unreadable.items()} or None)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def load_images(source: str | os.PathLike[str], spec: ImageSpec | None = None, resize: bool = True,
                size: tuple[int, int] | None = None) -> ImageSet:
    """A bundled name (``digits``, ``lfw_subset``), an ``.npz`` file, a folder, or one image
    file; converted to ``spec``, or to ``size`` (H, W) keeping the channels, if given."""
    s = os.fspath(source)
    if Path(s).suffix.lower() in IMAGE_SUFFIXES and Path(s).is_file():
        image, _ = read_image_file(s, spec, resize, size)
        return ImageSet(image[None], names=[Path(s).name])
    if is_bundled_name(s):
        out = load_bundled(s)
    elif s.lower().endswith(".npz"):
        if not Path(s).exists():
            raise DataError(f"{s} does not exist")
        out = load_npz(s)
    else:
        return load_folder(s, spec, resize, size)
    if spec is None and size is not None:
        spec = ImageSpec(out.images.shape[1], *size)
    return out if spec is None else ImageSet(conform(out.images, spec, resize, s), out.labels, out.classes, out.names)


def conform(images: np.ndarray, spec: ImageSpec, resize: bool = True, source: str = "images") -> np.ndarray:
    """Convert ``[N, C, H, W]`` images to ``spec``'s channels and size."""
    x = images
    if x.shape[1] != spec.channels:
        x = x.mean(1, keepdims=True) if spec.channels == 1 else np.repeat(x, spec.channels, axis=1)
    if x.shape[2:] != (spec.height, spec.width):
        if not resize:
            raise DataError(f"{source}: images are {x.shape[3]}x{x.shape[2]}, expected {spec.width}x{spec.height} "
                            "(resizing is off)")
        import torch
        import torch.nn.functional as F

        x = F.interpolate(torch.from_numpy(np.ascontiguousarray(x)), size=(spec.height, spec.width),
                          mode="bilinear", align_corners=False).numpy()
    return np.ascontiguousarray(x, dtype=np.float32)


def _to_nchw(x: np.ndarray, source: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim != 4:
        raise DataError(f"{source}: expected images as [N, H, W], [N, H, W, C] or [N, C, H, W], got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        raise DataError(f"{source}: images contain NaN or inf")
    if x.min() < 0 or x.max() > 1:
        raise DataError(f"{source}: float images must lie in [0, 1] (got {x.min():.3g}..{x.max():.3g}); "
                        "store uint8 0-255 or rescale")
    return x


def is_image_source(data: Any) -> bool:
    """A folder, an ``.npz`` array, an image file, a list of image files or a bundled image
    set name."""
    if isinstance(data, ImageSet) or is_file_list(data):
        return True
    if not isinstance(data, (str, os.PathLike)):
        return False
    s = os.fspath(data)
    return (is_bundled_name(s) or s.lower().endswith(".npz") or (Path(s).is_dir() and parquet_parts(s) is None)
            or Path(s).suffix.lower() in IMAGE_SUFFIXES)


def as_image_array(X: Any, size: tuple[int, int] | None = None) -> np.ndarray:
    """``[N, C, H, W]`` float32 in [0, 1] from an array (uint8 0-255 or floats in [0, 1];
    ``[N, H, W]``, ``[N, H, W, C]`` or ``[N, C, H, W]``), an ImageSet or a source (read at
    ``size`` when given, so large files never sit in memory at full size)."""
    if isinstance(X, ImageSet):
        return X.images
    if isinstance(X, (str, os.PathLike)):
        return load_images(X, size=size).images
    if is_file_list(X):
        return load_files(X, size=size).images
    x = np.asarray(X)
    if x.dtype.kind in "iu" and x.dtype != np.uint8:  # whole numbers, as np.array(image, dtype=int) gives
        if x.size and (x.min() < 0 or x.max() > 255):
            raise DataError(f"X: images of whole numbers must lie in 0..255 (got {x.min()}..{x.max()}); store uint8 "
                            "0-255 or floats in [0, 1]")
        x = x.astype(np.uint8)
    if x.dtype != np.uint8:
        try:
            x = x.astype(np.float32, copy=False)
        except (TypeError, ValueError):
            raise DataError(f"images must be numbers, got an array of {x.dtype}") from None
    if x.ndim in (3, 4) and len(x) == 0:
        raise DataError("no images")
    return _to_nchw(x, "X")  # as an .npz's: uint8 0-255 or floats in [0, 1], channels first or last


def fit_image_spec(images: np.ndarray, image_size: Any = None) -> tuple[np.ndarray, ImageSpec]:
    """The spec a model fits on training images ``[N, C, H, W]`` (their channels; their size,
    or ``image_size=(H, W)``), and the images converted to it."""
    size = check_image_size(image_size)
    h, w = size if size is not None else check_image_size(images.shape[2:], "the images' size (resize with image_size)")
    spec = ImageSpec(images.shape[1], int(h), int(w))
    return conform(images, spec), spec


def images_for(X: Any, spec: ImageSpec) -> np.ndarray:
    """``X`` (a source, an ``ImageSet`` or an array) converted to a fitted ``spec``: what a
    trained image model applies to new images."""
    if isinstance(X, (str, os.PathLike)):
        return load_images(X, spec).images
    if is_file_list(X):
        return load_files(X, spec).images
    return conform(as_image_array(X), spec)


def resolve_image(ref: str, spec: ImageSpec | None = None) -> np.ndarray:
    """One image ``[C, H, W]`` from a reference: an image file, or ``SOURCE:INDEX`` for an
    image of a folder, ``.npz`` or bundled set (``digits:0``; indices count from 0). With
    ``spec`` (a fitted model's), the image is converted to its channels and size, as the
    model's other inputs are."""
    if Path(ref).is_file() and not ref.lower().endswith(".npz"):
        return load_images(ref, spec).images[0]
    source, sep, index = ref.rpartition(":")
    if not sep or not index.strip().lstrip("-").isdigit():
        raise DataError(f"{ref!r} is neither an image file nor SOURCE:INDEX (e.g. digits:0)")
    images = load_images(source, spec).images
    i = int(index)
    if not 0 <= i < len(images):
        raise DataError(f"{source} holds {len(images)} images; index {i} is out of range (0 to {len(images) - 1})")
    return images[i]


def images_of_class(source: str | os.PathLike[str], class_name: str | None, option: str = "--class",
                    size: tuple[int, int] | None = None) -> np.ndarray:
    """The images of ``source`` (at ``size`` if given), only those of class ``class_name``
    (a subfolder) if given; ``option`` names the setting in the error when the class does
    not exist."""
    images = load_images(source, size=size)
    if class_name is None:
        return images.images
    if images.classes:  # class subfolders, or a bundled set's named classes
        if class_name not in images.classes:
            raise DataError(f"{option} {class_name!r} is not a class of {source} (classes: {images.classes})")
        return images.images[images.labels == images.classes.index(class_name)]
    if images.labels is not None:  # an .npz with labels: a class is a label value
        labels = np.asarray(images.labels).astype(str)
        if class_name not in labels:
            seen = sorted(set(labels.tolist()))
            raise DataError(f"{option} {class_name!r} is not a label in {source} "
                            f"(labels: {', '.join(seen[:12])}{', ...' if len(seen) > 12 else ''})")
        return images.images[labels == class_name]
    raise DataError(f"{option} {class_name!r}: {source} has no classes (no subfolders or labels)")
