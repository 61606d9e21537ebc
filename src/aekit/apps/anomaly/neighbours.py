"""The local term of image detectors: how far an image is from its nearest normal images,
compared in a space that forgives what does not make an image anomalous.

The space: each image is blurred (a Gaussian, ``BLUR_PER_SIDE`` of its longer side), shrunk
by area to at most ``MAX_SIDE`` pixels a side (larger images are compared at that size),
flattened and scaled to unit length. Blurring and one-pixel shifts forgive small
misalignments of the same shape; unit length forgives brightness and stroke thickness. The distance of an image is
``1 - mean cosine similarity`` to its ``NEIGHBOURS`` nearest references, where the references
are training images, each under the nine shifts of at most one pixel.

Why: on one-class MNIST digits 5 and 8 (benchmarks/image_local_term.py) the Euclidean
distance to the nearest training images reaches 0.918 AUC, the cosine distance 0.961, after
the blur 0.979, with the shifts 0.983, where the autoencoder's terms reach 0.972; all of them
together 0.982, and 0.9904 over the ten digits (benchmarks/anomaly_images.py).

Only torch operations, so that the ONNX export can trace the score.

Speed: finding the nearest references is one product of the images with every shifted
reference (about 38 million multiply-adds per 32x32 RGB image), most of the time a score
takes. On a CPU that multiplies bfloat16 in hardware (AVX512-BF16 or AMX) that search runs
in bfloat16, 3.5x faster, on vectors centred on the references' mean (a product of unit
vectors near 1 rounds to bfloat16's 8 bits 20x worse than one of the small centred
differences). The ``RERANK`` nearest found are then compared again in float32, which keeps
the 5 nearest and the distances to them exact, and only a near tie between two shifts of one
reference can come out differently: on 4,096 32x32 photo crops the local term moved by
6e-5 of itself on average and by at most 0.9%, for 0.32 ms instead of 0.70 ms per image.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

# blur and shift tolerances scale with the image: a Gaussian of sigma = (longer side) / 28
# (one pixel on 28x28 digits, a third of one on 8x8 ones), so the same picture at two
# resolutions is judged alike
BLUR_PER_SIDE = 1 / 28
MAX_SIDE = 32
NEIGHBOURS = 5
RERANK = 8  # references found in bfloat16 and compared again in float32 (>= NEIGHBOURS)
SHIFTS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
# at most this many numbers in the stored references (16 MB of float32): as many training
# images as fit, chosen at random when there are more
MAX_REFERENCE_VALUES = 1 << 22
QUERY_BLOCK = 512  # images per similarity product (a [block x 9 * references] matrix)


def error_blur_radius(height: int, width: int) -> int:
    """The radius of the mean filter on reconstruction residuals (``error_blur="auto"``):
    the blur's sigma rounded, 1 pixel on 28x28 images, none on 8x8."""
    return round(max(height, width) * BLUR_PER_SIDE)


def space_size(height: int, width: int) -> tuple[int, int]:
    """The size images are compared at."""
    scale = min(1.0, MAX_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def to_space(Z: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Images ``[N, C, H, W]`` blurred and shrunk to ``space_size`` (not yet unit length):
    ``rows @ Z @ columns.T``. Both steps act on rows and columns apart, so each axis is one
    matrix; two small products run 20x faster than a depthwise convolution (0.005 against
    0.10 ms per 32x32 RGB image on 2 cores). The sizes are plain ints, and the matrices
    constants of the ONNX trace."""
    out_h, out_w = space_size(height, width)
    sigma = max(height, width) * BLUR_PER_SIDE
    rows = torch.from_numpy(_axis_matrix(height, out_h, sigma)).to(Z.dtype)
    columns = torch.from_numpy(_axis_matrix(width, out_w, sigma)).to(Z.dtype)
    return rows @ Z @ columns.T


@functools.lru_cache(maxsize=16)
def _axis_matrix(size: int, out: int, sigma: float) -> np.ndarray:
    """``[out, size]``: a Gaussian blur of ``sigma`` along one axis (truncated at 2 sigma,
    zeros beyond the edge), then averaging down to ``out`` (``F.interpolate``'s "area")."""
    radius = int(math.ceil(2 * sigma))
    offset = np.arange(size)[None, :] - np.arange(size)[:, None]
    kernel = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma ** 2))
    blur = np.where(np.abs(offset) <= radius, np.exp(-offset ** 2 / (2 * sigma ** 2)), 0.0) / kernel.sum()
    if out == size:
        return blur
    pool = np.zeros((out, size))
    for i in range(out):  # adaptive average pooling's bins
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        pool[i, start:end] = 1 / (end - start)
    return pool @ blur


@functools.cache
def fast_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (elsewhere bfloat16 is
    emulated, and slower than float32)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
    except RuntimeError:
        return False


class Search(NamedTuple):
    """The shifted references as the bfloat16 search multiplies them: ``centre [D]`` (their
    mean), ``matrix [9 * N, D]`` (each minus the centre, in bfloat16) and ``offset [9 * N]``
    (each one's product with the centre, in float32). ``a . r = (a - c) . (r - c) + r . c``
    plus terms that are the same for every reference, so ranking by the first two ranks by
    ``a . r``."""

    centre: torch.Tensor
    matrix: torch.Tensor
    offset: torch.Tensor


def bfloat16_search(shifted: torch.Tensor) -> Search:
    """The ``Search`` of the shifted references ``[9, N, D]``."""
    flat = shifted.reshape(-1, shifted.shape[-1])
    centre = flat.mean(0)
    return Search(centre, (flat - centre).to(torch.bfloat16), flat @ centre)


def search_copy(shifted: torch.Tensor) -> Search | None:
    """``bfloat16_search(shifted)`` on a CPU with fast bfloat16; ``None`` elsewhere (the
    search then runs in float32)."""
    return bfloat16_search(shifted) if shifted.device.type == "cpu" and fast_bfloat16() else None


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows flattened and scaled to unit length (an all-zero image stays zero)."""
    return F.normalize(x.flatten(1), dim=1, eps=1e-8)


def shifted_references(references: torch.Tensor) -> torch.Tensor:
    """``[9, N, D]``: every reference image ``[N, C, h, w]`` under each shift of at most one
    pixel (zeros enter at the edge), at unit length."""
    padded = F.pad(references, (1, 1, 1, 1))
    h, w = references.shape[2:]
    return torch.stack([unit_rows(padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]) for dy, dx in SHIFTS])


def neighbour_parts(space: torch.Tensor, shifted: torch.Tensor, search: Search | None = None) -> torch.Tensor:
    """Per-feature parts ``[N, D]`` of each image's distance, which sum to it: with unit
    vectors, ``1 - cos(a, r) = |a - r|^2 / 2``, averaged over the nearest references, each
    under its best shift. ``search``: ``search_copy(shifted)``, to find the nearest in
    bfloat16. In blocks of ``QUERY_BLOCK`` images, except under the ONNX trace (a Python
    loop over rows would be frozen at the traced batch size; the export stays float32)."""
    if torch.jit.is_tracing():
        return _block_parts(space, shifted, None)
    return torch.cat([_block_parts(space[s:s + QUERY_BLOCK], shifted, search)
                      for s in range(0, len(space), QUERY_BLOCK)])


def _block_parts(space: torch.Tensor, shifted: torch.Tensor, search: Search | None) -> torch.Tensor:
    n_shifts, n_refs, width = shifted.shape
    flat = shifted.reshape(n_shifts * n_refs, width)
    a = unit_rows(space)
    k = min(NEIGHBOURS, n_refs)
    if search is None:
        best, shift = (a @ flat.T).view(-1, n_shifts, n_refs).max(1)
        ref = best.topk(k, dim=1).indices
        nearest = flat[shift.gather(1, ref) * n_refs + ref]  # [rows, k, D]
    else:
        similarity = ((a - search.centre).to(torch.bfloat16) @ search.matrix.T).float().add_(search.offset)
        best, shift = similarity.view(-1, n_shifts, n_refs).max(1)
        ref = best.topk(min(RERANK, n_refs), dim=1).indices
        found = flat[shift.gather(1, ref) * n_refs + ref]  # [rows, RERANK, D]
        exact = torch.bmm(found, a.unsqueeze(2)).squeeze(2)
        nearest = found.gather(1, exact.topk(k, dim=1).indices.unsqueeze(2).expand(-1, -1, width))
    return (a.unsqueeze(1) - nearest).pow_(2).mean(1).mul_(0.5)


def to_pixels(parts: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """Parts ``[N, D]`` in the comparison space back on the images' pixels
    ``[N, channels, height, width]``, keeping each image's total."""
    size = space_size(height, width)
    grid = parts.view(-1, channels, *size)
    if size == (height, width):
        return grid
    up = F.interpolate(grid, size=(height, width), mode="nearest")
    return up * (parts.sum(1) / up.flatten(1).sum(1).clamp_min(1e-30)).view(-1, 1, 1, 1)
