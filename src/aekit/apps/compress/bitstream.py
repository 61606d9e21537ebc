"""The ``.aek`` file: what a compressed image is on disk.

    offset  size  field
    0       3     magic b"AEK"
    3       1     format version (3)
    4       16    model identity: the first 16 bytes of the SHA-256 of the codec's weights
    20      1     quality level (1 = smallest)
    21      1     flags: bit 0 set where the image is grey (every pixel's three channels
                  equal), which decodes to one channel
    22      4     image height (uint32, little endian)
    26      4     image width
    30      4     bytes of side information (z)
    34      4     bytes of the main payload (y)
    38      ...   z payload, then y payload (range-coded 32-bit words, little endian; y's
                  groups one after another, in decoding order)
    end-4   4     CRC-32 of everything before it

Version 3 added the flags (a grey photo decoded to RGB, three times the channels it came
with); version 2 files, the same without them, decode as colour images. Version 2 brought
two checkerboard groups of latents, the second conditioned on the first; version 1 files
(one group) are refused by name: re-encode the source image.

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
VERSION = 3
HEADERS = {2: struct.Struct("<3sB16sBIIII"), 3: struct.Struct("<3sB16sBBIIII")}  # by version
GREY = 1  # the flags' bit of a grey image
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
    grey: bool = False

    def to_bytes(self) -> bytes:
        body = HEADERS[VERSION].pack(MAGIC, VERSION, self.model_id, self.quality, GREY if self.grey else 0,
                                     self.height, self.width, len(self.z), len(self.y)) + self.z + self.y
        return body + CHECKSUM.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "the file") -> Compressed:
        if not data:
            raise DataError(f"{name} is empty")
        if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
            raise DataError(f"{name} is not an aekit compressed image (no AEK header)")
        version = data[len(MAGIC)] if len(data) > len(MAGIC) else None
        header = HEADERS.get(version)
        if version is not None and header is None:
            raise DataError(f"{name} has format version {version}; this aekit reads versions "
                            f"{' and '.join(map(str, HEADERS))}")
        if header is None or len(data) < header.size + CHECKSUM.size:
            raise DataError(f"{name} is truncated ({len(data)} bytes)")
        fields = list(header.unpack_from(data))
        flags = fields.pop(4) if version >= 3 else 0
        model_id, quality, height, width, nz, ny = fields[2:]
        if len(data) != header.size + nz + ny + CHECKSUM.size:
            raise DataError(f"{name} is truncated or has trailing bytes: {len(data)} bytes, the header says "
                            f"{header.size + nz + ny + CHECKSUM.size}")
        (stored,) = CHECKSUM.unpack_from(data, len(data) - CHECKSUM.size)
        if zlib.crc32(data[:-CHECKSUM.size]) != stored:
            raise DataError(f"{name} is damaged (checksum mismatch)")
        if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE) or nz % 4 or ny % 4 or flags & ~GREY:
            raise DataError(f"{name} has an invalid header")
        if height * width > MAX_PIXELS:
            raise DataError(f"{name} claims a {width}x{height} image, more pixels than aekit encodes "
                            f"({MAX_PIXELS:,}): damaged or forged")
        start = header.size
        return cls(model_id, quality, height, width, data[start:start + nz], data[start + nz:start + nz + ny],
                   grey=bool(flags & GREY))
