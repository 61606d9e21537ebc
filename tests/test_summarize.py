"""Unsupervised summaries: the networks' shapes, training, save/load, the CLI, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aekit.apps.summarize import Summarizer, default_model, first_words
from aekit.cli import main
from aekit.data.text import split
from aekit.errors import DataError, ParameterError
from aekit.nn.text import LanguageModel, SummaryAutoEncoder

# a small news-like corpus: the tests check behaviour, the benchmark checks quality
WHO = ["Police", "Protesters", "The government", "Rebels", "Firefighters", "Officials", "Doctors", "Voters"]
DID = ["arrest", "report", "evacuate", "rescue", "count", "find"]
WHAT = ["dozens of people", "three suspects", "hundreds of residents", "two journalists", "forty workers"]
WHERE = ["Paris", "Nairobi", "Lima", "Osaka", "Kyiv", "Cairo", "Quito", "Oslo"]
WHEN = ["after heavy flooding", "following an earthquake", "during a nationwide strike", "amid rising tensions"]


def sentences(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    return [f"{pick(WHO)} in {pick(WHERE)} {pick(DID)} {pick(WHAT)} {pick(WHEN)}, officials say."
            for _ in range(n)]


TINY = dict(summary_words=5, embed_size=24, hidden=32, prior_hidden=32, prior_epochs=3, epochs=6, batch_size=32,
            lr=3e-3, verbose=0)


@pytest.fixture(scope="module")
def fitted() -> Summarizer:
    return Summarizer(**TINY).fit(sentences(320, 0), prior=["Police arrest three suspects.", "Voters count."])


def test_tiny_networks_have_the_right_shapes():
    torch.manual_seed(0)
    net = SummaryAutoEncoder(40, 8, 16, 12)
    ids = torch.randint(4, 40, (3, 7))
    ids[:, -1] = 3
    ids[2, 4:] = 0  # a shorter sentence: 3 words, </s>, padding
    ids[2, 3] = 3
    mask = ids != 0
    lengths = net.summary_lengths(mask, 5)
    assert lengths.tolist() == [5, 5, 3]
    words, probs, smask = net.write(ids, mask, lengths, sample=True)
    assert words.shape == probs.shape == (3, 5, 40) and smask.shape == (3, 5)
    assert torch.allclose(words.sum(-1), torch.ones(3, 5))  # straight-through: one-hot going forward
    assert torch.allclose(probs.sum(-1), torch.ones(3, 5), atol=1e-5)
    nll = net.reconstruction_nll(words, smask, ids, mask)
    assert nll.shape == (3, 7) and (nll[~mask] == 0).all() and (nll[mask] > 0).all()
    assert net.prior_kl(words, probs, smask).shape == (3, 5)
    assert net.prior.soft_log_probs(words).shape == (3, 5, 40)
    loss, parts = net.loss(ids, 0.0, mask, lengths)
    assert loss.ndim == 0 and set(parts) == {"reconstruction", "prior_kl", "lead"}
    loss.backward()  # the reconstruction reaches G through the discrete words
    assert net.g_cell.weight_ih.grad.abs().sum() > 0
    # greedy writing never repeats a word
    greedy = net.eval().write(ids, mask, lengths)[0].argmax(-1)
    for row, n in zip(greedy, lengths.tolist(), strict=True):
        assert len(set(row[:n].tolist())) == n
    # an extractive summary takes only the sentence's own words (never its </s>)
    extract = net.write(ids, mask, lengths, from_input=True)[0].argmax(-1)
    for row, source, n in zip(extract, ids, lengths.tolist(), strict=True):
        assert set(row[:n].tolist()) <= set(source[source > 3].tolist())


def test_search_keeps_allowed_words_in_order_and_its_costs_steer_it():
    torch.manual_seed(0)
    net = SummaryAutoEncoder(40, 8, 16, 12).eval()
    ids = torch.tensor([[4, 9, 5, 30, 6, 7, 31, 8, 3]])
    mask = ids != 0
    allowed = (ids != 3)[0]
    allowed[2] = False  # e.g. punctuation
    for beam in (1, 4):
        kept = net.search(ids, mask, 4, allowed, beam=beam)
        assert len(kept) == 4 and kept == sorted(set(kept)) and all(allowed[kept])
    # leaving a word out costs a lot and nothing else counts: the sentence's first allowed words
    assert net.search(ids, mask, 4, allowed, skip_cost=100, fluency_weight=0, rebuild_weight=0) == [0, 1, 3, 4]
    # free to skip, with a prior that only ever expects word 8 then 30: the search follows it
    net.unigram.zero_()
    net.prior.step = lambda words, state=None: (torch.full((len(words), 40), -50.0).index_fill_(
        1, torch.tensor([30 if w == 8 else 8 for w in words.tolist()]), 0.0), torch.zeros(1, len(words), 12))
    assert net.search(ids, mask, 1, allowed, skip_cost=0.1, rebuild_weight=0) == [7]
    assert net.search(ids, mask, 9, allowed) == allowed.nonzero().squeeze(1).tolist()  # too few: all of them


def test_language_model_learns_its_sentences():
    torch.manual_seed(0)
    lm = LanguageModel(12, 8, 16)
    ids = torch.tensor([[4, 5, 6, 7, 3]] * 16)
    opt = torch.optim.Adam(lm.parameters(), lr=0.05)
    first = float(lm.loss(ids)[0].detach())
    for _ in range(40):
        loss = lm.loss(ids)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(lm.loss(ids)[0].detach()) < 0.2 * first


def test_training_lowers_reconstruction_loss(fitted):
    history = fitted.training_history_
    assert history["prior"][-1]["val_loss"] < history["prior"][0]["val_loss"]
    assert history["model"][-1]["val_loss"] < history["model"][0]["val_loss"]
    # R rebuilds most of a sentence it never saw from five words, far above chance
    assert fitted.reconstruction_accuracy(sentences(40, 1)) > 0.6


def test_summaries_are_short_and_copy_the_inputs_spelling(fitted):
    inputs = sentences(6, 2) + ["Zorblax in Paris rescue two journalists after heavy flooding."]
    out = fitted.summarize(inputs)
    assert len(out) == len(inputs)
    for line, summary in zip(inputs, out, strict=True):
        words = fitted.adapter_.tokenizer.tokens(summary)
        assert 1 <= len(words) <= 5
        source = iter(fitted.adapter_.tokenizer.tokens(line))
        assert all(w in source for w in words)  # words of the input, in its order
    # an unknown name copied from the input keeps its spelling instead of <unk>
    assert "<unk>" not in " ".join(out)
    assert fitted.summarize(["Police in Paris."], length=2)[0].count(" ") <= 1
    # extractive by default: the words of the input, in its order, with its spelling
    line = "Rebels in Quito find forty workers during a nationwide strike, officials say."
    summary = split(fitted.summarize([line])[0])
    positions = [split(line).index(w) for w in summary]
    assert positions == sorted(positions)


def test_save_load_gives_the_same_summaries(fitted, tmp_path):
    inputs = sentences(10, 3)
    fitted.save(tmp_path / "m")
    loaded = Summarizer.load(tmp_path / "m")
    assert loaded.summarize(inputs) == fitted.summarize(inputs)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.model_.prior is not None  # D guides the search
    assert loaded.reconstruction_accuracy(inputs) == fitted.reconstruction_accuracy(inputs)
    loaded.set_params(decode="greedy")  # G writing alone: still words of the input, in order
    greedy = loaded.summarize(inputs)
    assert len(greedy) == len(inputs) and all(greedy)
    loaded.set_params(decode="best")
    with pytest.raises(ParameterError, match="decode"):
        loaded.summarize(inputs)


def test_a_reconstruction_only_model_searches_without_a_prior():
    model = Summarizer(**{**TINY, "epochs": 1}, prior_weight=0).fit(sentences(64, 5))
    assert model.model_.prior is None
    out = model.summarize(sentences(3, 6))
    assert len(out) == 3 and all(1 <= len(s.split()) <= 5 for s in out)


def test_first_words_baseline():
    assert first_words(["Police arrest three suspects in Paris.", "Hi."], [3, 5]) == ["Police arrest three", "Hi."]


def test_cli_train_and_run_on_files(tmp_path, capsys):
    data = tmp_path / "sentences.txt"
    data.write_text("\n".join(sentences(60, 4)) + "\n")
    model = tmp_path / "model"
    assert main(["summarize", "train", str(data), "--out", str(model), "--epochs", "1", "--words", "4",
                 "--quiet"]) == 0
    src = tmp_path / "in.txt"
    long_line = " ".join(["word"] * 80) + "."
    src.write_text(f"Police in Lima rescue two journalists.\n{long_line}\n北京今天下雨，气温下降。\n")
    out = tmp_path / "out.txt"
    assert main(["summarize", "run", str(src), "--out", str(out), "--model", str(model), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "note: 1 of 3 sentences cut to 64 tokens" in printed
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and all(lines)
    assert 1 <= len(Summarizer.load(model).adapter_.tokenizer.tokens(lines[2])) <= 4  # Chinese: by character
    assert main(["summarize", "run", str(src), "--out", str(src), "--model", str(model)]) == 2  # never the input


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (b"\x00\x01binary\x00", "binary file"),
                                              (b"\xfa\xfb bad", "not UTF-8"),
                                              (b"\xff\xfe\xfa bad", "UTF-16 mark but is not UTF-16 text")])
def test_cli_bad_input_is_one_line(fitted, tmp_path, capsys, content, message):
    fitted.save(tmp_path / "m")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    assert main(["summarize", "run", str(bad), "--out", str(tmp_path / "o.txt"), "--model", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.txt").exists()
    with pytest.raises(DataError, match=message):
        Summarizer(**TINY).fit(bad)


def test_the_bundled_model_summarizes_news(tmp_path):
    model = default_model()
    line = ("Israeli airstrikes kill at least twelve people in the southern Gaza Strip, according to the Gaza "
            "Health Ministry, as negotiations over a ceasefire continue in Cairo.")
    words = model.summarize([line])[0].split()
    assert len(words) == 9 and words[:2] == ["Israeli", "airstrikes"]  # the default length; the lead kept
    source = iter(line.split())
    assert all(w in source for w in words)  # words of the sentence, in its order


def test_summaries_line_up_with_their_input_lines(tmp_path):
    from aekit.apps.summarize.jobs import summarize_file

    (tmp_path / "in.txt").write_text("The council approved the new budget for the city schools on Monday .\n\n"
                                     "  \nHeavy rain closed the main road north of the town for two days .\n")
    summarize_file(tmp_path / "in.txt", tmp_path / "out.txt")
    rows = (tmp_path / "out.txt").read_text().split("\n")
    assert rows[0].startswith("The council") and rows[1:3] == ["", ""] and rows[3].startswith("Heavy rain")
