"""Train the bundled default voice model (``aekit voice convert`` without ``--model``).

    python scripts/make_default_voice.py            # about 50 minutes on 2 CPU cores

Training data, all offline (``../shared/data``, see its README for licences):
- VCC2016: the 5 speakers, sentence ids 100001-100120 (the parallel test ids 100121-100150
  stay out, so ``benchmarks/voice.py`` keeps its ground truth);
- FSDD: the 4 speakers' digits, takes 5-49, every tenth file (takes 0-4 are the benchmark's; more
  8 kHz digits than this cost the VCC2016 content score, see BENCHMARKS.md);
- 36 synthetic espeak-ng voices x 20 Harvard sentences (``aekit voice make-corpus``).
No speaker labels are used. The weights are stored in float16 (half the bytes; the network
runs in float32 after loading) in ``src/aekit/apps/voice/default_model``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _bundle import write_float16

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TRAIN_IDS = range(100001, 100121)


def training_files(shared: Path, corpus: Path) -> list[Path]:
    from aekit.apps.voice.corpus import make_corpus

    vcc = [shared / "speech" / "vcc2016" / s / f"{sid}.flac" for s in ("SF1", "SF2", "SM1", "TF1", "TM1")
           for sid in TRAIN_IDS]
    fsdd = sorted(p for p in (shared / "fsdd").glob("*.wav") if int(p.stem.split("_")[2]) >= 5)[::10]
    return vcc + fsdd + make_corpus(corpus, 36, 20)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "aekit" / "apps" / "voice" / "default_model")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    from aekit.apps.voice import VoiceConverter

    with tempfile.TemporaryDirectory() as tmp:
        files = training_files(args.shared, Path(tmp) / "corpus")
        print(f"training on {len(files)} recordings", file=sys.stderr)
        start = time.perf_counter()
        vc = VoiceConverter(epochs=args.epochs, verbose=1).fit(files)
    write_float16(vc, args.out, start)


if __name__ == "__main__":
    main()
