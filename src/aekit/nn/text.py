"""Networks over token ids: a language model, and a sentence autoencoder whose code is a
short word sequence (SEQ^3, Baziotis et al. 2019; Wang & Lee 2018).

``SummaryAutoEncoder`` holds three parts (G and R share one word embedding table):

- the compressor G: a bidirectional GRU reads the sentence; a GRU decoder with attention and
  a copy (pointer) mechanism writes ``length`` words, each drawn from a mixture of a softmax
  over the vocabulary and the attention over the input's words (See et al. 2017). The
  decoder also sees how many words it has left, so one network writes any summary length.
  While training, every word is a Gumbel-softmax straight-through sample: a one-hot going
  forward, the soft distribution's gradient going back, so the reconstruction loss reaches G
  through discrete words. At inference it is the most probable word, never one already
  written (optionally only words of the input);
- the reconstructor R: a bidirectional GRU reads the summary (its one-hot rows times the
  embedding table) and a GRU decoder with attention and a copy mechanism over the summary
  rebuilds the sentence (teacher forcing). G and R generate only the ``output_vocab`` most
  frequent words and copy the rest, and R never writes ``<unk>``: a rare or unknown word comes
  back only if G kept it;
- the prior D: a GRU language model of real sentences, trained first and then frozen; the
  KL divergence from G's word distributions to its next-word distributions keeps the
  summary readable (SEQ^3's language-model prior, where Wang & Lee use a discriminator).

Token ids follow ``data.text``: 0 ``<pad>``, 1 ``<unk>``, 2 ``<s>``, 3 ``</s>``.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..checks import MAX_WIDTH, check_float, check_int
from ..data.text import BOS, EOS, PAD, SPECIALS, UNK
from ..errors import ParameterError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = (SPECIALS.index(t) for t in (PAD, UNK, BOS, EOS))
MAX_SUMMARY = 64  # the longest summary the length embedding knows
TINY = 1e-9


def _width(name: str, value: int) -> int:
    return check_int(value, name, 1, MAX_WIDTH)


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis where ``mask`` is True (a row with none gives zeros)."""
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.nan_to_num(torch.softmax(scores, -1), nan=0.0)


class LanguageModel(nn.Module):
    """A GRU language model; ``loss`` is the mean next-word cross-entropy of id rows
    ``[N, T]`` (ending in ``</s>``, padded with ``<pad>``)."""

    def __init__(self, vocab_size: int, embed_size: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.config = {"vocab_size": _width("vocab_size", vocab_size), "embed_size": _width("embed_size", embed_size),
                       "hidden": _width("hidden", hidden)}
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.rnn = nn.GRU(embed_size, hidden, batch_first=True)
        self.out = nn.Linear(hidden, embed_size)

    def log_probs(self, embedded: Tensor) -> Tensor:
        """Next-word log-probabilities ``[N, T, V]`` after each embedded word ``[N, T, E]``."""
        h, _ = self.rnn(embedded)
        return torch.log_softmax(self.out(h) @ self.embed.weight.T, -1)

    def shifted(self, embedded: Tensor) -> Tensor:
        """``embedded`` words with ``<s>`` put in front and the last one dropped."""
        bos = self.embed.weight[BOS_ID].expand(embedded.shape[0], 1, -1)
        return torch.cat([bos, embedded[:, :-1]], 1)

    def token_nll(self, ids: Tensor) -> Tensor:
        """Negative log-likelihood of every token ``[N, T]`` (0 at padding)."""
        logp = self.log_probs(self.shifted(self.embed(ids)))
        nll = -logp.gather(2, ids.unsqueeze(2)).squeeze(2)
        return nll.masked_fill(ids == PAD_ID, 0.0)

    def soft_log_probs(self, words: Tensor) -> Tensor:
        """Next-word log-probabilities after each of ``words`` ``[N, L, V]`` (one-hot or soft
        rows), starting from ``<s>``: what the prior says of a written summary."""
        return self.log_probs(self.shifted(words @ self.embed.weight))

    def step(self, words: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Next-word log-probabilities ``[N, V]`` after ``words [N]``, from the GRU ``state``
        (None: a sentence's start), and the new state."""
        h, state = self.rnn(self.embed(words).unsqueeze(1), state)
        return torch.log_softmax(self.out(h[:, 0]) @ self.embed.weight.T, -1), state

    def loss(self, ids: Tensor, progress: float = 1.0, mask: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        nll = self.token_nll(ids).sum() / (ids != PAD_ID).sum().clamp(min=1)
        return nll, {"nll": nll.detach()}


class _Encoder(nn.Module):
    """Bidirectional GRU over embedded words; its outputs and a start state for a decoder."""

    def __init__(self, embed_size: int, hidden: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(embed_size, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)

    def forward(self, embedded: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=embedded.shape[1])
        return out, torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1)))


class _Attention(nn.Module):
    """Luong's "general" attention of decoder states over encoder outputs, and the mixed
    state that predicts a word (in embedding space, so the output layer is the embedding)."""

    def __init__(self, hidden: int, embed_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(hidden, 2 * hidden, bias=False)
        self.mix = nn.Linear(3 * hidden, embed_size)
        self.gate = nn.Linear(3 * hidden + embed_size, 1)

    def forward(self, h: Tensor, memory: Tensor, mask: Tensor, inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``h [N, T, H]`` over ``memory [N, S, 2H]``: attention ``[N, T, S]``, the word
        features ``[N, T, E]`` and the probability of generating rather than copying ``[N, T]``."""
        attn = masked_softmax(self.query(h) @ memory.transpose(1, 2), mask.unsqueeze(1))
        both = torch.cat([h, attn @ memory], -1)
        p_gen = torch.sigmoid(self.gate(torch.cat([both, inputs], -1))).squeeze(-1)
        return attn, torch.tanh(self.mix(both)), p_gen


class SummaryAutoEncoder(nn.Module):
    """Sentence -> short word sequence -> sentence; see the module docstring."""

    def __init__(self, vocab_size: int, embed_size: int = 128, hidden: int = 256, prior_hidden: int = 256,
                 output_vocab: int = 2000) -> None:
        super().__init__()
        self.config = {"vocab_size": _width("vocab_size", vocab_size), "embed_size": _width("embed_size", embed_size),
                       "hidden": _width("hidden", hidden), "prior_hidden": check_int(prior_hidden, "prior_hidden", 0,
                                                                                   MAX_WIDTH),
                       "output_vocab": _width("output_vocab", output_vocab)}
        if vocab_size <= len(SPECIALS):
            raise ParameterError(f"vocab_size must exceed the {len(SPECIALS)} special tokens")
        # G and R generate only the most frequent words (ids are by frequency) and copy the
        # rest: R must then find a rare word in the summary, which is what makes G write it
        self.output_vocab = min(output_vocab, vocab_size)
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.length_embed = nn.Embedding(MAX_SUMMARY + 1, embed_size)
        # G
        self.g_encoder = _Encoder(embed_size, hidden)
        self.g_cell = nn.GRUCell(2 * embed_size, hidden)
        self.g_attention = _Attention(hidden, embed_size)
        # R
        self.r_encoder = _Encoder(embed_size, hidden)
        self.r_rnn = nn.GRU(embed_size, hidden, batch_first=True)
        self.r_attention = _Attention(hidden, embed_size)
        # D (prior_hidden 0: none, as in a reconstruction-only model): trained first, it
        # then guides G's training and the search for a readable summary
        self.prior = LanguageModel(vocab_size, embed_size, prior_hidden) if prior_hidden else None
        # each word's log-probability among the training tokens (set by ``set_unigram``): the
        # search scores how well a word follows, not how common it is
        self.register_buffer("unigram", torch.zeros(vocab_size))
        # training settings, not saved: the estimator sets them before training
        self.temperature, self.prior_weight, self.lead_weight = 0.5, 1.0, 1.0

    # ------------------------------------------------------------------ persistence
    def spec(self) -> dict[str, Any]:
        return dict(self.config)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SummaryAutoEncoder:
        keys = {"vocab_size", "embed_size", "hidden", "prior_hidden", "output_vocab"}
        if not isinstance(spec, dict) or set(spec) != keys:
            raise ParameterError(f"a summary autoencoder spec needs exactly {sorted(keys)}")
        return cls(**spec)

    def drop_prior(self) -> None:
        """Forget the prior (a reconstruction-only model never trains it)."""
        self.prior, self.config["prior_hidden"] = None, 0

    def set_unigram(self, ids: Tensor, mask: Tensor) -> None:
        """Word log-probabilities from the tokens of ``ids`` (add-one smoothed)."""
        counts = torch.bincount(ids[mask], minlength=self.unigram.numel()).float() + 1
        self.unigram.copy_(torch.log(counts / counts.sum()))

    # ------------------------------------------------------------------ G
    def summary_lengths(self, mask: Tensor, length: int) -> Tensor:
        """Words to write per sentence: ``length``, or fewer for a shorter sentence."""
        check_int(length, "length", 1, MAX_SUMMARY)
        return (mask.sum(1) - 1).clamp(min=1, max=length)  # the sentence without its </s>

    def encode(self, ids: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """G's reading of ``ids``: encoder outputs, the decoder's start state, and the mask of
        the positions it may copy from."""
        memory, h = self.g_encoder(self.embed(ids), mask)
        copyable = mask & (ids != EOS_ID)
        return memory, h, copyable

    def _g_step(self, prev: Tensor, left: Tensor, h: Tensor, memory: Tensor, copyable: Tensor,
                ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step from the embedded previous word: (probabilities ``[N, V]``,
        attention ``[N, S]``, new state)."""
        h = self.g_cell(torch.cat([prev, self.length_embed(left)], -1), h)
        attn, feat, p_gen = self.g_attention(h.unsqueeze(1), memory, copyable, prev.unsqueeze(1))
        attn, p_gen = attn.squeeze(1), p_gen.squeeze(1)
        vocab = torch.softmax(feat.squeeze(1) @ self.embed.weight[:self.output_vocab].T, -1)
        p = attn.new_zeros(ids.shape[0], self.embed.num_embeddings).scatter_add_(1, ids, (1 - p_gen.unsqueeze(1)) * attn)
        return torch.cat([p[:, :self.output_vocab] + p_gen.unsqueeze(1) * vocab, p[:, self.output_vocab:]], 1), attn, h

    def write(self, ids: Tensor, mask: Tensor, lengths: Tensor, *, sample: bool = False,
              targets: Tensor | None = None, never: Tensor | None = None,
              from_input: bool = False,
              encoded: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """G's summaries of ``ids [N, S]``: words ``[N, L, V]`` (one-hot rows; with ``sample``
        straight-through Gumbel-softmax samples), G's probabilities ``[N, L, V]`` and the
        summary mask ``[N, L]``. With ``targets [N, L]`` the decoder is fed those words
        instead (teacher forcing) and ``words`` are their one-hot rows. Otherwise each word is
        the most probable one not yet written (``<unk>`` once per unknown word of the
        sentence) and not in ``never`` (a ``[V]`` mask); with
        ``from_input``, only words of the sentence itself (an extractive summary).
        ``encoded``: G's reading of ``ids`` (``encode``), when the caller already has it."""
        memory, h, copyable = self.encode(ids, mask) if encoded is None else encoded
        n, steps, vocab = ids.shape[0], int(lengths.max()), self.embed.num_embeddings
        prev = self.embed.weight[BOS_ID].expand(n, -1)
        words, probs = [], []
        blocked = torch.zeros(n, vocab, dtype=torch.bool, device=ids.device)
        if never is not None:
            blocked |= never
        if from_input:
            blocked |= torch.ones_like(blocked).scatter_(1, ids, ~copyable)
        # <unk> stands for every unknown word of the sentence (names, often): it may be
        # written once per unknown word there, and never otherwise
        unknown_left = ((ids == UNK_ID) & copyable).sum(1)
        for t in range(steps):
            p, _, h = self._g_step(prev, (lengths - t).clamp(min=0), h, memory, copyable, ids)
            probs.append(p)
            if targets is not None:
                y = F.one_hot(targets[:, t], vocab).to(p.dtype)
            elif sample:
                soft = torch.softmax((torch.log(p + TINY) - torch.log(-torch.log(torch.rand_like(p) + TINY) + TINY))
                                     / self.temperature, -1)
                y = F.one_hot(soft.argmax(-1), vocab).to(p.dtype) - soft.detach() + soft
            else:
                blocked[:, UNK_ID] = unknown_left == 0
                choice = p.masked_fill(blocked, -1.0).argmax(-1)
                y = F.one_hot(choice, vocab).to(p.dtype)
                blocked |= y.bool()
                unknown_left -= (choice == UNK_ID).long()
            words.append(y)
            # a hard word is a row lookup; only a straight-through sample needs the product
            # that carries its gradient back to the soft distribution
            prev = y @ self.embed.weight if sample and targets is None else self.embed(y.argmax(-1))
        smask = torch.arange(steps, device=ids.device).unsqueeze(0) < lengths.unsqueeze(1)
        return torch.stack(words, 1), torch.stack(probs, 1), smask

    @torch.no_grad()
    def search(self, ids: Tensor, mask: Tensor, length: int, allowed: Tensor, *, beam: int = 5,
               skip_cost: float = 3.0, fluency_weight: float = 1.0, rebuild_weight: float = 1.0) -> list[int]:
        """The positions, in order, of an extractive summary of one sentence ``ids [1, S]``
        (``mask [1, S]``) keeping ``length`` of the ``allowed [S]`` positions (all of them if
        fewer), found by beam search over what it scores:

        - ``fluency_weight`` x D's log-probability of each kept word after the kept words
          before it, less the word's unigram log-probability (SLOR, Kann et al. 2018): how
          well a word follows, not how common it is (raw log-probabilities drop every name);
        - minus ``skip_cost`` per allowed word left out before a kept one: news puts what a
          headline needs first, so leaving a word out must buy fluency;
        - the final beam is reranked by minus ``rebuild_weight`` x R's mean negative
          log-likelihood of the sentence given the summary: how much of it the code keeps.
        """
        src, n = ids[0], int(allowed.sum())
        length = min(length, n)
        if length == 0:
            return []
        here = torch.arange(len(src), device=ids.device)
        kept_before = torch.cat([allowed.new_zeros(1, dtype=torch.float), allowed.float().cumsum(0)])
        left_from = allowed.float().flip(0).cumsum(0).flip(0)  # allowed positions at or after each
        last = torch.full((1,), -1, device=ids.device)
        scores = torch.zeros(1, device=ids.device)
        chosen = torch.zeros(1, 0, dtype=torch.long, device=ids.device)
        state = None
        if self.prior is not None:
            logp, state = self.prior.step(torch.full((1,), BOS_ID, device=ids.device))
        for t in range(length):
            step = scores.unsqueeze(1) - skip_cost * (kept_before[:-1].unsqueeze(0) - kept_before[last + 1].unsqueeze(1))
            if self.prior is not None and fluency_weight:
                step = step + fluency_weight * (logp[:, src] - self.unigram[src])
            valid = allowed & (here.unsqueeze(0) > last.unsqueeze(1)) & (left_from >= length - t)
            step = step.masked_fill(~valid, float("-inf"))
            flat = step.flatten()
            picked, seen = [], set()
            for k in flat.topk(min(2 * beam, int(torch.isfinite(flat).sum()))).indices.tolist():
                row, at = divmod(k, len(src))
                words = tuple(src[chosen[row]].tolist()) + (int(src[at]),)  # one path per word sequence
                if words not in seen:
                    seen.add(words)
                    picked.append((row, at))
                if len(picked) == beam:
                    break
            rows = torch.tensor([r for r, _ in picked], device=ids.device)
            last = torch.tensor([a for _, a in picked], device=ids.device)
            scores = flat[rows * len(src) + last]
            chosen = torch.cat([chosen[rows], last.unsqueeze(1)], 1)
            if self.prior is not None:
                logp, state = self.prior.step(src[last], state[:, rows])
        if rebuild_weight and len(chosen) > 1:
            words = F.one_hot(src[chosen], self.embed.num_embeddings).float()
            smask = torch.ones(chosen.shape, dtype=torch.bool, device=ids.device)
            nll = self.reconstruction_nll(words, smask, ids.expand(len(chosen), -1), mask.expand(len(chosen), -1))
            scores = scores - rebuild_weight * nll.sum(1) / mask.sum()
        return chosen[int(scores.argmax())].tolist()

    # ------------------------------------------------------------------ R
    def _r_decode(self, words: Tensor, smask: Tensor, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """R fed the true words of ``ids`` (teacher forcing) while reading the summary
        ``words [N, L, V]``: attention ``[N, S, L]``, vocabulary log-probabilities
        ``[N, S, V]`` and the probability of generating rather than copying ``[N, S]``."""
        memory, h = self.r_encoder(words @ self.embed.weight, smask)
        inputs = torch.cat([self.embed.weight[BOS_ID].expand(ids.shape[0], 1, -1), self.embed(ids[:, :-1])], 1)
        states, _ = self.r_rnn(inputs, h.unsqueeze(0).contiguous())
        attn, feat, p_gen = self.r_attention(states, memory, smask, inputs)
        logits = feat @ self.embed.weight[:self.output_vocab].T
        # R may not write <unk> itself: an unknown word (often a name) is rebuilt only by
        # copying it from the summary, so G learns to keep unknown words
        logits[..., UNK_ID] = float("-inf")
        return attn, torch.log_softmax(logits, -1), p_gen

    def reconstruction_nll(self, words: Tensor, smask: Tensor, ids: Tensor, mask: Tensor) -> Tensor:
        """R's negative log-likelihood ``[N, S]`` of each word of ``ids`` given the summary
        ``words [N, L, V]`` (0 at padding)."""
        attn, logp, p_gen = self._r_decode(words, smask, ids)
        known = ids < self.output_vocab
        vocab = logp.gather(2, ids.masked_fill(~known, 0).unsqueeze(2)).squeeze(2).exp() * known
        # the copy probability of the right word only (the full [N, S, V] is not needed):
        # attention on the summary positions that hold it
        in_summary = words.gather(2, ids.unsqueeze(1).expand(-1, words.shape[1], -1))  # [N, L, S]
        copy = (attn * in_summary.transpose(1, 2)).sum(-1)
        nll = -torch.log(p_gen * vocab + (1 - p_gen) * copy + TINY)
        return nll.masked_fill(~mask, 0.0)

    def reconstruction_guess(self, words: Tensor, smask: Tensor, ids: Tensor) -> Tensor:
        """R's most probable word ``[N, S]`` at each position of ``ids`` given the true words
        before it (for token accuracy)."""
        attn, logp, p_gen = self._r_decode(words, smask, ids)
        p = (1 - p_gen).unsqueeze(2) * (attn @ words)
        p[..., :self.output_vocab] += p_gen.unsqueeze(2) * logp.exp()
        return p.argmax(-1)

    # ------------------------------------------------------------------ training
    def prior_kl(self, words: Tensor, probs: Tensor, smask: Tensor) -> Tensor:
        """KL(G || D) per summary word ``[N, L]``: how far G's word choice is from what the
        language model expects after the words written so far."""
        if self.prior is None:
            raise ParameterError("this network has no prior (prior_weight must be 0)")
        prior = self.prior.soft_log_probs(words)
        kl = (probs * (torch.log(probs + TINY) - prior)).sum(-1)
        return kl.masked_fill(~smask, 0.0)

    def lead_targets(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """The sentence's first words as pseudo summaries (the copy prior's targets)."""
        steps = int(lengths.max())
        lead = ids[:, :steps].clone()
        return lead.masked_fill(torch.arange(steps).unsqueeze(0) >= lengths.unsqueeze(1), PAD_ID)

    def loss(self, ids: Tensor, progress: float = 1.0, mask: Tensor | None = None,
             lengths: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Training: reconstruction + ``prior_weight`` x KL to the prior + ``lead_weight`` x
        the copy prior's cross-entropy (G writing the sentence's first words: in news the
        words a headline needs come early). In eval mode: the reconstruction alone.
        ``lengths`` gives each sentence's summary length."""
        mask = ids != PAD_ID if mask is None else mask
        lengths = self.summary_lengths(mask, 10) if lengths is None else lengths
        encoded = self.encode(ids, mask)  # read once: the copy prior's pass below reuses it
        words, probs, smask = self.write(ids, mask, lengths, sample=self.training, encoded=encoded)
        recon = self.reconstruction_nll(words, smask, ids, mask).sum() / mask.sum()
        total, parts = recon, {"reconstruction": recon.detach()}
        if not self.training:
            # validation (and so early stopping and the weights kept) judges the code alone:
            # how well R rebuilds the sentence from G's greedy summary. The prior and copy
            # terms pull against it by design, so their sum rose while summaries improved.
            return total, parts
        if self.prior_weight:
            kl = self.prior_kl(words, probs, smask).sum() / smask.sum()
            total, parts["prior_kl"] = total + self.prior_weight * kl, kl.detach()
        if self.lead_weight:
            targets = self.lead_targets(ids, lengths)
            _, tprobs, _ = self.write(ids, mask, lengths, targets=targets, encoded=encoded)
            lead = -torch.log(tprobs.gather(2, targets.unsqueeze(2)).squeeze(2) + TINY)
            lead = lead.masked_fill(~smask, 0.0).sum() / smask.sum()
            total, parts["lead"] = total + self.lead_weight * lead, lead.detach()
        return total, parts

    def set_training(self, *, temperature: float, prior_weight: float, lead_weight: float) -> None:
        self.temperature = check_float(temperature, "temperature", 0, 100, low_open=True)
        self.prior_weight = check_float(prior_weight, "prior_weight", 0, 1000)
        self.lead_weight = check_float(lead_weight, "lead_weight", 0, 1000)
