"""Train the bundled default summarizer (``aekit summarize run`` without ``--model``).

    python scripts/make_default_summarizer.py                   # about 22 minutes on 2 CPU cores
    python scripts/make_default_summarizer.py --prior-weight 0 --out /tmp/recon_only
                                                                # the benchmark's reconstruction-only row

Data, offline: ``../shared/data/text/wikipedia_cep_events.tsv`` (Wikipedia "Portal:Current
events", CC BY-SA 4.0), split by ``aekit.apps.summarize.corpus``: the ``train`` sentences are
the inputs; the ``prior`` short sentences (never inputs) join them in the language-model
prior; ``held_out`` and ``fluency`` stay out for ``benchmarks/summarize.py``. No summaries or
headlines are used. Checkpoints go to ``OUT.ckpt/`` (``--resume`` continues). The weights
are stored in float16 (the network runs in float32 after loading).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from _bundle import write_float16

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    ap.add_argument("--out", type=Path, default=ROOT / "src" / "aekit" / "apps" / "summarize" / "default_model")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--prior-weight", type=float, default=None, help="default: the Summarizer's")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    from aekit.apps.summarize import Summarizer
    from aekit.apps.summarize.corpus import wikipedia_events_split

    split = wikipedia_events_split(args.shared / "text" / "wikipedia_cep_events.tsv")
    params = {"epochs": args.epochs, "verbose": 1}
    if args.prior_weight is not None:
        params["prior_weight"] = args.prior_weight
    print(f"training on {len(split['train'])} sentences, prior also on {len(split['prior'])} short ones",
          file=sys.stderr)
    start = time.perf_counter()
    staging = args.out.with_name(args.out.name + ".float32")  # its checkpoints: OUT.float32.ckpt/
    model = Summarizer(**params).fit_to(split["train"], staging, prior=split["prior"], resume=args.resume)
    for stage, records in model.training_history_.items():
        for r in records:
            print(stage, {k: round(v, 4) for k, v in r.items()}, file=sys.stderr)
    write_float16(model, args.out, start)
    shutil.rmtree(staging)  # this script's own float32 copy


if __name__ == "__main__":
    main()
