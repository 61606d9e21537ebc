"""A neural vocoder fitted to recordings: log-mel frames back to a waveform.

Griffin-Lim guesses a phase by iterating between the spectrogram and the waveform and never
fully agrees with either; here a small network (``nn.vocoder.ISTFTVocoder``) learns, from
real speech, the magnitude and phase of every STFT bin from the log-mel frames alone. It is
not a decoder of the voice autoencoder: any log-mel of the same analysis settings
(``AudioSpec``) can go through it, a converted one or a real one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...checks import check_float, check_int
from ...data.adapters import AudioAdapter
from ...data.audio import AudioSpec, log_mel
from ...errors import DataError
from ...estimator import FittedModel, TensorGroups, check_train_rows
from ...nn.vocoder import ISTFTVocoder

DEFAULT_VOCODER = Path(__file__).with_name("default_vocoder")  # made by scripts/make_default_vocoder.py


class NeuralVocoder(FittedModel):
    """Log-mel spectrogram to waveform, learned from recordings (no labels, no transcripts).

    ``fit(X)``: recordings (a folder searched recursively, a CSV with a ``path`` column, a list
    of files or of waveforms); each gives ``segments_per_utterance`` random crops of
    ``segment_frames`` frames (16 ms each at 16 kHz), the crop's log-mel the input and its
    samples the target. ``wave(logmel)``: the waveform of a log-mel spectrogram
    ``[n_mels, frames]`` (natural log of mel power, as ``data.audio.log_mel``).
    ``epochs``: 24 (on the bundled vocoder's 660 recordings, 12 epochs kept 0.704 of a
    recognizer's words on real speech and 24 kept 0.778, where Griffin-Lim keeps 0.756).
    """

    _kind = "voice.NeuralVocoder"
    _network_class = ISTFTVocoder
    _min_rows = 2

    def __init__(self, *, dim: int = 192, blocks: int = 6, segment_frames: int = 48, segments_per_utterance: int = 16,
                 epochs: int = 24, batch_size: int = 16, lr: float = 1e-3, lr_decay: float = 0.05, patience: int = 4,
                 validation_fraction: float = 0.1, sample_rate: int = 16_000, random_state: int = 0,
                 verbose: int = 0, checkpoint_dir: str | None = None, resume: bool = False) -> None:
        self.dim = dim
        self.blocks = blocks
        self.segment_frames = segment_frames
        self.segments_per_utterance = segments_per_utterance
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.sample_rate = sample_rate
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        for name, low, high in (("dim", 8, 2048), ("blocks", 1, 64), ("segment_frames", 8, 4096),
                                ("segments_per_utterance", 1, 1000)):
            check_int(getattr(self, name), name, low, high)
        check_float(self.lr_decay, "lr_decay", 0, 1)
        AudioSpec(sample_rate=self.sample_rate)

    def fit(self, X: Any, y: Any = None) -> NeuralVocoder:
        """Learn to turn the log-mel frames of the recordings in ``X`` back into their samples."""
        self._check_params()
        spec = AudioSpec(sample_rate=self.sample_rate)
        self.adapter_ = AudioAdapter(spec)
        waves = [self._padded(w) for w in self.adapter_.waves(X)]
        check_train_rows(len(waves), self._min_rows, "recordings")
        mels = [log_mel(w, spec) for w in waves]
        self.adapter_.fit_normalizer(mels)
        mels = [self.adapter_.normalizer.transform(m) for m in mels]  # each utterance once, not each crop
        train_idx, val_idx = self._split(len(waves))
        rng = np.random.default_rng(self.random_state)
        train = self._crops([waves[i] for i in train_idx], [mels[i] for i in train_idx], rng)
        val = self._crops([waves[i] for i in val_idx], [mels[i] for i in val_idx], rng) if len(val_idx) else None
        torch.manual_seed(self.random_state)
        model = ISTFTVocoder(spec.n_mels, spec.n_fft, spec.hop_length, spec.sample_rate, spec.fmin, spec.fmax,
                             self.dim, self.blocks)
        result = self._train(model, train, val, seed=self.random_state, name="model", desc="neural vocoder")
        self.training_history_ = result.history
        self.notices_: list[str] = list(self.adapter_.notices_)
        self.model_ = model
        return self

    def _padded(self, wave: np.ndarray) -> np.ndarray:
        """``wave`` with trailing silence up to one crop (a spoken digit is shorter than one)."""
        need = self.segment_frames * self.adapter_.spec.hop_length
        return np.pad(wave, (0, need - len(wave))) if len(wave) < need else wave

    def _crops(self, waves: list[np.ndarray], mels: list[np.ndarray],
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crops of normalised log-mel ``mels``: ``[N, n_mels, F]``, and the samples
        those frames are centred on, ``[N, (F - 1) * hop]``."""
        frames, hop = self.segment_frames, self.adapter_.spec.hop_length
        inputs, targets = [], []
        for wave, mel in zip(waves, mels, strict=True):
            last = min(mel.shape[1] - frames, (len(wave) - (frames - 1) * hop) // hop)
            for start in rng.integers(0, last + 1, size=self.segments_per_utterance):
                inputs.append(mel[:, start:start + frames])
                targets.append(wave[start * hop:(start + frames - 1) * hop])
        return torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(targets))

    @torch.inference_mode()
    def wave(self, logmel: np.ndarray, length: int | None = None) -> np.ndarray:
        """The waveform ``[length]`` (default ``(frames - 1) * hop_length``) of the log-mel
        spectrogram ``logmel [n_mels, frames]``, in [-1, 1]."""
        self._check_fitted()
        spec = self.adapter_.spec
        logmel = np.asarray(logmel, dtype=np.float32)
        if logmel.ndim != 2 or logmel.shape[0] != spec.n_mels or logmel.shape[1] < 2:
            raise DataError(f"a log-mel spectrogram must be [{spec.n_mels}, frames >= 2], got {list(logmel.shape)}")
        if not np.isfinite(logmel).all():
            raise DataError("the log-mel spectrogram has NaN or infinite values")
        if length is not None:
            check_int(length, "length", 1, 1 << 31)
        mel = torch.from_numpy(self.adapter_.normalizer.transform(logmel)).unsqueeze(0)
        return np.clip(self.model_(mel, length=length)[0].numpy(), -1.0, 1.0)

    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        return {"epochs_run": len(getattr(self, "training_history_", []))}, {}

    def _set_state(self, networks: dict[str, Any], state: dict[str, Any], groups: TensorGroups) -> None:
        self.model_ = networks["model"]
        self.training_history_, self.notices_ = [], []


def default_vocoder() -> NeuralVocoder:
    """The bundled vocoder (VCC2016 and FSDD speech; ``scripts/make_default_vocoder.py``)."""
    return NeuralVocoder.load_bundled(DEFAULT_VOCODER, "aekit voice train-vocoder")
