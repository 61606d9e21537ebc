"""The audio foundation: reading with every bad case named, features, the vocoder floor,
normalisation, padded batches with masks, corpora of speakers."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from aekit import DataError, ModelFileError
from aekit.data.audio import (
    AudioSpec,
    MelNormalizer,
    log_mel,
    mel_to_wave,
    pad_batch,
    read_audio,
    speaker_files,
    write_wav,
)

SPEC = AudioSpec()


def voiced(seconds: float = 1.0, f0: float = 140.0, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: a gliding harmonic tone with a syllable envelope and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 1.5 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    return (0.2 * envelope * wave + 0.005 * rng.normal(size=len(t))).astype(np.float32)


def test_wav_round_trip_and_frame_count(tmp_path):
    wave = voiced()
    path = write_wav(tmp_path / "a.wav", wave, 16_000)
    back = read_audio(path, 16_000)
    assert back.dtype == np.float32 and len(back) == len(wave)
    assert np.abs(back - wave).max() < 1e-4  # 16-bit PCM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]  # written atomically, nothing left over
    mel = log_mel(back, SPEC)
    assert mel.shape == (SPEC.n_mels, SPEC.frames(len(wave))) and np.isfinite(mel).all()


def test_stereo_other_rates_and_clipping_are_notices_not_errors(tmp_path):
    wave = voiced(rate=22_050)
    sf.write(tmp_path / "s.flac", np.stack([wave, wave], axis=1), 22_050)
    notices: list[str] = []
    back = read_audio(tmp_path / "s.flac", 16_000, notices)
    assert abs(len(back) - 16_000) <= 2
    assert any("mixed down" in n for n in notices) and any("resampled from 22050 Hz" in n for n in notices)
    sf.write(tmp_path / "c.wav", np.clip(voiced() * 20, -1, 1), 16_000)
    notices = []
    read_audio(tmp_path / "c.wav", 16_000, notices)
    assert len(notices) == 1 and "clipped" in notices[0]


def test_folders_of_mp3_and_opus_recordings_are_read(tmp_path):
    """Phones and podcasts give MP3 and Opus: a folder of them held 'no audio files'."""
    from aekit.data.audio import audio_items

    sf.write(tmp_path / "a.mp3", voiced(), 16_000, format="MP3")
    sf.write(tmp_path / "b.opus", voiced(seed=1), 16_000, format="OGG", subtype="OPUS")
    assert [p.name for p in audio_items(tmp_path)] == ["a.mp3", "b.opus"]
    for name in ("a.mp3", "b.opus"):
        back = read_audio(tmp_path / name, 16_000)
        level = np.sqrt(np.mean(back ** 2)) / np.sqrt(np.mean(voiced() ** 2))
        assert abs(len(back) - 16_000) < 2_000 and 0.7 < level < 1.3  # the recording, not silence or noise


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: p.write_text("not audio at all, just text\n" * 20), "is not an audio file"),
    (lambda p: sf.write(p, np.zeros(16_000, np.float32), 16_000), "is silent"),
    (lambda p: sf.write(p, voiced()[:1000], 16_000), "too short"),
    (lambda p: p.write_bytes(_wav_bytes(p)[:40]), "audio"),  # header only: truncated
])
def test_bad_audio_is_one_line_naming_the_file(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(DataError, match=message) as err:
        read_audio(path, 16_000)
    assert "bad.wav" in str(err.value) and "\n" not in str(err.value)


def test_an_m4a_recording_is_refused_with_how_to_convert_it(tmp_path):
    # A phone's voice memo: libsndfile reads no MP4 container.
    path = tmp_path / "memo 1.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(2000))
    with pytest.raises(DataError, match=r"not in an audio format aekit reads .*ffmpeg -i '.*memo 1.m4a' new.wav"):
        read_audio(path, 16_000)


def _wav_bytes(path) -> bytes:
    other = path.with_name("full.wav")
    sf.write(other, voiced(), 16_000)
    return other.read_bytes()


def test_griffin_lim_floor_keeps_the_spectrum(tmp_path):
    wave = voiced()
    mel = log_mel(wave, SPEC)
    back = mel_to_wave(mel, SPEC, length=len(wave))
    assert len(back) == len(wave) and np.abs(back).max() <= 1.0
    # the phase is made up, the mel spectrum is kept: log-mel distance far below a mismatch
    again = log_mel(back, SPEC)
    other = log_mel(voiced(f0=230.0, seed=1), SPEC)
    assert np.abs(again - mel).mean() < 0.5 * np.abs(other - mel).mean()
    with pytest.raises(DataError, match="must be \\[80, frames\\]"):
        mel_to_wave(mel[:10], SPEC)


def test_normalizer_round_trip_and_validation():
    mels = [log_mel(voiced(seed=s, f0=120 + 30 * s), SPEC) for s in range(3)]
    norm = MelNormalizer().fit(mels)
    z = norm.transform(mels[0])
    frames = np.concatenate([norm.transform(m) for m in mels], axis=1)
    assert np.allclose(frames.mean(1), 0, atol=1e-3) and np.allclose(frames.std(1)[frames.std(1) > 0.01], 1, atol=1e-2)
    np.testing.assert_allclose(norm.inverse(z), mels[0], atol=1e-4)
    again = MelNormalizer.from_dict(norm.to_dict(), SPEC.n_mels)
    np.testing.assert_array_equal(again.transform(mels[1]), norm.transform(mels[1]))
    with pytest.raises(ModelFileError, match="80 finite means"):
        MelNormalizer.from_dict({"mean": [0.0] * 80, "std": [0.0] * 80}, 80)
    with pytest.raises(ModelFileError, match="audio settings"):
        AudioSpec.from_dict({"sample_rate": 16_000, "hop_length": 10 ** 9})


def test_pad_batch_masks_the_padding():
    a, b = np.ones((80, 5), np.float32), 2 * np.ones((80, 9), np.float32)
    batch, mask = pad_batch([a, b])
    assert batch.shape == (2, 80, 9) and mask.shape == (2, 9)
    assert mask[0].sum() == 5 and mask[1].all() and (batch[0, :, 5:] == 0).all() and (batch[1] == 2).all()
    with pytest.raises(DataError, match="different numbers of mel bands"):
        pad_batch([a, np.ones((40, 3), np.float32)])


def test_speaker_corpus_from_folders_and_csv(tmp_path):
    for speaker in ("ann", "bob"):
        (tmp_path / "corpus" / speaker).mkdir(parents=True)
        for i in range(2):
            write_wav(tmp_path / "corpus" / speaker / f"{i}.wav", voiced(seed=i), 16_000)
    pairs = speaker_files(tmp_path / "corpus")
    assert [(p.name, s) for p, s in pairs] == [("0.wav", "ann"), ("1.wav", "ann"), ("0.wav", "bob"), ("1.wav", "bob")]
    (tmp_path / "list.csv").write_text("path,speaker\ncorpus/ann/0.wav,ann\ncorpus/bob/1.wav,bob\n")
    assert [s for _, s in speaker_files(tmp_path / "list.csv")] == ["ann", "bob"]
    (tmp_path / "one.csv").write_text("path,speaker\ncorpus/ann/0.wav,ann\n")
    with pytest.raises(DataError, match="at least 2 speakers"):
        speaker_files(tmp_path / "one.csv")
    (tmp_path / "cols.csv").write_text("file,who\na.wav,ann\n")
    with pytest.raises(DataError, match="missing: path, speaker"):
        speaker_files(tmp_path / "cols.csv")
