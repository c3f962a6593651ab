"""Where to connect: WebSocket and token URLs per protocol, region and ``--server`` override.

Also the vocabulary limits of each protocol, checked before anything goes on the wire, and a
redaction helper so a token never reaches a log line.
"""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.core.session_config import SessionConfig

V2_HTTP = "https://api.assemblyai.com"
V3_HTTP = {"us": "https://streaming.assemblyai.com", "eu": "https://streaming.eu.assemblyai.com"}
V2_WS_PATH = "/v2/realtime/ws"
V3_WS_PATH = "/v3/ws"
V2_TOKEN_PATH = "/v2/realtime/token"
V3_TOKEN_PATH = "/v3/token"

WORD_BOOST_MAX_CHARS = 2500
KEYTERMS_MAX_TERMS = 100
KEYTERMS_MAX_CHARS = 50
V3_MIN_MAX_TURN_SILENCE = 1280     # the lead's mapping: max_turn_silence = max(silence, 1280)

_WS_FOR = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_FOR = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def _normalise_server(server_url: str) -> tuple[str, str, str]:
    """``http(s)://host:port[/prefix]`` (ws/wss accepted too) → (scheme, netloc, prefix)."""
    parts = urlsplit(server_url.strip())
    if parts.scheme.lower() not in _WS_FOR or not parts.netloc:
        raise ValueError(f"Server URL {server_url!r} must look like http://HOST:PORT or https://HOST.")
    return parts.scheme.lower(), parts.netloc, parts.path.rstrip("/")


def http_base(config: SessionConfig) -> str:
    """Base for the token endpoints (https://… or the --server host)."""
    if config.server_url:
        scheme, netloc, prefix = _normalise_server(config.server_url)
        return f"{_HTTP_FOR[scheme]}://{netloc}{prefix}"
    if config.protocol == "v2":
        if config.region != "us":
            raise ValueError("The v2 real-time API is only available in the US region; use v3 "
                             "for the EU region.")
        return V2_HTTP
    return V3_HTTP[config.region]


def ws_base(config: SessionConfig) -> str:
    scheme, rest = http_base(config).split("://", 1)
    return f"{_WS_FOR[scheme]}://{rest}"


def token_url(config: SessionConfig) -> str:
    return http_base(config) + (V2_TOKEN_PATH if config.protocol == "v2" else V3_TOKEN_PATH)


def clean_terms(terms) -> tuple[str, ...]:
    """NFC-normalise, collapse whitespace, drop empty and (case-insensitively) duplicate terms,
    keeping the order and the first spelling — the same rules as the vocabulary editor."""
    seen, out = set(), []
    for term in terms:
        t = " ".join(unicodedata.normalize("NFC", str(term)).split())
        if t and t.casefold() not in seen:
            seen.add(t.casefold())
            out.append(t)
    return tuple(out)


def word_boost_json(terms) -> str:
    return json.dumps(list(terms), ensure_ascii=False)


def check_vocabulary(protocol: str, terms) -> None:
    """Raise ``ValueError`` (plain words) when the list breaks the protocol's limits."""
    terms = clean_terms(terms)
    if protocol == "v2":
        # "Up to 2500 characters of vocabulary": the terms' own characters, not the JSON
        # punctuation around them (the vocabulary editor counts the same way).
        size = sum(len(t) for t in terms)
        if size > WORD_BOOST_MAX_CHARS:
            raise ValueError(f"The vocabulary has {size} characters; the v2 protocol allows "
                             f"{WORD_BOOST_MAX_CHARS}. Remove some terms.")
        return
    if len(terms) > KEYTERMS_MAX_TERMS:
        raise ValueError(f"The vocabulary has {len(terms)} terms; the v3 protocol allows "
                         f"{KEYTERMS_MAX_TERMS}. Remove some terms.")
    long = [t for t in terms if len(t) > KEYTERMS_MAX_CHARS]
    if long:
        raise ValueError(f"Vocabulary terms may be at most {KEYTERMS_MAX_CHARS} characters on "
                         f"v3; too long: {long[0][:60]!r}.")


def v3_silence_params(silence_ms: int) -> dict[str, int]:
    return {"min_turn_silence": int(silence_ms),
            "max_turn_silence": max(int(silence_ms), V3_MIN_MAX_TURN_SILENCE)}


def v3_feature_params(config: SessionConfig) -> list[tuple[str, str]]:
    """Speakers, languages, Pro options, health: only what the configuration turns on, so a
    plain configuration connects with exactly the parameters it always did."""
    out: list[tuple[str, str]] = []
    if config.speaker_labels:
        out.append(("speaker_labels", "true"))
        if config.max_speakers is not None:
            out.append(("max_speakers", str(int(config.max_speakers))))
    if config.language_codes:
        out.append(("language_codes", json.dumps(list(config.language_codes))))
    if config.language_detection:
        out.append(("language_detection", "true"))
    if config.prompt.strip():
        out.append(("prompt", config.prompt.strip()))
    if config.mode:
        out.append(("mode", config.mode))
    if config.voice_focus:
        out.append(("voice_focus", config.voice_focus))
    if config.filter_profanity:
        out.append(("filter_profanity", "true"))
    if config.inactivity_timeout_s is not None:
        out.append(("inactivity_timeout", str(int(config.inactivity_timeout_s))))
    if config.session_heartbeat:
        out.append(("session_heartbeat", "true"))
    if config.llm_gateway:
        out.append(("llm_gateway", json.dumps(json.loads(config.llm_gateway),
                                              separators=(",", ":"), ensure_ascii=False)))
    return out


def ws_url(config: SessionConfig, *, token: str | None = None, vocabulary=None,
           silence_ms: int | None = None) -> str:
    """The full WebSocket URL. The API key is never part of it (it goes in a header)."""
    terms = clean_terms(config.vocabulary if vocabulary is None else vocabulary)
    check_vocabulary(config.protocol, terms)
    params: list[tuple[str, str]] = [("sample_rate", str(config.sample_rate)),
                                     ("encoding", config.encoding)]
    if config.protocol == "v2":
        if terms:
            params.append(("word_boost", word_boost_json(terms)))
        path = V2_WS_PATH
    else:
        silence = config.silence_ms if silence_ms is None else silence_ms
        params.append(("speech_model", config.speech_model))
        params.append(("format_turns", "true" if config.format_turns else "false"))
        params.extend((k, str(v)) for k, v in v3_silence_params(silence).items())
        if terms:
            params.append(("keyterms_prompt", json.dumps(list(terms), ensure_ascii=False)))
        params.extend(v3_feature_params(config))
        path = V3_WS_PATH
    if token:
        params.append(("token", token))
    return f"{ws_base(config)}{path}?{urlencode(params)}"


def redact_url(url: str) -> str:
    """The URL with any token (or other credential-looking) query value replaced by ***."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    secret = {"token", "key", "api_key", "sig", "signature", "auth", "access_token"}
    query = urlencode([(k, "***" if k.lower() in secret else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
