"""The text tokenizer: any Unicode, Chinese by character, a round trip, a saved vocabulary."""
from __future__ import annotations

import json

import pytest
import torch

from aekit.data.text import EOS, SPECIALS, Tokenizer, join, normalize, split
from aekit.errors import DataError, ModelFileError, NotFittedError

NEWS = [
    "Israeli strikes in the Gaza Strip kill at least 35 Palestinians, including 23 in Gaza City.",
    "Overnight U.S. missile strikes on Hodeidah, Yemen, kill at least eight people (state television).",
    "The commander's report says the offensive has commenced.",
]
CHINESE = ["我爱北京天安门。", "今天天气很好,我们去公园吧!"]


def test_english_and_chinese_round_trip():
    tok = Tokenizer(min_count=1, lowercase=False).fit(NEWS + CHINESE)
    for line in NEWS + CHINESE:
        ids = tok.encode(line)
        assert UNK_ID not in ids
        assert tok.decode(ids) == normalize(line)


UNK_ID = SPECIALS.index("<unk>")


def test_chinese_is_split_by_character_and_words_keep_apostrophes():
    assert split("我爱北京") == ["我", "爱", "北", "京"]
    assert split("the commander's report, 2025.") == ["the", "commander's", "report", ",", "2025", "."]
    assert split("U.S. strikes.") == ["U.S.", "strikes", "."]
    assert split("5,864 prisoners, PM2.5 at 1.6") == ["5,864", "prisoners", ",", "PM2.5", "at", "1.6"]
    assert join(["the", "army", "has", '"', "no", "plans", '"', "."]) == 'the army has "no plans".'
    assert join(["commander", "-", "in", "-", "chief", "won", "7", "\u2013", "3"]) == "commander-in-chief won 7\u20133"
    assert join(["你", "好", ",", "世", "界"]) == "你好,世界"
    assert join(["Hello", ",", "世", "界"]) == "Hello, 世界"


def test_unknown_words_lowercase_and_decoding_stops_at_the_end_token():
    tok = Tokenizer(min_count=2).fit(["The cat sat .", "the cat ran .", "a dog"])
    assert tok.vocabulary_[:4] == list(SPECIALS) and "dog" not in tok.vocabulary_  # seen once
    assert tok.decode(tok.encode("THE CAT barked .")) == "the cat <unk>."
    ids = tok.encode("the cat") + [tok.index_[EOS]] + tok.encode("sat")
    assert tok.decode(ids) == "the cat"
    with pytest.raises(DataError, match="outside the vocabulary"):
        tok.decode([len(tok)])


def test_tokenizer_saves_as_json_and_refuses_a_damaged_entry():
    tok = Tokenizer(min_count=1).fit(NEWS + CHINESE)
    again = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.vocabulary_ == tok.vocabulary_ and again.encode(NEWS[0]) == tok.encode(NEWS[0])
    bad = tok.to_dict()
    bad["vocabulary"] = bad["vocabulary"][2:]
    with pytest.raises(ModelFileError, match="vocabulary"):
        Tokenizer.from_dict(bad)
    with pytest.raises(ModelFileError, match="malformed"):
        Tokenizer.from_dict({"vocabulary": []})


def test_bad_text_is_refused():
    with pytest.raises(DataError, match="no words"):
        Tokenizer().fit(["", "   "])
    with pytest.raises(NotFittedError):
        Tokenizer().encode("hello")
    with pytest.raises(DataError, match="expected text"):
        Tokenizer(min_count=1).fit(["a b"]).encode(b"bytes")
    assert normalize("a\x00b\t\tc\u00a0d") == "a b c d"  # control characters and odd spaces


def test_text_adapter_reads_a_file_pads_cuts_and_saves(tmp_path):
    from aekit.data.adapters import TextAdapter, adapter_from_dict

    path = tmp_path / "s.txt"
    path.write_text("\n".join(NEWS + CHINESE) + "\n\n", encoding="utf-8")
    adapter = TextAdapter(Tokenizer(min_count=1), max_tokens=12)
    ids, mask = adapter.fit_transform(path)
    assert ids.shape == (5, 13) and ids.dtype == torch.long and mask.dtype == torch.bool
    assert mask.sum(1).tolist()[3] == len(adapter.tokenizer.encode(CHINESE[0])) + 1  # + </s>
    assert adapter.notices_ == ["3 of 5 sentences cut to 12 tokens"]
    assert adapter.decode(ids)[3] == "我爱北京天安门。"
    again = adapter_from_dict(json.loads(json.dumps(adapter.to_dict())))
    assert torch.equal(again.transform(path)[0], ids)


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"), (b"\n  \n", "is empty"), (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"caf\xe9 au lait", "not UTF-8"),
])
def test_text_adapter_refuses_bad_files(tmp_path, content, message):
    from aekit.data.adapters import TextAdapter

    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        TextAdapter().fit_transform(path)
    with pytest.raises(DataError, match="strings"):
        TextAdapter().fit_transform(["fine", 3])
