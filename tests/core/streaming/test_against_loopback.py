"""The real clients + pipeline against the loopback server: faults, reconnects, the connection check.

Scenarios run concurrently (one server each) so the whole file costs about one audio length.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import pytest

from app.core.audio.source import WavFileSource
from app.core.credentials import Secret
from app.core.events import Final, Gap, Reconnecting, Recovery, SessionStarted, StreamError
from app.core.pipeline import CaptionPipeline
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session
from app.core.streaming import close_codes
from app.core.streaming.check import check_connection

TEXTS = ["Good morning, everyone.", "Let us begin the meeting.", "Thank you all."]
KEY = "loopback-key-SECRET-555"


@dataclass
class Scenario:
    name: str
    protocol: str
    faults: dict
    auth: str = "key"
    encoding: str = "pcm_s16le"
    client: dict = field(default_factory=dict)
    events: list = field(default_factory=list)


SCENARIOS = [
    Scenario("v3 server error 3005", "v3", {"close_after_ms": (1500, 3005, "Session Cancelled: An error occurred")}),
    Scenario("v3 expiry 3008", "v3", {"close_after_ms": (1500, 3008, "Session Expired")}),
    Scenario("v2 expiry 4008", "v2", {"close_after_ms": (1500, 4008, "Session Expired")}),
    Scenario("v2 try later 1013", "v2", {"close_after_ms": (1500, 1013, "")}, encoding="pcm_mulaw"),
    Scenario("v3 dropped TCP", "v3", {"drop_after_ms": 1500}, encoding="pcm_mulaw"),
    Scenario("v2 dropped TCP, token", "v2", {"drop_after_ms": 1500}, auth="token"),
    Scenario("v3 stall", "v3", {"stall_after_ms": 1500}, client={"stall_timeout_s": 1.0}),
    Scenario("v3 junk", "v3", {"malformed_after_ms": 800, "unknown_message_after_ms": 1200}),
    # Silent stretches (1.2 s) longer than dead_after_s: only answered pings keep it alive.
    Scenario("v2 quiet, pings answered", "v2", {}, client={"dead_after_s": 0.9, "ping_interval_s": 0.2}),
    Scenario("v2 junk", "v2", {"malformed_after_ms": 800, "unknown_message_after_ms": 1200}),
    Scenario("v3 auth rejected", "v3", {"reject_auth": True}),
    Scenario("v2 token rejected twice", "v2", {"reject_auth": True, "repeat": 2}, auth="token"),
    Scenario("v3 token rejected once", "v3", {"reject_auth": True}, auth="token"),
]


def test_faults_reconnect_and_every_final_arrives_once_in_order(loopback_factory, speech_wav):
    wav = speech_wav(TEXTS, tail_ms=800)
    runs = []
    for sc in SCENARIOS:
        server = loopback_factory(api_keys=(KEY,), script=TEXTS + ["extra one", "extra two"])
        server.inject(**sc.faults)
        config = SessionConfig(protocol=sc.protocol, server_url=server.url, auth_mode=sc.auth,
                               encoding=sc.encoding, silence_ms=400)
        source = WavFileSource(wav, config.sample_rate, config.chunk_ms)

        def factory(listener, config=config, sc=sc):
            return create_session(config, listener, api_key=Secret(KEY), **sc.client)

        pipeline = CaptionPipeline(source, factory, sc.events.append, label=sc.name,
                                   base_backoff_s=0.2, max_backoff_s=1.0, max_retries=3)
        thread = threading.Thread(target=pipeline.run, name=sc.name)
        thread.start()
        runs.append((sc, server, pipeline, thread))
    for sc, server, pipeline, thread in runs:
        thread.join(timeout=60)
        assert not thread.is_alive(), sc.name
    for sc, server, pipeline, thread in runs:
        finals = [e.text for e in sc.events if isinstance(e, Final)]
        sent = [text for record in server.sessions for text in record.finals]
        assert all(not r.violations for r in server.sessions), (sc.name, [r.violations for r in server.sessions])
        if sc.name == "v3 token rejected once":      # an expired/used token: one fresh token fixes it
            assert pipeline.fatal_error is None and finals == TEXTS, sc.name
            assert len(server.sessions) == 2 and server.sessions[1].auth == "token"
            continue
        if sc.faults.get("reject_auth"):
            assert pipeline.fatal_error is not None and pipeline.fatal_error.recovery is Recovery.STOP, sc.name
            assert len(server.sessions) == (2 if sc.auth == "token" else 1), sc.name
            assert not any(isinstance(e, Reconnecting) for e in sc.events), sc.name
            continue
        assert pipeline.fatal_error is None, (sc.name, pipeline.fatal_error)
        assert finals == sent, sc.name                   # exactly once, in order
        assert finals and finals[-1] in TEXTS + ["extra one", "extra two"], sc.name
        starts = [e for e in sc.events if isinstance(e, SessionStarted)]
        if "junk" in sc.name or "quiet" in sc.name:
            assert len(starts) == 1 and not any(isinstance(e, StreamError) for e in sc.events), sc.name
            assert finals == TEXTS, sc.name
            continue
        assert len(starts) == 2, (sc.name, [type(e).__name__ for e in sc.events])
        assert any(isinstance(e, Reconnecting) for e in sc.events), sc.name
        error = next(e for e in sc.events if isinstance(e, StreamError))
        assert error.recovery is Recovery.RECONNECT, sc.name
        code = sc.faults.get("close_after_ms", (0, None))[1]
        if code:
            assert error.code == code, sc.name
        if "stall" in sc.name:
            assert error.message == close_codes.STALLED, sc.name
        gaps = [e for e in sc.events if isinstance(e, Gap)]
        assert gaps and gaps[0].duration_ms > 0, sc.name
        stream_finals = [e for e in sc.events if isinstance(e, Final)]
        assert all(b.audio_start >= a.audio_start for a, b in zip(stream_finals, stream_finals[1:])), sc.name
        if sc.auth == "token":
            token_calls = [h for h in server.http if "token" in h.path and h.status == 200]
            assert len(token_calls) == len(server.sessions), sc.name     # a fresh token each time
            assert all(r.auth == "token" for r in server.sessions)


@pytest.mark.parametrize("protocol", ["v3", "v2"])
@pytest.mark.parametrize("auth", ["key", "token"])
def test_connection_check(loopback_factory, protocol, auth):
    server = loopback_factory(api_keys=(KEY,))
    config = SessionConfig(protocol=protocol, server_url=server.url, auth_mode=auth)
    assert check_connection(config, Secret(KEY), timeout=10) is None
    assert server.sessions and server.sessions[-1].auth == "token" and not server.sessions[-1].violations
    bad = check_connection(config, Secret("wrong-key"), timeout=10)
    assert bad is not None and bad.recovery is Recovery.STOP and "wrong-key" not in bad.message


def test_connection_check_broker_and_nothing_listening(loopback_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = check_connection(SessionConfig(server_url=f"http://127.0.0.1:{port}"), Secret(KEY), timeout=5)
    assert down is not None and down.recovery is Recovery.RECONNECT
    broker = check_connection(SessionConfig(auth_mode="broker", token_url=f"http://127.0.0.1:{port}/t"),
                              None, timeout=5)
    assert broker is not None and broker.recovery is Recovery.RECONNECT
    missing = check_connection(SessionConfig(auth_mode="key"), None, timeout=5)
    assert missing is not None and missing.recovery is Recovery.STOP and "API key" in missing.message
