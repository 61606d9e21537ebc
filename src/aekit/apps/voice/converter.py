"""One-shot voice conversion with a split sequence autoencoder (AdaIN-VC).

Training is plain self-reconstruction of log-mel segments: the content encoder's instance
normalisation and narrow code leave the voice to the style vector, so no speaker labels and
no parallel sentences are needed. Each training crop is frequency-warped by a random factor
(``warp``, vocal tract length perturbation), so a few recorded speakers become a continuum of
voices. The content encoder sees the same frames warped by an independent factor
(``content_warp``, information perturbation as in NANSY and SpeechSplit 2), while the style
encoder and the loss see the crop itself: what the second warp changes (the vocal tract's
length, the pitch's place in the spectrum) can only reach the output through the style
vector, so less of the source's voice leaks through the content code.
``convert(source, target)`` keeps the content frames of ``source`` and takes the voice from
one utterance of ``target``, who may never have been heard in training: the style encoder's
guess, then ``adapt_steps`` steps that fit the decoder's AdaIN parameters to
rebuild that one utterance (the weights stay as trained). A neural vocoder (``vocoder.py``)
turns the frames back into a waveform; Griffin-Lim where none fits the analysis settings.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...checks import check_float, check_int
from ...errors import ParameterError
from ...data.adapters import AudioAdapter
from ...data.audio import AudioSpec, load_wave, log_mel, mel_to_wave, warp_mel
from ...estimator import FittedModel, TensorGroups, check_train_rows
from ...nn.sequence import SplitSequenceAutoEncoder
from .vocoder import DEFAULT_VOCODER, NeuralVocoder

Recording = str | os.PathLike[str] | np.ndarray
DEFAULT_MODEL = Path(__file__).with_name("default_model")  # made by scripts/make_default_voice.py
FULL_FIT_FRAMES = 128  # a target of 2 s or more gets all adapt_steps; a shorter one fewer


class VoiceConverter(FittedModel):
    """Voice conversion without parallel data.

    ``fit(X)``: recordings (a folder searched recursively, a CSV with a ``path`` column, a
    list of files or of 16 kHz waveforms); speaker labels are not needed. Each recording
    gives ``segments_per_utterance`` random crops of ``segment_frames`` frames (16 ms each),
    each warped in frequency by a factor in [1/(1+warp), 1+warp]; the content encoder gets
    the same frames warped by an independent factor in [1/(1+content_warp), 1+content_warp]
    (0: the crop itself).
    ``convert(source, target)``: the waveform of ``source`` spoken in ``target``'s voice; the
    voice is fitted in ``adapt_steps`` Adam steps (rate ``adapt_lr``; fewer for a target
    under 2 s) on at most ``adapt_frames`` frames of the target (0 steps: the style encoder
    alone).
    ``codebook_size > 0`` quantizes the content code into discrete units (``units``).
    ``vocoder``: ``"auto"`` (the bundled neural vocoder where its analysis settings match
    the model's, else Griffin-Lim), ``"griffin-lim"``, or a directory from ``NeuralVocoder.save``.
    """

    _kind = "voice.VoiceConverter"
    _network_class = SplitSequenceAutoEncoder
    _min_rows = 2

    def __init__(self, *, hidden: int = 192, code_channels: int = 16, style_size: int = 64, layers: int = 3,
                 codebook_size: int = 0, segment_frames: int = 128, segments_per_utterance: int = 4,
                 warp: float = 0.2, content_warp: float = 0.2, adapt_steps: int = 10, adapt_lr: float = 0.05,
                 adapt_frames: int = 512,
                 epochs: int = 40, batch_size: int = 32,
                 lr: float = 1e-3, patience: int = 8, validation_fraction: float = 0.1, sample_rate: int = 16_000,
                 griffin_lim_iters: int = 32, vocoder: str = "auto", random_state: int = 0, verbose: int = 0,
                 checkpoint_dir: str | None = None, resume: bool = False) -> None:
        self.hidden = hidden
        self.code_channels = code_channels
        self.style_size = style_size
        self.layers = layers
        self.codebook_size = codebook_size
        self.segment_frames = segment_frames
        self.segments_per_utterance = segments_per_utterance
        self.warp = warp
        self.content_warp = content_warp
        self.adapt_steps = adapt_steps
        self.adapt_lr = adapt_lr
        self.adapt_frames = adapt_frames
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.sample_rate = sample_rate
        self.griffin_lim_iters = griffin_lim_iters
        self.vocoder = vocoder
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        for name, low, high in (("hidden", 1, 4096), ("code_channels", 1, 512), ("style_size", 1, 4096),
                                ("layers", 1, 32), ("segment_frames", 8, 4096), ("segments_per_utterance", 1, 1000),
                                ("griffin_lim_iters", 1, 1000), ("codebook_size", 0, 65536),
                                ("adapt_steps", 0, 10_000), ("adapt_frames", 8, 1 << 20)):
            check_int(getattr(self, name), name, low, high)
        if self.codebook_size == 1:
            raise ParameterError("codebook_size must be 0 (a continuous content code) or at least 2")
        check_float(self.warp, "warp", 0, 1)
        check_float(self.content_warp, "content_warp", 0, 1)
        check_float(self.adapt_lr, "adapt_lr", 0, 10, low_open=True)
        if not isinstance(self.vocoder, str) or not self.vocoder:
            raise ParameterError(f"vocoder must be 'auto', 'griffin-lim' or a vocoder directory, got {self.vocoder!r}")
        AudioSpec(sample_rate=self.sample_rate)

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any = None) -> VoiceConverter:
        """Learn to rebuild the recordings in ``X`` (``y`` is ignored: no speaker labels)."""
        self._check_params()
        self.adapter_ = AudioAdapter(AudioSpec(sample_rate=self.sample_rate))
        frames, mask = self.adapter_.fit_transform(X)
        check_train_rows(len(frames), self._min_rows, "recordings")
        train_idx, val_idx = self._split(len(frames))
        rng = np.random.default_rng(self.random_state)
        train = self._segments(frames[train_idx], mask[train_idx], rng)
        val = self._segments(frames[val_idx], mask[val_idx], rng) if len(val_idx) else None
        torch.manual_seed(self.random_state)
        model = SplitSequenceAutoEncoder.build(self.adapter_.spec.n_mels, self.hidden, self.code_channels,
                                               self.style_size, self.layers, self.codebook_size)
        result = self._train(model, train, val, seed=self.random_state, name="model", desc="voice autoencoder")
        self.training_history_ = result.history
        self.notices_: list[str] = list(self.adapter_.notices_)
        self.model_ = model
        return self

    def _segments(self, frames: torch.Tensor, mask: torch.Tensor,
                  rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        """Random crops of ``segment_frames`` frames (shorter recordings whole, padded, masked),
        their masks, and (``content_warp > 0``) the same frames warped by an independent factor for
        the content encoder."""
        length = self.segment_frames

        def padded(piece: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(piece.shape[0], length)
            out[:, :piece.shape[1]] = piece
            return out

        crops, masks, perturbed = [], [], []
        for x, m in zip(frames, mask, strict=True):
            n = int(m.sum())
            for _ in range(self.segments_per_utterance if n > length else 1):
                start = int(rng.integers(0, max(n - length, 0) + 1))
                original = x[:, start:min(start + length, n)]
                crops.append(padded(self._warped(original, self.warp, rng)))
                masks.append(torch.arange(length) < original.shape[1])
                if self.content_warp:
                    perturbed.append(padded(self._warped(original, self.content_warp, rng)))
        found = (torch.stack(crops), torch.stack(masks))
        return (*found, torch.stack(perturbed)) if perturbed else found

    def _warped(self, piece: torch.Tensor, warp: float, rng: np.random.Generator) -> torch.Tensor:
        """``piece`` with its frequencies scaled by a random factor in [1/(1+warp), 1+warp]
        (log-uniform): a new pseudo-speaker for the style encoder to place, or (``content_warp``)
        another vocal tract for the content encoder to ignore."""
        if not warp:
            return piece
        factor = float(np.exp(rng.uniform(-np.log1p(warp), np.log1p(warp))))
        norm = self.adapter_.normalizer
        warped = warp_mel(norm.inverse(piece.numpy()), factor, self.adapter_.spec)
        return torch.from_numpy(norm.transform(warped))

    # ------------------------------------------------------------------ conversion
    def _frames(self, recording: Recording, role: str) -> tuple[torch.Tensor, int]:
        """Normalised frames ``[1, n_mels, T]`` of one recording, and its length in samples.
        What reading changed (resampling, mixing down) is added to ``notices_``."""
        self._check_fitted()
        spec = self.adapter_.spec
        wave = load_wave(recording, spec, self.notices_, role)
        mel = self.adapter_.normalizer.transform(log_mel(wave, spec))
        return torch.from_numpy(mel).unsqueeze(0), len(wave)

    @torch.inference_mode()
    def _converted_mel(self, source: torch.Tensor, target: torch.Tensor) -> np.ndarray:
        # a short target gets proportionally fewer steps: fitted to a few frames, a voice also
        # learns their sounds (a 0.4 s spoken digit lost its content to 10 steps)
        steps = round(self.adapt_steps * min(1.0, target.shape[2] / FULL_FIT_FRAMES))
        voice = self.model_.voice(target, steps, self.adapt_lr, self.adapt_frames)
        return self.adapter_.normalizer.inverse(self.model_.speak(source, voice)[0].numpy())

    def convert_frames(self, source: Recording, target: Recording) -> np.ndarray:
        """Log-mel frames ``[n_mels, T_source]`` of ``source`` in ``target``'s voice."""
        self.notices_: list[str] = []
        return self._converted_mel(self._frames(source, "source")[0], self._frames(target, "target")[0])

    def convert(self, source: Recording, target: Recording) -> np.ndarray:
        """The waveform of ``source`` spoken in the voice of ``target`` (one utterance of the
        target speaker is enough), at ``sample_rate``, exactly as long as ``source``."""
        self.notices_ = []
        src, n_samples = self._frames(source, "source")
        mel = self._converted_mel(src, self._frames(target, "target")[0])
        return self.vocode(mel, n_samples)

    def vocode(self, logmel: np.ndarray, length: int | None = None) -> np.ndarray:
        """The waveform of log-mel frames ``[n_mels, T]`` through the model's ``vocoder``."""
        self._check_fitted()
        vocoder = self._loaded_vocoder()
        if vocoder is None:
            return mel_to_wave(logmel, self.adapter_.spec, n_iter=self.griffin_lim_iters, length=length)
        return vocoder.wave(logmel, length)

    def _loaded_vocoder(self) -> NeuralVocoder | None:
        """The neural vocoder ``vocoder`` names (loaded once), or None for Griffin-Lim."""
        choice = str(self.vocoder)
        if choice == "griffin-lim":
            return None
        cached = getattr(self, "_vocoder_cache", None)
        if cached is not None and cached[0] == choice:
            return cached[1]
        spec = self.adapter_.spec
        if choice == "auto":
            found = NeuralVocoder.load(DEFAULT_VOCODER) if (DEFAULT_VOCODER / "config.json").is_file() else None
            if found is not None and found.adapter_.spec != spec:
                found = None
        else:
            found = NeuralVocoder.load(choice)
            if found.adapter_.spec != spec:
                raise ParameterError(f"the vocoder at {choice} was trained on {found.adapter_.describe()}, "
                                     f"the voice model on {self.adapter_.describe()}: they must match")
        self._vocoder_cache = (choice, found)
        return found

    @torch.inference_mode()
    def units(self, recording: Recording) -> np.ndarray:
        """The discrete content units of ``recording``, one per frame (needs ``codebook_size``)."""
        self.notices_ = []
        return self.model_.content.units(self._frames(recording, "source")[0])[0].numpy()

    @torch.inference_mode()
    def reconstruction_error(self, X: Any) -> float:
        """Mean absolute error (normalised log-mel units) of rebuilding the recordings in ``X``."""
        self._check_fitted()
        frames, mask = self.adapter_.transform(X)
        return float(self.model_.loss(frames, 1.0, mask)[0])

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        return {"epochs_run": len(getattr(self, "training_history_", []))}, {}

    def _set_state(self, networks: dict[str, Any], state: dict[str, Any], groups: TensorGroups) -> None:
        self.model_ = networks["model"]
        self.training_history_, self.notices_ = [], []


def default_model() -> VoiceConverter:
    """The bundled model (VCC2016, FSDD and 36 synthetic voices; ``scripts/make_default_voice.py``)."""
    return VoiceConverter.load_bundled(DEFAULT_MODEL, "aekit voice train")
