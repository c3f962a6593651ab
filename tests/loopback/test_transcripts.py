"""Text shaping (unformatted partials, word timings) and the script/token stores."""

import pytest

from tests.loopback.tokens import TokenStore
from tests.loopback.transcripts import TextSource, partial_words, spread_words, unformat


def test_unformat_lowercases_and_strips_punctuation_but_keeps_apostrophes():
    assert unformat("Hi, I'm Zoë — it's 9:30!") == "hi i'm zoë it's 9 30"


@pytest.mark.parametrize("speech_ms,expected", [(0, ["one"]), (299, ["one"]), (300, ["one", "two"]),
                                                (5000, ["one", "two", "three"])])
def test_partials_grow_but_never_reach_the_last_word(speech_ms, expected):
    assert partial_words("One, two, three four.", speech_ms) == expected
    assert partial_words("Single.", 5000) == ["single"]
    assert partial_words("", 1000) == []


def test_word_timings_cover_the_utterance_in_order():
    words = spread_words(["a", "bbbb", "cc"], 1000, 2000)
    assert words[0][1] == 1000 and words[-1][2] == 2000
    assert all(s < e for _, s, e in words)
    assert all(words[i][2] <= words[i + 1][1] for i in range(len(words) - 1))
    assert words[1][2] - words[1][1] > words[0][2] - words[0][1]     # longer word, longer time


def test_script_reserve_give_back_and_fallback():
    src = TextSource(["one", "two"])
    first = src.reserve()
    src.give_back(first)
    assert src.reserve() == "one" and src.reserve() == "two" and src.reserve() is None
    assert [src.fallback(), src.fallback()] == ["utterance 1", "utterance 2"]


def test_tokens_single_use_expiring_and_protocol_bound():
    store = TokenStore()
    v2 = store.issue("v2", 60).value
    assert store.redeem(v2, "v3") == (None, "unknown token")
    assert store.redeem(v2, "v2")[0] is not None
    assert store.redeem(v2, "v2") == (None, "token already used")
    old = store.issue("v3", 60).value
    store.expire_all()
    assert store.redeem(old, "v3") == (None, "token expired")
    assert store.redeem("made-up", "v3") == (None, "unknown token")
