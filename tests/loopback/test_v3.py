"""v3 Universal-Streaming protocol: messages, endpointing, enforcement (raw websocket client)."""

import json
import time
import uuid

import numpy as np
import pytest

from tests.loopback.conftest import RATE, audio, terminate
from tests.loopback.transcripts import unformat
from tests.loopback.wsclient import RawClient

TURN_FIELDS = {"type", "turn_order", "turn_is_formatted", "end_of_turn", "transcript",
               "end_of_turn_confidence", "words", "utterance"}


def test_happy_path_formatted_turns(srv, connect):
    script = ["Hello there, friend.", "General Kenobi!"]
    srv.set_script(script)
    c = connect("v3", {"sample_rate": RATE, "format_turns": "True"})
    c.stream(audio(), RATE)
    terminate(c, "v3")
    begin = c.messages[0]
    assert begin["type"] == "Begin" and uuid.UUID(begin["id"]).version == 4
    assert isinstance(begin["expires_at"], int) and begin["expires_at"] > time.time()
    turns = c.of_type("Turn")
    assert all(set(t) == TURN_FIELDS for t in turns)
    ends = [t for t in turns if t["end_of_turn"]]
    assert [(t["turn_order"], t["turn_is_formatted"], t["transcript"]) for t in ends] == [
        (0, False, "hello there friend"), (0, True, "Hello there, friend."),
        (1, False, "general kenobi"), (1, True, "General Kenobi!")]
    for t in turns:
        assert all(set(w) == {"start", "end", "text", "confidence", "word_is_final"} for w in t["words"])
        if not t["end_of_turn"]:        # partial: a growing prefix of the final, unformatted
            text = " ".join(w["text"] for w in t["words"])
            assert unformat(script[t["turn_order"]]).startswith(text)
            assert t["turn_is_formatted"] is False
    assert ends[0]["words"][0]["start"] == 300 and ends[0]["words"][-1]["end"] == 1300
    term = c.messages[-1]
    assert term["type"] == "Termination" and term["audio_duration_seconds"] in (4, 5)
    assert isinstance(term["session_duration_seconds"], int)
    assert c.close_code == 1000
    rec = srv.sessions[0]
    assert rec.finals == script and rec.violations == [] and rec.auth == "key" and rec.protocol == "v3"


def test_unformatted_turns_without_format_turns(srv, connect):
    srv.set_script(["Hello there, friend."])
    c = connect("v3")
    c.stream(audio([("speech", 0.8), ("silence", 0.6)]), RATE)
    terminate(c, "v3")
    ends = [t for t in c.of_type("Turn") if t["end_of_turn"]]
    assert len(ends) == 1 and ends[0]["transcript"] == "hello there friend" and not ends[0]["turn_is_formatted"]
    assert srv.sessions[0].finals == ["hello there friend"]


def test_default_min_turn_silence_is_400(srv, connect):
    c = connect("v3")
    # 300 ms pause: same turn; 500 ms pause: new turn.
    c.stream(audio([("speech", 0.3), ("silence", 0.3), ("speech", 0.3), ("silence", 0.5),
                    ("speech", 0.3), ("silence", 0.6)]), RATE)
    terminate(c, "v3")
    assert len([t for t in c.of_type("Turn") if t["end_of_turn"]]) == 2


def test_update_configuration_changes_endpointing_live(srv, connect):
    part = [("speech", 0.3), ("silence", 0.6), ("speech", 0.3), ("silence", 1.5)]
    c = connect("v3", {"sample_rate": RATE, "min_turn_silence": "1000", "max_turn_silence": "1280"})
    c.stream(audio(part), RATE)
    assert c.wait(lambda c: len([t for t in c.of_type("Turn") if t["end_of_turn"]]) == 1)
    c.send_json({"type": "UpdateConfiguration", "min_turn_silence": 300, "max_turn_silence": 1280})
    c.stream(audio(part), RATE)
    terminate(c, "v3")
    assert len([t for t in c.of_type("Turn") if t["end_of_turn"]]) == 3
    assert srv.sessions[0].control[0]["min_turn_silence"] == 300
    assert srv.sessions[0].violations == []


def test_force_endpoint_and_keepalive(srv, connect):
    srv.set_script(["Forced."])
    c = connect("v3", {"sample_rate": RATE, "format_turns": "true"})
    c.stream(audio([("speech", 0.5)]), RATE)
    c.send_json({"type": "KeepAlive"})
    c.send_json({"type": "ForceEndpoint"})
    assert c.wait(lambda c: any(t["end_of_turn"] and t["turn_is_formatted"] for t in c.of_type("Turn")), 5)
    terminate(c, "v3")
    assert srv.sessions[0].finals == ["Forced."] and srv.sessions[0].violations == []


def test_keyterms_reach_the_server_intact(srv, connect):
    terms = ['say "cheese"', "commas, too", "Zürich", "x" * 50] + [f"term {i}" for i in range(96)]
    c = connect("v3", {"sample_rate": RATE, "keyterms_prompt": json.dumps(terms)})
    assert c.wait(lambda c: c.messages)
    c.send_json({"type": "UpdateConfiguration", "keyterms_prompt": ["new", "terms"]})
    terminate(c, "v3")
    assert srv.sessions[0].vocabulary == ["new", "terms"] and srv.sessions[0].violations == []


def test_temporary_token_in_header_or_query(srv, connect):
    a, b = srv.mint_token("v3"), srv.mint_token("v3")
    c1 = connect("v3", header_token=a)
    c2 = connect("v3", {"sample_rate": RATE}, key=None, token=b)
    for c in (c1, c2):
        assert c.wait(lambda c: c.messages) and c.messages[0]["type"] == "Begin"
        terminate(c, "v3")
    assert [s.auth for s in srv.sessions] == ["token", "token"]


# ---- enforcement -------------------------------------------------------------------------------

def _error_close(c, code, starts=""):
    assert c.wait_closed(10)
    assert c.close_code == code, (c.close_code, c.close_reason, c.messages)
    error = c.messages[-1]
    assert error["type"] == "Error" and error["error_code"] == code and error["error"].startswith(starts)
    assert len(c.close_reason.encode()) <= 123


@pytest.mark.parametrize("kwargs", [{"key": None}, {"key": "nope"}, {"header_token": "not-a-token"}])
def test_bad_auth_closes_1008(srv, connect, kwargs):
    c = connect("v3", **kwargs)
    _error_close(c, 1008, "Unauthorized Connection")


def test_token_is_single_use_and_protocol_bound(srv, connect):
    token = srv.mint_token("v3")
    ok = connect("v3", header_token=token)
    assert ok.wait(lambda c: c.messages)
    _error_close(connect("v3", header_token=token), 1008)
    _error_close(connect("v3", header_token=srv.mint_token("v2")), 1008)
    expired = srv.mint_token("v3")
    srv.expire_tokens()
    _error_close(connect("v3", header_token=expired), 1008)
    assert [s.auth_error for s in srv.sessions[1:]] == ["token already used", "unknown token", "token expired"]


def test_token_max_session_duration(srv, connect):
    token = srv.tokens.issue("v3", 60, max_session_s=0.5).value
    c = connect("v3", header_token=token)
    _error_close(c, 3008, "Session Expired")


@pytest.mark.parametrize("params", [
    {"sample_rate": "0"}, {},
    {"sample_rate": RATE, "keyterms_prompt": json.dumps([f"t{i}" for i in range(101)])},
    {"sample_rate": RATE, "keyterms_prompt": json.dumps(["x" * 51])},
    {"sample_rate": RATE, "keyterms_prompt": "[broken"},
    {"sample_rate": RATE, "encoding": "flac"},
    {"sample_rate": RATE, "speech_model": "no-such-model"},
    {"sample_rate": RATE, "min_turn_silence": "soon"},
    {"sample_rate": RATE, "end_of_turn_confidence_threshold": "1.5"},
])
def test_bad_parameters_close_3006(srv, connect, params):
    c = connect("v3", params)
    _error_close(c, 3006)
    assert srv.sessions[0].violations


@pytest.mark.parametrize("ms", [20, 1200])
def test_frame_duration_limits(srv, connect, ms):
    c = connect("v3")
    c.send_audio(np.zeros(RATE * ms // 1000, dtype="<i2").tobytes())
    _error_close(c, 3007, "Input duration violation")


def test_frame_limits_inclusive(srv, connect):
    c = connect("v3")
    for ms in (50, 1000):
        c.send_audio(np.zeros(RATE * ms // 1000, dtype="<i2").tobytes())
    terminate(c, "v3")
    assert c.close_code == 1000 and srv.sessions[0].violations == []


def test_faster_than_real_time_closes_3007(loopback_factory):
    server = loopback_factory(rate_grace_s=0.5)
    c = RawClient(server, "v3", params={"sample_rate": RATE})
    c.stream(audio([("silence", 3.0)]), RATE)
    _error_close(c, 3007, "Audio Transmission Rate Exceeded")
    assert "faster than real time" in server.sessions[0].violations[0]
    c.close()


def test_max_session_closes_3008(loopback_factory):
    server = loopback_factory(max_session_s=0.5)
    c = RawClient(server, "v3", params={"sample_rate": RATE})
    _error_close(c, 3008, "Session Expired: Maximum session duration exceeded")
    c.close()


@pytest.mark.parametrize("message,starts", [
    ("{oops", "Invalid JSON"),
    ({"no": "type"}, "Invalid Message"),
    ({"type": "Dance"}, "Invalid Message Type"),
    ({"type": "UpdateConfiguration", "sample_rate": 8000}, "Invalid Message"),
    ({"type": "UpdateConfiguration", "min_turn_silence": "300"}, "Invalid Message"),
    ({"type": "UpdateConfiguration", "keyterms_prompt": ["y" * 51]}, "Invalid Message"),
    ({"terminate_session": True}, "Invalid Message"),
])
def test_bad_messages_close_3006(srv, connect, message, starts):
    c = connect("v3")
    c.send_json(message)
    _error_close(c, 3006, starts)
    assert srv.sessions[0].violations
