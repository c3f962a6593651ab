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


def test_silence_mapping_in_the_url():
    params = q(urls.ws_url(SessionConfig(silence_ms=700)))
    assert (params["min_turn_silence"], params["max_turn_silence"]) == ("700", "1280")
    params = q(urls.ws_url(SessionConfig(silence_ms=5000)))
    assert (params["min_turn_silence"], params["max_turn_silence"]) == ("5000", "5000")


def test_vocabulary_limits_are_checked_before_the_url_is_built():
    urls.ws_url(SessionConfig(vocabulary=tuple(f"t{i}" for i in range(100))))
    with pytest.raises(ValueError, match="100 terms"):
        urls.ws_url(SessionConfig(vocabulary=tuple(f"t{i}" for i in range(101))))
    with pytest.raises(ValueError, match="50 characters"):
        urls.ws_url(SessionConfig(vocabulary=("x" * 51,)))
    v2_terms = tuple(f"{i:04d}" + "x" * 46 for i in range(50))       # 2500 characters
    urls.ws_url(SessionConfig(protocol="v2", chunk_ms=100, vocabulary=v2_terms))
    with pytest.raises(ValueError, match="2500"):
        urls.ws_url(SessionConfig(protocol="v2", chunk_ms=100, vocabulary=v2_terms + ("y",)))


def test_vocabulary_is_cleaned_before_it_is_sent():
    params = q(urls.ws_url(SessionConfig(vocabulary=("a", " ", "", "A", " b  c ", "cafe\u0301", "café"))))
    assert json.loads(params["keyterms_prompt"]) == ["a", "b c", "café"]   # NFC: one term


def test_redact_url():
    url = "ws://h/v3/ws?sample_rate=16000&token=SECRET&encoding=pcm_s16le"
    red = urls.redact_url(url)
    assert "SECRET" not in red and "token=%2A%2A%2A" in red and "sample_rate=16000" in red
    assert urls.redact_url("ws://h/v3/ws") == "ws://h/v3/ws"
