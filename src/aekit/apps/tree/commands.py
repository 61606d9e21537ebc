"""``aekit tree train`` / ``parse`` / ``generate`` / ``evaluate``."""
from __future__ import annotations

import argparse

from ...cliargs import application, int_at_least, report, training_flags

GRAMMARS = ("arithmetic", "english")  # grammars.GRAMMARS, not imported: --help must not load torch


def register(sub: argparse._SubParsersAction) -> None:
    verbs = application(sub, "tree", help="a binary parse tree per sentence, learned without trees",
                        description="An autoencoder whose code is a parse tree: a neural PCFG learns a grammar of "
                                    "the sentences by maximising their likelihood summed over all trees, and "
                                    "parses each sentence into the tree it most likely has.", run=run)
    t = verbs.add_parser("train", help="learn a grammar from a text file of sentences (no trees needed)",
                         description="Train on DATA, a UTF-8 text file with one sentence of space-separated tokens "
                                     "per line (empty lines are skipped).")
    t.add_argument("data")
    t.add_argument("--out", required=True, help="model directory to write")
    t.add_argument("--nonterminals", type=int_at_least(1, 512), default=20,
                   help="grammar symbols over two tokens or more (default 20)")
    t.add_argument("--preterminals", type=int_at_least(1, 512), default=30,
                   help="grammar symbols over one token (default 30)")
    training_flags(t, epochs=10)
    p = verbs.add_parser("parse", help="write a tree for every line of a text file",
                         description="Parse each non-empty line of INPUT (space-separated tokens) into a binary tree.")
    p.add_argument("input")
    p.add_argument("--model", required=True, help="model directory from 'aekit tree train'")
    p.add_argument("--out", required=True,
                   help="file to write: .jsonl, one {\"line\", \"tokens\", \"spans\"} object per line, with the "
                        "0-based end-exclusive spans of the internal nodes; .txt with --format brackets")
    p.add_argument("--format", choices=("jsonl", "brackets"), default="jsonl",
                   help="jsonl (default) or brackets: one readable bracketed tree per line, e.g. (1 (+ 2))")
    g = verbs.add_parser("generate", help="write sentences of a built-in grammar, with their gold trees",
                         description="Sentences whose right bracketing is known, to measure learned trees: "
                                     "arithmetic (precedence, left associativity, parentheses) or english "
                                     "(a small English-like grammar).")
    g.add_argument("grammar", choices=GRAMMARS)
    g.add_argument("--sentences", type=int_at_least(1, 10_000_000), default=20000, help="how many (default 20000)")
    g.add_argument("--out", required=True, help="text file of sentences to write (.txt)")
    g.add_argument("--trees", help="JSON-lines file of their gold trees to write (.jsonl)")
    g.add_argument("--seed", type=int_at_least(0, 2**31 - 1), default=0)
    e = verbs.add_parser("evaluate", help="bracketing F1 of trees against gold trees",
                         description="Unlabeled bracketing F1 (sentence mean; one-token spans and the whole "
                                     "sentence excluded) of TREES against GOLD, next to left-branching, "
                                     "right-branching and random trees.")
    e.add_argument("trees", help="JSON-lines trees from 'aekit tree parse'")
    e.add_argument("--gold", required=True, help="JSON-lines gold trees of the same sentences")


def run(args: argparse.Namespace) -> int:
    from . import jobs

    if args.verb == "train":
        model = jobs.train_file(args.data, args.out, resume=args.resume, epochs=args.epochs,
                                nonterminals=args.nonterminals, preterminals=args.preterminals,
                                random_state=args.seed, verbose=0 if args.quiet else 1)
        for line in model.notices_:
            print(f"note: {line}")
        report(f"trained on {model.adapter_.describe()}; model written to {args.out}")
    elif args.verb == "parse":
        out, count, notices = jobs.parse_file(args.input, args.out, args.model, format=args.format)
        for line in notices:
            print(f"note: {line}")
        print(f"wrote {count} trees to {out}")
    elif args.verb == "generate":
        paths = jobs.generate_file(args.grammar, args.out, sentences=args.sentences, trees=args.trees, seed=args.seed)
        print(f"wrote {args.sentences} {args.grammar} sentences to {' and their trees to '.join(map(str, paths))}")
    else:
        scores = jobs.evaluate_files(args.trees, args.gold)
        print("  ".join(f"{name} F1 {100 * value:.1f}" for name, value in scores.items()))
    return 0
