"""Tree as the code: the inside algorithm against brute force, posterior samples against the
marginals, a learned grammar against the trees that need no learning, save/load, the CLI."""
from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

from aekit.apps.tree import grammars
from aekit.apps.tree.metrics import brackets, left_branching, mean_f1, random_tree, right_branching, sentence_f1
from aekit.apps.tree.model import TreeAutoEncoder, read_sentences
from aekit.cli import main
from aekit.errors import DataError, ModelFileError
from aekit.nn.tree import NeuralPCFG, inside, mbr_spans, sample_trees, span_marginals
from aekit.training import _batches


# ---------------------------------------------------------------------- brute force
def _trees(i: int, j: int):
    """Every binary tree over tokens i..j as (i, j, children)."""
    if j - i == 1:
        yield (i, j, None)
        return
    for k in range(i + 1, j):
        for left in _trees(i, k):
            for right in _trees(k, j):
                yield (i, j, (left, right))


def _log_inside(tree, symbol: int, words: list[int], g) -> float:
    """log p(tokens of ``tree``, ``tree`` | ``symbol`` at its root), summed over the labels."""
    i, j, children = tree
    nt = g.nonterminals
    if children is None:
        return g.words[symbol - nt, words[i]].item() if symbol >= nt else -math.inf
    if symbol >= nt:
        return -math.inf
    symbols = g.rules.shape[1]
    return float(np.logaddexp.reduce([g.rules[symbol, b, c].item() + _log_inside(children[0], b, words, g)
                                      + _log_inside(children[1], c, words, g)
                                      for b, c in itertools.product(range(symbols), repeat=2)]))


def _spans(tree) -> list[tuple[int, int]]:
    i, j, children = tree
    return [] if children is None else [(i, j), *_spans(children[0]), *_spans(children[1])]


@pytest.fixture(scope="module")
def tiny_grammar():
    torch.manual_seed(0)
    return NeuralPCFG(vocab_size=6, nonterminals=2, preterminals=3, dim=8)


@pytest.mark.parametrize("words", [[1, 4], [3, 0, 5], [1, 4, 2, 5]])
def test_inside_and_marginals_equal_brute_force(tiny_grammar, words):
    g = tiny_grammar.grammar()
    per_tree = {}
    for tree in _trees(0, len(words)):
        per_tree[tree] = np.logaddexp.reduce([g.root[a].item() + _log_inside(tree, a, words, g)
                                              for a in range(g.nonterminals)])
    log_z = np.logaddexp.reduce(list(per_tree.values()))
    # a batch of this sentence and a shorter one, padded: padding must not change either
    ids = torch.tensor([words, words[:-1] + [0]])
    lengths = torch.tensor([len(words), len(words) - 1])
    got, marginals, preterminals = span_marginals(g, ids, lengths)
    assert got[0].item() == pytest.approx(log_z, abs=1e-4)
    for span in {s for tree in per_tree for s in _spans(tree)}:
        expected = math.exp(np.logaddexp.reduce([v for t, v in per_tree.items() if span in _spans(t)]) - log_z)
        assert marginals[span[1] - span[0]][0, span[0]].item() == pytest.approx(expected, abs=1e-4)
    assert torch.allclose(preterminals[0, :len(words)].sum(-1), torch.ones(len(words)), atol=1e-5)


def test_sampled_tree_frequencies_match_the_marginals(tiny_grammar):
    ids, lengths = torch.tensor([[1, 4, 2, 5, 3]]), torch.tensor([5])
    g = tiny_grammar.grammar()
    _, marginals, _ = span_marginals(g, ids, lengths)
    with torch.no_grad():
        _, chart = inside(g.emissions(ids), g, lengths)
    draws = sample_trees(chart, g, lengths, 4000, np.random.default_rng(0))[0]
    counts = Counter((i, j) for nodes in draws for i, j, _ in nodes if j - i > 1)
    for w in range(2, 5):
        for i in range(6 - w):
            assert counts[(i, i + w)] / 4000 == pytest.approx(marginals[w][0, i].item(), abs=0.03)
    for nodes in draws[:50]:  # each draw is a whole binary tree: n leaves, n - 1 inner nodes, nested
        assert sum(j - i == 1 for i, j, _ in nodes) == 5 and sum(j - i > 1 for i, j, _ in nodes) == 4
        assert all(a >= g.nonterminals for i, j, a in nodes if j - i == 1)


def test_mbr_tree_is_a_binary_tree_that_takes_sure_spans():
    n = 6
    marginals = [torch.zeros(0), torch.zeros(1, n)] + [torch.zeros(1, n - w + 1) for w in range(2, n + 1)]
    marginals[3][0, 1] = 0.9  # tokens 1..3 surely form a node
    marginals[2][0, 4] = 0.8
    (spans,) = mbr_spans(marginals, torch.tensor([n]))
    assert (1, 4) in spans and (4, 6) in spans and spans[0] == (0, n) and len(spans) == n - 1


# ---------------------------------------------------------------------- metrics and grammars
def test_bracketing_f1_and_baselines():
    gold = [(0, 5), (0, 3), (1, 3), (3, 5)]  # ((1 (* 2)) (+ 3))
    assert sentence_f1(gold, gold, 5) == 1.0
    assert sentence_f1(right_branching(5), gold, 5) == pytest.approx(2 * 1 / 6)
    assert sentence_f1(left_branching(5), gold, 5) == pytest.approx(2 * 1 / 6)
    assert sentence_f1([(0, 2)], [(0, 2)], 2) is None  # nothing to score
    assert mean_f1([gold, right_branching(5)], [gold, gold], [5, 5]) == pytest.approx((1 + 1 / 3) / 2)
    tree = random_tree(9, random.Random(0))
    assert len(tree) == 8 and tree[0] == (0, 9)
    assert brackets("1 * 2 + 3".split(), gold) == "((1 (* 2)) (+ 3))"
    assert brackets(["x"], []) == "x"


@pytest.mark.parametrize("name", sorted(grammars.GRAMMARS))
def test_grammars_give_sentences_with_their_trees(name):
    trees = grammars.generate(name, 200, seed=1)
    assert trees == grammars.generate(name, 200, seed=1)
    for tree in trees:
        tokens = grammars.leaves(tree)
        assert 3 <= len(tokens) <= 25
        spans = grammars.tree_spans(tree)
        assert len(spans) == len(tokens) - 1 and spans[0] == (0, len(tokens))
        assert brackets(tokens, spans) == grammars.brackets(tree)


def test_arithmetic_trees_follow_precedence_and_associativity():
    for tree in grammars.generate("arithmetic", 300, seed=2):
        for i, j in grammars.tree_spans(tree):
            text = grammars.leaves(tree)[i:j]
            if text[0] in "+-*/":  # an operator and its right operand: no + or - outside parentheses in a product
                depth = 0
                for tok in text[1:]:
                    depth += (tok == "(") - (tok == ")")
                    assert not (text[0] in "*/" and depth == 0 and tok in "+-")


def test_length_buckets_cover_every_row_once():
    lengths = torch.tensor([random.Random(k).randrange(2, 30) for k in range(1000)])
    gen = torch.Generator().manual_seed(0)
    batches = _batches(torch.randperm(1000, generator=gen), 16, lengths, gen)
    assert sorted(torch.cat(batches).tolist()) == list(range(1000))
    spread = np.mean([int(lengths[b].max() - lengths[b].min()) for b in batches])
    assert spread <= 2  # random batches of 16 would spread over ~24


# ---------------------------------------------------------------------- a learned grammar
@pytest.fixture(scope="module")
def arithmetic():
    trees = grammars.generate("arithmetic", 3300, seed=0, max_tokens=12)
    sentences = [" ".join(grammars.leaves(t)) for t in trees]
    return sentences[:3000], sentences[3000:]


@pytest.fixture(scope="module")
def fitted(arithmetic):
    train, _ = arithmetic
    return TreeAutoEncoder(epochs=10, random_state=0).fit(train)


def _found(trees: list[list[list[int]]], sentences: list[str]) -> float:
    """Share of the spans that the parentheses fix (``grammars.parenthesised``) that the trees have."""
    hit = total = 0
    for spans, sentence in zip(trees, sentences, strict=True):
        fixed = set(grammars.parenthesised(sentence.split()))
        hit += len(fixed & {tuple(s) for s in spans})
        total += len(fixed)
    return hit / total


def test_learned_trees_find_what_parentheses_fix(fitted, arithmetic):
    # Which way an operator groups is invisible in the sentences (see grammars.parenthesised),
    # so the test asks for what is not: the parenthesised groups and their contents.
    _, test = arithmetic
    parsed = fitted.parse(test)
    lengths = [len(p["tokens"]) for p in parsed]
    found = _found([p["spans"] for p in parsed], test)
    baselines = [_found([tree(n) for n in lengths], test) for tree in (left_branching, right_branching)]
    assert found > max(baselines) + 0.25, (found, baselines)
    for p in parsed:
        n = len(p["tokens"])
        assert len(p["spans"]) == n - 1 and p["spans"][0] == [0, n]
    assert fitted.reconstruction_accuracy(test) > 0.25  # digits share preterminals; operators and parens need not


def test_grammar_likelihood_beats_unigram_frequencies(fitted, arithmetic):
    train, test = arithmetic
    counts = Counter(t for s in train for t in s.split())
    total = sum(counts.values())
    unigram = np.array([sum(math.log(counts[t] / total) for t in s.split()) for s in test])
    scores = fitted.score_samples(test)
    assert np.isfinite(scores).all() and scores.mean() > unigram.mean() + 1.0, (scores.mean(), unigram.mean())


def test_save_load_round_trip_and_samples(fitted, arithmetic, tmp_path):
    _, test = arithmetic
    fitted.save(tmp_path / "m")
    again = TreeAutoEncoder.load(tmp_path / "m")
    assert again.parse(test[:50]) == fitted.parse(test[:50])
    assert np.allclose(again.score_samples(test[:50]), fitted.score_samples(test[:50]), atol=1e-4)
    draws = again.sample(test[:3], n_samples=5, random_state=0)
    assert [len(d) for d in draws] == [5, 5, 5]
    assert all(len(tree) == len(test[k].split()) - 1 for k, d in enumerate(draws) for tree in d)
    assert draws == again.sample(test[:3], n_samples=5, random_state=0)


def test_empty_lines_are_skipped_with_a_notice(fitted):
    parsed = fitted.parse(["1 + 2", "", "  ", "( 3 )", "7"])
    assert [p["line"] for p in parsed] == [1, 4, 5] and parsed[2]["spans"] == []
    assert fitted.notices_ == ["skipped 2 empty lines"]
    assert fitted.parse(["1 + zebra"])[0]["tokens"] == ["1", "+", "zebra"]  # unknown tokens parse too


def test_raw_prose_is_parsed_with_a_note_to_split_its_punctuation(fitted):
    """'frontline.' is one space-separated token: raw prose gets a note, tokenized text none."""
    fitted.parse(["Russia has begun an offensive, launching attacks.", "The talks resumed."])
    assert fitted.notices_ == ["3 of 10 tokens carry punctuation ('offensive,', 'attacks.'): trees are over "
                               "space-separated tokens, so split it off first, as treebanks do ('end .')"]
    fitted.parse(["Russia has begun an offensive , launching attacks .", "( 3 )"])
    assert fitted.notices_ == []


def test_bracketed_trees_line_up_with_their_input_lines(fitted, tmp_path):
    from aekit.apps.tree.jobs import parse_file

    (tmp_path / "in.txt").write_text("1 + 2\n\n( 3 )\n")
    fitted.save(tmp_path / "m")
    parse_file(tmp_path / "in.txt", tmp_path / "out.txt", tmp_path / "m", format="brackets")
    rows = (tmp_path / "out.txt").read_text().split("\n")
    assert rows[1] == "" and rows[0].count("(") >= 1 and "3" in rows[2] and len(rows) == 4  # 3 lines, a newline


def test_a_sentence_too_long_to_parse_is_skipped_before_any_memory_is_taken(fitted, monkeypatch):
    """2,001 tokens once grew to 23 GB: the pass's memory is known first, and such a line is
    skipped with a notice by parse, refused in one line by the methods that need every line."""
    import resource

    from aekit.apps.tree import model as tree_model

    limit = fitted.max_parse_tokens()
    assert 150 < limit < 400  # the default grammar (50 symbols) within 2 GiB
    assert tree_model.inside_bytes(limit, 50) <= tree_model.SENTENCE_BYTES < tree_model.inside_bytes(limit + 1, 50)
    long_line = " ".join(["1 +"] * 1000 + ["2"])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    parsed = fitted.parse(["1 + 2", long_line, "( 3 )"])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB: nothing like the 23 GB
    assert [p["line"] for p in parsed] == [1, 3]
    assert fitted.notices_ == [f"skipped 1 sentence of more than {limit} tokens (line 2): parsing one would need "
                               "over 2 GiB, growing with the cube of its length"]
    with pytest.raises(DataError, match=f"more than {limit} tokens"):
        fitted.score_samples(["1 + 2", long_line])
    # a tighter budget: the same rule at a length a test can afford to parse
    monkeypatch.setattr(tree_model, "SENTENCE_BYTES", tree_model.inside_bytes(30, 50))
    assert fitted.max_parse_tokens() == 30
    assert [p["line"] for p in fitted.parse([" ".join(["1 +"] * 14 + ["2"]), " ".join(["1 +"] * 15 + ["2"])])] == [1]


def test_training_on_one_token_lines_says_why_nothing_is_left(tmp_path):
    with pytest.raises(DataError, match=r"need at least 8 sentences of 2 to 40 tokens to train, got 0 \(20 of one token\)"):
        TreeAutoEncoder(epochs=1).fit(["word"] * 20)


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\n\n \n", "is empty"),
                                              (b"\x00\x01binary", "binary file"), (b"\xff1 + 2", "not UTF-8"),
                                              ("1 + 2".encode("utf-16-le"), "UTF-16 without its byte-order mark")])
def test_bad_text_files_are_one_line_errors(tmp_path, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_sentences(bad)
    with pytest.raises(DataError, match="need at least"):
        TreeAutoEncoder(epochs=1).fit(["1 + 2"] * 3)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_text_files_with_a_byte_order_mark_read_as_utf8(tmp_path, encoding):
    # Notepad saves "Unicode" as UTF-16 with its mark; PowerShell's Out-File did too.
    text = "1 + 2\r\n\r\nÉmile (x)\r\n"
    path = tmp_path / "s.txt"
    prefix = "\ufeff" if encoding == "utf-16-be" else ""  # the -be codec writes no mark itself
    path.write_bytes((prefix + text).encode(encoding))
    assert read_sentences(path) == read_sentences(["1 + 2", "", "Émile (x)"])


# ---------------------------------------------------------------------- command line
def test_cli_generate_train_parse_evaluate(tmp_path, capsys):
    data, gold = tmp_path / "expr.txt", tmp_path / "gold.jsonl"
    assert main(["tree", "generate", "english", "--sentences", "300", "--out", str(data),
                 "--trees", str(gold), "--seed", "3"]) == 0
    with open(data, "a") as f:
        f.write("\n\n")
    text = data.read_text()
    data.write_text("\n" + text)  # a leading empty line: skipped with a notice, line numbers kept
    model = tmp_path / "m"
    assert main(["tree", "train", str(data), "--out", str(model), "--epochs", "1", "--quiet"]) == 0
    assert "skipped 1 empty line" in capsys.readouterr().out
    out = tmp_path / "trees.jsonl"
    assert main(["tree", "parse", str(data), "--model", str(model), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 300 and rows[0]["line"] == 2 and rows[0]["tokens"] == text.splitlines()[0].split()
    brackets_out = tmp_path / "trees.txt"
    assert main(["tree", "parse", str(data), "--model", str(model), "--out", str(brackets_out),
                 "--format", "brackets"]) == 0
    blank, first = brackets_out.read_text().splitlines()[:2]  # line k is line k's tree: the empty line 1 too
    assert blank == "" and first.startswith("(") and first.replace("(", "").replace(")", "").split() == rows[0]["tokens"]
    capsys.readouterr()
    assert main(["tree", "evaluate", str(out), "--gold", str(gold)]) == 0
    printed = capsys.readouterr().out
    assert "model F1" in printed and "right-branching F1" in printed and "random F1" in printed
    assert main(["tree", "parse", str(data), "--model", str(model), "--out", str(data)]) == 2  # never the input


def test_cli_bad_model_and_bad_trees(tmp_path, capsys):
    data = tmp_path / "s.txt"
    data.write_text("1 + 2\n")
    (tmp_path / "m").mkdir()
    assert main(["tree", "parse", str(data), "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tokens": ["1", "+"], "spans": [[0, 3]]}\n')
    assert main(["tree", "evaluate", str(bad), "--gold", str(bad)]) == 2
    assert "line 1" in capsys.readouterr().err
    with pytest.raises(ModelFileError):
        TreeAutoEncoder.load(tmp_path / "m")
