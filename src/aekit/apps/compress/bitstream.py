"""The ``.aek`` file: what a compressed image is on disk.

    offset  size  field
    0       3     magic b"AEK"
    3       1     format version (2)
    4       16    model identity: the first 16 bytes of the SHA-256 of the codec's weights
    20      1     quality level (1 = smallest)
    21      4     image height (uint32, little endian)
    25      4     image width
    29      4     bytes of side information (z)
    33      4     bytes of the main payload (y)
    37      ...   z payload, then y payload (range-coded 32-bit words, little endian; y's
                  groups one after another, in decoding order)
    end-4   4     CRC-32 of everything before it

Version 2: the latents may be coded in two checkerboard groups, the second
conditioned on the first. Version 1 files (one group) are refused by name: re-encode the
source image.

Every way a file can be wrong (empty, foreign, another version, truncated, a flipped byte,
made by another model) is a one-line ``DataError`` before anything is decoded.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import PIL.Image

from ...errors import DataError

MAGIC = b"AEK"
VERSION = 2
HEADER = struct.Struct("<3sB16sBIIII")
CHECKSUM = struct.Struct("<I")
MAX_SIDE = 1 << 16  # pixels per side: a larger header value is a damaged file, not an image
MAX_PIXELS = PIL.Image.MAX_IMAGE_PIXELS  # Pillow's decompression-bomb limit, which the encoder's reader enforces


@dataclass(frozen=True)
class Compressed:
    model_id: bytes
    quality: int
    height: int
    width: int
    z: bytes
    y: bytes

    def to_bytes(self) -> bytes:
        body = HEADER.pack(MAGIC, VERSION, self.model_id, self.quality, self.height, self.width,
                           len(self.z), len(self.y)) + self.z + self.y
        return body + CHECKSUM.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "the file") -> Compressed:
        if not data:
            raise DataError(f"{name} is empty")
        if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
            raise DataError(f"{name} is not an aekit compressed image (no AEK header)")
        if len(data) < HEADER.size + CHECKSUM.size:
            raise DataError(f"{name} is truncated ({len(data)} bytes)")
        magic, version, model_id, quality, height, width, nz, ny = HEADER.unpack_from(data)
        if version != VERSION:
            raise DataError(f"{name} has format version {version}; this aekit reads version {VERSION}")
        if len(data) != HEADER.size + nz + ny + CHECKSUM.size:
            raise DataError(f"{name} is truncated or has trailing bytes: {len(data)} bytes, the header says "
                            f"{HEADER.size + nz + ny + CHECKSUM.size}")
        (stored,) = CHECKSUM.unpack_from(data, len(data) - CHECKSUM.size)
        if zlib.crc32(data[:-CHECKSUM.size]) != stored:
            raise DataError(f"{name} is damaged (checksum mismatch)")
        if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE) or nz % 4 or ny % 4:
            raise DataError(f"{name} has an invalid header")
        if height * width > MAX_PIXELS:
            raise DataError(f"{name} claims a {width}x{height} image, more pixels than aekit encodes "
                            f"({MAX_PIXELS:,}): damaged or forged")
        start = HEADER.size
        return cls(model_id, quality, height, width, data[start:start + nz], data[start + nz:start + nz + ny])
