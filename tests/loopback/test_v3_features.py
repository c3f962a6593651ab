"""The loopback v3 server's newer messages (wire reference §3.8): scripted speakers and
revisions, language detection, LLM gateway responses, SpeechStarted/Heartbeat/Silence/Warning,
Begin.configuration, KeepAlive against inactivity_timeout; every message type checked against the
official SDK 1.8.2 pydantic models."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from websocket import WebSocketConnectionClosedException

from tests.loopback.conftest import RATE, audio, terminate
from tests.loopback.wsclient import tone_speech

THREE = [("silence", 0.3), ("speech", 1.0), ("silence", 1.2), ("speech", 0.8), ("silence", 1.2),
         ("speech", 0.9), ("silence", 1.2)]
SCRIPT = [{"text": "Good morning, everyone.", "speaker": "A", "language": "en"},
          {"text": "Buenos días a todos.", "speaker": "B", "language": "es"},
          {"text": "Let us begin.", "speaker": "C", "language": "en", "revise": [[1, "A"]],
           "translation": "Empecemos."}]
GATEWAY = {"model": "gpt-4o-mini", "max_tokens": 100,
           "messages": [{"role": "user", "content": "Translate to Spanish: {{turn}}"}]}


def ends(client):
    return [t for t in client.of_type("Turn") if t["end_of_turn"]]


def test_speakers_languages_and_a_revision(srv, connect):
    srv.set_script(SCRIPT)
    c = connect("v3", {"sample_rate": RATE, "format_turns": "true", "speaker_labels": "true",
                       "language_detection": "true"})
    c.stream(tone_speech(THREE, RATE), RATE)
    terminate(c, "v3")
    formatted = [t for t in ends(c) if t["turn_is_formatted"]]
    assert [(t["speaker_label"], t["language_code"]) for t in formatted] == [("A", "en"), ("B", "es"),
                                                                          ("C", "en")]
    assert all(w["speaker"] == t["speaker_label"] for t in formatted for w in t["words"])
    assert all(0 < t["language_confidence"] <= 1 for t in formatted)
    partials = [t for t in c.of_type("Turn") if not t["end_of_turn"]]
    assert partials and all("speaker_label" in p for p in partials)
    revisions = c.of_type("SpeakerRevision")
    assert revisions == [{"type": "SpeakerRevision",
                          "revisions": [{"turn_order": 1, "speaker_label": "A", "words": []}]}]
    # The revision follows the final that triggered it.
    kinds = [(m["type"], m.get("turn_order")) for m in c.messages]
    assert kinds.index(("SpeakerRevision", None)) > kinds.index(("Turn", 2))
    assert srv.sessions[0].finals == [e["text"] for e in SCRIPT]
    assert srv.sessions[0].violations == []


def test_no_labels_unless_asked(srv, connect):
    srv.set_script(SCRIPT)
    c = connect("v3", {"sample_rate": RATE})
    c.stream(tone_speech(THREE, RATE), RATE)
    terminate(c, "v3")
    for t in c.of_type("Turn"):
        assert "speaker_label" not in t and "language_code" not in t
        assert all("speaker" not in w for w in t["words"])
    assert c.of_type("SpeakerRevision") == [] and c.of_type("LLMGatewayResponse") == []


def test_max_speakers_is_a_hard_cap(srv, connect):
    srv.set_script([{"text": "One.", "speaker": "A"}, {"text": "Two.", "speaker": "B"},
                    {"text": "Three.", "speaker": "C"}])
    c = connect("v3", {"sample_rate": RATE, "speaker_labels": "true", "max_speakers": "2"})
    c.stream(tone_speech(THREE, RATE), RATE)
    terminate(c, "v3")
    assert [t["speaker_label"] for t in ends(c)] == ["A", "B", "A"]


def test_unknown_speaker_for_short_turns(srv, connect):
    srv.set_script([{"text": "Mm.", "speaker": "UNKNOWN"}])
    c = connect("v3", {"sample_rate": RATE, "speaker_labels": "true", "max_speakers": "1"})
    c.stream(audio([("speech", 0.5), ("silence", 1.0)]), RATE)
    terminate(c, "v3")
    assert [t["speaker_label"] for t in ends(c)] == ["UNKNOWN"]


def test_llm_gateway_answers_each_final(srv, connect):
    srv.set_script(SCRIPT)
    c = connect("v3", {"sample_rate": RATE, "speech_model": "universal-3-5-pro",
                       "llm_gateway": json.dumps(GATEWAY)})
    c.stream(tone_speech(THREE, RATE), RATE)
    terminate(c, "v3")
    answers = c.of_type("LLMGatewayResponse")
    assert [a["turn_order"] for a in answers] == [0, 1, 2]
    assert answers[2]["transcript"] == "let us begin"
    assert answers[2]["data"]["choices"][0]["message"]["content"] == "Empecemos."
    assert answers[0]["data"]["choices"][0]["message"]["content"] == "[gpt-4o-mini] good morning everyone"


@pytest.mark.parametrize("bad", ["{", json.dumps({"model": "m"}), json.dumps([1])])
def test_bad_llm_gateway_is_refused(srv, connect, bad):
    c = connect("v3", {"sample_rate": RATE, "llm_gateway": bad})
    assert c.wait_closed(5)
    assert c.close_code == 3006 and c.of_type("Error")


def test_begin_reports_the_model_used(srv, connect):
    c = connect("v3", {"sample_rate": RATE, "speech_model": "u3-rt-pro", "mode": "max_accuracy"})
    assert c.wait(lambda c: c.messages)
    assert c.messages[0]["configuration"] == {"model": "universal-3-5-pro", "mode": "max_accuracy",
                                              "api_version": "2026-11-01"}
    terminate(c, "v3")


def test_speech_started_heartbeat_and_silence(srv, connect):
    srv.realtime_factor = 0.7
    c = connect("v3", {"sample_rate": RATE, "speech_model": "universal-3-6-pro",
                       "session_heartbeat": "true", "acknowledge_silence": "true"})
    c.stream(audio([("silence", 0.3), ("speech", 1.0), ("silence", 2.5), ("speech", 0.8),
                    ("silence", 1.2)]), RATE)
    terminate(c, "v3")
    started = c.of_type("SpeechStarted")
    assert [s["timestamp"] for s in started] == [300, 3800]
    beats = c.of_type("Heartbeat")
    assert len(beats) >= 3 and all(b["realtime_factor"] == 0.7 for b in beats)
    assert [b["total_audio_received_ms"] for b in beats] == sorted(b["total_audio_received_ms"] for b in beats)
    silences = c.of_type("Silence")
    assert silences and all(s["end_ms"] - s["start_ms"] >= 1000 for s in silences)


def test_no_extra_messages_by_default(srv, connect):
    c = connect("v3", {"sample_rate": RATE})
    c.stream(audio(), RATE)
    terminate(c, "v3")
    assert {m["type"] for m in c.messages} == {"Begin", "Turn", "Termination"}


def test_scripted_warning(srv, connect):
    srv.inject(message_after_ms=(50, {"type": "Warning", "warning_code": 3101,
                                      "warning": "Audio sample rate looks wrong"}))
    c = connect("v3", {"sample_rate": RATE})
    assert c.wait(lambda c: c.of_type("Warning"), 5)
    terminate(c, "v3")


def test_language_codes_update_mid_session(srv, connect):
    c = connect("v3", {"sample_rate": RATE, "speech_model": "universal-streaming-multilingual",
                       "language_codes": json.dumps(["en"])})
    c.send_json({"type": "UpdateConfiguration", "language_codes": ["en", "es"]})
    c.send_json({"type": "UpdateConfiguration", "language_codes": "es"})      # not a list
    assert c.wait_closed(5) and c.close_code == 3006
    assert srv.sessions[0].control[0]["language_codes"] == ["en", "es"]


def test_keepalive_holds_off_the_inactivity_timeout(srv, connect):
    c = connect("v3", {"sample_rate": RATE, "inactivity_timeout": "5"})
    c.stream(audio([("silence", 0.2)]), RATE)
    # (pings keep the test client's own 10 s read timeout away; they are not activity)
    for _ in range(7):                       # 7 s without audio, a KeepAlive every second
        time.sleep(1.0)
        c.send_json({"type": "KeepAlive"})
        c.ws.ping()
    assert not c.closed.is_set()
    for _ in range(8):                       # no more KeepAlive: the timeout ends it normally
        if c.wait_closed(1.0):
            break
        try:
            c.ws.ping()
        except (WebSocketConnectionClosedException, OSError):
            pass                             # closed just now (or reset, under load): wait_closed says how
    assert c.close_code == 1000 and c.of_type("Termination")


# ---- every message type against the SDK's own models --------------------------------------------
@pytest.mark.sdk
def test_every_message_type_validates_against_sdk_models(srv, connect, tmp_path):
    from tests.loopback.test_sdk_conformance import DRIVERS, VENV_V3, sdk_python
    python = sdk_python(VENV_V3, "assemblyai>=1.8,<1.9")
    srv.set_script(SCRIPT)
    srv.realtime_factor = 0.8
    srv.inject(message_after_ms=((50, {"type": "Warning", "warning_code": 3101, "warning": "w"}),))
    c = connect("v3", {"sample_rate": RATE, "format_turns": "true", "speaker_labels": "true",
                       "language_detection": "true", "speech_model": "universal-3-6-pro",
                       "session_heartbeat": "true", "acknowledge_silence": "true",
                       "llm_gateway": json.dumps(GATEWAY)})
    assert c.wait(lambda c: c.of_type("Warning"), 5)
    c.stream(tone_speech(THREE + [("silence", 1.5)], RATE), RATE)
    terminate(c, "v3")
    expired = connect("v3", {"sample_rate": RATE})
    expired.send_json({"type": "Nonsense"})                  # → Error 3006
    assert expired.wait_closed(5)
    messages = c.messages + expired.messages
    kinds = {m["type"] for m in messages}
    assert kinds >= {"Begin", "Turn", "Termination", "SpeechStarted", "Error", "Warning", "Heartbeat",
                     "Silence", "LLMGatewayResponse", "SpeakerRevision"}, kinds
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(messages))
    proc = subprocess.run([str(python), str(DRIVERS / "validate_v3.py"), str(path)], cwd=DRIVERS,
                          capture_output=True, text=True, timeout=60)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(results) == len(messages)
    bad = [r for r in results if r["event"] != "valid" or r["extra"]]
    assert bad == [], bad
    turns = [r["dump"] for r in results if r["type"] == "Turn" and r["dump"]["end_of_turn"]]
    assert {t["speaker_label"] for t in turns} == {"A", "B", "C"}


def test_llm_gateway_prompt_must_hold_the_turn_variable(srv, connect):
    gateway = {**GATEWAY, "messages": [{"role": "user", "content": "Translate to Spanish"}]}
    c = connect("v3", {"sample_rate": RATE, "llm_gateway": json.dumps(gateway)})
    assert c.wait_closed(5)
    assert c.close_code == 3006 and "{{turn}}" in c.of_type("Error")[0]["error"]


def test_llm_gateway_answers_late_out_of_order_and_with_errors(srv, connect):
    srv.set_script([{"text": "Good morning.", "translation": "Buenos días.",
                     "translation_delay_ms": 1800},
                    {"text": "Second turn.", "translation_error": "no_choices"},
                    {"text": "Third turn.", "translation_error": "The model refused"}])
    c = connect("v3", {"sample_rate": RATE, "speech_model": "universal-3-6-pro",
                       "llm_gateway": json.dumps(GATEWAY)})
    c.stream(tone_speech(THREE, RATE), RATE)
    terminate(c, "v3")
    answers = c.of_type("LLMGatewayResponse")
    assert [a["turn_order"] for a in answers] == [1, 2, 0]       # the late one comes last
    assert answers[0]["data"]["choices"] == []
    assert answers[1]["data"]["error"]["message"] == "The model refused"
    assert answers[2]["data"]["choices"][0]["message"]["content"] == "Buenos días."
    kinds = [(m["type"], m.get("turn_order")) for m in c.messages]
    assert kinds.index(("LLMGatewayResponse", 0)) > kinds.index(("Turn", 2))
    assert kinds[-1][0] == "Termination"
    assert srv.sessions[0].violations == []


LATE_AND_FAILED = [{"text": "Good morning.", "translation": "Buenos días.", "translation_delay_ms": 1800},
                   {"text": "Second turn.", "translation_error": "no_choices"},
                   {"text": "Third turn.", "translation_error": "The model refused"}]


@pytest.mark.sdk
def test_late_and_failed_gateway_answers_validate_against_sdk_models(srv, connect, tmp_path):
    from tests.loopback.test_sdk_conformance import DRIVERS, VENV_V3, sdk_python
    python = sdk_python(VENV_V3, "assemblyai>=1.8,<1.9")
    srv.set_script(LATE_AND_FAILED)
    c = connect("v3", {"sample_rate": RATE, "speech_model": "universal-3-6-pro",
                       "llm_gateway": json.dumps(GATEWAY)})
    c.stream(tone_speech(THREE, RATE), RATE)
    terminate(c, "v3")
    answers = c.of_type("LLMGatewayResponse")
    assert len(answers) == 3
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(answers))
    proc = subprocess.run([str(python), str(DRIVERS / "validate_v3.py"), str(path)], cwd=DRIVERS,
                          capture_output=True, text=True, timeout=60)
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["event"] for r in results] == ["valid"] * 3 and not any(r["extra"] for r in results)
