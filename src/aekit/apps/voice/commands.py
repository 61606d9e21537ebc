"""``aekit voice train`` / ``aekit voice convert``."""
from __future__ import annotations

import argparse
import re

from ...cliargs import application, float_in, int_at_least, report, training_flags
from ...errors import grouped_notes


def register(sub: argparse._SubParsersAction) -> None:
    verbs = application(sub, "voice", help="voice conversion: A's words in B's voice, from one utterance of B",
                        description="A speech autoencoder whose code is split into content and speaker; "
                                    "converting swaps the speaker part.", run=run)
    t = verbs.add_parser("train", help="train on recordings (no speaker labels or parallel sentences needed)",
                         description="Train on every recording under DATA: a folder of speaker subfolders, any "
                                     "folder of WAV/FLAC/MP3/Opus files, or a CSV with a path column.")
    t.add_argument("data")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--segment-frames", type=int_at_least(8, 4096), default=128,
                   help="training crop length in 16 ms frames (default 128)")
    t.add_argument("--codebook-size", type=int_at_least(0, 65536), default=0,
                   help="quantize the content code into this many discrete units (VQVC; default 0: continuous)")
    t.add_argument("--code-channels", type=int_at_least(1, 512), default=16,
                   help="numbers per frame in the content code: more keep more words, and more of the source's "
                        "voice (default 16)")
    t.add_argument("--content-warp", type=float_in(0, 1), default=0.2,
                   help="the content encoder sees each crop warped in frequency by up to this factor, apart from "
                        "the voice's (0: no such warp; default 0.2)")
    training_flags(t, epochs=40)
    v = verbs.add_parser("train-vocoder", help="train a neural vocoder (log-mel frames to waveform) on recordings",
                         description="Train a neural vocoder on every recording under DATA (any folder of WAV/FLAC/MP3/Opus "
                                     "files, or a CSV with a path column); 'voice convert --vocoder OUT' uses it.")
    v.add_argument("data")
    v.add_argument("--out", required=True, help="vocoder directory to write")
    training_flags(v, epochs=24)
    c = verbs.add_parser("convert", help="say the source recording in the target speaker's voice",
                         description="Write SOURCE's words in TARGET's voice to OUT (a WAV file as long as SOURCE).")
    c.add_argument("--source", required=True, help="recording whose words are kept")
    c.add_argument("--target", required=True, help="one recording of the voice to speak them in")
    c.add_argument("--out", required=True, help="WAV file to write (never one of the inputs)")
    c.add_argument("--adapt-steps", type=int_at_least(0, 10_000),
                   help="steps fitting the target's voice to its recording (default: the model's, 10; 0 is "
                        "fastest and enough for voices heard in training)")
    c.add_argument("--vocoder", default=None,
                   help="'auto' (the bundled neural vocoder; the default), 'griffin-lim', or a directory from "
                        "'aekit voice train-vocoder'")
    c.add_argument("--model", help="model directory from 'aekit voice train' (default: the bundled model, trained "
                                   "on VCC2016, FSDD and 36 synthetic voices)")
    m = verbs.add_parser("make-corpus", help="synthetic speakers (espeak-ng voices x pitch) for training variety",
                         description="Write VOICES x SENTENCES recordings of espeak-ng voices to OUT/<voice>/*.wav.")
    m.add_argument("--out", required=True, help="a new (or empty) folder")
    m.add_argument("--voices", type=int_at_least(1, 36), default=24, help="number of voices (default 24, at most 36)")
    m.add_argument("--sentences", type=int_at_least(1, 20), default=20, help="sentences per voice (default 20)")


def run(args: argparse.Namespace) -> int:
    from . import jobs

    if args.verb == "train":
        vc = jobs.train_corpus(args.data, args.out, resume=args.resume, epochs=args.epochs,
                               segment_frames=args.segment_frames, codebook_size=args.codebook_size,
                               code_channels=args.code_channels, content_warp=args.content_warp,
                               random_state=args.seed,
                               verbose=0 if args.quiet else 1)
        _print_grouped(vc.notices_)
        report(f"trained on {vc.adapter_.describe()}; model written to {args.out}")
    elif args.verb == "train-vocoder":
        vocoder = jobs.train_vocoder(args.data, args.out, resume=args.resume, epochs=args.epochs,
                                     random_state=args.seed, verbose=0 if args.quiet else 1)
        _print_grouped(vocoder.notices_)
        report(f"vocoder trained on {vocoder.adapter_.describe()}; written to {args.out}")
    elif args.verb == "make-corpus":
        from .corpus import make_corpus

        files = make_corpus(args.out, args.voices, args.sentences)
        print(f"wrote {len(files)} recordings of {args.voices} voices to {args.out}")
    else:
        out, notices = jobs.convert_files(args.source, args.target, args.out, args.model,
                                          adapt_steps=args.adapt_steps, vocoder=args.vocoder)
        for line in notices:
            print(f"note: {line}")
        print(f"wrote {out}")
    return 0


# a reading note as read_audio writes one: "a.wav: resampled from 44100 Hz to 16000 Hz"
_RECORDING_NOTE = re.compile(r"([^/\s]+?): (.*)", re.DOTALL)


def _print_grouped(notices: list[str]) -> None:
    """A corpus's reading notices, one line per kind: what is said of many recordings
    (resampled, mixed down) becomes "N recordings: what (a, b, ...)"."""
    for line in grouped_notes(notices, _RECORDING_NOTE, _recordings):
        print(f"note: {line}")


def _recordings(names: list[str], text: str) -> str:
    if len(names) == 1:
        return f"{names[0]}: {text}"
    return f"{len(names)} recordings: {text} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
