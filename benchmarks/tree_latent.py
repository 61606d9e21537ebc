"""Trees learned without trees, against the trees that need no learning (issue 17).

For each built-in grammar (``aekit.apps.tree.grammars``): train ``TreeAutoEncoder`` with its
defaults on 20,000 generated sentences (seed 0), parse 2,000 held-out ones (seed 1, never
trained on), and score unlabeled bracketing F1 (sentence mean; one-token spans and the
whole sentence excluded) against the gold trees, next to left-branching, right-branching and
random binary trees on the same sentences. Also: training time, reconstruction accuracy
(share of tokens rebuilt from each leaf's symbol), and the trees of 5 held-out inputs.

On arithmetic, "( ) found" is the share of the spans that parentheses fix (each group and
its contents, ``grammars.parenthesised``) that the trees have, for aekit and for the best
baseline: which way an operator groups (``(1 (+ 2))`` or ``((1 +) 2)``, left or right
associative) leaves no trace in the sentences, so a grammar learned from them may pick any
convention; the parentheses it cannot ignore.

    python benchmarks/tree_latent.py                       # both grammars, 20,000 sentences
    python benchmarks/tree_latent.py --grammars arithmetic --train 5000 --seeds 0 1 2
    python benchmarks/tree_latent.py --seeds 0 1 2 --params lr_decay=1.0   # a setting other than the default
"""
from __future__ import annotations

import argparse
import random
import sys

from _common import Timer, parse_spec, set_threads, table

from aekit.apps.tree import grammars
from aekit.apps.tree.metrics import brackets, left_branching, mean_f1, random_tree, right_branching
from aekit.apps.tree.model import TreeAutoEncoder


def run(grammar: str, n_train: int, n_test: int, seed: int, epochs: int | None,
        settings: dict) -> tuple[list[str], list[str]]:
    train = [" ".join(grammars.leaves(t)) for t in grammars.generate(grammar, n_train, seed=2 * seed)]
    held_out = grammars.generate(grammar, n_test, seed=2 * seed + 1)
    test = [" ".join(grammars.leaves(t)) for t in held_out]
    gold = [grammars.tree_spans(t) for t in held_out]
    lengths = [len(s.split()) for s in test]
    params = {"random_state": seed, "verbose": 1, **settings}
    if epochs is not None:
        params["epochs"] = epochs
    model = TreeAutoEncoder(**params)
    with Timer() as fit_time:
        model.fit(train)
    with Timer() as parse_time:
        parsed = model.parse(test)
    rng = random.Random(seed)
    f1 = {"aekit tree": mean_f1([p["spans"] for p in parsed], gold, lengths),
          "left-branching": mean_f1([left_branching(n) for n in lengths], gold, lengths),
          "right-branching": mean_f1([right_branching(n) for n in lengths], gold, lengths),
          "random": mean_f1([random_tree(n, rng) for n in lengths], gold, lengths)}
    best_baseline = max(v for k, v in f1.items() if k != "aekit tree")
    found = "-"
    if grammar == "arithmetic":
        fixed = [set(grammars.parenthesised(s.split())) for s in test]
        total = sum(map(len, fixed))

        def share(trees: list) -> float:
            return sum(len(f & {tuple(s) for s in t}) for f, t in zip(fixed, trees, strict=True)) / total

        baseline = max(share([tree(n) for n in lengths]) for tree in (left_branching, right_branching))
        found = f"{100 * share([p['spans'] for p in parsed]):.1f} / {100 * baseline:.1f}"
    row = [grammar, str(seed), *(f"{100 * v:.1f}" for v in f1.values()),
           f"{100 * (f1['aekit tree'] - best_baseline):+.1f}", found,
           f"{100 * model.reconstruction_accuracy(test):.1f}", f"{fit_time.seconds:.0f}",
           f"{len(test) / parse_time.seconds:.0f}", str(len(model.training_history_))]
    examples = [f"{grammar}: {brackets(p['tokens'], p['spans'])}\n    gold: {grammars.brackets(t)}"
                for p, t in list(zip(parsed, held_out, strict=True))[:5]]
    return row, examples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grammars", nargs="+", choices=sorted(grammars.GRAMMARS), default=["arithmetic", "english"])
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, help="default: the model's")
    parser.add_argument("--params", default="", help="TreeAutoEncoder settings other than the defaults, "
                        "as 'lr_decay=1.0,batch_size=8'")
    args = parser.parse_args()
    settings = parse_spec(":" + args.params)[1]
    set_threads()
    rows, examples = [], []
    for grammar in args.grammars:
        for seed in args.seeds:
            row, shown = run(grammar, args.train, args.test, seed, args.epochs, settings)
            rows.append(row)
            examples += shown if seed == args.seeds[0] else []
            print(" ".join(row), file=sys.stderr)
    print(table(rows, ["grammar", "seed", "F1 aekit", "F1 left", "F1 right", "F1 random", "vs best baseline", "( ) found: aekit / baseline",
                       "reconstruction %", "train s", "parse sent/s", "epochs"]))
    print("\nInferred trees of held-out inputs:")
    print("\n".join(examples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
