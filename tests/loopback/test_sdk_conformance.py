"""Conformance: the OFFICIAL AssemblyAI Python SDKs, unmodified, against the loopback server.

assemblyai==0.64.2 (last release with the v2 RealtimeTranscriber) and assemblyai 1.8.x (v3
streaming client) pin clashing dependencies, so each lives in its own virtualenv and runs in a
subprocess (tests/loopback/sdk_drivers/*). Speech is espeak-ng, paced at real time.

Each scenario proves, from the server's record and the SDK's own callbacks:
  * a temporary token minted by the SDK opens the session (single-use token, no key on the socket);
  * the vocabulary (word_boost / keyterms_prompt) arrives intact;
  * the silence threshold given at start ends utterance 1 (natural end);
  * the threshold raised mid-session (configure_end_utterance_silence_threshold / set_params) is
    honoured: utterance 3's trailing silence is shorter than the new threshold, so its final
    comes only from the terminate flush;
  * force_end_utterance / force_endpoint ends utterance 2 at once, before the silence would have;
  * close() / disconnect(terminate=True) returns, the SDK saw every scripted final in order;
  * the client broke no protocol limit (frame sizes, real-time rate, message schema).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.loopback.endpointer import Endpointer, UtteranceEnd
from tests.loopback.tls import make_self_signed

pytestmark = pytest.mark.sdk

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = Path(__file__).parent / "sdk_drivers"
VENV_V2 = ROOT / ".venv-sdk064"
VENV_V3 = ROOT / ".venv-sdk18"
SCRIPT = ["Captions are ready.", "Send the slides today.", "Thanks everyone."]
VOCAB = ["Kenobi", 'say "cheese"', "commas, too", "Zürich"]
START_SILENCE_MS = 500
RAISED_SILENCE_MS = 2000       # longer than the 1.5 s tail after the last sentence
FORCE_DELAY_MS = 150           # force end this long after utterance 2's speech stops


def sdk_python(venv: Path, requirement: str) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        pytest.skip(f"SDK virtualenv {venv.name} is missing; create it with: python3 -m venv {venv} && "
                    f"{venv}/bin/pip install '{requirement}' (bash packaging/dev.sh test does this)")
    return python


def utterance_ends(wav: Path, silence_ms: int) -> list[UtteranceEnd]:
    with wave.open(str(wav), "rb") as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    ep = Endpointer(rate, silence_ms)
    return [e for e in ep.feed(pcm) if isinstance(e, UtteranceEnd)]


def run_driver(python: Path, driver: str, cfg: dict, *, extra_env: dict | None = None, timeout: float = 60):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    try:
        proc = subprocess.run([str(python), str(DRIVERS / driver), json.dumps(cfg)], cwd=DRIVERS, env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{driver} did not finish within {timeout} s (SDK hung?)\nstdout:\n{exc.stdout}\nstderr:\n{exc.stderr}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, f"{driver} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return events, proc


def scenario(wav: Path):
    ends = utterance_ends(wav, START_SILENCE_MS)
    assert len(ends) == 3, f"espeak audio should hold 3 utterances, found {ends}"
    raise_at = ends[1].start_ms + 200            # inside utterance 2
    force_at = ends[1].end_ms + FORCE_DELAY_MS   # after its speech, long before the silence ends it
    return ends, raise_at, force_at


def check_server_side(server, protocol: str, ends):
    assert server.wait_for(lambda: server.sessions and server.sessions[-1].ended, 15)
    rec = server.sessions[-1]
    assert rec.protocol == protocol and rec.auth == "token"
    assert rec.violations == [], rec.violations
    assert rec.vocabulary == VOCAB
    assert rec.finals == SCRIPT
    assert rec.close_code == 1000 and rec.closed_by == "server"
    assert rec.frames_ms and all(50 <= ms <= 2000 for ms in rec.frames_ms)
    finals_t = [t for m, t in zip(rec.sent, rec.sent_t)
                if m.get("message_type") == "FinalTranscript" or (m.get("type") == "Turn" and m["end_of_turn"]
                                                                   and m["turn_is_formatted"])]
    final_msgs = [m for m in rec.sent
                  if m.get("message_type") == "FinalTranscript" or (m.get("type") == "Turn" and m["end_of_turn"]
                                                                     and m["turn_is_formatted"])]
    assert len(final_msgs) == 3, final_msgs
    controls = rec.control
    if protocol == "v2":
        start = [c for c in controls if c.get("end_utterance_silence_threshold") == START_SILENCE_MS]
        raised = [c for c in controls if c.get("end_utterance_silence_threshold") == RAISED_SILENCE_MS]
        force = [c for c in controls if c.get("force_end_utterance")]
        term = [c for c in controls if c.get("terminate_session")]
        ends_of = lambda m: m["audio_end"]
    else:
        start = [{"_t": rec.started_at}]     # min_turn_silence came in the query
        assert rec.query["min_turn_silence"] == str(START_SILENCE_MS)
        raised = [c for c in controls if c.get("type") == "UpdateConfiguration"
                  and c.get("min_turn_silence") == RAISED_SILENCE_MS]
        force = [c for c in controls if c.get("type") == "ForceEndpoint"]
        term = [c for c in controls if c.get("type") == "Terminate"]
        ends_of = lambda m: m["words"][-1]["end"]
    assert len(start) == 1 and len(raised) == 1 and len(force) == 1 and len(term) == 1, controls
    # Utterance 1 ended by the starting threshold, before the threshold was raised.
    assert finals_t[0] < raised[0]["_t"]
    # Utterance 2 ended by the force, right away: after the force arrived, with its own speech end.
    assert finals_t[1] >= force[0]["_t"]
    assert abs(ends_of(final_msgs[1]) - ends[1].end_ms) <= 50
    assert force[0]["_audio_ms"] - ends[1].end_ms < RAISED_SILENCE_MS
    # Utterance 3: the raised threshold held it open until terminate flushed it.
    assert finals_t[2] >= term[0]["_t"]
    return rec


def test_sdk_064_v2_realtime_transcriber(loopback_factory, speech_wav):
    python = sdk_python(VENV_V2, "assemblyai==0.64.2")
    wav = speech_wav(SCRIPT)
    ends, raise_at, force_at = scenario(wav)
    server = loopback_factory()
    server.set_script(SCRIPT)
    cfg = {"http_url": server.url, "ws_url": server.url.replace("http://", "ws://"), "api_key": server.api_key,
           "wav": str(wav), "rate": 16000, "use_token": True, "word_boost": VOCAB, "threshold": START_SILENCE_MS,
           "actions": [{"at_ms": raise_at, "do": "threshold", "value": RAISED_SILENCE_MS},
                       {"at_ms": force_at, "do": "force"}]}
    events, proc = run_driver(python, "v2_sdk064.py", cfg)
    kinds = [e["event"] for e in events]
    assert "error" not in kinds, proc.stdout + proc.stderr
    assert kinds.count("open") == 1 and kinds.count("closed") == 1 and "session_information" in kinds
    assert [e["text"] for e in events if e["event"] == "final"] == SCRIPT
    partials = [e["text"] for e in events if e["event"] == "partial"]
    assert partials and all(any(s.lower().replace(".", "").startswith(p) for s in SCRIPT) for p in partials)
    assert server.http[0].path == "/v2/realtime/token" and server.http[0].status == 200
    assert server.tokens.issued[0].used
    rec = check_server_side(server, "v2", ends)
    assert "Authorization" not in rec.headers          # token only: no key on the socket
    assert rec.query["enable_extra_session_information"] == "True"


@pytest.fixture
def tls_server(loopback_factory, tmp_path):
    cert, key = make_self_signed(tmp_path / "tls")
    return loopback_factory(tls=(str(cert), str(key))), cert


def test_sdk_18_v3_streaming_client(tls_server, speech_wav):
    python = sdk_python(VENV_V3, "assemblyai>=1.8,<1.9")
    server, cert = tls_server
    wav = speech_wav(SCRIPT)
    ends, raise_at, force_at = scenario(wav)
    server.set_script(SCRIPT)
    host = server.url.removeprefix("https://")       # the SDK uses https:// for tokens, wss:// for streaming
    cfg = {"api_host": host, "api_key": server.api_key, "wav": str(wav), "rate": 16000, "use_token": True,
           "keyterms": VOCAB, "format_turns": True, "min_turn_silence": START_SILENCE_MS, "max_turn_silence": 1280,
           "actions": [{"at_ms": raise_at, "do": "set_params",
                        "params": {"min_turn_silence": RAISED_SILENCE_MS, "max_turn_silence": RAISED_SILENCE_MS}},
                       {"at_ms": force_at, "do": "force"}]}
    events, proc = run_driver(python, "v3_sdk18.py", cfg, extra_env={"SSL_CERT_FILE": str(cert)})
    kinds = [e["event"] for e in events]
    assert "error" not in kinds, proc.stdout + proc.stderr
    assert kinds.count("open") == 1 and kinds.count("termination") == 1 and kinds.count("closed") == 1
    formatted = [e["transcript"] for e in events if e["event"] == "turn" and e["end_of_turn"] and e["formatted"]]
    assert formatted == SCRIPT
    assert any(e["event"] == "turn" and not e["end_of_turn"] for e in events)   # partial turns too
    assert server.http[0].path == "/v3/token" and server.http[0].status == 200
    rec = check_server_side(server, "v3", ends)
    assert rec.headers["Authorization"] == "<redacted>"   # SDK 1.8 sends the token in the header
    assert rec.query["format_turns"] == "True"


def test_sdk_18_v3_with_api_key_over_plain_ws(loopback_factory, speech_wav):
    python = sdk_python(VENV_V3, "assemblyai>=1.8,<1.9")
    server = loopback_factory()
    server.set_script(SCRIPT[:1])
    wav = speech_wav(SCRIPT[0])
    cfg = {"api_host": server.url.replace("http://", "ws://"), "api_key": server.api_key, "wav": str(wav),
           "rate": 16000, "format_turns": False}
    events, proc = run_driver(python, "v3_sdk18.py", cfg)
    finals = [e["transcript"] for e in events if e["event"] == "turn" and e["end_of_turn"]]
    assert finals == ["captions are ready"], proc.stdout + proc.stderr
    assert server.wait_for(lambda: server.sessions and server.sessions[0].ended)
    assert server.sessions[0].auth == "key" and server.sessions[0].violations == []


def test_sdk_18_v3_reports_a_rejected_key(loopback_factory, speech_wav):
    python = sdk_python(VENV_V3, "assemblyai>=1.8,<1.9")
    server = loopback_factory()
    cfg = {"api_host": server.url.replace("http://", "ws://"), "api_key": "wrong-key",
           "wav": str(speech_wav(SCRIPT[0])), "rate": 16000}
    events, proc = run_driver(python, "v3_sdk18.py", cfg)
    errors = [e for e in events if e["event"] == "error"]
    assert errors and errors[0]["code"] == 1008, proc.stdout + proc.stderr
    assert server.sessions[0].close_code == 1008


def test_sdk_064_v2_reports_a_rejected_key_and_close_returns(loopback_factory, speech_wav):
    python = sdk_python(VENV_V2, "assemblyai==0.64.2")
    server = loopback_factory()
    cfg = {"ws_url": server.url.replace("http://", "ws://"), "api_key": "wrong-key",
           "wav": str(speech_wav(SCRIPT[0])), "rate": 16000}
    events, proc = run_driver(python, "v2_sdk064.py", cfg)
    errors = [e["message"] for e in events if e["event"] == "error"]
    assert errors and errors[0] == "Not Authorized", proc.stdout + proc.stderr
    assert "closed" in [e["event"] for e in events]           # close() returned
    assert server.sessions[0].close_code == 4001 and server.sessions[0].auth == ""


MEETING = [{"text": "Good morning, everyone.", "speaker": "A", "language": "en"},
           {"text": "Buenos días a todos.", "speaker": "B", "language": "es",
            "translation": "Good morning, everyone."},
           {"text": "Let us begin.", "speaker": "C", "language": "en", "revise": [[1, "A"]]}]


def test_sdk_18_v3_speakers_languages_and_llm_gateway(loopback_factory, speech_wav):
    """SDK 1.8.2 asks for speaker labels, language detection and an llm_gateway; it receives the
    scripted labels, languages, the revision and one gateway answer per final, all validated by its
    own pydantic models (a failed validation would surface as a missing callback)."""
    python = sdk_python(VENV_V3, "assemblyai>=1.8,<1.9")
    server = loopback_factory()
    server.set_script(MEETING)
    wav = speech_wav([m["text"] for m in MEETING])
    gateway = {"model": "gpt-4o-mini", "max_tokens": 120,
               "messages": [{"role": "user", "content": "Translate into English: {{turn}}"}]}
    cfg = {"api_host": server.url.replace("http://", "ws://"), "api_key": server.api_key, "wav": str(wav),
           "rate": 16000, "format_turns": True, "speech_model": "universal-3-5-pro",
           "speaker_labels": True, "max_speakers": 3, "language_detection": True, "llm_gateway": gateway}
    events, proc = run_driver(python, "v3_sdk18.py", cfg)
    kinds = [e["event"] for e in events]
    assert "error" not in kinds and "driver_error" not in kinds, proc.stdout + proc.stderr
    finals = [e for e in events if e["event"] == "turn" and e["end_of_turn"] and e["formatted"]]
    assert [(e["transcript"], e["speaker_label"], e["language_code"]) for e in finals] == [
        (m["text"], m["speaker"], m["language"]) for m in MEETING]
    assert all(e["word_speakers"] == [e["speaker_label"]] for e in finals)
    assert [e["revisions"] for e in events if e["event"] == "speaker_revision"] == [[[1, "A"]]]
    llm = [e for e in events if e["event"] == "llm"]
    assert [e["turn_order"] for e in llm] == [0, 1, 2]
    assert llm[1]["content"] == "Good morning, everyone."
    assert server.wait_for(lambda: server.sessions and server.sessions[0].ended)
    rec = server.sessions[0]
    assert rec.violations == [] and rec.finals == [m["text"] for m in MEETING]
    assert rec.query["speaker_labels"] == "True" and rec.query["language_detection"] == "True"
    assert json.loads(rec.query["llm_gateway"]) == gateway


def test_sdk_18_v3_takes_the_apps_translation_request_and_late_failed_answers(
        loopback_factory, speech_wav):
    """The llm_gateway the app builds is what SDK 1.8.2 sends and the server accepts; answers
    that come late, out of order or failed reach the SDK's callback all the same."""
    from app.core.translation import gateway_json
    python = sdk_python(VENV_V3, "assemblyai>=1.8,<1.9")
    server = loopback_factory()
    script = [{"text": "Good morning, everyone.", "translation": "Buenos días a todos.",
               "translation_delay_ms": 4500},
              {"text": "Send the slides today.", "translation": "Envía las diapositivas hoy."},
              {"text": "Thanks everyone.", "translation_error": "The model refused"}]
    server.set_script(script)
    wav = speech_wav([m["text"] for m in script])
    gateway = json.loads(gateway_json("es", context="Dana"))
    cfg = {"api_host": server.url.replace("http://", "ws://"), "api_key": server.api_key, "wav": str(wav),
           "rate": 16000, "format_turns": True, "speech_model": "universal-3-6-pro",
           "llm_gateway": gateway}
    events, proc = run_driver(python, "v3_sdk18.py", cfg)
    kinds = [e["event"] for e in events]
    assert "error" not in kinds and "driver_error" not in kinds, proc.stdout + proc.stderr
    llm = {e["turn_order"]: e for e in events if e["event"] == "llm"}
    assert llm[0]["content"] == "Buenos días a todos."
    assert llm[1]["content"] == "Envía las diapositivas hoy."
    assert llm[2]["content"] is None and llm[2]["error"] == "The model refused"
    order = [e["turn_order"] for e in events if e["event"] == "llm"]
    assert order.index(0) > order.index(1)                  # the late answer came after
    rec = server.sessions[0]
    assert server.wait_for(lambda: rec.ended)
    assert rec.violations == [] and json.loads(rec.query["llm_gateway"]) == gateway
