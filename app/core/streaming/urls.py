"""Where to connect: WebSocket and token URLs per protocol, region and ``--server`` override.

Also a redaction helper so a token never reaches a log line. The vocabulary limits live in
``app.core.vocabulary`` and the silence mapping in ``app.core.silence``.
"""

from __future__ import annotations

import ipaddress
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


LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")
INSECURE_HINT = ("Use https://, or allow unencrypted connections explicitly (Settings \u2192 "
                 "Connection, or --allow-insecure).")


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves this computer."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def safe_url(url: str) -> str:
    """scheme://host:port/path for messages: no user name, password, query or fragment."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}{parts.path}"


def check_url(url: str, what: str, *, allow_insecure: bool = False,
              schemes: tuple[str, ...] = ("http", "https", "ws", "wss")) -> None:
    """Raise ``ValueError`` (plain words, never the URL's password) unless ``url`` is usable.

    Plain http:// and ws:// are accepted for loopback hosts; for any other host only when the
    user opted in, because the key (or a token) and the captions would cross the network in clear.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in schemes or not parts.netloc:
        also = " (ws:// and wss:// work too)" if "ws" in schemes else ""
        raise ValueError(f"The {what} must look like https://HOST or http://HOST:PORT{also}.")
    if "@" in parts.netloc:
        raise ValueError(f"The {what} must not contain a user name or password (user:password@); "
                         "remove them and use the API key or a token broker instead.")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        given = parts.netloc.rsplit(":", 1)[-1]
        raise ValueError(f"The {what} has port {given}; a port is a number from 1 to 65535.")
    if not host:
        raise ValueError(f"The {what} must name a host.")
    if scheme in ("http", "ws") and not allow_insecure and not is_loopback(host):
        raise ValueError(f"The {what} uses unencrypted {scheme}:// to {host}: the credentials "
                         f"and captions would cross the network in clear. {INSECURE_HINT}")


def insecure_targets(config: SessionConfig) -> list[str]:
    """The plain-text, non-loopback URLs this configuration connects to (shown as warnings)."""
    out = []
    for url in (config.server_url, config.token_url if config.auth_mode == "broker" else None):
        if url:
            parts = urlsplit(url.strip())
            if parts.scheme.lower() in ("http", "ws") and not is_loopback(parts.hostname):
                out.append(safe_url(url))
    return out


def insecure_warning(config: SessionConfig) -> str | None:
    """One sentence for stderr and the status line when an opted-in plain-text link is used."""
    targets = insecure_targets(config)
    if not targets:
        return None
    return (f"Warning: unencrypted connection to {', '.join(targets)} (allowed by the "
            "insecure-connection setting): the credentials and captions can be read on the network.")


def insecure_status(config: SessionConfig) -> str:
    """A few words for the status line while an opted-in plain-text link is used ("" if none)."""
    if config.engine == "local":
        return ""
    targets = insecure_targets(config)
    return f"\u26a0 unencrypted connection to {urlsplit(targets[0]).hostname}" if targets else ""


def _normalise_server(server_url: str, allow_insecure: bool = False) -> tuple[str, str, str]:
    """``http(s)://host:port[/prefix]`` (ws/wss accepted too) → (scheme, netloc, prefix)."""
    check_url(server_url, "server URL", allow_insecure=allow_insecure)
    parts = urlsplit(server_url.strip())
    return parts.scheme.lower(), parts.netloc, parts.path.rstrip("/")


def http_base(config: SessionConfig) -> str:
    """Base for the token endpoints (https://… or the --server host)."""
    if config.server_url:
        scheme, netloc, prefix = _normalise_server(config.server_url, config.allow_insecure)
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
        params.extend(v3_feature_params(config))
        path = V3_WS_PATH
    if token:
        params.append(("token", token))
    return f"{ws_base(config)}{path}?{urlencode(params)}"


def redact_url(url: str) -> str:
    """The URL with any token (or other credential-looking) query value replaced by ***, and
    any user name or password (user:password@host) dropped."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if not parts.query:
        return urlunsplit((parts.scheme, netloc, parts.path, "", parts.fragment))
    secret = {"token", "key", "api_key", "sig", "signature", "auth", "access_token"}
    query = urlencode([(k, "***" if k.lower() in secret else v)
                       for k, v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
