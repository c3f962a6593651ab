"""The v3 and v2 clients against a scripted transport: events, ordering, stop, faults."""

from __future__ import annotations

import logging
import threading
import time
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.events import (Final, Partial, Recovery, SessionEnded, SessionStarted, StreamError)
from app.core.session_config import SessionConfig
from app.core.streaming.auth import KeyAuth, PresetTokenAuth
from app.core.streaming.transport import ConnectFailed, HandshakeRejected
from app.core.streaming.v2 import V2Session
from app.core.streaming.v3 import V3Session
from tests.core.streaming.fakes import FakeTransport

KEY = "sk-live-SECRET-1234567890abcdef"


class Recorder:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, event):
        with self.lock:
            self.events.append(event)

    def of(self, kind):
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()


def make(protocol="v3", transport=None, auth=None, **config):
    rec = Recorder()
    transport = transport or FakeTransport(protocol)
    cls = V3Session if protocol == "v3" else V2Session
    session = cls(SessionConfig(protocol=protocol, **config), rec,
                  auth=auth or KeyAuth(Secret(KEY)), transport_factory=lambda: transport)
    return session, transport, rec


def turn(order, text, end=False, formatted=False, start=100):
    words = [{"start": start + i * 200, "end": start + i * 200 + 150, "text": w, "confidence": 0.9,
              "word_is_final": end} for i, w in enumerate(text.split())]
    return {"type": "Turn", "turn_order": order, "turn_is_formatted": formatted, "end_of_turn": end,
            "transcript": text, "end_of_turn_confidence": 0.5, "words": words}


def assert_terminal_last(rec):
    terminal = [i for i, e in enumerate(rec.events) if isinstance(e, (SessionEnded, StreamError))]
    assert len(terminal) == 1, rec.events
    assert terminal[0] == len(rec.events) - 1


# ---- v3 ------------------------------------------------------------------------------------
def test_v3_start_emits_session_started_and_key_only_in_header():
    session, t, rec = make()
    session.start(timeout=5)
    assert rec.events[0] == SessionStarted("sess-1", "v3", 1759796682.0)
    assert t.headers == {"Authorization": KEY}
    assert KEY not in t.url
    session.stop(timeout=5)
    assert_terminal_last(rec)
    assert t.texts()[-1] == {"type": "Terminate"}


def test_v3_partials_then_formatted_final_once():
    session, t, rec = make(format_turns=True)
    session.start(timeout=5)
    t.push(turn(0, "hello"))
    t.push(turn(0, "hello world"))
    t.push(turn(0, "hello world"))                      # repeat: no duplicate partial
    t.push(turn(0, "hello world", end=True))            # unformatted end of turn: held
    t.push(turn(0, "Hello, world.", end=True, formatted=True))
    t.push(turn(0, "Hello, world.", end=True, formatted=True))   # duplicate: ignored
    assert rec.wait_for(lambda: rec.of(Final))
    time.sleep(0.2)
    assert [p.text for p in rec.of(Partial)] == ["hello", "hello world"]
    assert [f.text for f in rec.of(Final)] == ["Hello, world."]
    assert (rec.of(Final)[0].audio_start, rec.of(Final)[0].audio_end) == (100, 450)
    session.stop(timeout=5)
    assert_terminal_last(rec)


def test_v3_unformatted_final_used_when_formatted_never_comes():
    session, t, rec = make(format_turns=True)
    session.format_wait_s = 0.3
    session.start(timeout=5)
    t.push(turn(3, "no format here", end=True))
    assert rec.wait_for(lambda: rec.of(Final), timeout=5)
    assert rec.of(Final)[0].text == "no format here"
    t.push(turn(3, "No format here.", end=True, formatted=True))    # too late: not a second final
    time.sleep(0.2)
    assert len(rec.of(Final)) == 1
    session.stop(timeout=5)


def test_v3_held_final_flushed_before_next_turn_and_at_stop():
    session, t, rec = make(format_turns=True)
    session.format_wait_s = 30
    session.start(timeout=5)
    t.push(turn(0, "first turn", end=True))
    t.push(turn(1, "second"))
    assert rec.wait_for(lambda: rec.of(Partial))
    kinds = [type(e).__name__ for e in rec.events]
    assert kinds == ["SessionStarted", "Final", "Partial"]
    t.push(turn(1, "second turn", end=True))
    session.stop(timeout=5)          # the held unformatted final comes out before SessionEnded
    assert [f.text for f in rec.of(Final)] == ["first turn", "second turn"]
    assert_terminal_last(rec)


def test_v3_without_format_turns_end_of_turn_is_final():
    session, t, rec = make(format_turns=False)
    session.start(timeout=5)
    t.push(turn(0, "plain text", end=True))
    assert rec.wait_for(lambda: rec.of(Final))
    assert rec.of(Final)[0].text == "plain text"
    session.stop(timeout=5)


def test_v3_controls_are_sent_as_documented():
    session, t, rec = make(silence_ms=500)
    session.start(timeout=5)
    q = parse_qs(urlsplit(t.url).query)
    assert q["min_turn_silence"] == ["500"] and q["max_turn_silence"] == ["1280"]
    session.set_silence_threshold(2000)
    session.force_end()
    session.set_vocabulary(["Añejo", 'say "hi"'])
    assert t.wait_for(lambda: len(t.texts()) >= 3)
    assert t.texts()[:3] == [
        {"type": "UpdateConfiguration", "min_turn_silence": 2000, "max_turn_silence": 2000},
        {"type": "ForceEndpoint"},
        {"type": "UpdateConfiguration", "keyterms_prompt": ["Añejo", 'say "hi"']}]
    session.stop(timeout=5)


def test_v3_malformed_and_unknown_messages_are_ignored(caplog):
    session, t, rec = make()
    session.start(timeout=5)
    with caplog.at_level(logging.DEBUG):
        t.push("{not json")
        t.push("[1, 2]")
        t.push({"type": "Turn", "turn_order": "x"})
        t.push({"type": "SpeechStarted", "timestamp": 10})
        t.push({"type": "Heartbeat"})
        t.push(turn(0, "still alive", end=True, formatted=True))
        assert rec.wait_for(lambda: rec.of(Final))
    assert "malformed" in caplog.text
    session.stop(timeout=5)
    assert_terminal_last(rec)
    assert isinstance(rec.events[-1], SessionEnded)


def test_v3_error_message_then_close_is_one_mapped_error():
    session, t, rec = make()
    session.start(timeout=5)
    t.push({"type": "Error", "error_code": 3008, "error": "Session Expired: Maximum session duration exceeded"})
    t.push_close(3008, "Session Expired")
    assert rec.wait_for(lambda: rec.of(StreamError))
    time.sleep(0.2)
    errors = rec.of(StreamError)
    assert len(errors) == 1 and errors[0].code == 3008 and errors[0].recovery is Recovery.RECONNECT
    session.stop(timeout=2)            # after an error: returns at once, nothing more
    assert_terminal_last(rec)


def test_error_message_without_close_still_ends_the_session():
    session, t, rec = make("v2")
    session.error_close_wait_s = 0.2
    session.start(timeout=5)
    t.push({"error": "Model deprecated. See docs for new model information: https://x"})
    assert rec.wait_for(lambda: rec.of(StreamError), timeout=5)
    err = rec.of(StreamError)[0]
    assert err.recovery is Recovery.STOP and "v3" in err.message
    assert t.closed.is_set()


def test_dropped_connection_is_a_reconnectable_error():
    session, t, rec = make()
    session.start(timeout=5)
    t.drop()
    assert rec.wait_for(lambda: rec.of(StreamError))
    assert rec.of(StreamError)[0].recovery is Recovery.RECONNECT
    session.stop(timeout=1)
    assert_terminal_last(rec)


def test_handshake_rejection_maps_to_stop_and_emits_nothing():
    t = FakeTransport(connect_error=HandshakeRejected(401, '{"error": "bad key"}'))
    session, t, rec = make(transport=t)
    with pytest.raises(SessionError) as info:
        session.start(timeout=5)
    assert info.value.error.recovery is Recovery.STOP and info.value.error.code == 401
    assert rec.events == []
    session.stop()


def test_connect_failure_is_reconnectable():
    t = FakeTransport(connect_error=ConnectFailed("Could not connect to ws://127.0.0.1:9/v3/ws (connection refused)"))
    session, t, rec = make(transport=t)
    with pytest.raises(SessionError) as info:
        session.start(timeout=5)
    assert info.value.error.recovery is Recovery.RECONNECT
    assert "connection refused" in info.value.error.message


def test_auth_close_before_begin_fails_start():
    t = FakeTransport(auto=False)
    session, t, rec = make(transport=t)
    t.push_close(1008, "Unauthorized Connection: Invalid API key")
    with pytest.raises(SessionError) as info:
        session.start(timeout=5)
    assert info.value.error.code == 1008 and info.value.error.recovery is Recovery.STOP
    assert rec.events == []


def test_no_begin_within_timeout_fails_start():
    t = FakeTransport(auto=False)
    session, t, rec = make(transport=t)
    with pytest.raises(SessionError) as info:
        session.start(timeout=0.5)
    assert info.value.error.recovery is Recovery.RECONNECT
    assert rec.events == []


def test_stop_is_bounded_when_the_server_never_answers():
    t = FakeTransport()
    t.auto = True
    session, t, rec = make(transport=t)
    session.start(timeout=5)
    t.auto = False                     # no Termination will come
    began = time.monotonic()
    session.stop(timeout=0.5)
    assert time.monotonic() - began < 3
    assert isinstance(rec.events[-1], SessionEnded)
    session.stop(timeout=0.5)          # idempotent, nothing fired twice
    assert_terminal_last(rec)


def test_token_auth_puts_only_the_token_on_the_socket():
    session, t, rec = make(auth=PresetTokenAuth("tok-123"))
    session.start(timeout=5)
    assert t.headers == {}
    assert parse_qs(urlsplit(t.url).query)["token"] == ["tok-123"]
    session.stop(timeout=5)


# ---- audio frames --------------------------------------------------------------------------
@pytest.mark.parametrize("protocol,encoding,lo,hi", [("v3", "pcm_s16le", 50, 1000),
                                                     ("v2", "pcm_mulaw", 100, 2000)])
def test_every_frame_within_limits_including_the_last(protocol, encoding, lo, hi):
    session, t, rec = make(protocol, encoding=encoding, chunk_ms=lo)
    session.start(timeout=5)
    pcm = (np.sin(np.arange(16000 * 0.37) / 5) * 8000).astype("<i2").tobytes()   # 370 ms
    for i in range(0, len(pcm), 666):           # odd pieces, not frame-aligned
        session.send_audio(pcm[i:i + 666])
    session.stop(timeout=5)
    width = 1 if encoding == "pcm_mulaw" else 2
    durations = [len(f) / width / 16 for f in t.frames()]
    assert durations and all(lo <= d <= hi for d in durations), durations
    assert sum(durations) >= 370
    # terminate comes after the last audio frame
    kinds = [k for k, _, _ in t.sent]
    assert kinds[-1] == "text" and "binary" not in kinds[kinds.index("text", kinds.index("binary")):]


def test_audio_is_never_sent_ahead_of_real_time():
    session, t, rec = make(chunk_ms=100)
    session.start(timeout=5)
    session.send_audio(b"\x00\x00" * 16000)     # one second at once
    assert t.wait_for(lambda: len(t.frames()) == 10, timeout=5)
    times = [ts for k, _, ts in t.sent if k == "binary"]
    for k, ts in enumerate(times):   # one frame of slack: frame k not before (k-1)*100 ms
        assert ts - times[0] >= max(0, k - 1) * 0.1 - 0.005
    assert times[-1] - times[0] >= 0.8 - 0.005   # the burst drained at real time
    session.stop(timeout=5)


@pytest.mark.parametrize("protocol", ["v3", "v2"])
def test_a_caller_that_may_block_sends_on_its_own_thread_in_order_and_at_real_time(protocol):
    """A file's reader sends its frames itself (one thread wake-up per chunk, not two): the
    same frames, never ahead of real time, the Terminate after the last one."""
    session, t, rec = make(protocol, chunk_ms=100)
    session.start(timeout=5)
    senders = []
    real_send = t.send_binary
    t.send_binary = lambda data: (senders.append(threading.current_thread()), real_send(data))
    pcm = (np.sin(np.arange(16000 * 1.05) / 5) * 8000).astype("<i2").tobytes()
    began = time.monotonic()
    for i in range(0, len(pcm), 3200):
        session.send_audio(pcm[i:i + 3200], may_block=True)
    assert len(t.frames()) == 10                     # sent on return, not queued
    assert time.monotonic() - began >= 0.8 - 0.01    # a burst is paced here (one frame of slack)
    session.stop(timeout=5)
    assert senders[:10] == [threading.current_thread()] * 10
    width = 1 if protocol == "v2" else 2
    assert sum(len(f) for f in t.frames()) / width / 16 >= 1050   # the tail too, padded
    kinds = [k for k, _, _ in t.sent]
    assert kinds[-1] == "text" and "binary" not in kinds[kinds.index("text", kinds.index("binary")):]
    assert_terminal_last(rec)


def test_a_dropped_connection_while_the_caller_sends_is_one_reconnectable_error():
    session, t, rec = make(chunk_ms=100)
    session.start(timeout=5)
    session.send_audio(b"\x01\x00" * 1600, may_block=True)
    t.closed.set()                                   # the socket is gone under the caller
    session.send_audio(b"\x01\x00" * 1600, may_block=True)
    assert rec.wait_for(lambda: rec.of(StreamError))
    (error,) = rec.of(StreamError)
    assert error.recovery is Recovery.RECONNECT
    session.send_audio(b"\x01\x00" * 1600, may_block=True)   # after the end: ignored, no raise
    session.stop(timeout=1)
    assert_terminal_last(rec)


# ---- v2 ------------------------------------------------------------------------------------
def test_v2_events_threshold_first_and_terminate():
    session, t, rec = make("v2", silence_ms=1500, vocabulary=("Kubernetes", "Añejo"))
    session.start(timeout=5)
    assert isinstance(rec.events[0], SessionStarted) and rec.events[0].protocol == "v2"
    assert rec.events[0].expires_at is not None
    assert t.texts()[0] == {"end_utterance_silence_threshold": 1500} or t.wait_for(
        lambda: t.texts() and t.texts()[0] == {"end_utterance_silence_threshold": 1500})
    q = parse_qs(urlsplit(t.url).query)
    import json
    assert json.loads(q["word_boost"][0]) == ["Kubernetes", "Añejo"]
    t.push({"message_type": "PartialTranscript", "audio_start": 0, "audio_end": 500,
            "confidence": 0.5, "text": "hello", "words": [], "created": "2023-11-03T17:14:13.8"})
    t.push({"message_type": "PartialTranscript", "audio_start": 0, "audio_end": 500,
            "confidence": 0.5, "text": "", "words": [], "created": "2023-11-03T17:14:13.8"})
    t.push({"message_type": "FinalTranscript", "audio_start": 0, "audio_end": 900,
            "confidence": 0.9, "text": "Hello there.", "words": [], "created": "2023-11-03T17:14:13.8",
            "punctuated": True, "text_formatted": True})
    assert rec.wait_for(lambda: rec.of(Final))
    session.set_silence_threshold(300)
    session.force_end()
    session.set_vocabulary(["New"])             # next session only: no message
    session.stop(timeout=5)
    texts = t.texts()
    assert {"end_utterance_silence_threshold": 300} in texts
    assert {"force_end_utterance": True} in texts
    assert texts[-1] == {"terminate_session": True}
    assert [type(e).__name__ for e in rec.events] == [
        "SessionStarted", "Partial", "Final", "SessionEnded"]
    assert rec.of(Final)[0] == Final("Hello there.", 0, 900)
    assert session.vocabulary == ("New",)


def test_v2_close_code_after_error_text():
    session, t, rec = make("v2")
    session.start(timeout=5)
    t.push({"error": "Client sent audio too fast"})
    t.push_close(4029, "")
    assert rec.wait_for(lambda: rec.of(StreamError))
    err = rec.of(StreamError)[0]
    assert err.code == 4029 and err.recovery is Recovery.BUG


def test_key_never_in_logs_or_errors(caplog):
    caplog.set_level(logging.DEBUG)
    texts = []
    for error in (HandshakeRejected(401, "nope"), ConnectFailed("Could not connect (refused)")):
        session, t, rec = make(transport=FakeTransport(connect_error=error))
        with pytest.raises(SessionError) as info:
            session.start(timeout=2)
        texts += [str(info.value), repr(info.value), repr(info.value.error), repr(session.__dict__)]
    session, t, rec = make()
    session.start(timeout=5)
    t.drop()
    rec.wait_for(lambda: rec.of(StreamError))
    texts += [repr(e) for e in rec.events] + [repr(session._auth)]
    everything = "\n".join(texts) + caplog.text
    assert KEY not in everything
