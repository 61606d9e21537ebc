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

Speed: comparing every image with every reference under all nine shifts took 38 million
multiply-adds per 32x32 RGB image (1,365 references), most of the time a score took. The
search now runs in two steps (``ReferenceIndex``): the references are ranked in the 64
leading principal directions of the references (a query's coordinates under each shift are
one product with the shifted basis), and the ``CANDIDATES`` ranked first are compared
exactly under each shift, which keeps the 5 nearest and the distances to them exact
whenever they are among the candidates. About 3.2 million multiply-adds per RGB image; on
one-class MNIST the term is the exhaustive one for 99.54% of the test images (the same
AUC-ROC, 0.9888 over the ten digits), on 32x32 photo crops for 97.3%, and a reference
slightly farther away stands in for the others (``benchmarks/image_local_search.py``).
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
BASIS = 64  # principal directions the references are ranked in
CANDIDATES = 24  # references ranked first, then compared exactly under each shift (>= NEIGHBOURS)
SHIFTS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
# at most this many numbers in the stored references (16 MB of float32): as many training
# images as fit, chosen at random when there are more
MAX_REFERENCE_VALUES = 1 << 22
QUERY_BLOCK = 32  # images per search: its [block, CANDIDATES, D] gather stays small enough to reuse
# its memory (blocks of 128 took fresh 50 MB buffers, page-faulted at 0.14 ms an RGB image)


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


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows flattened and scaled to unit length (an all-zero image stays zero)."""
    return F.normalize(x.flatten(1), dim=1, eps=1e-8)


def shift_images(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``images [N, C, h, w]`` moved so that pixel ``(y, x)`` shows ``(y + dy, x + dx)``, by at
    most one pixel; zeros enter at the edge."""
    h, w = images.shape[2:]
    return F.pad(images, (1, 1, 1, 1))[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]


def shifted_references(references: torch.Tensor) -> torch.Tensor:
    """``[9, N, D]``: every reference image ``[N, C, h, w]`` under each shift, at unit length
    (what the search is exact against; the exhaustive comparison of the benchmarks and tests)."""
    return torch.stack([unit_rows(shift_images(references, dy, dx)) for dy, dx in SHIFTS])


def principal_directions(references: torch.Tensor, size: int = BASIS) -> torch.Tensor:
    """``[D, d]``: the ``d = min(size, N, D)`` leading right singular vectors of the references
    ``[N, D]`` at unit length (not centred: the first is about their mean direction). By
    subspace iteration from a seeded start, so a model gets the same basis on every run:
    LAPACK's dense decompositions of a [1365, 3072] matrix took 3-30 s on 2 cores."""
    unit = unit_rows(references)
    size = min(size, *unit.shape)
    start = torch.randn(unit.shape[1], size + 8, generator=torch.Generator().manual_seed(0))
    basis = torch.linalg.qr(start).Q
    for _ in range(4):
        basis = torch.linalg.qr(unit.T @ (unit @ basis)).Q
    projected = unit @ basis
    _, vectors = torch.linalg.eigh(projected.T @ projected)  # ascending
    return (basis @ vectors.flip(1)[:, :size]).contiguous()


class ReferenceIndex(NamedTuple):
    """The references as the search reads them (``reference_index``), ``S = len(SHIFTS)``:

    - ``references [N, D]``: as stored (in the comparison space, not at unit length);
    - ``norms [S * N]``: each reference's length under each shift (shift-major);
    - ``projected [N, d]``: the references' coordinates in the basis;
    - ``shifted_basis [D, S * d]``: the basis under each shift. ``a . shift(r) = shift'(a) . r``
      for the opposite shift ``shift'``, so ``a @ shifted_basis`` gives the coordinates of
      ``a`` under every opposite shift at once, and their products with ``projected``,
      divided by ``norms``, approximate each reference's cosine under each shift;
    - ``source [S, D]`` and ``inside [S, D]``: where each shifted pixel comes from, and 0 for
      the pixels that enter at the edge.
    """

    references: torch.Tensor
    norms: torch.Tensor
    projected: torch.Tensor
    shifted_basis: torch.Tensor
    source: torch.Tensor
    inside: torch.Tensor


def reference_index(references: torch.Tensor, shape: tuple[int, int, int], basis: torch.Tensor) -> ReferenceIndex:
    """The ``ReferenceIndex`` of references ``[N, D]`` (images of ``shape`` ``(C, h, w)``,
    flattened) with a ``principal_directions`` basis. Its ``references`` is the given tensor
    itself: an exported graph that holds it as a buffer holds it once."""
    grid = references.view(-1, *shape)
    norms = torch.stack([shift_images(grid, dy, dx).flatten(1).norm(dim=1) for dy, dx in SHIFTS])
    images = basis.T.reshape(-1, *shape)
    shifted_basis = torch.stack([shift_images(images, dy, dx).flatten(1) for dy, dx in SHIFTS], 1)  # [d, S, D]
    # 1 + each pixel's index, so that the zeros entering at the edge are told apart
    width = references.shape[1]
    positions = torch.arange(1, width + 1, dtype=torch.float64).view(1, *shape)
    moved = torch.cat([shift_images(positions, dy, dx).flatten(1) for dy, dx in SHIFTS])
    return ReferenceIndex(references, norms.clamp_min(1e-8).flatten(),  # unit_rows' eps
                          references @ basis, shifted_basis.permute(2, 1, 0).reshape(width, -1).contiguous(),
                          (moved - 1).clamp_min(0).long(), (moved > 0).float())


def neighbour_parts(space: torch.Tensor, index: ReferenceIndex, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Per-feature parts ``[N, D]`` of each image's distance (images ``[N, C, h, w]`` in the
    comparison space), which sum to it: with unit vectors, ``1 - cos(a, r) = |a - r|^2 / 2``,
    averaged over the nearest references, each under its best shift. ``exclude [N]``: the
    reference each image is compared without (its own copy, when training images are
    scored leave-one-out), -1 for none. In blocks of ``QUERY_BLOCK`` images, except under
    the ONNX trace (a Python loop over rows would be frozen at the traced batch size; ONNX
    Runtime is given blocks by its caller)."""
    if torch.jit.is_tracing():
        return _block_parts(space, index)
    if exclude is not None and len(index.references) < 2:
        exclude = None  # a lone reference is every image's nearest, its own copy or not
    return torch.cat([_block_parts(space[s:s + QUERY_BLOCK], index, None if exclude is None else exclude[s:s + QUERY_BLOCK])
                      for s in range(0, len(space), QUERY_BLOCK)])


def _block_parts(space: torch.Tensor, index: ReferenceIndex, exclude: torch.Tensor | None = None) -> torch.Tensor:
    n_refs, width = index.references.shape
    n_shifts = len(SHIFTS)
    a = unit_rows(space)
    # the search: each reference's best cosine over the shifts, approximately, in the basis
    lengths = index.norms.view(n_shifts, n_refs)
    coordinates = (a @ index.shifted_basis).view(-1, n_shifts, index.projected.shape[1])
    approximate = (coordinates @ index.projected.T).div_(lengths).amax(1)  # [rows, N]
    if exclude is not None:  # an image's own copy: never a candidate where others can be
        mine = (exclude >= 0).nonzero().squeeze(1)
        approximate[mine, exclude[mine]] = float("-inf")
    found = approximate.topk(min(CANDIDATES, n_refs), dim=1).indices
    # index_select, not indexing with a tensor: 5x faster on the CPU, the same ONNX Gather
    rows = index.references.index_select(0, found.flatten()).view(*found.shape, width)  # [rows, candidates, D]
    # exactly, for the candidates: a . shift(r) = shift'(a) . r, divided by |shift(r)| (the
    # shifted copies of a block's images sliced, which ONNX Runtime runs 3x faster than a gather)
    grid = a.view_as(space)
    moved = torch.stack([shift_images(grid, -dy, -dx).flatten(1) for dy, dx in SHIFTS], 1)  # [rows, S, D]
    best, shift = (torch.bmm(moved, rows.transpose(1, 2)) / lengths[:, found].permute(1, 0, 2)).max(1)
    if exclude is not None:  # ... nor one of the nearest (with few references every one is a candidate)
        best.masked_fill_(found == exclude.unsqueeze(1), float("-inf"))
    top = best.topk(min(NEIGHBOURS, n_refs if exclude is None else n_refs - 1), dim=1).indices
    k = top.shape[1]
    shift, ref = shift.gather(1, top).flatten(), found.gather(1, top).flatten()
    # the nearest references under their shifts, on the query's pixels
    chosen = index.references.index_select(0, ref).view(-1, k, width)
    source, inside = (t.index_select(0, shift).view(-1, k, width) for t in (index.source, index.inside))
    nearest = chosen.gather(2, source).mul_(inside).div_(index.norms.index_select(0, shift * n_refs + ref).view(-1, k, 1))
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
