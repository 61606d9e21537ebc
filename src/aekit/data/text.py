"""Text as token ids and back: a word-level tokenizer for any Unicode text.

Words (letters, digits, apostrophes inside a word), numbers such as "5,864" or "2.5", and
abbreviations such as "U.S." are tokens; each other visible character
(punctuation, symbols) is a token of its own; Chinese, Japanese and Korean script is split
character by character, as their words are not separated by spaces. ``decode`` puts spaces
back the way English and CJK text is written, so ``decode(encode(s))`` gives ``s`` again for
normally spaced text whose tokens are all in the vocabulary. The vocabulary is fitted on
training lines (most frequent first) and saved as JSON in a model's config.
"""
from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..checks import check_int
from ..errors import DataError, ModelFileError, NotFittedError
from .tables import UNICODE_MARKS

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)
# Han, Hiragana, Katakana, Hangul and the CJK punctuation block: one token per character
_CJK = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|(?:[^\W\d_{_CJK}]\.){{2,}}|[^\W{_CJK}]*\d(?:[.,]\d+)+|[^\W{_CJK}]+(?:['\u2019][^\W{_CJK}]+)*|[^\s{_CJK}]")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_NO_SPACE_BEFORE = set(".,;:!?)]}%\u2019\u201d'…")
_NO_SPACE_AFTER = set("([{$\u2018\u201c")
_JOINERS = set("-/\u2013")  # "commander-in-chief", "CDU/CSU": written without spaces far more often than with


def normalize(text: str, lowercase: bool = False) -> str:
    """NFKC form, whitespace runs as one space, no control characters; lowercased if asked."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c if c.isprintable() or c.isspace() else " " for c in text)
    text = " ".join(text.split())
    return text.lower() if lowercase else text


def split(text: str) -> list[str]:
    """The tokens of ``text`` (already normalized)."""
    return _TOKEN.findall(text)


def _is_cjk(token: str) -> bool:
    return _CJK_CHAR.fullmatch(token) is not None


def join(tokens: Iterable[str]) -> str:
    """Tokens back into text: a space between words, none before closing punctuation, after
    opening brackets, around hyphens and slashes, or between CJK characters (also across the
    ASCII punctuation that NFKC makes of full-width commas and stops)."""
    pieces: list[str] = []
    seen: list[str] = []
    in_quote = False  # straight double quotes alternate: an opening one, then a closing one
    for tok in tokens:
        if seen:
            prev = seen[-1]
            glued = (tok in _NO_SPACE_BEFORE or prev in _NO_SPACE_AFTER or tok in _JOINERS or prev in _JOINERS
                     or (tok == '"' and in_quote) or (prev == '"' and in_quote)
                     or (_is_cjk(tok) and (_is_cjk(prev) or (prev in _NO_SPACE_BEFORE and len(seen) > 1
                                                              and _is_cjk(seen[-2])))))
            if not glued:
                pieces.append(" ")
        if tok == '"':
            in_quote = not in_quote
        pieces.append(tok)
        seen.append(tok)
    return "".join(pieces)


class Tokenizer:
    """Word-level tokenizer with a fitted vocabulary (ids 0-3 are ``<pad> <unk> <s> </s>``).

    ``max_size``: the vocabulary's size, specials included; ``min_count``: rarer words become
    ``<unk>``; ``lowercase``: fold case (headline test sets are often lowercased);
    ``spaces``: the tokens are the text's space-separated pieces, as they are (for text that
    is already tokenized: a token is then always one position of the input line)."""

    def __init__(self, max_size: int = 20000, min_count: int = 2, lowercase: bool = True,
                 spaces: bool = False) -> None:
        self.max_size = check_int(max_size, "max_size", len(SPECIALS) + 1, 1 << 22)
        self.min_count = check_int(min_count, "min_count", 1, 1 << 30)
        self.lowercase = bool(lowercase)
        self.spaces = bool(spaces)

    def tokens(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise DataError(f"expected text, got {type(text).__name__}")
        if self.spaces:
            return (text.lower() if self.lowercase else text).split()
        return split(normalize(text, self.lowercase))

    def fit(self, lines: Iterable[str]) -> Tokenizer:
        """Count the tokens of ``lines``; keep the most frequent (ties in first-seen order)."""
        counts: Counter[str] = Counter()
        n = 0
        for line in lines:
            counts.update(self.tokens(line))
            n += 1
        if not counts:
            raise DataError(f"no words to build a vocabulary from ({n} lines)")
        kept = [w for w, c in counts.most_common(self.max_size - len(SPECIALS)) if c >= self.min_count]
        self._set_vocabulary(list(SPECIALS) + [w for w in kept if w not in SPECIALS])
        return self

    def _set_vocabulary(self, words: list[str]) -> None:
        self.vocabulary_ = words
        self.index_ = {w: i for i, w in enumerate(words)}

    def _check_fitted(self) -> None:
        if not hasattr(self, "vocabulary_"):
            raise NotFittedError("this Tokenizer is not fitted yet")

    def __len__(self) -> int:
        self._check_fitted()
        return len(self.vocabulary_)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (unknown words as ``<unk>``; no ``<s>`` or ``</s>``)."""
        self._check_fitted()
        unk = self.index_[UNK]
        return [self.index_.get(t, unk) for t in self.tokens(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``: stops at ``</s>``, skips ``<pad>`` and ``<s>``."""
        self._check_fitted()
        words = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.vocabulary_):
                raise DataError(f"token id {i} is outside the vocabulary (size {len(self.vocabulary_)})")
            word = self.vocabulary_[i]
            if word == EOS:
                break
            if word not in (PAD, BOS):
                words.append(word)
        return join(words)

    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {"max_size": self.max_size, "min_count": self.min_count, "lowercase": self.lowercase,
                "spaces": self.spaces, "vocabulary": list(self.vocabulary_)}

    @classmethod
    def from_dict(cls, d: Any) -> Tokenizer:
        try:
            tok = cls(d["max_size"], d["min_count"], d["lowercase"], d.get("spaces", False))
            words = d["vocabulary"]
            ok = (isinstance(words, list) and all(isinstance(w, str) for w in words)
                  and tuple(words[:len(SPECIALS)]) == SPECIALS and len(set(words)) == len(words))
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelFileError(f"config.json: the tokenizer entry is malformed ({exc.__class__.__name__})") from None
        if not ok:
            raise ModelFileError("config.json: the tokenizer's vocabulary is malformed")
        tok._set_vocabulary(words)
        return tok


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """The non-blank lines of a UTF-8 text file (or UTF-16/32 with its byte-order mark), one
    sentence each; an empty, binary or undecodable file is a one-line ``DataError``."""
    lines = [line for line in _read_text(path).splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path} is empty: expected one sentence per line")
    return lines


def read_numbered_lines(path: str | os.PathLike[str]) -> tuple[list[str], list[int]]:
    """``(lines, numbers)``: the non-blank lines of a UTF-8 text file and their 1-based line
    numbers (blank lines are skipped; the caller says how many); errors as ``read_lines``."""
    numbered = [(k, line) for k, line in enumerate(_read_text(path).splitlines(), 1) if line.strip()]
    if not numbered:
        raise DataError(f"{path} is empty: expected one sentence per line")
    return [line for _, line in numbered], [k for k, _ in numbered]


def lines_at(texts: list[str], numbers: list[int]) -> str:
    """``texts`` as the lines ``numbers`` (1-based, as ``read_numbered_lines`` gives them) of
    a text, the lines between them blank: an output that lines up with its input file."""
    rows = [""] * (numbers[-1] if numbers else 0)
    for number, text in zip(numbers, texts, strict=True):
        rows[number - 1] = text
    return "".join(row + "\n" for row in rows)


def _read_text(path: str | os.PathLike[str]) -> str:
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        raise DataError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; give a text file, one sentence per line") from None
    for mark, name in UNICODE_MARKS:  # Notepad's "Unicode", PowerShell's Out-File: unambiguous, so read
        if data.startswith(mark):
            try:
                return data.decode(name)
            except UnicodeDecodeError:
                raise DataError(f"{path} starts with a {name.upper()} mark but is not {name.upper()} text "
                                "(truncated or damaged); save it as UTF-8") from None
    if b"\x00" in data:
        raise DataError(f"{path} is a binary file, not text (or UTF-16 without its byte-order mark: "
                        "save it as UTF-8)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path} is not UTF-8 text (line {line}, byte {exc.start}): save it as UTF-8, e.g. "
                        f"iconv -f latin1 -t utf-8 {path} > new.txt") from None
