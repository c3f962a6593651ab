"""v2 real-time protocol: messages, endpointing, enforcement (raw websocket client)."""

import base64
import json
import re
import uuid
from datetime import datetime

import numpy as np
import pytest

from app.core.audio.convert import mulaw_encode
from tests.loopback.conftest import RATE, audio, terminate
from tests.loopback.transcripts import unformat

ISO_NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$")
PARTIAL_FIELDS = {"message_type", "created", "audio_start", "audio_end", "confidence", "text", "words"}


def test_happy_path_messages_and_record(srv, connect):
    srv.set_script(["Hello there, friend.", "General Kenobi!"])
    c = connect("v2", {"sample_rate": RATE, "enable_extra_session_information": "True"})
    c.stream(audio(), RATE)
    terminate(c, "v2")
    begins = c.messages[0]
    assert begins["message_type"] == "SessionBegins"
    assert uuid.UUID(begins["session_id"]).version == 4
    assert ISO_NAIVE.match(begins["expires_at"])
    datetime.fromisoformat(begins["expires_at"])
    finals = c.of_type("FinalTranscript")
    assert [f["text"] for f in finals] == ["Hello there, friend.", "General Kenobi!"]
    for f in finals:
        assert f["punctuated"] is True and f["text_formatted"] is True
        assert set(f) == PARTIAL_FIELDS | {"punctuated", "text_formatted"}
        assert all(set(w) == {"start", "end", "confidence", "text"} for w in f["words"])
        assert f["words"][0]["start"] >= f["audio_start"] and f["words"][-1]["end"] <= f["audio_end"]
    assert (finals[0]["audio_start"], finals[0]["audio_end"]) == (300, 1300)
    assert (finals[1]["audio_start"], finals[1]["audio_end"]) == (2500, 3300)
    partials = c.of_type("PartialTranscript")
    assert partials and all(set(p) == PARTIAL_FIELDS for p in partials)
    for p in partials:   # a growing prefix of the final, lower case and unpunctuated
        assert any(unformat(f).startswith(p["text"]) for f in ["Hello there, friend.", "General Kenobi!"])
    assert [m.get("message_type") for m in c.messages[-2:]] == ["SessionInformation", "SessionTerminated"]
    assert c.messages[-2]["audio_duration_seconds"] == pytest.approx(4.5, abs=0.11)
    assert c.close_code == 1000
    rec = srv.sessions[0]
    assert rec.protocol == "v2" and rec.auth == "key" and rec.finals == ["Hello there, friend.", "General Kenobi!"]
    assert rec.close_code == 1000 and rec.closed_by == "server" and rec.violations == []
    assert rec.query == {"sample_rate": "16000", "enable_extra_session_information": "True"}
    assert all(ms == pytest.approx(100) for ms in rec.frames_ms)
    assert len(rec.audio) == 2 * len(audio()) + 2 * (-len(audio()) % 1600)
    assert rec.control[-1]["terminate_session"] is True and "_t" in rec.control[-1]
    assert "<redacted>" == rec.headers["Authorization"]


def test_no_session_information_unless_asked(srv, connect):
    c = connect("v2")
    c.stream(audio([("speech", 0.5), ("silence", 0.2)]), RATE)
    terminate(c, "v2")
    kinds = [m.get("message_type") for m in c.messages]
    assert "SessionInformation" not in kinds and kinds[-1] == "SessionTerminated"
    assert c.of_type("FinalTranscript")[0]["text"] == "utterance 1"   # flushed on terminate


@pytest.mark.parametrize("value", ["True", "true", "TRUE"])
def test_disable_partials_boolean_any_case(srv, connect, value):
    c = connect("v2", {"sample_rate": RATE, "disable_partial_transcripts": value})
    c.stream(audio(), RATE)
    terminate(c, "v2")
    assert not c.of_type("PartialTranscript") and len(c.of_type("FinalTranscript")) == 2
    assert srv.sessions[0].violations == []


def test_mulaw_audio_is_decoded(srv, connect):
    srv.set_script(["Mu law works."])
    c = connect("v2", {"sample_rate": 8000, "encoding": "pcm_mulaw"})
    pcm = audio([("silence", 0.2), ("speech", 0.6), ("silence", 1.0)], rate=8000)
    c.stream(pcm, 8000, encoding="pcm_mulaw")
    terminate(c, "v2")
    assert [f["text"] for f in c.of_type("FinalTranscript")] == ["Mu law works."]
    rec = srv.sessions[0]
    assert rec.frames_ms[0] == pytest.approx(100)
    got = np.frombuffer(bytes(rec.audio), dtype="<i2")[: len(pcm)]
    assert np.max(np.abs(got.astype(int) - pcm.astype(int))) < 300   # µ-law quantisation only


def test_legacy_base64_audio_messages(srv, connect):
    c = connect("v2")
    pcm = audio([("speech", 0.5), ("silence", 1.0)])
    for i in range(0, len(pcm), 1600):
        c.send_json({"audio_data": base64.b64encode(pcm[i:i + 1600].tobytes()).decode()})
    assert c.wait(lambda c: c.of_type("FinalTranscript"))
    # The final comes once 700 ms of the silence are in; the last frames may still be on the way.
    assert srv.wait_for(lambda: len(srv.sessions[0].frames_ms) == 15)
    assert srv.sessions[0].control == []


def test_threshold_at_start_and_changed_mid_session(srv, connect):
    # Pauses of 500 ms: one utterance at the default 700 ms, split once the threshold is 300.
    part = [("speech", 0.4), ("silence", 0.5), ("speech", 0.4), ("silence", 1.0)]
    c = connect("v2")
    c.stream(audio(part), RATE)
    assert c.wait(lambda c: len(c.of_type("FinalTranscript")) == 1)
    c.send_json({"end_utterance_silence_threshold": 300})
    c.stream(audio(part), RATE)
    assert c.wait(lambda c: len(c.of_type("FinalTranscript")) == 3)
    c.send_json({"end_utterance_silence_threshold": 1500})
    c.stream(audio(part), RATE)
    terminate(c, "v2")
    finals = c.of_type("FinalTranscript")
    assert [(f["audio_start"], f["audio_end"]) for f in finals] == [
        (0, 1300), (2300, 2700), (3200, 3600), (4600, 5900)]
    assert [m["end_utterance_silence_threshold"] for m in srv.sessions[0].control[:2]] == [300, 1500]
    assert srv.sessions[0].violations == []


def test_force_end_gives_a_final_at_once(srv, connect):
    srv.set_script(["Forced.", "Rest."])
    c = connect("v2")
    c.stream(audio([("speech", 0.6)]), RATE)
    c.send_json({"force_end_utterance": True})
    assert c.wait(lambda c: c.of_type("FinalTranscript"), 5)
    final = c.of_type("FinalTranscript")[0]
    assert final["text"] == "Forced." and final["audio_end"] == 600
    c.stream(audio([("speech", 0.3), ("silence", 0.2)]), RATE)
    terminate(c, "v2")
    assert [f["text"] for f in c.of_type("FinalTranscript")] == ["Forced.", "Rest."]


def test_transcriber_and_fallback_text(srv, connect):
    calls = []

    def transcriber(pcm, rate):
        calls.append((len(pcm), rate))
        return "recognised words here"

    srv.transcriber = transcriber
    c = connect("v2")
    c.stream(audio([("speech", 1.0), ("silence", 1.0)]), RATE)
    assert c.wait(lambda c: c.of_type("FinalTranscript"))
    assert c.of_type("FinalTranscript")[0]["text"] == "recognised words here"
    assert (32000, RATE) in calls                   # the utterance's own audio, 1 s of PCM16
    srv.transcriber = None
    c.stream(audio([("speech", 0.5), ("silence", 1.0)]), RATE)
    assert c.wait(lambda c: len(c.of_type("FinalTranscript")) == 2)
    assert c.of_type("FinalTranscript")[1]["text"] == "utterance 1"


# ---- enforcement -------------------------------------------------------------------------------

def _closed_with(c, code, error=None):
    assert c.wait_closed(10)
    assert c.close_code == code, (c.close_code, c.close_reason, c.messages)
    if error is not None:
        assert {"error": error} in c.messages


@pytest.mark.parametrize("key", [None, "wrong-key", "Bearer test-key"])
def test_bad_auth_closes_4001(srv, connect, key):
    c = connect("v2", key=key)
    _closed_with(c, 4001, "Not Authorized")
    assert srv.sessions[0].auth == "" and srv.sessions[0].close_code == 4001


def test_api_key_in_url_is_a_violation(srv, connect):
    c = connect("v2", {"sample_rate": RATE, "token": srv.api_key}, key=None)
    c.close()
    assert srv.wait_for(lambda: srv.sessions and srv.sessions[0].ended)
    assert any("API key appeared in the URL" in v for v in srv.sessions[0].violations)
    assert srv.sessions[0].query["token"] == "<redacted>"


@pytest.mark.parametrize("params", [{}, {"sample_rate": "0"}, {"sample_rate": "-8000"}, {"sample_rate": "fast"}])
def test_sample_rate_required_and_positive(srv, connect, params):
    c = connect("v2", params)
    _closed_with(c, 4000, "Sample rate must be a positive integer")
    assert srv.sessions[0].violations


@pytest.mark.parametrize("boost", ["[not json", '{"a": 1}', '["ok", 3]', json.dumps(["x" * 1250, "y" * 1251])])
def test_word_boost_rejected(srv, connect, boost):
    c = connect("v2", {"sample_rate": RATE, "word_boost": boost})
    _closed_with(c, 4104, "Could not parse word boost parameter")


def test_word_boost_reaches_the_server_intact(srv, connect):
    terms = ['say "cheese"', "commas, too", "Zürich", "naïve café", "x" * 2400]
    c = connect("v2", {"sample_rate": RATE, "word_boost": json.dumps(terms)})
    assert c.wait(lambda c: c.messages)
    terminate(c, "v2")
    assert srv.sessions[0].vocabulary == terms and srv.sessions[0].violations == []


@pytest.mark.parametrize("ms,code,error", [(50, 4032, "Audio duration is too short"),
                                           (2100, 4033, "Audio duration is too long")])
def test_frame_duration_limits(srv, connect, ms, code, error):
    c = connect("v2")
    c.send_audio(np.zeros(RATE * ms // 1000, dtype="<i2").tobytes())
    _closed_with(c, code, error)
    assert srv.sessions[0].violations and "v2 audio frame" in srv.sessions[0].violations[0]


def test_frame_limits_inclusive(srv, connect):
    c = connect("v2")
    for ms in (100, 2000):
        c.send_audio(np.zeros(RATE * ms // 1000, dtype="<i2").tobytes())
    terminate(c, "v2")
    assert c.close_code == 1000 and srv.sessions[0].violations == []


def test_faster_than_real_time_closes_4029(loopback_factory):
    from tests.loopback.wsclient import RawClient
    server = loopback_factory(rate_grace_s=0.5)
    c = RawClient(server, "v2", params={"sample_rate": RATE})
    c.stream(audio([("silence", 3.0)]), RATE)
    _closed_with(c, 4029, "Client sent audio too fast")
    assert "faster than real time" in server.sessions[0].violations[0]
    c.close()


def test_real_time_pace_is_fine_with_a_tight_grace(loopback_factory):
    from tests.loopback.wsclient import RawClient
    server = loopback_factory(rate_grace_s=0.3)
    c = RawClient(server, "v2", params={"sample_rate": RATE})
    c.stream(audio([("speech", 0.5), ("silence", 1.0)]), RATE, realtime=1.0)
    terminate(c, "v2")
    assert c.close_code == 1000 and server.sessions[0].violations == []
    c.close()


def test_idle_timeout_closes_4031(loopback_factory):
    from tests.loopback.wsclient import RawClient
    server = loopback_factory(idle_timeout_s=0.5)
    c = RawClient(server, "v2", params={"sample_rate": RATE})
    _closed_with(c, 4031, "Session idle for too long")
    assert "idle" in server.sessions[0].violations[0]
    c.close()


def test_max_session_duration_closes_4008(loopback_factory):
    from tests.loopback.wsclient import RawClient
    server = loopback_factory(max_session_s=0.6, rate_grace_s=1000)
    c = RawClient(server, "v2", params={"sample_rate": RATE})
    c.stream(audio([("silence", 0.2)]), RATE)
    _closed_with(c, 4008, "Session Expired")
    assert server.sessions[0].violations == []          # not the client's fault
    c.close()


@pytest.mark.parametrize("message,code", [
    ("{not json", 4100),
    ({"end_utterance_silence_threshold": 20001}, 4101),
    ({"end_utterance_silence_threshold": -1}, 4101),
    ({"end_utterance_silence_threshold": "300"}, 4101),
    ({"end_utterance_silence_threshold": 300.5}, 4101),
    ({"end_utterance_silence_threshold": True}, 4101),
    ({"force_end_utterance": "yes"}, 4101),
    ({"type": "Terminate"}, 4101),
    ([1, 2], 4101),
])
def test_bad_control_messages(srv, connect, message, code):
    c = connect("v2")
    c.send_json(message)
    _closed_with(c, code)
    assert c.messages[-1]["error"].startswith("Endpoint received")
    assert srv.sessions[0].violations


def test_threshold_bounds_accepted(srv, connect):
    c = connect("v2")
    c.send_json({"end_utterance_silence_threshold": 0})
    c.send_json({"end_utterance_silence_threshold": 20000})
    terminate(c, "v2")
    assert c.close_code == 1000 and srv.sessions[0].violations == []


def test_mulaw_frame_duration_uses_one_byte_per_sample(srv, connect):
    c = connect("v2", {"sample_rate": RATE, "encoding": "pcm_mulaw"})
    c.send_audio(mulaw_encode(np.zeros(800, dtype=np.int16)).tobytes())   # 50 ms of µ-law
    _closed_with(c, 4032)
