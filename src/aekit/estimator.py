"""The one fitted-model base every estimator stands on.

``FittedModel`` gives an estimator, whatever its application:

- scikit-learn parameters (``__init__`` only stores them; ``get_params``/``clone`` work);
- its data adapter (``data="auto" | "table" | "image" | "array"``, see ``data.adapters``),
  fitted in ``_fit_adapter`` and applied in ``_inputs``;
- one seeded train/validation split with one rule for small data (``_split``);
- one place that builds the training configuration, with checkpoints in a subfolder of
  ``checkpoint_dir`` per network and ``resume`` (``_train``);
- batched inference (``_batched``);
- ``save``/``load`` of one model-directory layout, written only through ``io.py``:
  the parameters, the adapter's fitted state, the networks (spec + weights, a tensor group
  each), the estimator's own JSON state and named tensor groups;
- ``fit_to(X, out)``: refuse an unsafe ``out`` before training, train with checkpoints
  beside it (``OUT.ckpt/``, locked against a second training), save, drop the checkpoints.

A subclass keeps only what is specific to it: ``fit``, its inference methods, and
``_state``/``_set_state`` for what it learned beyond the networks.
"""
from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .autoencoder import AutoEncoder
from .checks import MAX_EPOCHS, check_choice, check_float, check_int
from .data.adapters import ADAPTER_CHOICES, DataAdapter, adapter_from_dict, infer_adapter_kind, make_adapter
from .distributed import is_main_process
from .errors import DataError, DataNotice, ModelFileError, NotFittedError
from .io import check_model_output, load_model, remove_checkpoint_dir, save_model, training_lock
from .params import Params
from .training import TrainConfig, TrainResult, train

MIN_TRAIN_ROWS = 8
MIN_VALIDATION_ROWS = 20  # below this every row trains: a handful of held-out rows says nothing
# never saved with a model (a model trained on a GPU is saved as one for the CPU)
RUN_TIME_PARAMS = {"verbose": 0, "checkpoint_dir": None, "resume": False, "device": "cpu"}
INFERENCE_BLOCK = 4096

TensorGroups = dict[str, dict[str, torch.Tensor]]


def checkpoint_dir_for(model_dir: str | os.PathLike[str]) -> str:
    """Where the checkpoints of a training into ``model_dir`` live: ``MODEL_DIR.ckpt``."""
    return f"{os.fspath(model_dir).rstrip('/')}.ckpt"


SAMPLE_NAMES = {"image": "images", "audio": "recordings", "text": "sentences", "tokens": "sentences"}


def check_train_rows(n: int, minimum: int = MIN_TRAIN_ROWS, what: str = "rows", why: str = "") -> None:
    """Refuse a training set of fewer than ``minimum`` samples; ``what`` names them and
    ``why`` says what was left out, so the message points at the real cause."""
    if n < minimum:
        raise DataError(f"need at least {minimum} {what} to train, got {n}{f' ({why})' if why else ''}")


class FittedModel(Params):
    """Base class of every aekit estimator (see the module docstring)."""

    _kind: ClassVar[str] = ""  # the model directory's "kind"
    _array_adapter: ClassVar[str] = "table"  # what data="auto" makes of a 2-D array
    _min_rows: ClassVar[int] = MIN_TRAIN_ROWS
    _fitted_attr: ClassVar[str] = "model_"  # set last by fit: its presence means fitted
    _network_class: ClassVar[type] = AutoEncoder  # what its networks are rebuilt as (spec / from_spec)
    _network_classes: ClassVar[dict[str, type]] = {}  # a network of another class, by name
    # parameters added after a kind's first release, with the value the models saved before them
    # had: an older config.json lacks them, and loads with what it was trained with
    _older_defaults: ClassVar[dict[str, Any]] = {}

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> None:
        """Validate the parameters every estimator shares (subclasses add their own)."""
        p = self.get_params()
        if "data" in p:
            check_choice(p["data"], "data", ADAPTER_CHOICES)
        if "epochs" in p and p["epochs"] != "auto":  # "auto": the estimator sets it from the data
            check_int(p["epochs"], "epochs", 1, MAX_EPOCHS)
        if "batch_size" in p:
            check_int(p["batch_size"], "batch_size", 1, 1 << 20)
        if "lr" in p:
            check_float(p["lr"], "lr", 0, 10, low_open=True)
        if "validation_fraction" in p:
            check_float(p["validation_fraction"], "validation_fraction", 0, 0.9, high_open=True)
        if "random_state" in p:
            check_int(p["random_state"], "random_state", 0, 2**31 - 1)

    # ------------------------------------------------------------------ data
    def _fit_adapter(self, X: Any) -> torch.Tensor:
        """Fit the data adapter on training data ``X``; its tensor ``[N, *sample_shape]``. A
        table's preprocessor's ``notes`` (a label or a time left among the features) are
        given as ``DataNotice`` warnings."""
        Z = self._enough_samples(self._new_adapter(X).fit_transform(X))
        preprocessor = getattr(self.adapter_, "preprocessor", None)
        for note in preprocessor.notes() if preprocessor is not None else []:
            warnings.warn(note, DataNotice, stacklevel=3)
        return Z

    def _new_adapter(self, X: Any) -> DataAdapter:
        """``adapter_``, new and not fitted, of the kind ``X`` is (``data``, or inferred);
        ``X`` of known length is checked to hold enough samples first (an adapter's own
        errors would be less clear)."""
        kind = getattr(self, "data", "auto")
        if kind == "auto":
            kind = infer_adapter_kind(X, self._array_adapter)
        if not isinstance(X, (str, os.PathLike)) and hasattr(X, "__len__"):
            check_train_rows(len(X), self._min_rows, SAMPLE_NAMES.get(kind, "rows"))
        self.adapter_: DataAdapter = make_adapter(kind, self.get_params())
        return self.adapter_

    def _enough_samples(self, Z: Any) -> Any:
        """``Z``, the fitted adapter's training tensor (or tuple), once checked to hold enough samples."""
        check_train_rows(len(Z[0] if isinstance(Z, tuple) else Z), self._min_rows,
                         SAMPLE_NAMES.get(self.adapter_.kind, "rows"))
        return Z

    def _inputs(self, X: Any) -> torch.Tensor:
        """New data through the fitted adapter."""
        self._check_fitted()
        return self.adapter_.transform(X)

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(training, validation)`` indices: a seeded shuffle, ``validation_fraction`` held
        out, none below ``MIN_VALIDATION_ROWS`` rows."""
        perm = np.random.default_rng(self.random_state).permutation(n)
        fraction = getattr(self, "validation_fraction", 0.0)
        n_val = int(round(fraction * n)) if n >= MIN_VALIDATION_ROWS else 0
        return perm[n_val:], perm[:n_val]

    # ------------------------------------------------------------------ training
    def _train_config(self, *, seed: int, name: str, desc: str, **overrides: Any) -> TrainConfig:
        """The training configuration from the estimator's parameters; checkpoints of network
        ``name`` go to ``checkpoint_dir/name``."""
        ckpt = str(Path(self.checkpoint_dir) / name) if getattr(self, "checkpoint_dir", None) else None
        cfg = TrainConfig(epochs=overrides.pop("epochs", self.epochs), batch_size=self.batch_size, lr=self.lr,
                          weight_decay=getattr(self, "weight_decay", 0.0),
                          lr_decay=getattr(self, "lr_decay", 1.0), patience=getattr(self, "patience", 10),
                          seed=seed, verbose=self.verbose, checkpoint_dir=ckpt,
                          resume=bool(getattr(self, "resume", False)), desc=desc, settings=self._settings())
        return replace(cfg, **overrides)

    def _settings(self) -> dict[str, Any]:
        """The parameters a resumed training must share, as JSON values (tuples as lists)."""
        # a run may resume on another device: where the steps ran is not a setting of the model
        params = {k: v for k, v in self.get_params().items() if k not in RUN_TIME_PARAMS}
        return json.loads(json.dumps(params, default=str))

    def _train(self, model: torch.nn.Module, train_data: Any, val_data: Any = None, *, seed: int, name: str,
               desc: str, **overrides: Any) -> TrainResult:
        """Train ``model`` with the estimator's configuration; leaves it in eval mode."""
        result = train(model, train_data, val_data, self._train_config(seed=seed, name=name, desc=desc, **overrides))
        model.eval()
        return result

    @torch.inference_mode()
    def _batched(self, fn: Callable[[torch.Tensor], torch.Tensor], Z: torch.Tensor,
                 block: int = INFERENCE_BLOCK) -> torch.Tensor:
        """``fn`` over ``Z`` in blocks of rows, concatenated (no gradients)."""
        parts = [fn(Z[s:s + block]) for s in range(0, len(Z), block)]
        return torch.cat(parts) if parts else fn(Z)

    def fit_to(self, X: Any, out: str | os.PathLike[str], *, resume: bool = False,
               inputs: tuple[str | os.PathLike[str], ...] = (), **fit_params: Any) -> FittedModel:
        """``fit(X, **fit_params)`` then ``save(out)``, with per-epoch checkpoints in ``OUT.ckpt/`` so that
        an interrupted run continues with ``resume=True`` and ends with the same model.
        ``out`` is checked before training (it may replace only an aekit model of the same
        kind, never one of ``inputs``); checkpoints are removed once the model is saved."""
        check_model_output(out, self._kind, inputs=inputs)
        checkpoints = checkpoint_dir_for(out)
        lock = training_lock(checkpoints) if is_main_process() else nullcontext()
        with lock:
            self.set_params(checkpoint_dir=checkpoints, resume=resume)
            try:
                self.fit(X, **fit_params)
            except BaseException:
                if is_main_process():
                    remove_checkpoint_dir(checkpoints, only_if_empty=True)  # nothing to resume: leave no trace
                raise
            finally:
                self.set_params(checkpoint_dir=None, resume=False)
            self.save(out)
        if is_main_process():
            remove_checkpoint_dir(checkpoints)
        return self

    # ------------------------------------------------------------------ state
    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _networks(self) -> dict[str, AutoEncoder]:
        """The fitted networks by tensor-group name."""
        return {"model": self.model_}

    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        """What the estimator learned beyond its networks: JSON state and tensor groups."""
        return {}, {}

    def _set_state(self, networks: dict[str, AutoEncoder], state: dict[str, Any], groups: TensorGroups) -> None:
        """Inverse of ``_networks`` + ``_state`` on a freshly constructed estimator."""
        self.model_ = networks["model"]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model directory (config.json + model.safetensors), atomically."""
        self._check_fitted()
        state, extra = self._state()
        networks = self._networks()
        params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.get_params().items()}
        params.update({k: v for k, v in RUN_TIME_PARAMS.items() if k in params})
        config = {"params": params, "adapter": self.adapter_.to_dict(),
                  "networks": {name: net.spec() for name, net in networks.items()}, "state": state}
        groups = {name: dict(net.state_dict()) for name, net in networks.items()}
        overlap = set(groups) & set(extra)
        if overlap:
            raise ValueError(f"tensor groups {sorted(overlap)} are both networks and extra state")
        # under torchrun only rank 0 writes (save_model): the others need not build the files
        return save_model(path, self._kind, config, {**groups, **extra}, self._files() if is_main_process() else {})

    def _files(self) -> dict[str, bytes]:
        """More files of the model directory by name (``io.EXTRA_FILES``); none by default."""
        return {}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FittedModel:
        """Read a model directory written by ``save`` (never unpickles anything)."""
        config, groups = load_model(path, (cls._kind,))
        return cls._from_config(config, groups, path)

    @classmethod
    def load_bundled(cls, path: Path, train_command: str) -> FittedModel:
        """The default model shipped inside the package at ``path``; an install without it
        says to pass ``--model`` and how to train one (``train_command``)."""
        if not (path / "config.json").is_file():
            raise ModelFileError(f"this install has no bundled model at {path.name}/: pass --model "
                                 f"(see '{train_command}')")
        return cls.load(path)

    @classmethod
    def _from_config(cls, config: dict[str, Any], groups: TensorGroups, path: str | os.PathLike[str]) -> FittedModel:
        """Rebuild from a verified model directory; every setting is validated, so a bad
        config is a one-line ModelFileError, never a traceback or a silently wrong model."""
        try:
            params = config["params"]
            if not isinstance(params, dict):
                raise TypeError("params is not an object")
            est = cls(**{**cls._older_defaults, **params})
            est._check_params()
            est.adapter_ = adapter_from_dict(config["adapter"])
            networks = {name: load_network(spec, groups.get(name, {}), cls._network_classes.get(name, cls._network_class))
                        for name, spec in config["networks"].items()}
            est._set_state(networks, config["state"], groups)
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as exc:
            detail = (str(exc).splitlines() or [""])[0][:200]
            raise ModelFileError(f"{path}: config.json is invalid ({type(exc).__name__}: {detail})") from None
        return est


def load_network(spec: dict[str, Any], tensors: dict[str, torch.Tensor], network_class: type = AutoEncoder) -> Any:
    """A network (an ``AutoEncoder`` unless ``network_class`` says otherwise: anything with
    ``spec()`` / ``from_spec``) from its spec and weights. The spec is first built on the meta device
    (no memory) and its parameter shapes compared with the weights, so a spec that asks for
    a huge network, or weights of another shape, fail before anything is allocated."""
    with torch.device("meta"):
        skeleton = network_class.from_spec(spec)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found:
        diff = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
        raise ModelFileError(f"the weights do not match the network in config.json (e.g. {diff[0]!r})")
    model = network_class.from_spec(spec)
    model.load_state_dict(tensors)
    model.eval()
    return model

