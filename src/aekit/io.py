"""The model directory: ``config.json`` + ``model.safetensors``, written atomically.

Layout of ``MODEL_DIR/``::

    config.json         {"format": "aekit-model", "format_version": 1, "aekit_version": ...,
                         "kind": "anomaly.AnomalyDetector", "weights_sha256": ..., ...}
    model.safetensors   every tensor of the model

``config.json`` carries whatever the application needs beside the weights (architecture,
fitted preprocessing, threshold) as plain JSON. Nothing is ever unpickled. The whole
directory is built under a temporary name and renamed into place, so a crash leaves either
the old model or the new one, never half of one. The weights' SHA-256 is checked on load so
truncation or corruption is reported, not silently used.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ._version import __version__
from .distributed import is_main_process
from .errors import ModelFileError

FORMAT = "aekit-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_model_dir(path: str | os.PathLike[str], kind: str, config: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Path:
    """Write a model directory atomically (an existing one at ``path`` is replaced).
    Under torchrun only rank 0 writes: every rank holds the same model."""
    path = Path(path)
    if not is_main_process():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        weights = staging / WEIGHTS_FILE
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(weights))
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "aekit_version": __version__,
            "kind": kind, "weights_sha256": _sha256(weights),
        }
        (staging / CONFIG_FILE).write_text(json.dumps({**header, **config}, indent=2), encoding="utf-8")
        if path.exists():
            # Directories cannot be swapped in one rename: move the old one aside first, so
            # at every instant either a complete old or a complete new model sits at `path`
            # (or, for an instant, nothing).
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
            os.replace(staging, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path


def load_model_dir(path: str | os.PathLike[str], kinds: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read and verify a model directory whose ``kind`` is one of ``kinds``."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelFileError(f"{path} is a file, not an aekit model directory")
    cfg_file, weights = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not cfg_file.exists():
        raise ModelFileError(f"{path} is not an aekit model directory (no {CONFIG_FILE})")
    try:
        config = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{cfg_file} is corrupted or truncated ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not an aekit model directory ({CONFIG_FILE} has no 'format': '{FORMAT}')")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} was written by a newer aekit ({config.get('aekit_version')}, format {version}); "
            f"this aekit {__version__} reads format <= {FORMAT_VERSION}: upgrade aekit")
    if config.get("kind") not in kinds:
        raise ModelFileError(f"{path} holds a {config.get('kind')!r} model, not one of {list(kinds)}")
    if not weights.exists():
        raise ModelFileError(f"{path} is incomplete: {WEIGHTS_FILE} is missing")
    if _sha256(weights) != config.get("weights_sha256"):
        raise ModelFileError(f"{weights} is corrupted or truncated (checksum mismatch)")
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
        raise ModelFileError(f"{weights} cannot be read ({exc})") from None
    return config, tensors
