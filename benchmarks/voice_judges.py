"""Voice conversion judged by two independent models (issue 38): a speaker-verification model
(Resemblyzer's GE2E d-vector) and a speech recognizer (pocketsphinx, its bundled US English
model). Neither is used in training or conversion.

Protocol: a model trained on four VCC2016 speakers (sentence ids 100001-100120, disjoint per
speaker, as in ``benchmarks/voice.py``), ``--unseen`` (TF1) never heard; or ``--model DIR``.
Each ordered pair (A, B), A != B, converts A's test sentences 100121+ (``--sentences``) into
B's voice from one reference utterance of B (B saying the next test sentence).

- speaker similarity: cosine between the output's d-vector and B's mean d-vector over 10 of
  B's real training-id recordings (never a test sentence); the share of outputs closer to B's
  mean than to A's;
- word agreement: 1 - WER of the recognizer's transcript of the output against its transcript
  of A's real recording of the sentence (clipped at 0; the sentence's own words are not
  needed, and the recognizer's own errors on real speech set the ceiling).

Beside the conversions, in the same run: no conversion (A's recording: the floor for the
voice, the ceiling for the words), B's own recording of the sentence (the ceiling for the
voice and what a perfect conversion's words would score). First, the vocoders alone: every
test recording to log-mel and back through Griffin-Lim and through the model's vocoder (by
default the bundled neural vocoder, trained without TF1: ``scripts/make_default_vocoder.py``),
judged against the recording itself. ``--set vocoder=griffin-lim`` converts through
Griffin-Lim instead.

    pip install -e '.[bench]'                  # resemblyzer, pocketsphinx
    python benchmarks/voice_judges.py --epochs 40           # train without TF1, then judge
    python benchmarks/voice_judges.py --model voice_model    # judge a saved model
"""
from __future__ import annotations

import argparse
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table  # noqa: E402
from voice import SPEAKERS, SPEC, TEST_IDS, TRAIN_IDS, path, training_files  # noqa: E402  (the same protocol)

from aekit.apps.voice import VoiceConverter  # noqa: E402
from aekit.data.audio import log_mel, log_spectral_distance, mel_to_wave, read_audio  # noqa: E402


class Judges:
    """The two judges, loaded once."""

    def __init__(self) -> None:
        # webrtcvad (a Resemblyzer dependency) imports pkg_resources, which new setuptools lacks
        if "pkg_resources" not in sys.modules:
            try:
                import pkg_resources  # noqa: F401
            except ImportError:
                shim = types.ModuleType("pkg_resources")
                shim.get_distribution = lambda name: types.SimpleNamespace(version="0")
                sys.modules["pkg_resources"] = shim
        from pocketsphinx import Decoder
        from resemblyzer import VoiceEncoder, preprocess_wav

        self.encoder, self.preprocess = VoiceEncoder("cpu", verbose=False), preprocess_wav
        # cmn="batch": each utterance normalised on its own, so a transcript never depends on the one before
        self.decoder = Decoder(samprate=SPEC.sample_rate, logfn="/dev/null", cmn="batch")

    def embed(self, wave: np.ndarray) -> np.ndarray:
        return self.encoder.embed_utterance(self.preprocess(wave, source_sr=SPEC.sample_rate))

    def words(self, wave: np.ndarray) -> list[str]:
        pcm = (np.clip(wave, -1, 1) * 32767).astype(np.int16).tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr.split() if hyp is not None else []


def word_agreement(hyp: list[str], ref: list[str]) -> float:
    """1 - word error rate of ``hyp`` against ``ref`` (Levenshtein over words), at least 0."""
    if not ref:
        return float(not hyp)
    d = np.arange(len(hyp) + 1)
    for i, r in enumerate(ref, 1):
        prev, d[0] = d.copy(), i
        for j, h in enumerate(hyp, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r != h))
    return max(0.0, 1.0 - d[-1] / len(ref))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def vocoder_rows(judges: Judges, vc: VoiceConverter, waves: dict, transcript: dict) -> list[list]:
    """Each recording to log-mel and back through Griffin-Lim and the model's vocoder: what
    the recognizer and the d-vector keep of it, its spectral distance, and the time taken."""
    vocoders = {"Griffin-Lim (32 iterations)": lambda m, n: mel_to_wave(m, SPEC, length=n)}
    if vc.vocoder != "griffin-lim":
        vocoders[f"the model's vocoder ({vc.vocoder})"] = vc.vocode
    rows = []
    for name, vocode in vocoders.items():
        found, seconds, audio = [], 0.0, 0.0
        for key, wave in waves.items():
            logmel = log_mel(wave, SPEC)
            t0 = time.perf_counter()
            out = vocode(logmel, len(wave))
            seconds += time.perf_counter() - t0
            audio += len(wave) / SPEC.sample_rate
            found.append((word_agreement(judges.words(out), transcript[key]),
                          cosine(judges.embed(out), judges.embed(wave)), log_spectral_distance(out, wave)))
        mean = np.mean(found, axis=0)
        rows.append([name, len(found), f"{mean[0]:.3f}", f"{mean[1]:.3f}", f"{mean[2]:.2f}", f"{seconds / audio:.3f}"])
    return rows


def apply_settings(vc: VoiceConverter, settings: list[str]) -> None:
    """``NAME=VALUE`` settings, each value converted to the type of the setting it replaces."""
    for setting in settings:
        name, _, value = setting.partition("=")
        current = vc.get_params()[name]
        if isinstance(current, bool):  # bool("False") would be True
            converted: object = value.lower() in ("1", "true", "yes")
        else:
            converted = type(current)(value) if current is not None else value
        vc.set_params(**{name: converted})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="a saved voice model to judge (default: train one without --unseen)")
    ap.add_argument("--bundled", action="store_true", help="judge the bundled model (it heard all five speakers)")
    ap.add_argument("--unseen", default="TF1")
    ap.add_argument("--epochs", type=int, default=VoiceConverter().epochs)
    ap.add_argument("--sentences", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a VoiceConverter setting for conversion (e.g. adapt_steps=30), repeatable")
    ap.add_argument("--fsdd-every", type=int, default=0, metavar="N",
                    help="also train on every N-th FSDD recording of takes 5-49 (real voices; as in voice.py)")
    ap.add_argument("--fit-set", action="append", default=[], metavar="NAME=VALUE",
                    help="a VoiceConverter setting for training (e.g. code_channels=16), repeatable")
    ap.add_argument("--save", help="write the trained model here")
    ap.add_argument("--vocoders-only", action="store_true", help="only the vocoders on real speech (no conversions)")
    ap.add_argument("--synthetic-voices", type=int, default=0,
                    help="add this many espeak-ng voices x 10 sentences (aekit voice make-corpus) to training")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    seen = [s for s in SPEAKERS if s != args.unseen]
    start = time.perf_counter()
    if args.bundled:
        from aekit.apps.voice import default_model

        vc, args.unseen = default_model(), None
    elif args.model:
        vc = VoiceConverter.load(args.model)
    else:
        files = training_files(seen, args.synthetic_voices, fsdd_every=args.fsdd_every)
        print(f"training on {len(files)} utterances of {', '.join(seen)}; unseen: {args.unseen}", file=sys.stderr)
        vc = VoiceConverter(epochs=args.epochs, random_state=args.seed, verbose=1)
        apply_settings(vc, args.fit_set)
        vc.fit(files)
        if args.save:
            vc.save(args.save)
    train_s = time.perf_counter() - start
    apply_settings(vc, args.set)

    judges = Judges()
    test_ids = list(TEST_IDS)[:args.sentences]
    waves = {(s, sid): read_audio(path(s, sid), SPEC.sample_rate) for s in SPEAKERS for sid in test_ids}
    centroid = {s: np.mean([judges.embed(read_audio(path(s, sid), SPEC.sample_rate))
                            for sid in list(TRAIN_IDS)[::12]], axis=0) for s in SPEAKERS}
    transcript = {k: judges.words(w) for k, w in waves.items()}

    rows: dict[str, list[tuple[float, float, float]]] = {}

    def judge(name: str, out: np.ndarray, a: str, b: str, sid: int) -> None:
        e = judges.embed(out)
        rows.setdefault(name, []).append((cosine(e, centroid[b]), float(cosine(e, centroid[b]) > cosine(e, centroid[a])),
                                          word_agreement(judges.words(out), transcript[a, sid])))

    print(f"\n### Vocoders alone on real speech (each speaker's {len(test_ids)} test recordings)\n")
    print(table(vocoder_rows(judges, vc, waves, transcript),
                ["vocoder", "n", "word agreement with the recording's transcript", "d-vector cosine to the recording",
                 "log-spectral distance (dB)", "real-time factor"]))
    if args.vocoders_only:
        return
    convert_s = audio_s = 0.0
    for a in SPEAKERS:
        for b in SPEAKERS:
            if a == b:
                continue
            group = "unseen target" if b == args.unseen else "seen target"
            for i, sid in enumerate(test_ids):
                reference = waves[b, test_ids[(i + 1) % len(test_ids)]]
                if a != args.unseen:
                    t0 = time.perf_counter()
                    out = vc.convert(waves[a, sid], reference)
                    convert_s += time.perf_counter() - t0
                    audio_s += len(waves[a, sid]) / SPEC.sample_rate
                    judge(f"aekit, {group}", out, a, b, sid)
                judge("no conversion (A's recording)", waves[a, sid], a, b, sid)
                judge("B's own recording of the sentence", waves[b, sid], a, b, sid)

    title = ("the bundled model" if args.bundled else args.model or
             f"trained {train_s:.0f} s, {args.epochs} epochs, unseen {args.unseen}, "
             f"{args.synthetic_voices} synthetic voices, FSDD every {args.fsdd_every}")
    settings = ", ".join(args.fit_set + args.set) or "defaults"
    print(f"\n### Voice conversion judged by Resemblyzer and pocketsphinx ({title}; {settings})\n")
    print(table([[name, len(r), f"{np.mean([x[0] for x in r]):.3f}", f"{np.mean([x[1] for x in r]):.0%}",
                  f"{np.mean([x[2] for x in r]):.3f}"] for name, r in rows.items()],
                ["outputs", "n", "cosine to B (d-vector)", "closer to B than to A", "word agreement with A's transcript"]))
    print(f"\nreal-time factor of convert (2 cores): {convert_s / max(audio_s, 1e-9):.3f}")


if __name__ == "__main__":
    main()
