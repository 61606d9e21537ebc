"""How good a tree is when the right one is known: unlabeled bracketing F1, and the trees
that need no learning (left-branching, right-branching, random) to compare against.

Trees are lists of internal-node spans ``(i, j)`` (0-based, end-exclusive). As in the
unsupervised-parsing literature, F1 is computed per sentence over the spans of two tokens or
more other than the whole sentence (every binary tree has those), then averaged over the
sentences that have at least one such gold span.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Sequence

Spans = Iterable[Sequence[int]]


def _scored(spans: Spans, length: int) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in spans if j - i > 1 and (i, j) != (0, length)}


def sentence_f1(predicted: Spans, gold: Spans, length: int) -> float | None:
    """Unlabeled F1 of one sentence's tree (``None`` when the gold tree has no span to score)."""
    p, g = _scored(predicted, length), _scored(gold, length)
    if not g:
        return None
    hit = len(p & g)
    return 2 * hit / (len(p) + len(g)) if hit else 0.0


def mean_f1(predicted: Sequence[Spans], gold: Sequence[Spans], lengths: Sequence[int]) -> float:
    """Sentence-level mean F1 over the sentences with a span to score."""
    if not len(predicted) == len(gold) == len(lengths):
        raise ValueError(f"got {len(predicted)} predicted trees, {len(gold)} gold trees and {len(lengths)} lengths")
    scores = [f for p, g, n in zip(predicted, gold, lengths, strict=True) if (f := sentence_f1(p, g, n)) is not None]
    return sum(scores) / len(scores) if scores else float("nan")


def left_branching(length: int) -> list[tuple[int, int]]:
    return [(0, j) for j in range(length, 1, -1)]


def right_branching(length: int) -> list[tuple[int, int]]:
    return [(i, length) for i in range(length - 1)]


def random_tree(length: int, rng: random.Random) -> list[tuple[int, int]]:
    """A binary tree with each split point drawn uniformly."""
    spans: list[tuple[int, int]] = []
    stack = [(0, length)] if length > 1 else []
    while stack:
        i, j = stack.pop()
        spans.append((i, j))
        k = rng.randrange(i + 1, j)
        stack += [s for s in ((k, j), (i, k)) if s[1] - s[0] > 1]
    return spans


def brackets(tokens: Sequence[str], spans: Spans) -> str:
    """A tree as text, ``(the (big dog))``, from its tokens and internal-node spans."""
    nodes = {(int(i), int(j)) for i, j in spans}

    def render(i: int, j: int) -> str:
        if j - i == 1:
            return tokens[i]
        parts, at = [], i
        while at < j:  # the widest node inside (i, j) that starts here, else the token
            end = max((e for s, e in nodes if s == at and e <= j and (s, e) != (i, j)), default=at + 1)
            parts.append(render(at, end))
            at = end
        return "(" + " ".join(parts) + ")"

    return render(0, len(tokens)) if tokens else ""
