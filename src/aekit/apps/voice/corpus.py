"""Synthetic speakers for variety: espeak-ng voices x pitch, saying public-domain sentences.

espeak-ng comes with the ``espeakng-loader`` package (the library and its data, nothing to
download) and is driven through ctypes. ``make_corpus`` writes one subfolder per voice, the
layout ``aekit voice train`` reads. The sentences are Harvard sentences (IEEE 1969, public
domain).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from ... import marks
from ...data.audio import AudioSpec, write_wav
from ...errors import DataError, ParameterError

SENTENCES = (
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
)
VARIANTS = tuple(f"m{i}" for i in range(1, 8)) + tuple(f"f{i}" for i in range(1, 6))
PITCHES = (30, 50, 70)  # espeak's pitch parameter, 0-100
_PITCH, _RATE = 3, 1  # espeak_PARAMETER values
_SYNCHRONOUS, _CHARS_UTF8 = 2, 1
_PHONEME_EVENTS = 0x0001  # espeakINITIALIZE_PHONEME_EVENTS
_EVENT_END, _EVENT_PHONEME = 0, 7  # espeakEVENT_LIST_TERMINATED, espeakEVENT_PHONEME


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h); ``id`` is the union whose ``string`` holds a phoneme name."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8)]


class _Espeak:
    """The espeak-ng library, loaded and initialised once per process."""

    _instance: _Espeak | None = None
    _callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                      ctypes.POINTER(_Event))

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise DataError("the synthetic corpus needs espeak-ng: pip install espeakng-loader") from None
        self.lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        self.rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                                               _PHONEME_EVENTS)
        if self.rate <= 0:
            raise DataError("espeak-ng could not be initialised")
        self.chunks: list[np.ndarray] = []
        self.phonemes: list[tuple[int, str]] = []
        self._callback = self._callback_type(self._collect)  # kept referenced: espeak calls it later
        self.lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> _Espeak:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), n: int, events: ctypes.POINTER(_Event)) -> int:
        if n > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        k = 0
        while events and events[k].type != _EVENT_END:
            if events[k].type == _EVENT_PHONEME:
                self.phonemes.append((events[k].sample, events[k].id.decode("ascii", "replace")))
            k += 1
        return 0

    def say(self, text: str, variant: str, pitch: int, sample_rate: int, rate: int = 160) -> np.ndarray:
        """``text`` spoken by voice ``en+variant`` at ``pitch``: float32 samples, resampled from
        espeak's own ``self.rate`` to ``sample_rate``. ``self.phonemes`` is then the (first
        sample at ``self.rate``, espeak phoneme name) of each phoneme."""
        import librosa

        if self.lib.espeak_SetVoiceByName(f"en+{variant}".encode()) != 0:
            raise ParameterError(f"espeak-ng has no voice variant {variant!r}")
        self.lib.espeak_SetParameter(_PITCH, int(pitch), 0)
        self.lib.espeak_SetParameter(_RATE, int(rate), 0)
        self.chunks, self.phonemes = [], []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self.lib.espeak_Synchronize()
        wave = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        wave = (wave.astype(np.float32) / 32768.0).clip(-1, 1)
        return librosa.resample(wave, orig_sr=self.rate, target_sr=sample_rate).astype(np.float32)


def phoneme_frames(text: str, variant: str, pitch: int, spec: AudioSpec) -> tuple[np.ndarray, list[str]]:
    """``text`` said by one synthetic voice, resampled to ``spec.sample_rate``, and the espeak
    phoneme sounding at each of its analysis frames (frame ``t`` centred on sample
    ``t * hop_length``; pauses are ``"_"``): ground truth for how phonetic a code is."""
    engine = _Espeak.get()
    wave = engine.say(text, variant, pitch, spec.sample_rate)
    starts = np.array([sample for sample, _ in engine.phonemes], dtype=np.float64) * spec.sample_rate / engine.rate
    names = [name.strip().lstrip("',") or "_" for _, name in engine.phonemes]  # stress marks dropped
    centres = np.arange(spec.frames(len(wave))) * spec.hop_length
    which = np.searchsorted(starts, centres, side="right") - 1
    return wave, ["_" if k < 0 else names[k] for k in which]


def voices(n: int) -> list[tuple[str, int]]:
    """The first ``n`` (variant, pitch) voices, pitches interleaved so few voices still differ."""
    every = [(v, p) for p in PITCHES for v in VARIANTS]
    if not 1 <= n <= len(every):
        raise ParameterError(f"voices must be in [1, {len(every)}], got {n}")
    return every[:n]


def make_corpus(out: str | os.PathLike[str], n_voices: int = 24, n_sentences: int = 20,
                sample_rate: int = 16_000) -> list[Path]:
    """Write ``n_voices`` x ``n_sentences`` recordings to ``out/<voice>/<k>.wav`` (a new or
    empty folder); the list of files written."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not an empty folder: choose a new one")
    if not 1 <= n_sentences <= len(SENTENCES):
        raise ParameterError(f"sentences must be in [1, {len(SENTENCES)}], got {n_sentences}")
    engine = _Espeak.get()
    written = []
    for variant, pitch in voices(n_voices):
        folder = out / f"{variant}_p{pitch}"
        folder.mkdir(parents=True, exist_ok=True)
        for k, text in enumerate(SENTENCES[:n_sentences]):
            wave = engine.say(text, variant, pitch, sample_rate)
            written.append(write_wav(folder / f"{k:03d}.wav", wave, sample_rate, marks.SYNTHETIC_SPEECH))
    return written
