"""Reading ``.npz`` files as untrusted input: every array's header is checked against the bytes
its zip member holds before anything is allocated (a forged header can claim terabytes in a
few bytes), and nothing is unpickled."""
from __future__ import annotations

import math
import os
import zipfile

import numpy as np
from numpy.lib import format as npy

from ..errors import DataError, first_line


def read_npz(path: str | os.PathLike[str], *wanted: tuple[str, ...]) -> list[np.ndarray | None]:
    """One array per ``wanted`` tuple of names: the first of them that ``path`` holds, or None
    (only that one is read). A file that is not an ``.npz``, holds objects, or whose header
    asks for more than it holds is a ``DataError``."""
    arrays: list[np.ndarray | None] = []
    try:
        with zipfile.ZipFile(path) as z:
            members = set(z.namelist())
            for names in wanted:
                name = next((n for n in names if f"{n}.npy" in members), None)
                if name is None:
                    arrays.append(None)
                    continue
                info = z.getinfo(f"{name}.npy")
                with z.open(info) as fh:
                    _check_header(fh, info.file_size, path, name)
                with z.open(info) as fh:
                    arrays.append(npy.read_array(fh, allow_pickle=False))
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, MemoryError) as exc:
        raise DataError(f"{path} is not a readable .npz file ({first_line(exc, 120)})") from None
    return arrays


def _check_header(fh: object, stored: int, path: str | os.PathLike[str], name: str) -> None:
    version = npy.read_magic(fh)
    read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _, dtype = read_header(fh)
    if dtype.hasobject:
        raise DataError(f"{path}: {name} holds Python objects; aekit reads numbers only")
    if math.prod(shape) * dtype.itemsize > stored:
        raise DataError(f"{path}: {name} claims a {'x'.join(map(str, shape))} array of {dtype}, more than the "
                        f"{stored:,} bytes stored for it (damaged or forged)")
