"""Unsupervised sentence summarization: an autoencoder whose code is a short sentence.

``Summarizer.fit`` trains in two stages on unpaired sentences:

1. the prior D, a language model of real sentences: the training sentences and any
   ``prior`` sentences (e.g. real short sentences or headlines, never paired with inputs);
2. G and R together (``nn.text.SummaryAutoEncoder``): R rebuilds each sentence from the
   words G wrote, D's KL term keeps those words readable, and a copy prior (G's
   cross-entropy on the sentence's first words, Wang & Lee's pretraining on pseudo pairs
   made from the input itself) keeps G close to the sentence's first words, where news puts
   what a headline needs.

``summarize`` (``decode="search"``, the default) searches for each summary: words of the
sentence, in its order, that read well to D, keep the sentence's start unless leaving a word
out reads better, and let R rebuild the sentence (``SummaryAutoEncoder.search``). With
``decode="greedy"`` G writes it, the most probable word at each step. A word copied from the
input keeps the input's spelling (case, and words outside the vocabulary).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ...checks import check_choice, check_float, check_int
from ...data.adapters import TextAdapter
from ...data.text import UNK, Tokenizer, join, normalize, split
from ...estimator import FittedModel, TensorGroups, check_train_rows
from ...nn.text import BOS_ID, EOS_ID, MAX_SUMMARY, PAD_ID, SummaryAutoEncoder

DEFAULT_MODEL = Path(__file__).with_name("default_model")  # made by scripts/make_default_summarizer.py
BLOCK = 256  # sentences per inference batch


class Summarizer(FittedModel):
    """A sentence autoencoder whose code is a readable summary of ``summary_words`` tokens.

    ``fit(X, prior=None)``: ``X`` sentences (a text file, one per line, or a list of
    strings); ``prior`` optional extra real sentences for the language-model prior (read
    like ``X``; never used as inputs). ``summarize(X)``: one summary per sentence.
    ``prior_weight=0`` trains with reconstruction only (and skips the prior);
    ``lead_weight`` weighs the copy prior. ``decode``, ``beam_size``, ``skip_cost``,
    ``fluency_weight`` and ``rebuild_weight`` set how a summary is found (module
    docstring); ``word_order`` only matters to ``decode="greedy"``. The vocabulary keeps the
    ``vocab_size`` most frequent words seen at least ``min_count`` times; G and R generate
    the ``output_vocab`` most frequent and copy any other.
    """

    _kind = "summarize.Summarizer"
    _network_class = SummaryAutoEncoder

    def __init__(self, *, summary_words: int = 9, embed_size: int = 128, hidden: int = 256,
                 prior_hidden: int = 256, vocab_size: int = 8000, output_vocab: int = 2000, min_count: int = 2, max_tokens: int = 64,
                 decode: str = "search", beam_size: int = 5, skip_cost: float = 3.0, fluency_weight: float = 1.0,
                 rebuild_weight: float = 1.0, word_order: str = "input", prior_weight: float = 0.3, lead_weight: float = 0.5, temperature: float = 0.5,
                 prior_epochs: int = 5, epochs: int = 20, batch_size: int = 128, lr: float = 1e-3,
                 lr_decay: float = 0.1, patience: int = 5, validation_fraction: float = 0.1,
                 random_state: int = 0, verbose: int = 0, checkpoint_dir: str | None = None,
                 resume: bool = False) -> None:
        self.summary_words = summary_words
        self.embed_size = embed_size
        self.hidden = hidden
        self.prior_hidden = prior_hidden
        self.vocab_size = vocab_size
        self.output_vocab = output_vocab
        self.min_count = min_count
        self.max_tokens = max_tokens
        self.decode = decode
        self.beam_size = beam_size
        self.skip_cost = skip_cost
        self.fluency_weight = fluency_weight
        self.rebuild_weight = rebuild_weight
        self.word_order = word_order
        self.prior_weight = prior_weight
        self.lead_weight = lead_weight
        self.temperature = temperature
        self.prior_epochs = prior_epochs
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
        check_int(self.summary_words, "summary_words", 1, MAX_SUMMARY)
        for name in ("embed_size", "hidden", "prior_hidden"):
            check_int(getattr(self, name), name, 1, 4096)
        check_int(self.vocab_size, "vocab_size", 16, 1 << 22)
        check_int(self.output_vocab, "output_vocab", 16, 1 << 22)
        check_int(self.min_count, "min_count", 1)
        check_int(self.max_tokens, "max_tokens", 2, 4096)
        check_int(self.prior_epochs, "prior_epochs", 1, 10_000)
        check_int(self.patience, "patience", 1)
        check_float(self.lr_decay, "lr_decay", 0, 1)
        check_choice(self.decode, "decode", ("search", "greedy"))
        check_int(self.beam_size, "beam_size", 1, 1000)
        for name in ("skip_cost", "fluency_weight", "rebuild_weight"):
            check_float(getattr(self, name), name, 0, 1000)
        check_choice(self.word_order, "word_order", ("input", "model"))
        check_float(self.prior_weight, "prior_weight", 0, 1000)
        check_float(self.lead_weight, "lead_weight", 0, 1000)
        check_float(self.temperature, "temperature", 0, 100, low_open=True)

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Any = None, prior: Any = None) -> Summarizer:
        """Learn to summarize the sentences ``X`` (``y`` is ignored: no summaries are needed)."""
        self._check_params()
        lines = TextAdapter.sentences(X)
        check_train_rows(len(lines), self._min_rows)
        extra = TextAdapter.sentences(prior) if prior is not None else []
        self.adapter_ = TextAdapter(Tokenizer(self.vocab_size, self.min_count), self.max_tokens)
        ids, mask = self.adapter_.fit_transform(lines + extra)  # the vocabulary knows the prior's words
        self.notices_: list[str] = list(self.adapter_.notices_)
        train_idx, val_idx = self._split(len(lines))
        train_idx = torch.as_tensor(train_idx)
        val_idx = torch.as_tensor(val_idx)
        torch.manual_seed(self.random_state)
        model = SummaryAutoEncoder(len(self.adapter_.tokenizer), self.embed_size, self.hidden, self.prior_hidden,
                                   self.output_vocab)
        history: dict[str, list[dict[str, float]]] = {}
        if self.prior_weight:
            assert model.prior is not None
            prior_rows = torch.cat([train_idx, torch.arange(len(lines), len(ids))])
            result = self._train(model.prior, _trim(ids[prior_rows], mask[prior_rows])[0],
                                 _trim(ids[val_idx], mask[val_idx])[0] if len(val_idx) else None,
                                 seed=self.random_state, name="prior", desc="language-model prior",
                                 epochs=self.prior_epochs)
            history["prior"] = result.history
            model.prior.requires_grad_(False)
        model.set_unigram(ids[train_idx], mask[train_idx])
        model.set_training(temperature=self.temperature, prior_weight=self.prior_weight, lead_weight=self.lead_weight)
        lengths = model.summary_lengths(mask, self.summary_words)

        def rows(idx: torch.Tensor) -> tuple[torch.Tensor, ...] | None:
            return (*_trim(ids[idx], mask[idx]), lengths[idx]) if len(idx) else None

        result = self._train(model, rows(train_idx), rows(val_idx), seed=self.random_state, name="model",
                             desc="summarizer G+R")
        history["model"] = result.history
        if not self.prior_weight:
            model.drop_prior()  # never trained: such a model's summaries go without a fluency term
        self.training_history_ = history
        self.model_ = model
        return self

    # ------------------------------------------------------------------ inference
    def _encoded(self, X: Any) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        self._check_fitted()
        self._check_params()  # set_params may have changed how summaries are found
        lines = self.adapter_.sentences(X)
        ids, mask = self.adapter_.transform(lines)
        self.notices_ = list(self.adapter_.notices_)
        return lines, ids, mask

    def _write(self, lines: list[str], ids: torch.Tensor, mask: torch.Tensor, length: int | None,
               progress: bool = False) -> list[list[int]]:
        """Each sentence's summary: token ids, or with ``decode="search"`` the positions of
        the sentence's tokens it keeps."""
        lengths = self.model_.summary_lengths(mask, self.summary_words if length is None else length)
        if self.decode == "search":
            out = []
            # None: a bar only on a terminal, never in logs
            for line, row, row_mask, n in tqdm(zip(lines, ids, mask, lengths.tolist(), strict=True),
                                               total=len(ids), desc="summarizing", unit="line", leave=False,
                                               disable=None if progress else True):
                x, m = _trim(row.unsqueeze(0), row_mask.unsqueeze(0))
                # the sentence's words, judged by their text: an unknown token (<unk>) may be a
                # rare symbol; </s> (the last position) is never kept
                allowed = torch.zeros(x.shape[1], dtype=torch.bool)
                allowed[:-1] = torch.tensor([_is_word(t) for t in self._source_words(line)[1]])
                out.append(self.model_.search(x, m, n, allowed, beam=self.beam_size, skip_cost=self.skip_cost,
                                              fluency_weight=self.fluency_weight,
                                              rebuild_weight=self.rebuild_weight))
            return out
        never = self._never_written()
        out: list[list[int]] = []
        for s in range(0, len(ids), BLOCK):
            words, _, _ = self.model_.write(*_trim(ids[s:s + BLOCK], mask[s:s + BLOCK]), lengths[s:s + BLOCK],
                                            never=never, from_input=self.word_order == "input")
            out += [row[:n].tolist() for row, n in zip(words.argmax(-1), lengths[s:s + BLOCK].tolist(), strict=True)]
        return out

    def _never_written(self) -> torch.Tensor:
        """``[V]`` mask of what a summary never holds: the special tokens, and tokens that
        are not words (``_is_word``)."""
        words = self.adapter_.tokenizer.vocabulary_
        never = torch.tensor([not _is_word(w) for w in words])
        never[[PAD_ID, BOS_ID, EOS_ID]] = True
        return never

    @torch.inference_mode()
    def summarize(self, X: Any, length: int | None = None, progress: bool = False) -> list[str]:
        """One summary per sentence of ``X`` (``length`` words, default ``summary_words``;
        ``progress``: a progress bar on a terminal). Lines cut to ``max_tokens`` are listed
        in ``notices_``."""
        lines, ids, mask = self._encoded(X)
        written = self._write(lines, ids, mask, length, progress)
        if self.decode == "search":
            return [join(self._source_words(line)[0][at] for at in kept) for line, kept in zip(lines, written, strict=True)]
        return [self._surface(line, summary) for line, summary in zip(lines, written, strict=True)]

    def _source_words(self, line: str) -> tuple[list[str], list[str]]:
        """``line``'s tokens as written there (case, words outside the vocabulary) and as the
        model reads them (case-folded), at most ``max_tokens``."""
        folded = self.adapter_.tokenizer.tokens(line)[:self.max_tokens]
        cased = split(normalize(line))[:self.max_tokens]
        return (cased if len(cased) == len(folded) else folded), folded  # folding may change the tokens

    def _surface(self, line: str, summary: list[int]) -> str:
        """Summary ids as text. A word copied from ``line`` is written as it is there (case,
        words outside the vocabulary); with ``word_order="input"`` the copied words keep the
        input's order and words G made up are left out."""
        tok = self.adapter_.tokenizer
        cased, folded = self._source_words(line)
        source_ids = [tok.index_.get(t, tok.index_[UNK]) for t in folded]
        placed: list[tuple[float, str]] = []
        for k, i in enumerate(summary):
            if i in source_ids:
                at = source_ids.index(i)
                source_ids[at] = -1  # a second <unk> copies the next unknown word
                if _is_word(cased[at]):  # an unknown "word" may be a rare symbol
                    placed.append((at if self.word_order == "input" else k, cased[at]))
            elif self.word_order == "model" and i not in (PAD_ID, BOS_ID, EOS_ID):  # a special: nothing was left
                placed.append((k, tok.vocabulary_[i]))
        return join(word for _, word in sorted(placed))

    @torch.inference_mode()
    def reconstruction_accuracy(self, X: Any, summaries: list[str] | None = None) -> float:
        """Share of the tokens of ``X`` (with ``</s>``) that R predicts right, given the true
        words before each and a summary: G's, or ``summaries`` (e.g. the first words)."""
        lines, ids, mask = self._encoded(X)
        if summaries is None:
            summary_ids = self._write(lines, ids, mask, None)
            if self.decode == "search":  # positions to ids
                summary_ids = [ids[i, kept].tolist() or [PAD_ID] for i, kept in enumerate(summary_ids)]
        else:
            if len(summaries) != len(lines):
                raise ValueError(f"got {len(summaries)} summaries for {len(lines)} sentences")
            summary_ids = [self.adapter_.tokenizer.encode(s)[:MAX_SUMMARY] or [PAD_ID] for s in summaries]
        vocab = len(self.adapter_.tokenizer)
        right = total = 0
        for s in range(0, len(ids), BLOCK):
            block = summary_ids[s:s + BLOCK]
            rows = torch.nn.utils.rnn.pad_sequence([torch.tensor(r) for r in block], batch_first=True)
            smask = torch.arange(rows.shape[1]) < torch.tensor([len(r) for r in block]).unsqueeze(1)
            words = torch.nn.functional.one_hot(rows, vocab).float() * smask.unsqueeze(2)
            x, m = _trim(ids[s:s + BLOCK], mask[s:s + BLOCK])
            guess = self.model_.reconstruction_guess(words, smask, x)
            right += int(((guess == x) & m).sum())
            total += int(m.sum())
        return right / max(total, 1)

    # ------------------------------------------------------------------ persistence
    def _state(self) -> tuple[dict[str, Any], TensorGroups]:
        return {"epochs_run": len(getattr(self, "training_history_", {}).get("model", []))}, {}

    def _set_state(self, networks: dict[str, Any], state: dict[str, Any], groups: TensorGroups) -> None:
        self.model_ = networks["model"]
        self.training_history_, self.notices_ = {}, []


def _is_word(token: str) -> bool:
    """A token with a letter or digit: a summary's few words are not spent on punctuation or
    symbols (headlines have almost none)."""
    return any(c.isalnum() for c in token)


def _trim(ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Id rows and their mask without the padding columns none of the rows uses."""
    width = int(mask.sum(1).max())
    return ids[:, :width], mask[:, :width]


def default_model() -> Summarizer:
    """The bundled model (Wikipedia current-events sentences; ``scripts/make_default_summarizer.py``)."""
    return Summarizer.load_bundled(DEFAULT_MODEL, "aekit summarize train")


def first_words(X: list[str], lengths: list[int]) -> list[str]:
    """The classic baseline: each sentence's first ``lengths[i]`` tokens, as text."""
    return [join(split(normalize(line))[:n]) for line, n in zip(X, lengths, strict=True)]

