"""Where to connect: WebSocket and token URLs per protocol, region and ``--server`` override.

Also a redaction helper so a token never reaches a log line. The vocabulary limits live in
``app.core.vocabulary`` and the silence mapping in ``app.core.silence``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from app.core import silence as silence_rules, vocabulary as vocab
from app.core.session_config import SessionConfig

V2_HTTP = "https://api.assemblyai.com"
V3_HTTP = {"us": "https://streaming.assemblyai.com", "eu": "https://streaming.eu.assemblyai.com"}
V2_WS_PATH = "/v2/realtime/ws"
V3_WS_PATH = "/v3/ws"
V2_TOKEN_PATH = "/v2/realtime/token"
V3_TOKEN_PATH = "/v3/token"

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


def ws_url(config: SessionConfig, *, token: str | None = None, vocabulary=None,
           silence_ms: int | None = None) -> str:
    """The full WebSocket URL. The API key is never part of it (it goes in a header)."""
    terms = vocab.require_within_limits(config.vocabulary if vocabulary is None else vocabulary,
                                        config.protocol)
    params: list[tuple[str, str]] = [("sample_rate", str(config.sample_rate)),
                                     ("encoding", config.encoding)]
    if config.protocol == "v2":
        if terms:
            params.append(("word_boost", json.dumps(list(terms), ensure_ascii=False)))
        path = V2_WS_PATH
    else:
        silence = config.silence_ms if silence_ms is None else silence_ms
        params.append(("speech_model", config.speech_model))
        params.append(("format_turns", "true" if config.format_turns else "false"))
        params.extend((k, str(v)) for k, v in silence_rules.v3_params(silence).items())
        if terms:
            params.append(("keyterms_prompt", json.dumps(list(terms), ensure_ascii=False)))
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
