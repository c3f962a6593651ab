"""URLs per protocol/region/--server, vocabulary encoding and limits, redaction."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from app.core.session_config import SessionConfig
from app.core.streaming import urls


def q(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_default_hosts():
    assert urls.ws_url(SessionConfig()).startswith("wss://streaming.assemblyai.com/v3/ws?")
    assert urls.ws_url(SessionConfig(region="eu")).startswith("wss://streaming.eu.assemblyai.com/v3/ws?")
    assert urls.ws_url(SessionConfig(protocol="v2")).startswith("wss://api.assemblyai.com/v2/realtime/ws?")
    assert urls.token_url(SessionConfig()) == "https://streaming.assemblyai.com/v3/token"
    assert urls.token_url(SessionConfig(region="eu")) == "https://streaming.eu.assemblyai.com/v3/token"
    assert urls.token_url(SessionConfig(protocol="v2")) == "https://api.assemblyai.com/v2/realtime/token"


def test_v2_has_no_eu_endpoint():
    with pytest.raises(ValueError, match="US region"):
        urls.ws_url(SessionConfig(protocol="v2", region="eu"))


@pytest.mark.parametrize("server,ws,http", [
    ("http://127.0.0.1:8765", "ws://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("https://stt.example.org/", "wss://stt.example.org", "https://stt.example.org"),
    ("https://proxy.example.org/aai", "wss://proxy.example.org/aai", "https://proxy.example.org/aai"),
    ("ws://127.0.0.1:9", "ws://127.0.0.1:9", "http://127.0.0.1:9"),
])
def test_server_override(server, ws, http):
    for protocol, path in (("v3", "/v3/ws"), ("v2", "/v2/realtime/ws")):
        c = SessionConfig(protocol=protocol, server_url=server, region="eu" if protocol == "v3" else "us")
        assert urls.ws_url(c).startswith(ws + path + "?")
        assert urls.token_url(c).startswith(http + "/v")


@pytest.mark.parametrize("bad", ["ftp://x", "127.0.0.1:80", "http://", "nonsense"])
def test_bad_server_url(bad):
    with pytest.raises(ValueError):
        urls.ws_url(SessionConfig(server_url=bad))


def test_v3_params():
    c = SessionConfig(sample_rate=8000, encoding="pcm_mulaw", silence_ms=300, speech_model="u3-rt-pro",
                      vocabulary=("Añejo", 'say "hi"', "a, b"))
    params = q(urls.ws_url(c, token="tok"))
    assert params["sample_rate"] == "8000" and params["encoding"] == "pcm_mulaw"
    assert params["speech_model"] == "u3-rt-pro" and params["format_turns"] == "true"
    assert params["min_turn_silence"] == "300" and params["max_turn_silence"] == "1280"
    assert json.loads(params["keyterms_prompt"]) == ["Añejo", 'say "hi"', "a, b"]
    assert params["token"] == "tok"
    assert "word_boost" not in params


def test_v2_params_word_boost():
    c = SessionConfig(protocol="v2", vocabulary=("Añejo", 'say "hi"', "a, b", "  spaced   out "))
    params = q(urls.ws_url(c))
    assert json.loads(params["word_boost"]) == ["Añejo", 'say "hi"', "a, b", "spaced out"]
    assert "token" not in params and "keyterms_prompt" not in params and "speech_model" not in params


def test_silence_mapping():
    assert urls.v3_silence_params(700) == {"min_turn_silence": 700, "max_turn_silence": 1280}
    assert urls.v3_silence_params(5000) == {"min_turn_silence": 5000, "max_turn_silence": 5000}


def test_vocabulary_limits():
    urls.check_vocabulary("v3", ["x" * 50] * 100)
    with pytest.raises(ValueError, match="100"):
        urls.check_vocabulary("v3", [f"t{i}" for i in range(101)])
    with pytest.raises(ValueError, match="50 characters"):
        urls.check_vocabulary("v3", ["x" * 51])
    urls.check_vocabulary("v2", [f"{i:04d}" + "x" * 46 for i in range(50)])   # 2500 characters
    with pytest.raises(ValueError, match="2500"):
        urls.check_vocabulary("v2", [f"{i:04d}" + "x" * 46 for i in range(50)] + ["y"])
    with pytest.raises(ValueError):
        urls.ws_url(SessionConfig(vocabulary=("x" * 51,)))


def test_clean_terms_drops_blanks_and_duplicates():
    assert urls.clean_terms(["a", " ", "", "A", " b  c "]) == ("a", "b c")
    assert urls.clean_terms(["cafe\u0301", "café"]) == ("café",)          # NFC: one term


def test_redact_url():
    url = "ws://h/v3/ws?sample_rate=16000&token=SECRET&encoding=pcm_s16le"
    red = urls.redact_url(url)
    assert "SECRET" not in red and "token=%2A%2A%2A" in red and "sample_rate=16000" in red
    assert urls.redact_url("ws://h/v3/ws") == "ws://h/v3/ws"
