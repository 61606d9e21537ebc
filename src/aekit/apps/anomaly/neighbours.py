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


def to_space(Z: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    """Images ``[N, C, H, W]`` blurred and shrunk to ``space_size`` (not yet unit length).
    The sizes are passed as plain ints: the ONNX trace needs them as constants."""
    sigma = max(height, width) * BLUR_PER_SIDE
    radius = int(math.ceil(2 * sigma))
    # the kernel from Python numbers: a constant of known shape in the ONNX trace
    weights = [math.exp(-i * i / (2 * sigma ** 2)) for i in range(-radius, radius + 1)]
    kernel = torch.tensor([w / sum(weights) for w in weights], dtype=Z.dtype)
    c = channels
    blurred = F.conv2d(Z, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), padding=(0, radius), groups=c)
    blurred = F.conv2d(blurred, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), padding=(radius, 0), groups=c)
    size = space_size(height, width)
    return blurred if size == (height, width) else F.interpolate(blurred, size=size, mode="area")


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
    under its best shift. In blocks of ``QUERY_BLOCK`` images, except under the ONNX trace
    (a Python loop over rows would be frozen at the traced batch size)."""
    if torch.jit.is_tracing():
        return _block_parts(space, shifted)
    return torch.cat([_block_parts(space[s:s + QUERY_BLOCK], shifted) for s in range(0, len(space), QUERY_BLOCK)])


def _block_parts(space: torch.Tensor, shifted: torch.Tensor) -> torch.Tensor:
    n_shifts, n_refs, width = shifted.shape
    flat = shifted.reshape(n_shifts * n_refs, width)
    a = unit_rows(space)
    best, shift = (a @ flat.T).view(-1, n_shifts, n_refs).max(1)
    ref = best.topk(min(NEIGHBOURS, n_refs), dim=1).indices
    nearest = flat[shift.gather(1, ref) * n_refs + ref]  # [rows, k, D]
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
