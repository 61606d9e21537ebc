"""Train the bundled neural vocoder (what ``aekit voice convert`` speaks through by default).

    python scripts/make_default_vocoder.py            # about 50 minutes on 2 CPU cores

Training data, all offline (``../shared/data``, see its README for licences):
- VCC2016: SF1, SF2, SM1 and TM1, sentence ids 100001-100120. TF1 stays out entirely, so the
  voice benchmarks' unseen speaker is unseen by the vocoder too, and the parallel test ids
  100121-100150 stay out for every speaker;
- FSDD: the 4 speakers' digits, takes 5-49, every tenth file (8 kHz, resampled on reading).
No labels or transcripts are used. The weights are stored in float16 (the network runs in
float32 after loading) in ``src/aekit/apps/voice/default_vocoder``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from _bundle import write_float16

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TRAIN_IDS = range(100001, 100121)


def training_files(shared: Path) -> list[Path]:
    vcc = [shared / "speech" / "vcc2016" / s / f"{sid}.flac" for s in ("SF1", "SF2", "SM1", "TM1")
           for sid in TRAIN_IDS]
    fsdd = sorted(p for p in (shared / "fsdd").glob("*.wav") if int(p.stem.split("_")[2]) >= 5)[::10]
    return vcc + fsdd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "aekit" / "apps" / "voice" / "default_vocoder")
    ap.add_argument("--epochs", type=int, default=24)
    args = ap.parse_args()
    from aekit.apps.voice import NeuralVocoder

    files = training_files(args.shared)
    print(f"training on {len(files)} recordings", file=sys.stderr)
    start = time.perf_counter()
    vocoder = NeuralVocoder(epochs=args.epochs, verbose=1).fit(files)
    write_float16(vocoder, args.out, start)


if __name__ == "__main__":
    main()
