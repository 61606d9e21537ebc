"""Data adapters: how one kind of data becomes the tensors a network reads, and back.

One interface for every modality: ``fit_transform(X)`` fits the adapter on training data
and returns a float32 tensor ``[N, *sample_shape]`` (or, for variable-length data, a tuple
whose first tensor is the padded samples and whose others, such as a mask, are indexed with
them: the training loop takes such tuples as they are); ``transform(X)`` applies the fitted
adapter to new data; ``to_dict`` / ``adapter_from_dict`` save and restore the fitted state
as JSON (it lives in the model's config.json). ``describe()`` says what a sample is.

- ``TableAdapter``: CSV/Parquet/DataFrames/2-D arrays through the fitted
  ``TabularPreprocessor`` (robust scaling, one-hot categories, matching columns by name).
- ``ImageAdapter``: image folders, ``.npz`` files, bundled sets, image arrays ``[N, C, H, W]``
  in [0, 1], converted to the training images' channels and size (``ImageSpec``).
- ``ArrayAdapter``: plain numeric arrays ``[N, ...]`` used as they are (shape checked).

- ``AudioAdapter``: recordings (files, folders, a CSV of paths, or waveforms) as normalised
  log-mel frames ``[N, n_mels, T_max]`` with a mask ``[N, T_max]`` (``data.audio``).

- ``TextAdapter``: sentences (a text file, one per line, or a list of strings) as token ids
  ``[N, T_max]`` (int64, ``</s>`` closing each) with a mask, through a fitted ``Tokenizer``
  (``data.text``); lines over ``max_tokens`` are cut, with a notice.
- ``SeriesAdapter``: a time series (a table with an optional time column, or ``[T]`` /
  ``[T, C]``) as channels scaled by their training mean and deviation, ``[T, C]`` (``data.series``).
- ``TokenAdapter``: lines of space-separated tokens as token ids ``[N, T_max]`` (int64, padded)
  with each line's length ``[N]``; the tokens are the line's own, one position each.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..checks import check_choice, check_image_size, check_int
from ..errors import DataError, ModelFileError
from .audio import AudioSpec, MelNormalizer, audio_items, load_wave, log_mel, pad_batch
from .images import ImageSet, ImageSpec, as_image_array, fit_image_spec, images_for, is_image_source
from .preprocess import FLOAT32_MAX, SCALED_LIMIT, TabularPreprocessor
from .tables import as_frame, is_arrow_table, refuse_sparse
from .text import EOS, PAD, Tokenizer, read_lines
from .adapter_base import DataAdapter, SpanRows
from .series import SeriesAdapter

ADAPTER_CHOICES = ("auto", "table", "image", "array", "audio", "series")


class TableAdapter(DataAdapter):
    """Tables through a fitted ``TabularPreprocessor``; 2-D arrays are taken in the order of
    the training columns."""

    kind = "table"

    def __init__(self, categorical: str | list[str] = "auto", log_columns: list[str] | None = None,
                 impute: str | None = None, scaling: str = "robust", clip: float = SCALED_LIMIT,
                 na_values: list[str] | None = None) -> None:
        self.preprocessor = TabularPreprocessor(categorical, log_columns or [], impute, scaling, clip,
                                                na_values=na_values or [])

    def fit_transform(self, X: Any) -> torch.Tensor:
        df = as_frame(X)
        self.preprocessor.fit(df)
        self._set_shape()
        return torch.from_numpy(self.preprocessor.transform(df))

    def _set_shape(self) -> None:
        self.sample_shape = (len(self.preprocessor.feature_names_out_),)

    def transform(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        pre = self.preprocessor
        if isinstance(X, (pd.DataFrame, str, os.PathLike)) or is_arrow_table(X):
            return torch.from_numpy(pre.transform(as_frame(X)))
        # arrays carry no names: columns are taken in training order
        width = np.shape(X)[-1] if np.ndim(X) == 2 else None
        if width is not None and width != len(pre.columns_):
            raise DataError(f"X has {width} columns, the model was trained on {len(pre.columns_)}")
        if self._array_path(X):
            return torch.from_numpy(pre.transform_array(X))
        return torch.from_numpy(pre.transform(as_frame(X, columns=list(pre.columns_))))

    def transform_by_spans(self, X: Any) -> torch.Tensor | SpanRows:
        """A numeric 2-D array's rows scaled span by span (each row's scaling is its own);
        anything else transformed whole."""
        self._check_fitted()
        if not self._array_path(X) or X.ndim != 2 or X.shape[1] != len(self.preprocessor.numeric_):
            return self.transform(X)  # and its checks of the array's shape
        return SpanRows(X, lambda part: torch.from_numpy(self.preprocessor.transform_array(part)), self.sample_shape)

    def _array_path(self, X: Any) -> bool:
        """Whether ``X`` is a numeric array that ``transform_array`` takes (no pandas)."""
        return not self.preprocessor.categories_ and isinstance(X, np.ndarray) and X.dtype.kind in "fiub"

    def describe(self) -> str:
        n = len(self.preprocessor.columns_)
        return f"{n} column{'' if n == 1 else 's'}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **self.preprocessor.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableAdapter:
        adapter = cls()
        adapter.preprocessor = TabularPreprocessor.from_dict(d)
        adapter._set_shape()
        return adapter


class ImageAdapter(DataAdapter):
    """Images converted to the training images' channels and size (or ``image_size``)."""

    kind = "image"

    def __init__(self, image_size: tuple[int, int] | None = None) -> None:
        self.image_size = check_image_size(image_size)

    def fit_transform(self, X: Any) -> torch.Tensor:
        images, spec = fit_image_spec(as_image_array(X, self.image_size), self.image_size)
        self._set_spec(spec)
        return torch.from_numpy(images)

    def _set_spec(self, spec: ImageSpec) -> None:
        self.spec = spec
        self.sample_shape = (spec.channels, spec.height, spec.width)

    def transform(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        return torch.from_numpy(images_for(X, self.spec))

    def describe(self) -> str:
        return f"images of {self.spec.channels}x{self.spec.height}x{self.spec.width}"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, **self.spec.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImageAdapter:
        adapter = cls()
        adapter._set_spec(ImageSpec.from_dict(d))
        return adapter


class ArrayAdapter(DataAdapter):
    """Numeric arrays ``[N, ...]`` used as they are: finite float32, the training shape."""

    kind = "array"

    def fit_transform(self, X: Any) -> torch.Tensor:
        x = _numeric_array(X)
        self.sample_shape = tuple(x.shape[1:])
        return torch.from_numpy(x)

    def transform(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        x = _numeric_array(X)
        if tuple(x.shape[1:]) != self.sample_shape:
            raise DataError(f"samples of shape {tuple(x.shape[1:])} given to a model fitted on {self.sample_shape}")
        return torch.from_numpy(x)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "shape": list(self.sample_shape)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArrayAdapter:
        adapter = cls()
        adapter.sample_shape = tuple(check_int(v, "sample shape", 1, 1 << 24) for v in d["shape"])
        return adapter


class AudioAdapter(DataAdapter):
    """Recordings -> per-bin normalised log-mel frames and a mask (see ``data.audio``).

    ``X``: an audio file, a folder (searched recursively), a CSV with a ``path`` column, a
    list of such paths, or a list of 1-D waveforms at ``spec.sample_rate``. What reading
    changed (stereo, sample rate, clipping) is kept in ``notices_``, one line each."""

    kind = "audio"

    def __init__(self, spec: AudioSpec | None = None) -> None:
        self.spec = spec or AudioSpec()
        self.notices_: list[str] = []

    def fit_transform(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        mels = self.mels(X)
        self.fit_normalizer(mels)
        return pad_batch([self.normalizer.transform(m) for m in mels])

    def fit_normalizer(self, mels: list[np.ndarray]) -> AudioAdapter:
        """Fit the per-bin normalisation on log-mel spectrograms already read."""
        self.normalizer = MelNormalizer().fit(mels)
        self.sample_shape = (self.spec.n_mels,)
        return self

    def transform(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        return pad_batch([self.normalizer.transform(m) for m in self.mels(X)])

    def mels(self, X: Any) -> list[np.ndarray]:
        """Log-mel spectrograms (not normalised) of every recording in ``X``."""
        return [log_mel(w, self.spec) for w in self.waves(X)]

    def waves(self, X: Any) -> list[np.ndarray]:
        """Every recording in ``X`` as a checked mono waveform at ``spec.sample_rate``."""
        self.notices_ = []
        items = audio_items(X, self.notices_)
        return [load_wave(item, self.spec, self.notices_) for item in items]

    def describe(self) -> str:
        return f"recordings at {self.spec.sample_rate} Hz as {self.spec.n_mels} log-mel bands"

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"type": self.kind, "spec": self.spec.to_dict(), "normalizer": self.normalizer.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioAdapter:
        adapter = cls(AudioSpec.from_dict(d.get("spec")))
        adapter.normalizer = MelNormalizer.from_dict(d.get("normalizer"), adapter.spec.n_mels)
        adapter.sample_shape = (adapter.spec.n_mels,)
        return adapter


class TextAdapter(DataAdapter):
    """Sentences -> token ids and a mask (see the module docstring); ``notices_`` says what
    reading changed (lines cut to ``max_tokens``)."""

    kind = "text"

    def __init__(self, tokenizer: Tokenizer | None = None, max_tokens: int = 64) -> None:
        self.tokenizer = tokenizer if tokenizer is not None else Tokenizer()
        self.max_tokens = check_int(max_tokens, "max_tokens", 1, 1 << 16)
        self.notices_: list[str] = []

    @staticmethod
    def sentences(X: Any) -> list[str]:
        if isinstance(X, (str, os.PathLike)):
            return read_lines(X)
        if isinstance(X, pd.Series):
            X = X.tolist()
        lines = list(X)
        if not lines:
            raise DataError("no sentences")
        bad = next((type(x).__name__ for x in lines if not isinstance(x, str)), None)
        if bad is not None:
            raise DataError(f"expected sentences as strings, got a {bad}")
        return lines

    def fit_transform(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        lines = self.sentences(X)
        self.tokenizer.fit(lines)
        self.sample_shape = (len(self.tokenizer),)
        return self._ids(lines)

    def transform(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        return self._ids(self.sentences(X))

    def _ids(self, lines: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        eos, pad = self.tokenizer.index_[EOS], self.tokenizer.index_[PAD]
        rows, cut = [], 0
        for line in lines:
            ids = self.tokenizer.encode(line)
            if len(ids) > self.max_tokens:
                ids, cut = ids[:self.max_tokens], cut + 1
            rows.append(ids + [eos])
        self.notices_ = [f"{cut} of {len(lines)} sentences cut to {self.max_tokens} tokens"] if cut else []
        ids = _padded(rows, pad)
        return ids, ids != pad

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Sentences of id rows ``[N, T]`` (each up to its ``</s>``)."""
        self._check_fitted()
        return [self.tokenizer.decode(row.tolist()) for row in ids]

    def describe(self) -> str:
        return f"sentences as token ids (vocabulary {self.sample_shape[0]}, at most {self.max_tokens} tokens)"

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"type": self.kind, "max_tokens": self.max_tokens, "tokenizer": self.tokenizer.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TextAdapter:
        adapter = cls(Tokenizer.from_dict(d.get("tokenizer")), d.get("max_tokens", 64))
        adapter.sample_shape = (len(adapter.tokenizer),)
        return adapter


class TokenAdapter(DataAdapter):
    """Lines of space-separated tokens -> ids and lengths (see the module docstring)."""

    kind = "tokens"

    def __init__(self, tokenizer: Tokenizer | None = None) -> None:
        self.tokenizer = tokenizer if tokenizer is not None else Tokenizer(lowercase=False, spaces=True)

    def fit_transform(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        lines = TextAdapter.sentences(X)
        self.tokenizer.fit(lines)
        self.sample_shape = (len(self.tokenizer),)
        return self._ids(lines)

    def transform(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_fitted()
        return self._ids(TextAdapter.sentences(X))

    def _ids(self, lines: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.tokenizer.encode(line) for line in lines]
        return _padded(rows, self.tokenizer.index_[PAD]), torch.tensor([len(r) for r in rows], dtype=torch.long)

    def describe(self) -> str:
        return f"lines of space-separated tokens (vocabulary {self.sample_shape[0]})"

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"type": self.kind, "tokenizer": self.tokenizer.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenAdapter:
        adapter = cls(Tokenizer.from_dict(d.get("tokenizer")))
        adapter.sample_shape = (len(adapter.tokenizer),)
        return adapter


def _padded(rows: list[list[int]], pad: int) -> torch.Tensor:
    """Id rows as one int64 tensor ``[N, longest]``, padded with ``pad``."""
    ids = torch.full((len(rows), max(map(len, rows), default=0)), pad, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
    return ids


def _numeric_array(X: Any) -> np.ndarray:
    if isinstance(X, pd.DataFrame):
        X = X.to_numpy()
    x = np.asarray(X)
    if x.dtype.kind not in "biuf":
        raise DataError(f"expected numbers, got an array of {x.dtype}")
    if x.ndim < 2:
        raise DataError(f"expected samples [N, ...], got an array of shape {x.shape}")
    if x.dtype.kind == "f" and np.abs(x[np.isfinite(x)]).max(initial=0) > FLOAT32_MAX:
        raise DataError("the samples hold values beyond the float32 range (|x| > 3.4e38)")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise DataError("the samples hold NaN or inf")
    return x


ADAPTERS: dict[str, type[DataAdapter]] = {a.kind: a for a in (TableAdapter, ImageAdapter, ArrayAdapter, AudioAdapter,
                                                                TextAdapter, TokenAdapter, SeriesAdapter)}


def infer_adapter_kind(X: Any, arrays: str = "table") -> str:
    """The adapter for ``X``: images for image sources and 3-/4-D arrays, tables for
    DataFrames and table files, ``arrays`` (``"table"`` or ``"array"``) for 2-D arrays."""
    if isinstance(X, ImageSet) or is_image_source(X):
        return "image"
    if isinstance(X, (pd.DataFrame, pd.Series, str, os.PathLike)) or is_arrow_table(X):  # a Series: as_frame says how
        return "table"
    refuse_sparse(X)
    ndim = np.ndim(X)
    if ndim == 1:
        raise DataError(f"expected a 2-D table (rows x features), got a 1-D array of {np.shape(X)[0]} values; "
                        "use X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one row")
    if ndim in (3, 4):
        return "image"
    if ndim == 2:
        return arrays
    raise DataError(f"expected a table (rows x features) or images [N, C, H, W], got an array of {ndim} dimensions")


def make_adapter(kind: str, options: dict[str, Any]) -> DataAdapter:
    """A new adapter of ``kind`` with the options it knows (others are ignored)."""
    check_choice(kind, "data", tuple(ADAPTERS))
    if kind == "table":
        return TableAdapter(options.get("categorical", "auto"), options.get("log_columns"), options.get("impute"),
                            options.get("scaling", "robust"), options.get("clip", SCALED_LIMIT),
                            options.get("na_values"))
    if kind == "image":
        return ImageAdapter(options.get("image_size"))
    if kind == "audio":
        return AudioAdapter(options.get("audio_spec"))
    if kind == "text":
        return TextAdapter(options.get("tokenizer"), options.get("max_tokens", 64))
    if kind == "tokens":
        return TokenAdapter(options.get("tokenizer"))
    if kind == "series":
        return SeriesAdapter(options.get("time_col"), options.get("id_col"), options.get("series_scaling", "each"),
                             options.get("impute"))
    return ArrayAdapter()


def adapter_from_dict(d: Any) -> DataAdapter:
    """A fitted adapter from its ``to_dict`` form (a model file's ``adapter`` entry)."""
    if not isinstance(d, dict) or d.get("type") not in ADAPTERS:
        raise ModelFileError(f"config.json: unknown data adapter {d.get('type') if isinstance(d, dict) else d!r}")
    return ADAPTERS[d["type"]].from_dict(d)
