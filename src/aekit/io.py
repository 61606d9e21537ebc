"""Everything aekit writes to disk goes through here: the model directory, training
checkpoints, and the atomic, permission-respecting, never-destructive write of any output.

Layout of ``MODEL_DIR/``::

    config.json         {"format": "aekit-model", "format_version": 2, "aekit_version": ...,
                         "kind": "anomaly.AnomalyDetector", "weights_sha256": ...,
                         "config_sha256": ..., "params": {...}, "adapter": {...},
                         "networks": {group: spec}, "state": {...}}
    model.safetensors   named tensor groups, each tensor stored as ``"group/name"``
    score.onnx          (image detectors) the score as an ONNX graph, for a scorer that does
                        not import torch; listed with its SHA-256 in ``"files_sha256"``

Nothing is ever unpickled. Every file carries a SHA-256 (the config's covers every other key
of the config), so truncation, corruption or tampering is reported, never used. The
directory is built under a temporary name and swapped into place; a reader that meets a
swap half-way retries, so it sees the old model or the new one, never an error.

A model directory may replace only an earlier aekit model of the same kind (or an empty
folder): never a user's file, a folder of their data, or the current folder.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

from . import marks
from ._version import __version__
from .distributed import is_main_process
from .parquet_folders import PARQUET_SUFFIXES, parquet_parts
from .errors import ModelFileError, OutputError

if TYPE_CHECKING:  # torch is imported where tensors are read or written: a scorer without torch loads this module
    import numpy as np
    import torch

FORMAT = "aekit-model"
FORMAT_VERSION = 2
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SCORE_GRAPH_FILE = "score.onnx"
EXTRA_FILES = (SCORE_GRAPH_FILE,)  # the files a model directory may hold beside the two
CHECKPOINT_FORMAT = "aekit-checkpoint"
CHECKPOINT_MARKER = ".aekit-checkpoints"
LOAD_RETRIES = 50  # x 20 ms: how long a reader waits out a concurrent swap of the directory

Groups = dict[str, dict[str, "torch.Tensor"]]


# ---------------------------------------------------------------------- atomic writes
def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask sets it,
    which would race with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _tmp_name(path: Path, suffix: str) -> str:
    """Hidden sibling name holding the writer's pid, so leftovers of dead writers can be found."""
    return f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}{suffix}"


def clean_stale(path: str | os.PathLike[str]) -> None:
    """Remove ``.NAME.<pid>.*.tmp|.old`` siblings of ``path`` left by writers that died."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    prefix = f".{path.name}."
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or not name.endswith((".tmp", ".old")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically,
    with the permissions the umask gives a new file."""
    path = Path(path)
    tmp = _staging_path(path)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        raise _output_error(path, exc) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def write_npz(path: str | os.PathLike[str], kind: str, *, compressed: bool = False, **arrays: Any) -> Path:
    """``arrays`` as an ``.npz`` at ``path``, atomically, marked as aekit's ``kind`` output
    (``marks.mark_zip``) so that a later run may replace it."""
    import numpy as np

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)
        marks.mark_zip(tmp, kind)
    return Path(path)


def _staging_path(path: Path) -> Path:
    """A fresh hidden name beside ``path`` to write under (its folder made, dead writers'
    leftovers removed)."""
    parent = path.parent if str(path.parent) else Path(".")
    _writable_parent(parent)
    clean_stale(path)
    return parent / _tmp_name(path, ".tmp")


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _writable_parent(parent: Path) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot write under {parent}: it is a file, not a folder") from None
    except OSError as exc:
        raise _output_error(parent, exc) from None


def _reason(exc: OSError) -> str:
    return {errno.ENOSPC: "the disk is full", errno.EACCES: "permission denied", errno.EROFS: "read-only file system",
            errno.EDQUOT: "disk quota exceeded"}.get(exc.errno or 0, exc.strerror or str(exc) or type(exc).__name__)


def _output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {_reason(exc)}")


# ---------------------------------------------------------------------- output checks
def _same_or_inside(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output_file(path: str | os.PathLike[str], kind: str, *, inputs: Iterable[str | os.PathLike[str]] = (),
                      suffixes: tuple[str, ...] = (), option: str = "--out") -> Path:
    """Refuse an output file that would replace an input, a folder, a file of another type
    than ``suffixes`` (so ``--out data.parquet`` cannot turn a data file into a CSV), or any
    non-empty file that is not aekit's own earlier output of the same ``kind`` (its mark
    says so: ``marks``). Call it before any work; the writer then marks what it writes."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{option} {path} is a dangling symbolic link")
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name")
    if suffixes and not path.name.lower().endswith(suffixes):  # endswith: ".csv.gz" is one
        named = " or ".join(suffixes) if len(suffixes) < 3 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
        raise OutputError(f"{option} {path} must end with {named}")
    resolved = path.resolve()
    for source in inputs:
        if Path(source).exists() and Path(source).resolve() == resolved:
            raise OutputError(f"{option} {path} is also an input; write the output elsewhere")
        if (path.suffix.lower() in PARQUET_SUFFIXES and Path(source).resolve() in resolved.parents
                and parquet_parts(source) is not None):
            raise OutputError(f"{option} {path} is inside the input folder {source}, whose next read would take it "
                              "for one of its parts; write the output elsewhere")
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: {path.parent} is a file, not a folder")
    _check_replaceable(path, kind, option)
    check_writable(path, option)
    return path


def _check_replaceable(path: Path, kind: str, option: str) -> None:
    """An existing file may be replaced only when aekit wrote it as ``kind`` (or it is empty:
    nothing of yours is lost)."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return
    except OSError:
        return  # unreadable metadata: the write itself will say why
    found = marks.output_kind(path)
    if found == kind:
        return
    if found is None:
        raise OutputError(f"{option} {path} exists and aekit did not write it; it will not be replaced: "
                          "give a new name or move it away")
    raise OutputError(f"{option} {path} holds aekit's {found} output; it will not be replaced by {kind} output")


def check_writable(path: str | os.PathLike[str], option: str = "--out") -> None:
    """Refuse an output whose folder (or, if it does not exist yet, the nearest folder above
    it) cannot be written: said before any work, not after it. A hidden file is made and
    removed there, since permission bits do not tell (root, read-only mounts, sysfs)."""
    folder = Path(path).absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return  # a file in the way: the callers' own checks name it
    probe = folder / _tmp_name(Path(path), ".tmp")  # a writer's temporary name: clean_stale knows it
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise OutputError(f"cannot write {option} {path}: {_reason(exc)} in {folder}") from None
    probe.unlink(missing_ok=True)


OUTPUT_MARKER = ".aekit-output"  # in a folder of outputs aekit made: {"format": ..., "kind": ...}
OUTPUT_FORMAT = "aekit-output"


def output_kind_at(path: str | os.PathLike[str]) -> str | None:
    """The kind of outputs aekit wrote into the folder ``path`` (its marker), or None."""
    try:
        marker = json.loads((Path(path) / OUTPUT_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker.get("kind") if isinstance(marker, dict) and marker.get("format") == OUTPUT_FORMAT else None


def check_output_dir(path: str | os.PathLike[str], kind: str, *, inputs: Iterable[str | os.PathLike[str]] = (),
                     option: str = "--report-dir") -> Path:
    """A folder that aekit fills with several outputs (a report, heat maps, the demo): it must
    be new, empty, or aekit's own earlier output of the same ``kind`` (its marker says so),
    never a user's folder, the current folder, or a folder holding an input. Call it
    before any work; ``claim_output_dir`` then makes the folder and marks it."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{option} {path} is a dangling symbolic link")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file, not a folder")
    resolved = path.resolve()
    for source in inputs:
        if Path(source).exists() and _same_or_inside(Path(source).resolve(), resolved):
            raise OutputError(f"{option} {path} holds the input {source}; write the output elsewhere")
    if path.is_dir() and any(path.iterdir()):
        if _same_or_inside(Path.cwd().resolve(), resolved):
            raise OutputError(f"{option} {path} is the current folder (or holds it); give a new folder")
        found = output_kind_at(path)
        if found is None:
            raise OutputError(f"{option} {path} is a folder that aekit did not make; its files will not be "
                              "replaced: give a new or empty folder")
        if found != kind:
            raise OutputError(f"{option} {path} holds aekit's {found!r} output; it will not be replaced by "
                              f"{kind!r} output")
    check_writable(path / "x", option)
    return path


def claim_output_dir(path: str | os.PathLike[str], kind: str) -> Path:
    """Make the output folder ``path`` (checked by ``check_output_dir``) and mark it as
    aekit's ``kind`` output, so a later run may replace what is in it and nothing else."""
    path = Path(path)
    _writable_parent(path)
    if output_kind_at(path) != kind:
        atomic_write_text(path / OUTPUT_MARKER, json.dumps({"format": OUTPUT_FORMAT, "kind": kind}))
    return path


def model_kind_at(path: str | os.PathLike[str]) -> str | None:
    """The kind of the aekit model directory at ``path``, or None if it is not one."""
    cfg = Path(path) / CONFIG_FILE
    try:
        config = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("kind") if isinstance(config, dict) and config.get("format") == FORMAT else None


def check_model_output(path: str | os.PathLike[str], kind: str, *, inputs: Iterable[str | os.PathLike[str]] = (),
                       option: str = "--out") -> Path:
    """Refuse a model-directory path that would destroy what the user made: a file, the
    current folder (or one above it), a folder holding an input, or any non-empty folder
    that is not an earlier aekit model of the same ``kind``. Call it before training."""
    path = Path(path)
    if path.is_symlink():
        raise OutputError(f"{option} {path} is a symbolic link; give a real path for the model directory")
    resolved = path.resolve()
    if _same_or_inside(Path.cwd().resolve(), resolved):
        raise OutputError(f"{option} {path} is the current folder (or holds it); give a new folder for the model")
    for source in inputs:
        if Path(source).exists() and _same_or_inside(Path(source).resolve(), resolved):
            raise OutputError(f"{option} {path} holds the input {source}; write the model elsewhere")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file; a model is a folder: give a new folder name")
    if path.is_dir() and any(path.iterdir()):
        found = model_kind_at(path)
        if found is None:
            raise OutputError(f"{option} {path} is a folder that is not an aekit model; it will not be replaced")
        if found != kind:
            raise OutputError(f"{option} {path} holds a model of kind {found!r}; it will not be replaced by one of "
                              f"kind {kind!r}")
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: {path.parent} is a file, not a folder")
    check_writable(path, option)
    return path


# ---------------------------------------------------------------------- the model directory
def save_safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """safetensors' torch writer, imported when a model is written (not by a numpy scorer)."""
    from safetensors.torch import save

    return save(tensors, metadata=metadata)


def load_safetensors_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """safetensors' torch reader, imported when tensors are read."""
    from safetensors.torch import load

    return load(data)


def _json_dumps(obj: Any, **kw: Any) -> str:
    try:
        return json.dumps(obj, allow_nan=False, **kw)
    except ValueError as exc:  # NaN/inf: refuse to write what could not be read back exactly
        raise ModelFileError(f"cannot save a model whose settings hold NaN or infinity ({exc})") from None


def _config_digest(config: dict[str, Any]) -> str:
    body = {k: v for k, v in config.items() if k != "config_sha256"}
    return hashlib.sha256(_json_dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _flatten(groups: Groups) -> dict[str, torch.Tensor]:
    flat = {}
    for group, tensors in groups.items():
        if "/" in group:
            raise ValueError(f"tensor group names cannot hold '/': {group!r}")
        for name, t in tensors.items():
            flat[f"{group}/{name}"] = t.detach().contiguous().cpu()
    return flat


def _unflatten(flat: dict[str, torch.Tensor]) -> Groups:
    groups: Groups = {}
    for key, t in flat.items():
        group, _, name = key.partition("/")
        groups.setdefault(group, {})[name] = t
    return groups


@contextmanager
def _dir_lock(parent: Path) -> Iterator[None]:
    """Writers to one folder take turns swapping directories (flock on the folder itself)."""
    fd = os.open(parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def save_model(path: str | os.PathLike[str], kind: str, config: dict[str, Any], groups: Groups,
               files: dict[str, bytes] | None = None) -> Path:
    """Write a model directory atomically. An earlier model of the same kind at ``path`` is
    replaced; anything else there is refused (``check_model_output``). ``files``: more files
    of the model by name (``EXTRA_FILES``), each listed with its SHA-256 in the config. Under
    torchrun only rank 0 writes: every rank holds the same model."""
    path = Path(path)
    files = files or {}
    unknown = sorted(set(files) - set(EXTRA_FILES))
    if unknown:
        raise ValueError(f"model files {unknown} are not among {list(EXTRA_FILES)}")
    if not is_main_process():
        return path
    check_model_output(path, kind)
    # again under the lock: another writer may have put something there meanwhile
    with atomic_dir(path, recheck=lambda: check_model_output(path, kind)) as staging:
        weights = save_safetensors_bytes(_flatten(groups))
        full = {"format": FORMAT, "format_version": FORMAT_VERSION, "aekit_version": __version__, "kind": kind,
                "weights_sha256": hashlib.sha256(weights).hexdigest(), **config}
        if files:
            full["files_sha256"] = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
        full["config_sha256"] = _config_digest(full)
        (staging / WEIGHTS_FILE).write_bytes(weights)
        for name, data in files.items():
            (staging / name).write_bytes(data)
        (staging / CONFIG_FILE).write_text(_json_dumps(full, indent=2), encoding="utf-8")
    return path


def read_model_file(path: str | os.PathLike[str], kinds: tuple[str, ...],
                    name: str) -> tuple[dict[str, Any], bytes | None]:
    """The verified config of the model directory at ``path`` and the verified bytes of its
    file ``name`` (one of ``EXTRA_FILES``), or None when the model has no such file (models
    made before it existed). The weights are not read. A concurrent swap is waited out."""
    if name not in EXTRA_FILES:
        raise ValueError(f"{name!r} is not among {list(EXTRA_FILES)}")
    path = Path(path)

    def read() -> tuple[dict[str, Any], bytes | None]:
        config = _verified_config(_config_bytes(path), kinds, str(path))
        listed = config.get("files_sha256", {})
        if not isinstance(listed, dict):
            raise ModelFileError(f"{path}/{CONFIG_FILE}: 'files_sha256' is not a mapping of file names to checksums")
        digest = listed.get(name)
        if digest is None:
            return config, None
        data = (path / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise ModelFileError(f"{path}/{name} is corrupted or truncated (checksum mismatch)")
        return config, data

    return _retrying(path, read)


@contextmanager
def atomic_dir(path: str | os.PathLike[str], recheck: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; on success it replaces ``path`` (whose
    right to be replaced the caller has checked; ``recheck`` runs again under the folder's
    lock), with the permissions the umask gives new files. On failure nothing changes."""
    path = Path(path)
    staging = _staging_path(path)
    parent = staging.parent
    try:
        staging.mkdir()
        yield staging
        mask = _umask()
        for f in staging.rglob("*"):
            os.chmod(f, (0o777 if f.is_dir() else 0o666) & ~mask)
        os.chmod(staging, 0o777 & ~mask)
        with _dir_lock(parent):
            if recheck is not None:
                recheck()
            if path.exists():
                # Directories cannot be swapped in one rename: move the old one aside first,
                # so at every instant a complete old or new folder sits at `path` (or, for an
                # instant, nothing: model readers retry through that instant).
                old = parent / _tmp_name(path, ".old")
                os.replace(path, old)
                os.replace(staging, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(staging, path)
    except OSError as exc:
        raise _output_error(path, exc) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_dev


def _swap_in_progress(path: Path) -> bool:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        return any(p.name.startswith(f".{path.name}.") and p.name.endswith((".tmp", ".old")) for p in parent.iterdir())
    except OSError:
        return False


def load_model(path: str | os.PathLike[str], kinds: tuple[str, ...]) -> tuple[dict[str, Any], Groups]:
    """Read and verify a model directory whose ``kind`` is one of ``kinds``: ``(config,
    tensor groups)``. A writer swapping the directory meanwhile is waited out."""
    config, _, weights = _read_verified(path, kinds)
    return config, _tensor_groups(weights, str(path))


def read_model_files(path: str | os.PathLike[str], kinds: tuple[str, ...]) -> tuple[bytes, bytes]:
    """The verified bytes of a model directory's two files (``config.json``,
    ``model.safetensors``): what a process that cannot see the folder (a Dask worker) needs
    to load it with ``load_model_bytes``. A concurrent swap of the directory is waited out."""
    _, config_bytes, weights = _read_verified(path, kinds)
    return config_bytes, weights


def _read_verified(path: str | os.PathLike[str], kinds: tuple[str, ...]) -> tuple[dict[str, Any], bytes, bytes]:
    """``(config, config bytes, weights bytes)``, every check done once, swaps waited out."""
    path = Path(path)
    return _retrying(path, lambda: _read_once(path, kinds))


def _retrying(path: Path, read: Callable[[], Any]) -> Any:
    """``read()``, again while a writer swaps the directory at ``path`` (a read that fails
    because the folder moved or was missing for an instant)."""
    for attempt in range(LOAD_RETRIES):
        before = _identity(path)
        try:
            return read()
        except (ModelFileError, OSError) as exc:
            # moved, or appeared: a swap that began and ended while this read failed (the
            # directory was missing for an instant, and the writer is already done)
            moved = _identity(path) != before
            if attempt + 1 < LOAD_RETRIES and (moved or _swap_in_progress(path)):
                time.sleep(0.02)
                continue
            if isinstance(exc, OSError):
                raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
            raise
    raise AssertionError("unreachable")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _config_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ModelFileError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise ModelFileError(f"{path} is a file, not an aekit model directory")
    cfg_file = path / CONFIG_FILE
    if not cfg_file.exists():
        raise ModelFileError(f"{path} is not an aekit model directory (no {CONFIG_FILE})")
    return cfg_file.read_bytes()


def _read_once(path: Path, kinds: tuple[str, ...]) -> tuple[dict[str, Any], bytes, bytes]:
    raw = _config_bytes(path)
    config = _verified_config(raw, kinds, str(path))
    weights_file = path / WEIGHTS_FILE
    if not weights_file.exists():
        raise ModelFileError(f"{path} is incomplete: {WEIGHTS_FILE} is missing")
    weights = weights_file.read_bytes()
    _check_weights_digest(weights, config, str(path))
    return config, raw, weights


def load_model_bytes(config_bytes: bytes, weights: bytes, kinds: tuple[str, ...],
                     where: str = "model") -> tuple[dict[str, Any], Groups]:
    """``load_model`` from the two files' bytes (``read_model_files``): every check, no pickle.
    ``where`` names the model in error messages."""
    config = _verified_config(config_bytes, kinds, where)
    _check_weights_digest(weights, config, where)
    return config, _tensor_groups(weights, where)


def _tensor_groups(weights: bytes, where: str) -> Groups:
    """The tensor groups of verified weights."""
    try:
        flat = load_safetensors_bytes(weights)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{where}/{WEIGHTS_FILE} cannot be read ({exc})") from None
    return _unflatten(flat)


def load_model_arrays(path: str | os.PathLike[str], kinds: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """``load_model`` with numpy arrays instead of tensors, without importing torch: what a
    scorer that runs on numpy alone reads (every check is the same)."""
    from safetensors.numpy import load as load_numpy_bytes

    config, _, weights = _read_verified(path, kinds)
    try:
        flat = load_numpy_bytes(weights)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}/{WEIGHTS_FILE} cannot be read ({exc})") from None
    return config, _unflatten(flat)


def _verified_config(raw: bytes, kinds: tuple[str, ...], where: str) -> dict[str, Any]:
    cfg_file = f"{where}/{CONFIG_FILE}"
    try:
        config = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{cfg_file} is corrupted or truncated ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{where} is not an aekit model directory ({CONFIG_FILE} has no 'format': '{FORMAT}')")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{where} was written by a newer aekit ({config.get('aekit_version')}, format {version}); "
            f"this aekit {__version__} reads format {FORMAT_VERSION}: upgrade aekit")
    if config.get("kind") not in kinds:
        raise ModelFileError(f"{where} holds a model of kind {config.get('kind')!r}, where this reads "
                             f"{' or '.join(map(repr, kinds))}")
    if version < FORMAT_VERSION:
        raise ModelFileError(f"{where} was written by an older aekit ({config.get('aekit_version')}, format {version}); "
                             f"this aekit reads format {FORMAT_VERSION}: train the model again")
    if config.get("config_sha256") != _config_digest(config):
        raise ModelFileError(f"{cfg_file} was modified or corrupted (checksum mismatch)")
    return config


def _check_weights_digest(weights: bytes, config: dict[str, Any], where: str) -> None:
    if hashlib.sha256(weights).hexdigest() != config.get("weights_sha256"):
        raise ModelFileError(f"{where}/{WEIGHTS_FILE} is corrupted or truncated (checksum mismatch)")


# ---------------------------------------------------------------------- checkpoints
def _tensor_digest(tensors: dict[str, torch.Tensor], meta: str) -> str:
    import torch

    h = hashlib.sha256(meta.encode())
    for key in sorted(tensors):
        t = tensors[key].contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def prepare_checkpoint_dir(path: str | os.PathLike[str]) -> Path:
    """Create (or reuse) a checkpoint folder; it carries a marker so that aekit only ever
    removes folders it made."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputError(f"{path} exists and is not an aekit checkpoint folder; move it away")
    if path.is_dir() and any(path.iterdir()) and not (path / CHECKPOINT_MARKER).exists():
        raise OutputError(f"{path} exists and is not an aekit checkpoint folder; move it away")
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / CHECKPOINT_MARKER).touch()
    except OSError as exc:
        raise _output_error(path, exc) from None
    return path


def remove_checkpoint_dir(path: str | os.PathLike[str], only_if_empty: bool = False) -> None:
    """Remove a checkpoint folder aekit made (never anything else); with ``only_if_empty``,
    only if it holds no checkpoint yet (a training that failed before its first epoch)."""
    path = Path(path)
    if not (path / CHECKPOINT_MARKER).exists():
        return
    if only_if_empty and any(p.is_file() and p.name != CHECKPOINT_MARKER for p in path.rglob("*")):
        return
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def training_lock(checkpoint_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Held while a training writes ``checkpoint_dir``: a second training into the same
    output is refused at once instead of corrupting the first one's checkpoints."""
    fd = os.open(prepare_checkpoint_dir(checkpoint_dir), os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another aekit training is writing {checkpoint_dir}; wait for it or use another --out") from None
        yield
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """One checkpoint file, atomically: tensors + JSON metadata, with a format version and
    a SHA-256 over both."""
    meta_json = _json_dumps(meta)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    header = {"format": CHECKPOINT_FORMAT, "format_version": str(FORMAT_VERSION), "aekit_version": __version__,
              "meta": meta_json, "sha256": _tensor_digest(tensors, meta_json)}
    with atomic_path(path) as tmp:
        tmp.write_bytes(save_safetensors_bytes(tensors, metadata=header))


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint written by ``save_checkpoint``."""
    path = Path(path)
    hint = "; delete it to start over"
    try:
        data = path.read_bytes()
        tensors = load_safetensors_bytes(data)
        header = _safetensors_metadata(data)
    except (OSError, SafetensorError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"cannot resume: checkpoint {path} is unreadable ({exc.__class__.__name__}){hint}") from None
    if header.get("format") != CHECKPOINT_FORMAT or header.get("format_version") != str(FORMAT_VERSION):
        raise ModelFileError(f"cannot resume: {path} is not an aekit checkpoint of this version{hint}")
    if header.get("sha256") != _tensor_digest(tensors, header.get("meta", "")):
        raise ModelFileError(f"cannot resume: checkpoint {path} is corrupted (checksum mismatch){hint}")
    return tensors, json.loads(header["meta"])


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or n > len(data) - 8:
        raise ValueError("bad header")
    return json.loads(data[8:8 + n]).get("__metadata__", {}) or {}

