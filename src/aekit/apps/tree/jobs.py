"""What the tree commands do, callable from Python: train, parse a file, make sentences of
a known grammar, and score trees against gold ones."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from ...data.text import lines_at, read_numbered_lines
from ...errors import DataError
from ... import marks
from ...io import atomic_write_text, check_output_file
from . import grammars
from .metrics import brackets, left_branching, mean_f1, random_tree, right_branching
from .model import TreeAutoEncoder

PathLike = str | os.PathLike[str]
FORMATS = ("jsonl", "brackets")


def train_file(data: PathLike, out: PathLike, *, resume: bool = False, **params: Any) -> TreeAutoEncoder:
    """Train on the sentences of ``data`` (one per line, tokens separated by spaces) and save
    the model at ``out``."""
    return TreeAutoEncoder(**params).fit_to(data, out, resume=resume, inputs=(data,))


def parse_file(data: PathLike, out: PathLike, model: PathLike, *, format: str = "jsonl") -> tuple[Path, int, list[str]]:
    """Write one tree per non-empty line of ``data`` to ``out``: JSON lines
    ``{"line", "tokens", "spans"}``, or ``format="brackets"``, line k the bracketed tree of
    line k (blank where that line is blank, or was skipped with a notice). Returns the path,
    the number of trees and the notices."""
    if format not in FORMATS:
        raise DataError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    out = check_output_file(out, marks.TREES if format == "jsonl" else marks.TEXT, inputs=[data],
                            suffixes=(".jsonl",) if format == "jsonl" else (".txt",))
    parser = TreeAutoEncoder.load(model)
    trees = parser.parse(data)
    if format == "jsonl":
        text = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in trees)
    else:
        text = lines_at([brackets(t["tokens"], t["spans"]) for t in trees], [t["line"] for t in trees])
    atomic_write_text(out, text)
    return out, len(trees), parser.notices_


def generate_file(grammar: str, out: PathLike, *, sentences: int, trees: PathLike | None = None,
                  seed: int = 0) -> list[Path]:
    """Write ``sentences`` sentences of a built-in grammar (``grammars.GRAMMARS``) to the text
    file ``out``, and their gold trees to ``trees`` (JSON lines, as ``parse_file`` writes)."""
    outputs = [check_output_file(out, marks.TEXT, suffixes=(".txt",))]
    if trees is not None:
        outputs.append(check_output_file(trees, marks.TREES, inputs=[out], suffixes=(".jsonl",), option="--trees"))
    gold = grammars.generate(grammar, sentences, seed)
    atomic_write_text(outputs[0], "".join(" ".join(grammars.leaves(t)) + "\n" for t in gold))
    if trees is not None:
        atomic_write_text(outputs[1], "".join(
            json.dumps({"line": k, "tokens": grammars.leaves(t), "spans": [list(s) for s in grammars.tree_spans(t)]})
            + "\n" for k, t in enumerate(gold, 1)))
    return outputs


def read_trees(path: PathLike) -> list[dict[str, Any]]:
    """Trees from a JSON-lines file as ``parse_file`` writes it (each checked)."""
    rows, numbers = read_numbered_lines(path)
    trees = []
    for line, number in zip(rows, numbers, strict=True):
        try:
            tree = json.loads(line)
            tokens, spans = tree["tokens"], tree["spans"]
            n = len(tokens)
            if not all(isinstance(t, str) for t in tokens) or not all(
                    len(s) == 2 and all(isinstance(v, int) for v in s) and 0 <= s[0] < s[1] <= n for s in spans):
                raise ValueError
        except (ValueError, TypeError, KeyError):
            raise DataError(f"{path}, line {number}: expected a tree {{\"tokens\": [...], \"spans\": [[i, j], ...]}} "
                            "with spans inside the sentence") from None
        trees.append(tree)
    return trees


def evaluate_files(predicted: PathLike, gold: PathLike, seed: int = 0) -> dict[str, float]:
    """Unlabeled bracketing F1 of the trees in ``predicted`` against ``gold`` (both JSON
    lines, the same sentences in the same order), next to the trees that need no learning."""
    pred, ref = read_trees(predicted), read_trees(gold)
    if len(pred) != len(ref):
        raise DataError(f"{predicted} has {len(pred)} trees and {gold} has {len(ref)}; they must be the same sentences")
    for k, (p, g) in enumerate(zip(pred, ref, strict=True), 1):
        if p["tokens"] != g["tokens"]:
            raise DataError(f"tree {k} is of another sentence in {predicted} than in {gold}")
    lengths = [len(g["tokens"]) for g in ref]
    gold_spans = [g["spans"] for g in ref]
    rng = random.Random(seed)
    return {"model": mean_f1([p["spans"] for p in pred], gold_spans, lengths),
            "left-branching": mean_f1([left_branching(n) for n in lengths], gold_spans, lengths),
            "right-branching": mean_f1([right_branching(n) for n in lengths], gold_spans, lengths),
            "random": mean_f1([random_tree(n, rng) for n in lengths], gold_spans, lengths)}
