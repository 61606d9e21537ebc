"""Voice conversion: the split sequence autoencoder learns, converts to a valid WAV of the
source's length, survives save/load, and the CLI says bad input in one line."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from aekit.apps.voice import VoiceConverter
from aekit.cli import main
from aekit.data.audio import write_wav
from aekit.errors import ModelFileError, ParameterError
from aekit.nn.sequence import SplitSequenceAutoEncoder

from .test_audio import voiced

TINY = dict(hidden=32, code_channels=4, style_size=8, layers=2, segment_frames=32, epochs=12, batch_size=16)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two made-up speakers (low and high voices), six utterances each."""
    root = tmp_path_factory.mktemp("corpus")
    for speaker, f0 in (("low", 110.0), ("high", 220.0)):
        (root / speaker).mkdir()
        for i in range(6):
            write_wav(root / speaker / f"{i}.wav", voiced(1.0, f0 * (1 + 0.03 * i), seed=i), 16_000)
    return root


@pytest.fixture(scope="module")
def trained(corpus):
    return VoiceConverter(**TINY).fit(corpus)


@pytest.fixture(scope="module")
def plain(corpus):
    """Trained without the content encoder's own warp."""
    return VoiceConverter(**TINY, content_warp=0.0).fit(corpus)


def test_training_lowers_the_reconstruction_error(corpus, trained, plain):
    untrained = VoiceConverter(**{**TINY, "epochs": 1, "lr": 1e-9}).fit(corpus)
    assert plain.reconstruction_error(corpus) < 0.7 * untrained.reconstruction_error(corpus)
    # the content encoder's warp makes rebuilding harder, and the voice more the style's
    assert trained.reconstruction_error(corpus) < 0.8 * untrained.reconstruction_error(corpus)
    history = [h["train_loss"] for h in trained.training_history_]
    assert history[-1] < history[0]


def test_convert_writes_the_source_length_and_round_trips_through_save(corpus, trained, tmp_path):
    source, target = corpus / "low" / "0.wav", corpus / "high" / "1.wav"
    wave = trained.convert(source, target)
    assert wave.dtype == np.float32 and len(wave) == 16_000 and np.abs(wave).max() <= 1.0
    np.testing.assert_array_equal(trained.convert(source, target), wave)  # deterministic, phase included
    loaded = VoiceConverter.load(trained.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.convert_frames(source, target), trained.convert_frames(source, target), atol=1e-5)


def test_the_style_vector_ignores_padding():
    net = SplitSequenceAutoEncoder.build(80, hidden=16, code_channels=4, style_size=8, layers=2).eval()
    x = torch.randn(1, 80, 20)
    padded = torch.cat([x, torch.zeros(1, 80, 12)], dim=2)
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[0, :20] = True
    torch.testing.assert_close(net.style(padded, mask), net.style(x), atol=1e-4, rtol=1e-4)


def test_cli_train_and_convert(corpus, tmp_path, capsys):
    model = tmp_path / "vc"
    assert main(["voice", "train", str(corpus), "--out", str(model), "--epochs", "2", "--segment-frames", "32",
                 "--code-channels", "4", "--content-warp", "0.1", "--quiet"]) == 0
    saved = VoiceConverter.load(model).get_params()
    assert saved["content_warp"] == 0.1 and saved["code_channels"] == 4
    stereo = tmp_path / "target.flac"
    sf.write(stereo, np.stack([voiced(seed=5), voiced(seed=5)], axis=1), 22_050)
    out = tmp_path / "out.wav"
    assert main(["voice", "convert", "--source", str(corpus / "low" / "1.wav"), "--target", str(stereo),
                 "--out", str(out), "--model", str(model)]) == 0
    printed = capsys.readouterr().out
    assert "mixed down" in printed and "resampled from 22050 Hz" in printed and "wrote" in printed
    wave, rate = sf.read(out)
    assert rate == 16_000 and len(wave) == 16_000


@pytest.mark.parametrize("case, message", [
    ("same", "is also an input"),
    ("empty", "is empty"),
    ("nomodel", "does not exist"),
    ("mp3", ".wav"),
])
def test_cli_convert_bad_input_is_one_line(corpus, tmp_path, capsys, trained, case, message):
    model = trained.save(tmp_path / "m")
    source = corpus / "low" / "2.wav"
    target = tmp_path / "empty.wav"
    target.write_bytes(b"") if case == "empty" else write_wav(target, voiced(seed=3), 16_000)
    out = source if case == "same" else tmp_path / ("o.mp3" if case == "mp3" else "o.wav")
    argv = ["voice", "convert", "--source", str(source), "--target", str(target), "--out", str(out),
            "--model", str(tmp_path / "nope") if case == "nomodel" else str(model)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_cli_train_on_a_folder_without_audio_is_one_line(tmp_path, capsys):
    (tmp_path / "speaker").mkdir()
    (tmp_path / "speaker" / "notes.txt").write_text("no audio here")
    (tmp_path / "speaker" / "memo.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    assert main(["voice", "train", str(tmp_path), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no audio files aekit reads" in err and "(.m4a, e.g. memo.m4a)" in err and "\n" not in err


def test_cli_train_names_what_reading_changed_once_per_kind(corpus, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(corpus, data)
    for i in range(2):  # a phone's stereo recordings at 22,050 Hz, and a voice memo libsndfile cannot read
        sf.write(data / "high" / f"phone{i}.flac", np.stack([voiced(seed=7 + i)] * 2, axis=1), 22_050)
    (data / "low" / "memo.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(500))
    assert main(["voice", "train", str(data), "--out", str(tmp_path / "m"), "--epochs", "1",
                 "--segment-frames", "32", "--code-channels", "4", "--quiet"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == ["note: 1 file in a format aekit does not read left out (.m4a, e.g. memo.m4a): convert it "
                     "first, e.g. ffmpeg -i IN.m4a OUT.wav",
                     "note: 2 recordings: 2 channels mixed down to mono (phone0.flac, phone1.flac)",
                     "note: 2 recordings: resampled from 22050 Hz to 16000 Hz (phone0.flac, phone1.flac)"]


def test_make_corpus_writes_distinct_synthetic_voices(tmp_path, capsys):
    from aekit.data.audio import log_mel, read_audio, AudioSpec

    assert main(["voice", "make-corpus", "--out", str(tmp_path / "c"), "--voices", "3", "--sentences", "2"]) == 0
    assert "wrote 6 recordings of 3 voices" in capsys.readouterr().out
    folders = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert folders == ["m1_p30", "m2_p30", "m3_p30"]
    waves = {f: read_audio(tmp_path / "c" / f / "000.wav", 16_000) for f in folders}
    assert all(len(w) > 16_000 for w in waves.values())  # a sentence lasts more than a second
    mels = {f: log_mel(w, AudioSpec()).mean(1) for f, w in waves.items()}
    assert np.abs(mels["m1_p30"] - mels["m3_p30"]).mean() > 0.1  # the voices sound different
    assert main(["voice", "make-corpus", "--out", str(tmp_path / "c")]) == 2  # never written over


def test_one_shot_fit_of_the_target_voice_rebuilds_it_better(corpus, trained):
    x, _ = trained._frames(corpus / "high" / "3.wav", "target")
    net = trained.model_
    with torch.no_grad():
        code = net.content(x)
        guess = (net.decoder.render(code, net.voice(x)) - x).abs().mean()
        fitted = (net.decoder.render(code, net.voice(x, steps=20, lr=0.05)) - x).abs().mean()
    assert fitted < 0.9 * guess
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.inference_mode():  # callable from inference mode; the weights stay as trained
        net.voice(x, steps=3)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_content_warp_makes_the_content_code_ignore_the_vocal_tract(corpus, trained, plain):
    """Trained on frames the content encoder sees warped apart from the target's, its code
    moves less when a recording's frequencies are scaled (the voice must come from the style)."""
    assert trained.content_warp > 0  # the default
    def code_change(vc: VoiceConverter) -> float:
        x = vc._frames(corpus / "low" / "0.wav", "source")[0]
        warped = [vc._warped(x[0], 0.2, np.random.default_rng(s)).unsqueeze(0) for s in range(8)]
        with torch.inference_mode():
            code = vc.model_.content(x)
            return float(np.mean([(vc.model_.content(w) - code).abs().mean() / code.abs().mean() for w in warped]))

    assert code_change(trained) < 0.95 * code_change(plain)


def test_vq_content_code_gives_discrete_units(corpus, trained):
    from aekit.nn.discrete import codebook_health

    vc = VoiceConverter(**{**TINY, "codebook_size": 8, "epochs": 3}).fit(corpus)
    frames, mask = vc.adapter_.transform(corpus)
    assert set(vc.model_.loss(frames, 1.0, mask)[1]) == {"reconstruction", "vq"}
    units = vc.units(corpus / "low" / "0.wav")
    assert units.shape == (vc.adapter_.spec.frames(16_000),) and units.min() >= 0 and units.max() < 8
    health = codebook_health(torch.from_numpy(units), 8)
    assert health["codes_used"] >= 2
    with pytest.raises(ParameterError, match="no codebook"):
        trained.units(corpus / "low" / "0.wav")
    with pytest.raises(ParameterError, match="codebook_size"):
        VoiceConverter(codebook_size=1).fit(corpus)


def test_frequency_warp_moves_the_spectrum():
    from aekit.data.audio import AudioSpec, log_mel, warp_mel

    spec = AudioSpec()
    mel = log_mel(voiced(0.5, 150.0), spec)
    np.testing.assert_allclose(warp_mel(mel, 1.0, spec), mel, atol=1e-5)
    centroid = lambda m: (np.exp(m).mean(1) * np.arange(spec.n_mels)).sum() / np.exp(m).mean(1).sum()  # noqa: E731
    assert centroid(warp_mel(mel, 1.2, spec)) > centroid(mel) > centroid(warp_mel(mel, 1 / 1.2, spec))


def test_espeak_phoneme_labels_cover_every_frame():
    from aekit.apps.voice.corpus import phoneme_frames
    from aekit.data.audio import AudioSpec

    spec = AudioSpec()
    wave, labels = phoneme_frames("Kick the ball.", "m1", 50, spec)
    assert len(labels) == spec.frames(len(wave))
    assert {"k", "I", "D", "b"} <= set(labels) and labels[0] == "_"


def test_bundled_model_converts_without_a_model_flag(corpus, tmp_path, capsys):
    from aekit.apps.voice.converter import DEFAULT_MODEL

    size = sum(f.stat().st_size for f in DEFAULT_MODEL.iterdir())
    assert size < 5e6  # small enough to ship in the package
    out = tmp_path / "out.wav"
    assert main(["voice", "convert", "--source", str(corpus / "low" / "1.wav"), "--target",
                 str(corpus / "high" / "2.wav"), "--out", str(out)]) == 0
    wave, rate = sf.read(out)
    assert rate == 16_000 and len(wave) == 16_000 and np.isfinite(wave).all() and np.abs(wave).max() > 1e-3
    assert main(["voice", "convert", "--source", str(corpus / "low" / "1.wav"), "--target",
                 str(corpus / "high" / "2.wav"), "--out", str(tmp_path / "gl.wav"), "--vocoder", "griffin-lim"]) == 0
    griffin_lim, _ = sf.read(tmp_path / "gl.wav")
    assert len(griffin_lim) == len(wave) and not np.allclose(griffin_lim, wave, atol=1e-3)  # the vocoder was used


def test_bundled_vocoder_round_trip_beats_griffin_lim_on_a_real_recording():
    """A real recording of TF1 (a voice the vocoder never heard) to log-mel and back."""
    from pathlib import Path

    from aekit.apps.voice import default_vocoder
    from aekit.apps.voice.vocoder import DEFAULT_VOCODER
    from aekit.data.audio import AudioSpec, log_mel, log_spectral_distance, mel_to_wave, read_audio

    wave = read_audio(Path(__file__).parents[1] / "docs" / "voice" / "TF1_100122_target_reference.wav", 16_000)
    logmel = log_mel(wave, AudioSpec())
    neural = default_vocoder().wave(logmel, len(wave))
    griffin_lim = mel_to_wave(logmel, AudioSpec(), length=len(wave))
    assert neural.shape == wave.shape and neural.dtype == np.float32
    assert sum(f.stat().st_size for f in DEFAULT_VOCODER.iterdir()) < 5e6  # small enough to ship in the package
    assert log_spectral_distance(neural, wave) < log_spectral_distance(griffin_lim, wave) - 1.0


def test_vocoder_trains_round_trips_through_save_and_refuses_bad_frames(corpus, tmp_path):
    from aekit.apps.voice import NeuralVocoder
    from aekit.data.audio import AudioSpec, log_mel, log_spectral_distance, read_audio
    from aekit.errors import DataError

    small = dict(dim=16, blocks=1, segment_frames=16, segments_per_utterance=4, batch_size=8, lr=3e-3)
    vocoder = NeuralVocoder(epochs=6, **small).fit(corpus)
    untrained = NeuralVocoder(epochs=1, **{**small, "lr": 1e-9}).fit(corpus)
    wave = read_audio(corpus / "low" / "0.wav", 16_000)
    logmel = log_mel(wave, AudioSpec())
    assert log_spectral_distance(vocoder.wave(logmel, len(wave)), wave) \
        < log_spectral_distance(untrained.wave(logmel, len(wave)), wave)
    loaded = NeuralVocoder.load(vocoder.save(tmp_path / "voc"))
    np.testing.assert_array_equal(loaded.wave(logmel), vocoder.wave(logmel))
    with pytest.raises(DataError, match="log-mel"):
        vocoder.wave(logmel[:40])
    with pytest.raises(DataError, match="NaN"):
        vocoder.wave(np.full_like(logmel, np.nan))


def test_convert_through_a_chosen_vocoder(corpus, trained, tmp_path):
    from aekit.apps.voice import NeuralVocoder

    source, target = corpus / "low" / "0.wav", corpus / "high" / "1.wav"
    vocoder_dir = NeuralVocoder(dim=16, blocks=1, segment_frames=16, epochs=1).fit(corpus).save(tmp_path / "voc")
    vc = VoiceConverter.load(trained.save(tmp_path / "m"))
    for choice in ("griffin-lim", str(vocoder_dir), "auto"):
        vc.set_params(vocoder=choice)
        wave = vc.convert(source, target)
        assert len(wave) == 16_000 and np.isfinite(wave).all()
        np.testing.assert_array_equal(vc.convert(source, target), wave)  # deterministic for every vocoder
    vc.set_params(vocoder=str(tmp_path / "missing"))
    with pytest.raises(ModelFileError, match="missing"):
        vc.convert(source, target)
