"""Unsupervised summaries against the first-N-words baseline (issue 14).

Data (../shared/data/text):
- GUM: 108 lead sentence -> headline pairs; news + interview reported apart from the rest.
- Wikipedia current-events sentences, split by ``aekit.apps.summarize.corpus`` exactly as
  the bundled model was: ``held_out`` inputs (never trained on) for readability and
  reconstruction; ``fluency`` short sentences (never seen by the prior) to train the judge.

Columns:
- ROUGE-1/2/L F1 x 100 (``rouge-score``, Porter stemmer on) against the references;
- first-N: the first N tokens of the input, N the length of aekit's summary of that input;
- perplexity of the summaries under a GRU language model trained on the ``fluency``
  sentences (lower reads more like real sentences); references beside them;
- reconstruction: R's token accuracy rebuilding the held-out inputs given the true words
  before each, from aekit's summary or from the first N words.

Systems: ``aekit full`` is the model as shipped (``decode="search"``: D's fluency, the lead,
R's reconstruction); two ablations of the same weights: the search without D's fluency
term, and G writing greedily (the compressor alone).

    python benchmarks/summarize.py                                  # the bundled model
    python benchmarks/summarize.py --baseline-model /tmp/recon_only # + a reconstruction-only row
    python benchmarks/summarize.py --refs pairs.tsv                 # + any input<TAB>reference file
    python benchmarks/summarize.py --lengths 8 9 10                 # + aekit against first-N per length
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import torch
from _common import SHARED, set_threads, table
from rouge_score import rouge_scorer

from aekit.apps.summarize import Summarizer, default_model, first_words
from aekit.apps.summarize.corpus import wikipedia_events_split
from aekit.data.text import read_lines
from aekit.nn.text import LanguageModel
from aekit.training import TrainConfig, train

TEXT = SHARED / "text"
SCORER = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge(predictions: list[str], references: list[str]) -> list[float]:
    """Mean ROUGE-1/2/L F1 (x 100)."""
    scores = [SCORER.score(ref, pred) for pred, ref in zip(predictions, references, strict=True)]
    return [100 * sum(s[k].fmeasure for s in scores) / len(scores) for k in ("rouge1", "rouge2", "rougeL")]


def gum_pairs() -> dict[str, tuple[list[str], list[str]]]:
    with open(TEXT / "gum_open_title_summary_lead.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    groups: dict[str, tuple[list[str], list[str]]] = {"GUM news+interview": ([], []), "GUM other genres": ([], [])}
    for r in rows:
        key = "GUM news+interview" if r["genre"] in ("news", "interview") else "GUM other genres"
        groups[key][0].append(r["lead_sentence_tokenized"])
        groups[key][1].append(r["title"])
    return groups


def user_pairs(path: str) -> tuple[list[str], list[str]]:
    pairs = [line.split("\t") for line in read_lines(path)]
    if any(len(p) < 2 for p in pairs):
        sys.exit(f"{path}: every line must be input<TAB>reference")
    return [p[0] for p in pairs], [p[1] for p in pairs]


def judge(model: Summarizer, sentences: list[str], seed: int = 0) -> tuple[LanguageModel, list[str]]:
    """A language model of nine tenths of ``sentences`` (the readability judge), in the
    model's vocabulary, and the tenth it did not see."""
    ids, _ = model.adapter_.transform(sentences)
    perm = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))
    n_val = len(ids) // 10
    torch.manual_seed(seed)
    lm = LanguageModel(len(model.adapter_.tokenizer), 64, 128)
    train(lm, ids[perm[n_val:]], ids[perm[:n_val]], TrainConfig(epochs=60, batch_size=32, lr=3e-3, patience=4,
                                                                  verbose=0, seed=seed))
    return lm, [sentences[i] for i in perm[:n_val].tolist()]


@torch.inference_mode()
def perplexity(lm: LanguageModel, model: Summarizer, texts: list[str]) -> float:
    """Per-token perplexity of ``texts`` (each scored as a sentence start: no ``</s>``)."""
    tok = model.adapter_.tokenizer
    rows = [tok.encode(t) or [tok.index_["<unk>"]] for t in texts]
    ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    nll = lm.token_nll(ids)
    return math.exp(float(nll.sum()) / sum(map(len, rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the bundled model)")
    parser.add_argument("--baseline-model", help="a reconstruction-only model (prior_weight 0) for its row")
    parser.add_argument("--refs", help="extra paired file: input<TAB>reference per line")
    parser.add_argument("--lengths", type=int, nargs="*", default=[],
                        help="also compare aekit with first-N at these summary lengths on both halves of GUM "
                             "news+interview (how the default length was chosen: on half A)")
    parser.add_argument("--examples", type=int, default=10, help="examples to print (GUM news+interview)")
    args = parser.parse_args()
    set_threads()

    def variant(**params: object) -> Summarizer:
        return (Summarizer.load(args.model) if args.model else default_model()).set_params(**params)

    full = variant()
    systems = {"aekit full": full,
               "aekit full, search without D (fluency_weight=0)": variant(fluency_weight=0),
               "aekit full, G writing (decode=greedy)": variant(decode="greedy")}
    if args.baseline_model:
        # its summaries as long as the full model's, so the rows differ only in D
        baseline = Summarizer.load(args.baseline_model).set_params(summary_words=full.summary_words)
        systems = {"aekit reconstruction only": baseline, **systems}
    sets = gum_pairs()
    if args.refs:
        sets[Path(args.refs).name] = user_pairs(args.refs)
    split = wikipedia_events_split(TEXT / "wikipedia_cep_events.tsv")
    lm, unseen_real = judge(full, split["fluency"])

    header = ["set", "system", "words", "ROUGE-1", "ROUGE-2", "ROUGE-L", "perplexity"]
    rows, outputs = [], {}
    for name, (inputs, refs) in sets.items():
        summaries = {label: m.summarize(inputs, progress=True) for label, m in systems.items()}
        lengths = [len(full.adapter_.tokenizer.tokens(s)) for s in summaries["aekit full"]]
        candidates = {"first-N": first_words(inputs, lengths), **summaries}
        outputs[name] = candidates
        for label, preds in candidates.items():
            words = sum(len(p.split()) for p in preds) / len(preds)
            rows.append([name, label, f"{words:.1f}", *(f"{v:.2f}" for v in rouge(preds, refs)),
                         f"{perplexity(lm, full, preds):.0f}"])
        rows.append([name, "reference", f"{sum(len(r.split()) for r in refs) / len(refs):.1f}", "", "", "",
                     f"{perplexity(lm, full, refs):.0f}"])
    print(table(rows, header))

    name = "GUM news+interview"
    print(f"\n{name} in halves: the search's costs were chosen on lines 0, 2, 4, ... (A); B is the rest")
    inputs, refs = sets[name]
    halves = [[label] + [f"{v:.2f}" for half in (0, 1) for v in rouge(preds[half::2], refs[half::2])[0::2]]
              for label, preds in outputs[name].items()]
    print(table(halves, ["system", "A ROUGE-1", "A ROUGE-L", "B ROUGE-1", "B ROUGE-L"]))
    if args.lengths:
        by_length = []
        for n in args.lengths:
            preds = full.summarize(inputs, length=n)
            lead = first_words(inputs, [len(full.adapter_.tokenizer.tokens(p)) for p in preds])
            by_length.append([str(n)] + [f"{v:.2f}" for half in (0, 1) for p in (preds, lead)
                                         for v in rouge(p[half::2], refs[half::2])[0::2]])
        print(table(by_length, ["length", *(f"{h} {who} {m}" for h in "AB" for who in ("aekit", "first-N")
                                            for m in ("R-1", "R-L"))]))

    held = split["held_out"]
    print(f"\nWikipedia held-out inputs ({len(held)} sentences, never trained on):")
    rows = []
    g_summaries = full.summarize(held, progress=True)
    lengths = [len(full.adapter_.tokenizer.tokens(s)) for s in g_summaries]
    lead = first_words(held, lengths)
    rows.append(["first-N", f"{perplexity(lm, full, lead):.0f}", f"{100 * full.reconstruction_accuracy(held, lead):.1f}"])
    for label, m in systems.items():
        mine = g_summaries if m is full else m.summarize(held, progress=True)
        rows.append([label, f"{perplexity(lm, full, mine):.0f}", f"{100 * m.reconstruction_accuracy(held):.1f}"])
    rows.append([f"{len(unseen_real)} real short sentences the judge did not see", f"{perplexity(lm, full, unseen_real):.0f}",
                 ""])
    print(table(rows, ["summaries", "perplexity", "R token accuracy % (full model's R for first-N)"]))

    name = "GUM news+interview"
    inputs, refs = sets[name]
    print(f"\n{args.examples} examples ({name}):\n")
    ex = [[inputs[i], refs[i], outputs[name]["first-N"][i], outputs[name]["aekit full"][i]]
          for i in range(min(args.examples, len(inputs)))]
    print(table([[c.replace("|", "/") for c in r] for r in ex], ["input", "reference", "first-N", "aekit"]))


if __name__ == "__main__":
    main()
