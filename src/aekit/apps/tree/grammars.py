"""Sentences with a known bracketing, to measure trees that were learned without them.

Each generator draws sentences from a binary-branching grammar and returns them with their
gold trees. A tree is a token (a leaf) or a pair ``(left, right)``; ``tree_spans`` turns it
into the 0-based, end-exclusive spans of its internal nodes, the form parses are written in.

- ``arithmetic``: expressions over the digits 0-9 with ``+ - * /`` and parentheses, with
  operator precedence and left associativity. An operator groups with its right operand,
  and that group with the left operand: ``1 * 2 + 3`` is ``((1 (* 2)) (+ 3))``; a
  parenthesised expression is ``(( (E )))``, read ``("(" (E ")"))``.
- ``english``: a small English-like grammar: noun phrases with determiners, adjectives,
  prepositional phrases and relative clauses; transitive, intransitive and sentential verbs;
  prepositional phrases attached to verb phrases.

Both use a seeded ``random.Random``, so the same seed gives the same sentences.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Union

Tree = Union[str, tuple["Tree", "Tree"]]

MIN_TOKENS, MAX_TOKENS = 3, 25


def leaves(tree: Tree) -> list[str]:
    if isinstance(tree, str):
        return [tree]
    return leaves(tree[0]) + leaves(tree[1])


def tree_spans(tree: Tree) -> list[tuple[int, int]]:
    """``(i, j)`` spans of the internal nodes, parents before children, left to right."""
    spans: list[tuple[int, int]] = []

    def walk(node: Tree, start: int) -> int:
        if isinstance(node, str):
            return start + 1
        at = len(spans)
        spans.append((start, start))
        end = walk(node[1], walk(node[0], start))
        spans[at] = (start, end)
        return end

    walk(tree, 0)
    return spans


def brackets(tree: Tree) -> str:
    """The tree as text: ``(1 (+ 2))``."""
    if isinstance(tree, str):
        return tree
    return f"({brackets(tree[0])} {brackets(tree[1])})"


def parenthesised(tokens: list[str]) -> list[tuple[int, int]]:
    """The spans that parentheses fix in any binary tree of an arithmetic sentence: each
    group ``( E )`` and the ``E`` inside it (when it has two tokens or more). Which way an
    operator groups with its operands (``(1 (+ 2))`` or ``((1 +) 2)``, left or right
    associative) leaves no trace in the sentences a context-free grammar makes, so a
    grammar learned from sentences alone may pick either; these spans it cannot."""
    spans, opened = [], []
    for k, token in enumerate(tokens):
        if token == "(":
            opened.append(k)
        elif token == ")" and opened:
            i = opened.pop()
            spans.append((i, k + 1))
            if k - i > 2:
                spans.append((i + 1, k))
    return spans


def _right(*parts: Tree) -> Tree:
    """An n-ary node made binary the way the grammars read: ``(a (b c))``."""
    return parts[0] if len(parts) == 1 else (parts[0], _right(*parts[1:]))


# ---------------------------------------------------------------------- arithmetic
def _expression(rng: random.Random, depth: int) -> Tree:
    tree = _term(rng, depth)
    while rng.random() < 0.4:  # left associative: ((a (+ b)) (- c))
        tree = (tree, (rng.choice("+-"), _term(rng, depth)))
    return tree


def _term(rng: random.Random, depth: int) -> Tree:
    tree = _factor(rng, depth)
    while rng.random() < 0.35:
        tree = (tree, (rng.choice("*/"), _factor(rng, depth)))
    return tree


def _factor(rng: random.Random, depth: int) -> Tree:
    if depth < 4 and rng.random() < 0.25:
        return _right("(", _expression(rng, depth + 1), ")")
    return str(rng.randrange(10))


def _arithmetic(rng: random.Random) -> Tree:
    return _expression(rng, 0)


# ---------------------------------------------------------------------- English-like
_WORDS = {
    "Det": "the a every some this no".split(),
    "N": "dog cat man woman child bird park house telescope garden teacher student book river city".split(),
    "Adj": "big small old young red happy quiet strange".split(),
    "Name": "john mary alice bob".split(),
    "Vt": "saw liked chased found met helped followed".split(),
    "Vi": "slept ran laughed arrived waited".split(),
    "Vs": "said thought knew believed".split(),
    "P": "in with near on under behind".split(),
    "Adv": "quickly quietly again today".split(),
}


def _noun_phrase(rng: random.Random, depth: int) -> Tree:
    if rng.random() < 0.15:
        np: Tree = rng.choice(_WORDS["Name"])
    else:
        nbar: Tree = rng.choice(_WORDS["N"])
        for _ in range(2):
            if rng.random() < 0.3:
                nbar = (rng.choice(_WORDS["Adj"]), nbar)
        np = (rng.choice(_WORDS["Det"]), nbar)
    if depth < 3:
        if rng.random() < 0.2:
            np = (np, _prepositional(rng, depth + 1))
        elif rng.random() < 0.1:
            np = (np, ("that", _verb_phrase(rng, depth + 1)))
    return np


def _prepositional(rng: random.Random, depth: int) -> Tree:
    return rng.choice(_WORDS["P"]), _noun_phrase(rng, depth)


def _verb_phrase(rng: random.Random, depth: int) -> Tree:
    r = rng.random()
    if r < 0.5:
        vp: Tree = (rng.choice(_WORDS["Vt"]), _noun_phrase(rng, depth + 1))
    elif r < 0.8 or depth >= 2:
        vp = rng.choice(_WORDS["Vi"])
    else:
        vp = (rng.choice(_WORDS["Vs"]), ("that", _sentence(rng, depth + 1)))
    if depth < 3 and rng.random() < 0.25:
        vp = (vp, _prepositional(rng, depth + 1))
    if rng.random() < 0.15:
        vp = (vp, rng.choice(_WORDS["Adv"]))
    return vp


def _sentence(rng: random.Random, depth: int) -> Tree:
    return _noun_phrase(rng, depth), _verb_phrase(rng, depth)


def _english(rng: random.Random) -> Tree:
    return _sentence(rng, 0)


GRAMMARS: dict[str, Callable[[random.Random], Tree]] = {"arithmetic": _arithmetic, "english": _english}


def generate(grammar: str, n: int, seed: int = 0, min_tokens: int = MIN_TOKENS,
             max_tokens: int = MAX_TOKENS) -> list[Tree]:
    """``n`` gold trees of ``grammar`` whose sentences have ``min_tokens`` to ``max_tokens``
    tokens (others are drawn again)."""
    if grammar not in GRAMMARS:
        raise ValueError(f"grammar must be one of {sorted(GRAMMARS)}, got {grammar!r}")
    rng = random.Random(seed)
    draw = GRAMMARS[grammar]
    trees: list[Tree] = []
    while len(trees) < n:
        tree = draw(rng)
        if min_tokens <= len(leaves(tree)) <= max_tokens:
            trees.append(tree)
    return trees
