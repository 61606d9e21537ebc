"""Voice conversion on real speech (VCC2016, 5 speakers, ../shared/data/speech/vcc2016).

Protocol (issue 12): train non-parallel on sentence ids 100001-100120, each training speaker
with its own disjoint ids; one speaker (``--unseen``, default TF1) is left out of training.
Test on the parallel ids 100121-100150: convert sentence i of speaker A into the voice of
speaker B, given one other utterance of B (the style reference: B saying sentence i+1), and
compare with B's real recording of sentence i.

Metrics (all from the converted *waveforms*, vocoder included):
- speaker: a logistic-regression speaker classifier on per-utterance MFCC statistics, trained
  on real non-test utterances of all 5 speakers; share of conversions classified as the target
  and as the source (seen targets and the unseen one separately);
- content: the converted utterance's sentence identified among the test sentences by the
  smallest DTW distance (MFCC) to the target speaker's real recordings of them;
- MCD (mel cepstral distortion, dB, c1-c24 of a 24-coefficient MFCC, DTW-aligned; defined in
  ``mcd``) to the target's real recording of the same sentence, beside the floor (the target's
  own recording through the vocoder), the ceiling (no conversion) and a trivial baseline (the
  source's per-bin log-mel mean and spread moved to the target reference's);
- leakage: a speaker classifier on content-code frames (see ``leakage``), trained on
  training ids, tested per utterance on test ids of the seen speakers (chance 1/4);
- real-time factor of ``convert`` (seconds per second of audio, one-shot fitting of the
  target voice and vocoder included);
- FSDD spoken digits (8 kHz, 4 speakers, takes 0-4): digit accuracy of a digit classifier
  trained on real takes 5-49, on real recordings and on digits converted into another FSDD
  speaker's voice;
- with ``--codebook-size K`` (a VQ content code): unit purity and normalised mutual
  information against the spoken digit and against espeak-ng's phoneme at each frame, and
  codebook health.

    python benchmarks/voice.py                     # train (about 3 minutes) and evaluate
    python benchmarks/voice.py --epochs 5 --sentences 5   # a quick look
    python benchmarks/voice.py --examples docs/voice      # also the README's figure and WAVs
    python benchmarks/voice.py --synthetic-voices 24      # + 24 espeak-ng voices x 10 sentences
    python benchmarks/voice.py --codebook-size 64         # VQ content units
    python benchmarks/voice.py --bundled --sentences 4    # the bundled model (every speaker seen)
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED, table  # noqa: E402

from aekit.apps.voice import VoiceConverter  # noqa: E402
from aekit.data.audio import AudioSpec, log_mel, read_audio  # noqa: E402
from aekit.nn.discrete import codebook_health  # noqa: E402

SPEAKERS = ("SF1", "SF2", "SM1", "TF1", "TM1")
TRAIN_IDS = range(100001, 100121)
TEST_IDS = range(100121, 100151)
SPEC = AudioSpec()
N_MFCC = 25  # c0..c24; MCD uses c1..c24


def path(speaker: str, sid: int) -> Path:
    return SHARED / "speech" / "vcc2016" / speaker / f"{sid}.flac"


def training_files(seen: list[str], synthetic_voices: int = 0, synthetic_sentences: int = 10,
                   fsdd_every: int = 0) -> list[Path]:
    """The training recordings: the ``seen`` speakers on disjoint shares of ``TRAIN_IDS`` (no
    sentence is heard from two speakers), plus every ``fsdd_every``-th FSDD recording of takes
    5-49 (8 kHz, resampled on reading; takes 0-4 are FSDD's test takes), plus
    ``synthetic_voices`` espeak-ng voices x ``synthetic_sentences`` sentences written to a
    temporary folder."""
    ids = list(TRAIN_IDS)
    share = len(ids) // len(seen)
    files = [path(s, sid) for k, s in enumerate(seen) for sid in ids[k * share:(k + 1) * share]]
    if fsdd_every:
        files += fsdd_files(range(5, 50))[::fsdd_every]
    if synthetic_voices:
        import tempfile

        from aekit.apps.voice.corpus import make_corpus

        corpus = Path(tempfile.mkdtemp(prefix="voice_corpus_")) / "c"
        files += make_corpus(corpus, synthetic_voices, synthetic_sentences)
    return files


def mfcc(wave: np.ndarray) -> np.ndarray:
    """``[frames, 25]`` mel cepstrum c0..c24: the cosine-series coefficients of the natural-log
    mel *amplitude* spectrum (DCT-II divided by the number of bands), the scale on which the
    MCD formula below gives its usual decibels."""
    from scipy.fft import dct

    log_amplitude = 0.5 * log_mel(wave, SPEC)  # log_mel is the log of power
    return (dct(log_amplitude, type=2, axis=0, norm=None)[:N_MFCC] / SPEC.n_mels).T


def dtw_path(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, float]:
    """Aligned frame index pairs of two MFCC sequences (c1.., Euclidean) and the mean cost."""
    import librosa

    cost, wp = librosa.sequence.dtw(X=a[:, 1:].T, Y=b[:, 1:].T, metric="euclidean")
    return wp[::-1], float(cost[-1, -1] / len(wp))


def mcd(a: np.ndarray, b: np.ndarray) -> float:
    """Mel cepstral distortion in dB: mean over DTW-aligned frames of
    (10 / ln 10) * sqrt(2 * sum_{d=1..24} (c_d - c'_d)^2)."""
    wp, _ = dtw_path(a, b)
    diff = a[wp[:, 0], 1:] - b[wp[:, 1], 1:]
    return float(np.mean(10 / np.log(10) * np.sqrt(2 * (diff ** 2).sum(axis=1))))


def utterance_features(m: np.ndarray) -> np.ndarray:
    return np.concatenate([m.mean(axis=0), m.std(axis=0)])


def speaker_classifier(examples: list[tuple[np.ndarray, str]]):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.stack([x for x, _ in examples])
    y = [s for _, s in examples]
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(X, y)


def mean_var_shift(source: np.ndarray, reference: np.ndarray, vocode) -> np.ndarray:
    """The trivial baseline: the source's per-bin log-mel statistics moved to the reference's,
    through ``vocode(logmel, length)`` (the model's vocoder, as the conversions)."""
    s, r = log_mel(source, SPEC), log_mel(reference, SPEC)
    z = (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-5)
    return vocode(z * r.std(1, keepdims=True) + r.mean(1, keepdims=True), len(source))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unseen", default="TF1", choices=SPEAKERS, help="speaker left out of training")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--sentences", type=int, default=10, help="test sentences per speaker pair (of 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic-voices", type=int, default=0,
                    help="add this many espeak-ng voices (aekit voice make-corpus) to the training speakers")
    ap.add_argument("--synthetic-sentences", type=int, default=10)
    ap.add_argument("--fsdd-every", type=int, default=0,
                    help="also train on every N-th FSDD recording of takes 5-49 (default 0: none; takes 0-4 are "
                         "always tested)")
    ap.add_argument("--warp", type=float, default=VoiceConverter().warp, help="training frequency-warp range")
    ap.add_argument("--adapt-steps", type=int, default=VoiceConverter().adapt_steps,
                    help="one-shot fitting steps of the target voice (0: the style encoder's guess only)")
    ap.add_argument("--codebook-size", type=int, default=0,
                    help="VQ content code with this many units; adds the unit purity and mutual information")
    ap.add_argument("--examples", help="folder for a spectrogram figure and example WAVs (source, target, converted)")
    ap.add_argument("--model", help="a saved voice model to evaluate (trained without --unseen) instead of training one")
    ap.add_argument("--bundled", action="store_true",
                    help="evaluate the bundled model (it heard all 5 speakers: every target is seen) instead of "
                         "training one")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.manual_seed(args.seed)
    if args.bundled:
        args.unseen = None
    seen = [s for s in SPEAKERS if s != args.unseen]
    train_files = training_files(seen, args.synthetic_voices, args.synthetic_sentences, args.fsdd_every)
    start = time.perf_counter()
    if args.bundled:
        from aekit.apps.voice import default_model

        vc = default_model()
        vc.adapt_steps = args.adapt_steps
    elif args.model:
        vc = VoiceConverter.load(args.model)
        vc.adapt_steps = args.adapt_steps
    else:
        print(f"training on {len(train_files)} utterances of {', '.join(seen)} (disjoint ids); unseen: {args.unseen}",
              file=sys.stderr)
        vc = VoiceConverter(epochs=args.epochs, random_state=args.seed, verbose=1, warp=args.warp,
                            adapt_steps=args.adapt_steps, codebook_size=args.codebook_size).fit(train_files)
    train_s = time.perf_counter() - start

    waves = {(s, sid): read_audio(path(s, sid), SPEC.sample_rate) for s in SPEAKERS for sid in list(TEST_IDS)}
    real = {k: mfcc(w) for k, w in waves.items()}
    clf = speaker_classifier([(utterance_features(mfcc(read_audio(path(s, sid), SPEC.sample_rate))), s)
                              for s in SPEAKERS for sid in list(TRAIN_IDS)[::3]])

    test_ids = list(TEST_IDS)[:args.sentences]
    rows: dict[str, list] = {"seen": [], "unseen": []}
    mcds: dict[str, list[float]] = {"converted": [], "floor (target through the vocoder)": [],
                                   "ceiling (no conversion)": [], "baseline (mean-variance shift)": []}
    convert_seconds, audio_seconds = 0.0, 0.0
    for a in SPEAKERS:
        for b in SPEAKERS:
            if a == b or a == args.unseen:
                continue
            group = "unseen" if b == args.unseen else "seen"
            for i, sid in enumerate(test_ids):
                reference = waves[b, test_ids[(i + 1) % len(test_ids)]]
                t0 = time.perf_counter()
                out = vc.convert(waves[a, sid], reference)
                convert_seconds += time.perf_counter() - t0
                audio_seconds += len(waves[a, sid]) / SPEC.sample_rate
                m = mfcc(out)
                said = clf.predict(utterance_features(m)[None])[0]
                costs = [dtw_path(m, real[b, other])[1] for other in list(TEST_IDS)]
                rows[group].append((said == b, said == a, int(np.argmin(costs)) == i))
                if group == "seen":
                    mcds["converted"].append(mcd(m, real[b, sid]))
                    mcds["ceiling (no conversion)"].append(mcd(real[a, sid], real[b, sid]))
                    mcds["baseline (mean-variance shift)"].append(mcd(mfcc(mean_var_shift(waves[a, sid], reference, vc.vocode)),
                                                                      real[b, sid]))
    for b in seen:
        for sid in test_ids:
            mcds["floor (target through the vocoder)"].append(
                mcd(mfcc(vc.vocode(log_mel(waves[b, sid], SPEC), len(waves[b, sid]))), real[b, sid]))

    if args.examples:
        write_examples(vc, waves, Path(args.examples), test_ids[0], args.unseen or "TF1")
    leak = leakage(vc, seen)
    title = ("the bundled model" if args.bundled else f"model {args.model}" if args.model else
             f"train {train_s:.0f} s, {args.epochs} epochs, unseen {args.unseen}, {args.synthetic_voices} synthetic voices")
    print(f"\n### Voice conversion, VCC2016 ({title})\n")
    out_rows = []
    for group, r in rows.items():
        if not r:
            continue
        r = np.array(r, dtype=float)
        out_rows.append([f"{group} targets", len(r), f"{r[:, 0].mean():.1%}", f"{r[:, 1].mean():.1%}",
                         f"{r[:, 2].mean():.1%}"])
    print(table(out_rows, ["conversions", "n", "classified as target", "still the source", "sentence identified"]))
    print()
    print(table([[k, f"{np.mean(v):.2f} ± {np.std(v):.2f}", len(v)] for k, v in mcds.items()],
                ["MCD-DTW to the target's real recording (seen targets)", "dB", "n"]))
    print(f"\nleakage: speaker classifier on the content codes {leak:.1%} (chance {1 / len(seen):.1%})")
    print(f"real-time factor of convert ({vc.adapt_steps} fitting steps, vocoder {vc.vocoder!r}, 2 cores): "
          f"{convert_seconds / audio_seconds:.3f}")
    print()
    print(table(digits(vc), ["FSDD spoken digits (takes 0-4)", "n", "digit accuracy", "classified as target"]))
    if args.codebook_size:
        print()
        print(table(units(vc), ["VQ content units", "frames", "purity", "NMI", "chance purity"]))
        health = codebook_health(torch.from_numpy(np.concatenate([vc.units(w) for w in fsdd_files(range(5))])),
                                 args.codebook_size)
        print(f"codebook health on FSDD: {health['codes_used']} of {args.codebook_size} units used, "
              f"perplexity {health['perplexity']:.1f}")


def fsdd_files(takes: range) -> list[Path]:
    """FSDD recordings ``{digit}_{speaker}_{take}.wav`` of the given takes, sorted by name."""
    return sorted(p for p in (SHARED / "fsdd").glob("*.wav") if int(p.stem.split("_")[2]) in takes)


def fsdd_label(p: Path, part: int) -> str:
    return p.stem.split("_")[part]  # 0: digit, 1: speaker


def digit_features(wave: np.ndarray) -> np.ndarray:
    """A spoken digit as a fixed-length vector: its MFCC (c0..c24) resampled to 16 frames."""
    m = mfcc(wave)
    pick = np.linspace(0, len(m) - 1, 16).round().astype(int)
    return m[pick].ravel()


def digits(vc: VoiceConverter) -> list[list]:
    """Digit accuracy of a digit classifier (and share classified as the target speaker by a
    speaker classifier), both trained on real FSDD takes 5-49: on the real test takes, and on
    every test take converted into each other FSDD speaker's voice (reference: that speaker
    saying the next digit, same take)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = fsdd_files(range(5, 50))
    X = np.stack([digit_features(read_audio(p, SPEC.sample_rate)) for p in train])
    digit_clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=0.1)).fit(
        X, [fsdd_label(p, 0) for p in train])
    speaker_clf = speaker_classifier([(utterance_features(mfcc(read_audio(p, SPEC.sample_rate))), fsdd_label(p, 1))
                                      for p in train[::3]])
    test = {(fsdd_label(p, 0), fsdd_label(p, 1), p.stem.split("_")[2]): read_audio(p, SPEC.sample_rate)
            for p in fsdd_files(range(5))}
    real_hits = [digit_clf.predict(digit_features(w)[None])[0] == d for (d, _, _), w in test.items()]
    hits, same = [], []
    for (d, a, take), wave in test.items():
        for b in sorted({k[1] for k in test} - {a}):
            out = vc.convert(wave, test[str((int(d) + 1) % 10), b, take])
            hits.append(digit_clf.predict(digit_features(out)[None])[0] == d)
            same.append(speaker_clf.predict(utterance_features(mfcc(out))[None])[0] == b)
    return [["real recordings", len(real_hits), f"{np.mean(real_hits):.1%}", ""],
            ["converted to another FSDD speaker", len(hits), f"{np.mean(hits):.1%}", f"{np.mean(same):.1%}"]]


def purity_nmi(units: np.ndarray, labels: list[str]) -> tuple[float, float, float]:
    """Purity (share of frames whose unit's most common label is theirs), normalised mutual
    information, and the purity of always guessing the most common label."""
    from sklearn.metrics import normalized_mutual_info_score

    labels = np.asarray(labels)
    purity = sum(np.unique(labels[units == u], return_counts=True)[1].max() for u in np.unique(units))
    chance = np.unique(labels, return_counts=True)[1].max()
    return purity / len(units), normalized_mutual_info_score(labels, units), chance / len(units)


def units(vc: VoiceConverter) -> list[list]:
    """How phonetic the VQ content units are: against the spoken digit (FSDD test takes,
    frames louder than -40 dB of the utterance's peak) and against espeak's phoneme at each
    frame (6 synthetic voices saying the 5 Harvard sentences kept out of training)."""
    from aekit.apps.voice.corpus import SENTENCES, phoneme_frames, voices

    us, ds = [], []
    for p in fsdd_files(range(5)):
        wave = read_audio(p, SPEC.sample_rate)
        energy = log_mel(wave, SPEC).max(axis=0)
        loud = energy > energy.max() - np.log(1e4)
        us.append(vc.units(wave)[loud])
        ds += [fsdd_label(p, 0)] * int(loud.sum())
    digit_units = np.concatenate(us)
    us, ps = [], []
    for variant, pitch in voices(36)[::6]:
        for text in SENTENCES[15:]:
            wave, phonemes = phoneme_frames(text, variant, pitch, SPEC)
            us.append(vc.units(wave))
            ps += phonemes
    phone_units = np.concatenate(us)
    return [["spoken digit (FSDD)", len(digit_units), *(f"{v:.3f}" for v in purity_nmi(digit_units, ds))],
            ["espeak phoneme (synthetic)", len(phone_units), *(f"{v:.3f}" for v in purity_nmi(phone_units, ps))]]


def write_examples(vc: VoiceConverter, waves: dict, folder: Path, sid: int, unseen: str) -> None:
    """Two conversions of sentence ``sid`` (a seen male -> female pair and male -> the unseen
    speaker) as WAVs, and a figure of source, target reference and converted spectrograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aekit.data.audio import write_wav

    folder.mkdir(parents=True, exist_ok=True)
    pairs = [("SM1", "SF1"), ("TM1", unseen)]
    fig, axes = plt.subplots(len(pairs), 3, figsize=(13, 3.2 * len(pairs)), squeeze=False)
    for row, (a, b) in enumerate(pairs):
        reference = waves[b, sid + 1]
        converted = vc.convert(waves[a, sid], reference)
        for name, wave in ((f"{a}_{sid}_source", waves[a, sid]), (f"{b}_{sid + 1}_target_reference", reference),
                           (f"{a}_{sid}_as_{b}", converted)):
            write_wav(folder / f"{name}.wav", wave, SPEC.sample_rate)
        for col, (title, wave) in enumerate(((f"source: {a} says {sid}", waves[a, sid]),
                                             (f"target reference: {b} ({'unseen' if b == unseen else 'seen'})",
                                              reference),
                                             (f"converted: {a}'s words in {b}'s voice", converted))):
            axes[row, col].imshow(log_mel(wave, SPEC), origin="lower", aspect="auto", cmap="magma")
            axes[row, col].set_title(title, fontsize=9)
            axes[row, col].set_xlabel("frame (16 ms)")
        axes[row, 0].set_ylabel("mel band")
    fig.tight_layout()
    fig.savefig(folder / "voice_conversion.png", dpi=60)
    plt.close(fig)


@torch.inference_mode()
def leakage(vc: VoiceConverter, speakers: list[str]) -> float:
    """Speaker accuracy, per utterance, of a classifier that sees only content-code frames
    (logistic regression on frames with their neighbours; an utterance's speaker is the one
    with the largest summed log-probability over its frames). The code is instance-normalised,
    so per-utterance means and spreads would say nothing; frames can."""
    from sklearn.linear_model import LogisticRegression

    def frames(s: str, sid: int) -> np.ndarray:
        x, _ = vc._frames(path(s, sid), "source")
        c = vc.model_.content(x)[0].numpy().T  # [T, C]
        return np.concatenate([c[:-4], c[2:-2], c[4:]], axis=1)  # a frame and its +-2 neighbours

    train = [(frames(s, sid), k) for k, s in enumerate(speakers) for sid in list(TRAIN_IDS)[::2]]
    X = np.concatenate([f[::4] for f, _ in train])
    y = np.concatenate([np.full(len(f[::4]), k) for f, k in train])
    clf = LogisticRegression(max_iter=2000).fit(X, y)
    hits = [int(np.argmax(clf.predict_log_proba(frames(s, sid)).sum(0)) == k)
            for k, s in enumerate(speakers) for sid in TEST_IDS]
    return float(np.mean(hits))


if __name__ == "__main__":
    main()
