"""Tree as the code: an autoencoder whose code is a binary parse tree, learned without trees.

``TreeAutoEncoder`` is a neural PCFG (``nn.tree``): the encoder is the exact posterior over
binary trees of a sentence (the inside algorithm), the code is the tree with a symbol at
each node, and the decoder is the grammar that generates the sentence from that tree.
Training maximises the marginal likelihood of the sentences; no tree is ever shown.

``parse`` writes each sentence's minimum-risk tree (the binary tree with the largest
expected number of correct spans under the posterior); ``sample`` draws trees from the
posterior; ``reconstruction_accuracy`` says how much of a sentence its code keeps.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...checks import check_int
from ...data.adapters import TokenAdapter
from ...data.text import Tokenizer, read_numbered_lines
from ...errors import DataError
from ...estimator import FittedModel, TensorGroups, check_train_rows
from ...nn.tree import Grammar, NeuralPCFG, inside, inside_bytes, mbr_spans, sample_trees, span_marginals

BLOCK_BYTES = 512 << 20  # the estimated memory of one inference block of sentences
SENTENCE_BYTES = 2 << 30  # a sentence whose pass alone needs more is not parsed (the pass grows as n^3)


GLUED_PUNCTUATION = re.compile(r"\w[.,;:!?]+$")  # 'frontline.', 'offensive,': a word with its punctuation
GLUED_SHARE = 0.05  # raw prose has about one in ten; tokenized text none


@dataclass
class Sentences:
    """Non-empty input lines: their tokens and 1-based line numbers, and what reading skipped."""

    tokens: list[list[str]]
    lines: list[int]
    notices: list[str]

    @property
    def texts(self) -> list[str]:
        return [" ".join(t) for t in self.tokens]


def read_sentences(X: Any) -> Sentences:
    """Sentences of space-separated tokens from a text file (one per line) or a list of
    strings; empty lines are skipped with a notice, an empty, binary or non-UTF-8 file is a
    ``DataError``."""
    if isinstance(X, (str, os.PathLike)):
        texts, numbers = read_numbered_lines(X)
    else:
        items = list(X)
        bad = next((type(x).__name__ for x in items if not isinstance(x, str)), None)
        if bad is not None:
            raise DataError(f"expected sentences as strings, got a {bad}")
        numbered = [(k, x) for k, x in enumerate(items, 1) if x.strip()]
        if not numbered:
            raise DataError("no sentences: every line is empty")
        texts, numbers = [x for _, x in numbered], [k for k, _ in numbered]
    skipped = numbers[-1] - len(numbers)
    notices = [f"skipped {skipped} empty line{'s' * (skipped != 1)}"] if skipped else []
    tokens = [t.split() for t in texts]
    glued = [w for line in tokens for w in line if GLUED_PUNCTUATION.search(w)]
    total = sum(map(len, tokens))
    if len(glued) >= GLUED_SHARE * total:
        shown = ", ".join(repr(w) for w in glued[:2])
        notices.append(f"{len(glued)} of {total} tokens carry punctuation ({shown}): trees are over space-separated "
                       "tokens, so split it off first, as treebanks do ('end .')")
    return Sentences(tokens, numbers, notices)


class TreeAutoEncoder(FittedModel):
    """A neural PCFG whose code for a sentence is a binary tree over its tokens.

    ``fit(X)``: ``X`` sentences of space-separated tokens (a text file, one per line, or a
    list of strings). ``nonterminals`` and ``preterminals``: the grammar's symbols (inner
    nodes, and nodes over one token); ``dim``: the symbol embeddings that the rule
    probabilities are computed from. The vocabulary keeps the ``vocab_size`` most frequent
    tokens seen at least ``min_count`` times (others read as ``<unk>``). Sentences of one
    token (no tree to learn from) and of more than ``max_train_tokens`` (the inside pass
    costs the cube of the length) are left out of training, with a notice.
    """

    _kind = "tree.TreeAutoEncoder"
    _network_class = NeuralPCFG

    def __init__(self, *, nonterminals: int = 20, preterminals: int = 30, dim: int = 128, vocab_size: int = 10000,
                 min_count: int = 2, max_train_tokens: int = 40, epochs: int = 10, batch_size: int = 32,
                 lr: float = 2e-3, lr_decay: float = 0.1, patience: int = 3, validation_fraction: float = 0.05,
                 random_state: int = 0, verbose: int = 0, checkpoint_dir: str | None = None,
                 resume: bool = False) -> None:
        self.nonterminals = nonterminals
        self.preterminals = preterminals
        self.dim = dim
        self.vocab_size = vocab_size
        self.min_count = min_count
        self.max_train_tokens = max_train_tokens
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_decay = lr_decay
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume

    def _check_params(self) -> None:
        super()._check_params()
        check_int(self.nonterminals, "nonterminals", 1, 512)
        check_int(self.preterminals, "preterminals", 1, 512)
        check_int(self.dim, "dim", 1, 4096)
        check_int(self.vocab_size, "vocab_size", 5, 1 << 22)
        check_int(self.min_count, "min_count", 1)
        check_int(self.max_train_tokens, "max_train_tokens", 2, 1000)
        check_int(self.patience, "patience", 1)

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any = None) -> TreeAutoEncoder:
        """Learn a grammar of the sentences ``X`` (``y`` is ignored: no trees are needed)."""
        self._check_params()
        read = read_sentences(X)
        lengths = [len(t) for t in read.tokens]
        kept = [t for t, n in zip(read.texts, lengths, strict=True) if 2 <= n <= self.max_train_tokens]
        self.notices_: list[str] = list(read.notices)
        short, long = sum(n < 2 for n in lengths), sum(n > self.max_train_tokens for n in lengths)
        if short:
            self.notices_.append(f"left {short} sentences of one token out of training (they have no tree)")
        if long:
            self.notices_.append(f"left {long} sentences of more than {self.max_train_tokens} tokens out of training")
        check_train_rows(len(kept), self._min_rows, f"sentences of 2 to {self.max_train_tokens} tokens",
                         "; ".join(f"{n} {what}" for n, what in ((short, "of one token"),
                                                                  (long, f"of more than {self.max_train_tokens}"))
                                   if n))
        self.adapter_ = TokenAdapter(Tokenizer(self.vocab_size, self.min_count, lowercase=False, spaces=True))
        ids, lens = self.adapter_.fit_transform(kept)
        train_idx, val_idx = (torch.as_tensor(i) for i in self._split(len(kept)))
        torch.manual_seed(self.random_state)
        model = NeuralPCFG(len(self.adapter_.tokenizer), self.nonterminals, self.preterminals, self.dim)
        val = (ids[val_idx], lens[val_idx]) if len(val_idx) else None
        result = self._train(model, (ids[train_idx], lens[train_idx]), val, seed=self.random_state, name="model",
                             desc="tree autoencoder", bucket_by=1)
        self.training_history_ = result.history
        self.model_ = model
        return self

    # ------------------------------------------------------------------ inference
    def max_parse_tokens(self) -> int:
        """The longest sentence this grammar parses within ``SENTENCE_BYTES`` of memory."""
        symbols = self.nonterminals + self.preterminals
        n = 2
        while inside_bytes(n + 1, symbols) <= SENTENCE_BYTES:
            n += 1
        return n

    def _blocks(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], list[int]]:
        """Row indices in length order, cut into blocks whose passes fit ``BLOCK_BYTES``, and
        the rows too long to parse at all (their pass alone needs over ``SENTENCE_BYTES``):
        the memory is known before anything is allocated."""
        symbols = self.nonterminals + self.preterminals
        blocks, block, too_long = [], [], []
        for row in torch.argsort(lengths, stable=True).tolist():  # the last row is the longest so far
            need = inside_bytes(int(lengths[row]), symbols)
            if need > SENTENCE_BYTES:
                too_long.append(row)
                continue
            if block and (len(block) + 1) * need > BLOCK_BYTES:
                blocks.append(torch.tensor(block))
                block = []
            block.append(row)
        return blocks + ([torch.tensor(block)] if block else []), sorted(too_long)

    def _too_long(self, read: Sentences, rows: list[int]) -> str:
        lines = ", ".join(str(read.lines[r]) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        return (f"{len(rows)} sentence{'s' * (len(rows) != 1)} of more than {self.max_parse_tokens()} tokens "
                f"(line{'s' * (len(rows) != 1)} {lines}): parsing one would need over "
                f"{SENTENCE_BYTES >> 30} GiB, growing with the cube of its length")

    def _parseable_blocks(self, read: Sentences, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """``_blocks`` for the methods that need every sentence: a too-long one is a ``DataError``."""
        blocks, too_long = self._blocks(ids, lengths)
        if too_long:
            raise DataError(self._too_long(read, too_long) + "; split or leave out such lines")
        return blocks

    def _encoded(self, X: Any) -> tuple[Sentences, torch.Tensor, torch.Tensor]:
        self._check_fitted()
        read = read_sentences(X)
        self.notices_ = list(read.notices)
        ids, lengths = self.adapter_.transform(read.texts)
        return read, ids, lengths

    @torch.no_grad()
    def _grammar(self) -> Grammar:
        """The rule probabilities, computed once per call of an inference method."""
        return self.model_.grammar()

    @staticmethod
    def _posterior(g: Grammar, ids: torch.Tensor,
                   lengths: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        n = max(int(lengths.max()), 1)
        return span_marginals(g, ids[:, :n], lengths)

    def parse(self, X: Any) -> list[dict[str, Any]]:
        """One tree per non-empty sentence of ``X``: ``{"line", "tokens", "spans"}`` with the
        1-based line number, the tokens, and the 0-based, end-exclusive spans of the tree's
        internal nodes (parents first; none for a one-token sentence). Skipped empty lines
        are listed in ``notices_``."""
        read, ids, lengths = self._encoded(X)
        g = self._grammar()
        blocks, too_long = self._blocks(ids, lengths)
        if too_long:
            self.notices_.append("skipped " + self._too_long(read, too_long))
        spans: list[list[tuple[int, int]] | None] = [None] * len(read.tokens)
        for rows in blocks:
            _, marginals, _ = self._posterior(g, ids[rows], lengths[rows])
            for row, tree in zip(rows.tolist(), mbr_spans(marginals, lengths[rows]), strict=True):
                spans[row] = tree
        return [{"line": line, "tokens": tokens, "spans": [list(s) for s in tree]}
                for line, tokens, tree in zip(read.lines, read.tokens, spans, strict=True) if tree is not None]

    def score_samples(self, X: Any) -> np.ndarray:
        """``log p(x)`` of each non-empty sentence of ``X`` under the grammar, summed over
        all trees (``-inf`` for one-token sentences, which a binary grammar never makes)."""
        read, ids, lengths = self._encoded(X)
        out = np.full(len(ids), -np.inf)
        g = self._grammar()
        with torch.no_grad():
            for rows in self._parseable_blocks(read, ids, lengths):
                n = int(lengths[rows].max())
                log_z, _ = inside(g.emissions(ids[rows, :n]), g, lengths[rows])
                long = lengths[rows] > 1
                out[rows[long].numpy()] = log_z[long].double().numpy()
        return out

    def sample(self, X: Any, n_samples: int = 1, random_state: int | None = None) -> list[list[list[list[int]]]]:
        """``n_samples`` trees per sentence of ``X`` drawn from the posterior, each as its
        internal-node spans ``[i, j]`` (parents first)."""
        check_int(n_samples, "n_samples", 1, 1 << 20)
        read, ids, lengths = self._encoded(X)
        rng = np.random.default_rng(random_state)
        out: list[list[list[list[int]]]] = [[] for _ in range(len(ids))]
        g = self._grammar()
        with torch.no_grad():
            for rows in self._parseable_blocks(read, ids, lengths):
                n = int(lengths[rows].max())
                _, chart = inside(g.emissions(ids[rows, :n]), g, lengths[rows])
                draws = sample_trees(chart, g, lengths[rows], n_samples, rng)
                for row, trees in zip(rows.tolist(), draws, strict=True):
                    out[row] = [[[i, j] for i, j, _ in nodes if j - i > 1] for nodes in trees]
        return out

    def reconstruction_accuracy(self, X: Any) -> float:
        """Share of tokens that the decoder rebuilds from the code: each leaf's most likely
        preterminal under the posterior, then that preterminal's most likely token."""
        read, ids, lengths = self._encoded(X)
        g = self._grammar()
        best_word = g.words.argmax(-1)
        right = total = 0
        for rows in self._parseable_blocks(read, ids, lengths):
            _, _, preterminals = self._posterior(g, ids[rows], lengths[rows])
            guess = best_word[preterminals.argmax(-1)]
            n = guess.shape[1]
            real = torch.arange(n) < lengths[rows].unsqueeze(1)
            right += int(((guess == ids[rows, :n]) & real).sum())
            total += int(real.sum())
        return right / max(total, 1)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        return {"epochs_run": len(getattr(self, "training_history_", []))}, {}

    def _set_state(self, networks: dict[str, Any], state: dict[str, Any], groups: TensorGroups) -> None:
        self.model_ = networks["model"]
        self.training_history_, self.notices_ = [], []
