"""``aekit summarize train`` / ``aekit summarize run``."""
from __future__ import annotations

import argparse

from ...cliargs import application, int_at_least, report, training_flags

MAX_WORDS = 64  # nn.text.MAX_SUMMARY, not imported: --help must not load torch


def register(sub: argparse._SubParsersAction) -> None:
    verbs = application(sub, "summarize", help="one short readable summary per sentence, learned without summaries",
                        description="A sentence autoencoder whose code is a short sentence: a compressor writes it, "
                                    "a reconstructor rebuilds the input from it, and a language-model prior keeps "
                                    "it readable. 'run' searches, for each sentence, for the words of it (in its "
                                    "order) that read well, keep its start, and let the reconstructor rebuild it.",
                        run=run)
    t = verbs.add_parser("train", help="train on a text file of sentences (no summaries needed)",
                         description="Train on DATA, a UTF-8 text file with one sentence per line.")
    t.add_argument("data")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--prior", help="text file of real short sentences (e.g. headlines) for the language-model "
                                   "prior, never used as inputs (default: the training sentences alone)")
    t.add_argument("--words", type=int_at_least(1, MAX_WORDS), default=9,
                   help="summary length in tokens (default 9; 'run --words' can change it later)")
    training_flags(t, epochs=20)
    r = verbs.add_parser("run", help="summarize every line of a text file",
                         description="Write one summary per line of INPUT to OUT.")
    r.add_argument("input")
    r.add_argument("--out", required=True, help="text file to write (.txt, never the input)")
    r.add_argument("--words", type=int_at_least(1, MAX_WORDS),
                   help="summary length in tokens (default: the model's, 9)")
    r.add_argument("--decode", choices=("search", "greedy"),
                   help="search (the default): beam search for the summary the language model reads best, that "
                        "keeps the sentence's start and lets the reconstructor rebuild it; greedy: the compressor "
                        "writes it word by word (faster, less readable)")
    r.add_argument("--model", help="model directory from 'aekit summarize train' (default: the bundled model, "
                                   "trained on Wikipedia current-events sentences)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from . import jobs

    if args.verb == "train":
        model = jobs.train_file(args.data, args.out, prior=args.prior, resume=args.resume, epochs=args.epochs,
                                summary_words=args.words, random_state=args.seed, verbose=0 if args.quiet else 1)
        for line in model.notices_:
            print(f"note: {line}")
        report(f"trained on {model.adapter_.describe()}; model written to {args.out}")
    else:
        out, notices = jobs.summarize_file(args.input, args.out, args.model, length=args.words, decode=args.decode,
                                           progress=not args.quiet)
        for line in notices:
            print(f"note: {line}")
        print(f"wrote {out}")
    return 0
