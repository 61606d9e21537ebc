"""The development split of the shared Wikipedia current-events sentences, used by the
bundled model (``scripts/make_default_summarizer.py``) and ``benchmarks/summarize.py``.

No RNG: a sentence's part follows from its position among the distinct sentences, so both
scripts always agree.

- ``short``-ish sentences (at most ``SHORT_WORDS`` words, ending in a full stop) are the only
  real short sentences here; they are never used as inputs. Alternate ones go to ``prior``
  (the language-model prior learns from them) and ``fluency`` (the benchmark's judge of
  readability, which the prior never sees).
- The longer ones are the inputs: every tenth is ``held_out``, the rest ``train``.
"""
from __future__ import annotations

import csv
import os

from ...errors import DataError

SHORT_WORDS = 18


def wikipedia_events_split(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """``{"train", "held_out", "prior", "fluency"}`` sentence lists of ``wikipedia_cep_events.tsv``."""
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames is None or "event_text" not in reader.fieldnames:
            raise DataError(f"{path} has no event_text column")
        texts = list(dict.fromkeys(" ".join(row["event_text"].split()) for row in reader if row["event_text"]))
    short = [t for t in texts if len(t.split()) <= SHORT_WORDS and t.endswith(".")]
    long = [t for t in texts if not (len(t.split()) <= SHORT_WORDS and t.endswith("."))]
    return {"train": [t for i, t in enumerate(long) if i % 10 != 9],
            "held_out": [t for i, t in enumerate(long) if i % 10 == 9],
            "prior": short[0::2], "fluency": short[1::2]}
