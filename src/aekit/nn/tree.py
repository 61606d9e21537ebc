"""A tree as the code: a neural PCFG (Kim, Dyer & Rush 2019) and its inside algorithm.

The encoder is the posterior over binary trees given a sentence, computed exactly by the
inside algorithm; the decoder is the grammar, which generates the sentence top-down from
the tree: the root symbol, a rule ``A -> B C`` at each internal node, a word from each
leaf's preterminal. Training maximises the marginal likelihood ``log p(x)``, summed over
all trees by the same inside pass.

The inside pass is vectorised over the batch, the span starts and the split points; a
Python loop runs over span widths only. Each chart cell holds probabilities scaled to a
maximum of 1 and the log of the scale, so the products of many small probabilities stay
in float32 range. Symbols are ``nonterminals`` then ``preterminals``; only preterminals
cover one token, only nonterminals cover more.

- ``span_marginals``: ``p(span i..j is a node | x)`` as the gradient of ``log p(x)`` with
  respect to a zero potential on each span, and each token's preterminal posterior.
- ``mbr_spans``: the binary tree with the largest sum of span marginals (CKY).
- ``sample_trees``: exact draws from the posterior, top-down through the inside chart.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ParameterError

LOSS_GROUP = 256


class _Residual(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


def _head(dim: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), _Residual(dim), _Residual(dim), nn.Linear(dim, out))


@dataclass
class Grammar:
    """The rule probabilities, in log space: ``root [NT]``, ``rules [NT, S, S]`` (``S = NT + T``
    symbols: nonterminals first), ``words [T, V]``."""

    root: Tensor
    rules: Tensor
    words: Tensor

    @property
    def nonterminals(self) -> int:
        return self.root.shape[0]

    def emissions(self, ids: Tensor) -> Tensor:
        """``[B, n, T]``: log p(token | preterminal) of each token of ``ids [B, n]``."""
        return self.words[:, ids].permute(1, 2, 0)

    def detach(self) -> Grammar:
        return Grammar(self.root.detach(), self.rules.detach(), self.words.detach())


@dataclass
class Chart:
    """The inside chart: per span width ``w`` (index ``w``; index 0 unused), probabilities
    ``prob[w] [B, n-w+1, S]`` scaled to max 1 and their log scale ``scale[w] [B, n-w+1]``."""

    prob: list[Tensor]
    scale: list[Tensor]


class NeuralPCFG(nn.Module):
    """A PCFG whose rule probabilities come from symbol embeddings through small networks;
    ``loss(ids, progress, lengths)`` is the mean negative log likelihood per sentence."""

    def __init__(self, vocab_size: int, nonterminals: int = 20, preterminals: int = 30, dim: int = 128) -> None:
        super().__init__()
        self.config = {"vocab_size": vocab_size, "nonterminals": nonterminals, "preterminals": preterminals,
                       "dim": dim}
        symbols = nonterminals + preterminals
        self.root_embedding = nn.Parameter(torch.randn(1, dim) * 0.1)
        self.symbol_embedding = nn.Parameter(torch.randn(symbols, dim) * 0.1)
        self.root_head = _head(dim, nonterminals)
        self.rule_head = nn.Linear(dim, symbols * symbols)
        self.word_head = _head(dim, vocab_size)

    def spec(self) -> dict[str, Any]:
        return dict(self.config)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> NeuralPCFG:
        keys = {"vocab_size", "nonterminals", "preterminals", "dim"}
        if not isinstance(spec, dict) or set(spec) != keys:
            raise ParameterError(f"a neural PCFG spec needs exactly {sorted(keys)}")
        return cls(**spec)

    def grammar(self) -> Grammar:
        nt = self.config["nonterminals"]
        symbols = self.symbol_embedding.shape[0]
        root = self.root_head(self.root_embedding)[0].log_softmax(-1)
        rules = self.rule_head(self.symbol_embedding[:nt]).log_softmax(-1).view(nt, symbols, symbols)
        words = self.word_head(self.symbol_embedding[nt:]).log_softmax(-1)
        return Grammar(root, rules, words)

    def log_likelihood(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """``log p(x)`` per sentence ``[B]`` (``ids [B, n]``, padded past ``lengths``)."""
        g = self.grammar()
        return inside(g.emissions(ids), g, lengths)[0]

    def loss(self, ids: Tensor, progress: float, lengths: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        # in length order, at most LOSS_GROUP sentences at a time: a large batch (validation)
        # pads each group only to its own longest sentence and holds one group's chart
        groups = torch.argsort(lengths).split(LOSS_GROUP) if len(ids) > LOSS_GROUP else [torch.arange(len(ids))]
        nll = -sum(self.log_likelihood(ids[rows, :int(lengths[rows].max())], lengths[rows]).sum()
                   for rows in groups) / len(ids)
        return nll, {"nll": nll.detach()}


def inside(emissions: Tensor, g: Grammar, lengths: Tensor,
           span_potentials: list[Tensor] | None = None) -> tuple[Tensor, Chart]:
    """``(log p(x) [B], chart)`` of the sentences whose preterminal log-likelihoods are
    ``emissions [B, n, T]``; sentence ``b`` is its first ``lengths[b]`` tokens.
    ``span_potentials[w] [B, n-w+1]`` (optional) are added in log space to each span of
    width ``w >= 2``: their gradients are the span marginals."""
    batch, n, t = emissions.shape
    nt = g.nonterminals
    rule_probs = g.rules.exp().reshape(nt, -1).t()  # [S*S, NT]
    scale1 = emissions.detach().amax(-1)
    prob = [emissions.new_zeros(0), torch.cat([emissions.new_zeros(batch, n, nt),
                                               (emissions - scale1.unsqueeze(-1)).exp()], -1)]
    scale = [scale1.new_zeros(0), scale1]
    for w in range(2, n + 1):
        starts = n - w + 1
        left = torch.stack([prob[k][:, :starts] for k in range(1, w)], 2)  # [B, I, K, S]
        right = torch.stack([prob[w - k][:, k:k + starts] for k in range(1, w)], 2)
        both = (torch.stack([scale[k][:, :starts] for k in range(1, w)], 2)
                + torch.stack([scale[w - k][:, k:k + starts] for k in range(1, w)], 2))  # [B, I, K]
        top = both.detach().amax(-1, keepdim=True)
        pairs = ((left * (both - top).exp().unsqueeze(-1)).transpose(-1, -2) @ right)  # [B, I, S, S]
        out = pairs.reshape(batch, starts, -1) @ rule_probs  # [B, I, NT]
        peak = out.detach().amax(-1, keepdim=True).clamp_min(torch.finfo(out.dtype).tiny)
        prob.append(torch.cat([out / peak, out.new_zeros(batch, starts, t)], -1))
        s = top.squeeze(-1) + peak.squeeze(-1).log()
        scale.append(s + span_potentials[w] if span_potentials is not None else s)
    top_prob = torch.stack([prob[int(m)][b, 0, :nt] for b, m in enumerate(lengths.tolist())])
    top_scale = torch.stack([scale[int(m)][b, 0] for b, m in enumerate(lengths.tolist())])
    log_z = top_scale + (top_prob * g.root.exp()).sum(-1).clamp_min(torch.finfo(top_prob.dtype).tiny).log()
    return log_z, Chart(prob, scale)


def inside_bytes(length: int, symbols: int, batch: int = 1) -> int:
    """Memory that ``span_marginals`` needs for ``batch`` sentences padded to ``length``
    tokens with ``symbols`` symbols, an upper bound (measured: about 0.7 of it). Kept for
    the gradient, each width ``w`` holds its left and right children and their scaled
    product (``3 (n-w+1)(w-1) S`` floats) and the child pairs (``2 (n-w+1) S^2``): in all
    about ``S n^3 / 2 + S^2 n^2`` floats, which is why long sentences must be refused
    before the pass, not during it."""
    n = max(int(length), 1)
    return 4 * batch * (symbols * n ** 3 // 2 + symbols * symbols * n * n)


def span_marginals(g: Grammar, ids: Tensor, lengths: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
    """``(log p(x) [B], marginals, preterminal posteriors [B, n, T])``: ``marginals[w]
    [B, n-w+1]`` is the probability that the span of width ``w`` starting at ``i`` is a node."""
    n = ids.shape[1]
    g = g.detach()
    with torch.enable_grad():
        emissions = g.emissions(ids).clone().requires_grad_(True)
        potentials = [emissions.new_zeros(0), emissions.new_zeros(0)]
        potentials += [emissions.new_zeros(len(ids), n - w + 1).requires_grad_(True) for w in range(2, n + 1)]
        log_z, _ = inside(emissions, g, lengths, potentials)
        grads = torch.autograd.grad(log_z.sum(), [emissions, *potentials[2:]], allow_unused=True)
    marginals = [potentials[0], potentials[1]] + [gr if gr is not None else torch.zeros_like(p)
                                                   for gr, p in zip(grads[1:], potentials[2:], strict=True)]
    return log_z.detach(), marginals, grads[0]


def mbr_spans(marginals: list[Tensor], lengths: Tensor) -> list[list[tuple[int, int]]]:
    """Per sentence, the internal-node spans ``(i, j)`` of the binary tree with the largest
    sum of span marginals (parents before children)."""
    n = len(marginals) - 1
    batch = len(lengths)
    best = [torch.zeros(0), torch.zeros(batch, n)]
    split: list[Tensor] = [torch.zeros(0, dtype=torch.long)] * 2
    for w in range(2, n + 1):
        starts = n - w + 1
        cand = torch.stack([best[k][:, :starts] + best[w - k][:, k:k + starts] for k in range(1, w)], 2)
        value, k = cand.max(-1)
        best.append(value + marginals[w].detach().float())
        split.append(k + 1)
    splits = [s.numpy() for s in split]
    trees = []
    for b, m in enumerate(lengths.tolist()):
        spans: list[tuple[int, int]] = []
        stack = [(0, int(m))] if m > 1 else []
        while stack:
            i, j = stack.pop()
            spans.append((i, j))
            k = i + int(splits[j - i][b, i])
            stack += [(k, j)] if j - k > 1 else []
            stack += [(i, k)] if k - i > 1 else []
        trees.append(spans)
    return trees


def sample_trees(chart: Chart, g: Grammar, lengths: Tensor, samples: int,
                 rng: np.random.Generator) -> list[list[list[tuple[int, int, int]]]]:
    """``samples`` exact draws from the posterior per sentence: lists of ``(i, j, symbol)``
    nodes, leaves included, parents before children."""
    nt = g.nonterminals
    rules = g.rules.detach().exp().double().numpy()
    root = g.root.detach().exp().double().numpy()
    prob = [p.detach().double().numpy() for p in chart.prob]
    scale = [s.detach().double().numpy() for s in chart.scale]
    out = []
    for b, m in enumerate(lengths.tolist()):
        splits: dict[tuple[int, int], np.ndarray] = {}  # (i, j) -> [K, S, S]: the same for every draw

        def split_weights(i: int, j: int) -> np.ndarray:
            if (i, j) not in splits:
                ks = range(1, j - i)
                left = np.stack([prob[k][b, i] for k in ks])  # [K, S]
                right = np.stack([prob[j - i - k][b, i + k] for k in ks])
                both = np.array([scale[k][b, i] + scale[j - i - k][b, i + k] for k in ks])
                splits[i, j] = np.exp(both - both.max())[:, None, None] * left[:, :, None] * right[:, None, :]
            return splits[i, j]

        draws = []
        for _ in range(samples):
            if m == 1:
                top = prob[1][b, 0]
            else:
                top = np.concatenate([root * prob[m][b, 0, :nt], np.zeros(len(prob[m][b, 0]) - nt)])
            nodes, stack = [], [(0, m, _draw(top, rng))]
            while stack:
                i, j, a = stack.pop()
                nodes.append((i, j, a))
                if j - i == 1:
                    continue
                weight = split_weights(i, j) * rules[a]
                flat = _draw(weight.ravel(), rng)
                k, left_symbol, right_symbol = np.unravel_index(flat, weight.shape)
                k = int(k) + 1
                stack += [(i + k, j, int(right_symbol)), (i, i + k, int(left_symbol))]
            draws.append(nodes)
        out.append(draws)
    return out


def _draw(weights: np.ndarray, rng: np.random.Generator) -> int:
    p = weights / weights.sum()
    return int(rng.choice(len(p), p=p))
