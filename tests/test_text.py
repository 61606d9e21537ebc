"""The text tokenizer: any Unicode, Chinese by character, a round trip, a saved vocabulary."""
from __future__ import annotations

import json

import pytest

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
