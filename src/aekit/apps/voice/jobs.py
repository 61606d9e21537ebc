"""What the voice commands do, callable from Python: train from a corpus, convert files."""
from __future__ import annotations

import os
from pathlib import Path

from ...data.audio import write_wav
from ... import marks
from ...io import check_output_file
from .converter import VoiceConverter, default_model
from .vocoder import NeuralVocoder


def train_corpus(data: str | os.PathLike[str], out: str | os.PathLike[str], *, resume: bool = False,
                 **params: object) -> VoiceConverter:
    """Train on every recording under ``data`` (a folder of speaker subfolders, any folder of
    audio files, or a CSV with a ``path`` column) and save the model at ``out``."""
    return VoiceConverter(**params).fit_to(data, out, resume=resume, inputs=[data])


def train_vocoder(data: str | os.PathLike[str], out: str | os.PathLike[str], *, resume: bool = False,
                  **params: object) -> NeuralVocoder:
    """Train a neural vocoder on every recording under ``data`` and save it at ``out``."""
    return NeuralVocoder(**params).fit_to(data, out, resume=resume, inputs=[data])


def convert_files(source: str | os.PathLike[str], target: str | os.PathLike[str], out: str | os.PathLike[str],
                  model: str | os.PathLike[str] | None = None, *,
                  adapt_steps: int | None = None, vocoder: str | None = None) -> tuple[Path, list[str]]:
    """Write ``source`` spoken in ``target``'s voice to the WAV file ``out`` (with ``model``,
    or the bundled default; ``adapt_steps`` and ``vocoder`` override the model's); the
    notices (resampled, mixed down, clipped) are returned, one line each."""
    out = check_output_file(out, marks.CONVERTED_SPEECH, inputs=[source, target], suffixes=(".wav",))
    vc = VoiceConverter.load(model) if model is not None else default_model()
    if adapt_steps is not None:
        vc.adapt_steps = adapt_steps
    if vocoder is not None:
        vc.set_params(vocoder=vocoder)
    wave = vc.convert(source, target)
    return write_wav(out, wave, vc.sample_rate), vc.notices_
