"""The local term of image detectors: how far an image is from its nearest normal images,
compared in a space that forgives what does not make an image anomalous.

The space: each image is blurred (a Gaussian, ``BLUR_PER_SIDE`` of its longer side), shrunk by area to at
most ``MAX_SIDE`` pixels a side (larger images are compared at that size), flattened and
scaled to unit length. Blurring and one-pixel shifts forgive small misalignments of the same
shape; unit length forgives brightness and stroke thickness. The distance of an image is
``1 - mean cosine similarity`` to its ``NEIGHBOURS`` nearest references, where the references
are training images, each under the nine shifts of at most one pixel.

Why: on one-class MNIST (benchmarks/anomaly_images.py, the five hardest digits) the cosine
distance to plain pixels reaches 0.971 AUC, blurred 0.983, blurred with shifts 0.986, where
the autoencoder's reconstruction error reaches 0.970; together they are the default.

Only torch operations, so that the ONNX export can trace the score.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# blur and shift tolerances scale with the image: a Gaussian of sigma = (longer side) / 28
# (one pixel on 28x28 digits, a third of one on 8x8 ones), so the same picture at two
# resolutions is judged alike
BLUR_PER_SIDE = 1 / 28
MAX_SIDE = 32
NEIGHBOURS = 5
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


def to_space(Z: torch.Tensor) -> torch.Tensor:
    """Images ``[N, C, H, W]`` blurred and shrunk to ``space_size`` (not yet unit length)."""
    sigma = max(Z.shape[2:]) * BLUR_PER_SIDE
    radius = int(math.ceil(2 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=Z.dtype)
    kernel = torch.exp(-x * x / (2 * sigma ** 2))
    kernel = kernel / kernel.sum()
    c = Z.shape[1]
    blurred = F.conv2d(Z, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)
    size = space_size(Z.shape[2], Z.shape[3])
    return blurred if size == tuple(Z.shape[2:]) else F.interpolate(blurred, size=size, mode="area")


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows flattened and scaled to unit length (an all-zero image stays zero)."""
    return F.normalize(x.flatten(1), dim=1, eps=1e-8)


def shifted_references(references: torch.Tensor) -> torch.Tensor:
    """``[9, N, D]``: every reference image ``[N, C, h, w]`` under each shift of at most one
    pixel (zeros enter at the edge), at unit length."""
    padded = F.pad(references, (1, 1, 1, 1))
    h, w = references.shape[2:]
    return torch.stack([unit_rows(padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]) for dy, dx in SHIFTS])


def neighbour_parts(space: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
    """Per-feature parts ``[N, D]`` of each image's distance, which sum to it: with unit
    vectors, ``1 - cos(a, r) = |a - r|^2 / 2``, averaged over the nearest references, each
    under its best shift."""
    n_shifts, n_refs, width = shifted.shape
    k = min(NEIGHBOURS, n_refs)
    flat = shifted.reshape(n_shifts * n_refs, width)
    parts = []
    for start in range(0, len(space), QUERY_BLOCK):
        a = unit_rows(space[start:start + QUERY_BLOCK])
        best, shift = (a @ flat.T).view(len(a), n_shifts, n_refs).max(1)
        ref = best.topk(k, dim=1).indices
        nearest = flat[shift.gather(1, ref) * n_refs + ref]  # [block, k, D]
        parts.append((a.unsqueeze(1) - nearest).pow_(2).mean(1).mul_(0.5))
    return torch.cat(parts)


def to_pixels(parts: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Parts ``[N, D]`` in the comparison space back on the images' pixels ``shape``
    (``[N, C, H, W]``), keeping each image's total."""
    n, c, h, w = shape
    size = space_size(h, w)
    grid = parts.view(n, c, *size)
    if size == (h, w):
        return grid
    up = F.interpolate(grid, size=(h, w), mode="nearest")
    return up * (parts.sum(1) / up.flatten(1).sum(1).clamp_min(1e-30)).view(n, 1, 1, 1)
