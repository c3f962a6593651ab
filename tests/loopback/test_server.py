"""Server lifecycle, the runnable entry point, real speech endpointing, transcriber partials."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer
from tests.loopback.conftest import RATE, audio, terminate
from tests.loopback.wsclient import RawClient, read_wav

ROOT = Path(__file__).resolve().parents[2]


def test_fixture_gives_a_started_server_with_tight_limits(loopback_server):
    assert loopback_server.url.startswith("http://127.0.0.1:") and loopback_server.port > 0
    assert loopback_server.rate_grace_s == 1.5 and loopback_server.api_key == "test-key"
    c = RawClient(loopback_server, "v3", params={"sample_rate": RATE})
    assert c.wait(lambda c: c.messages)
    terminate(c, "v3")
    c.close()


def test_stop_closes_live_sessions_and_frees_the_port():
    server = LoopbackServer().start()
    c = RawClient(server, "v2", params={"sample_rate": RATE})
    assert c.wait(lambda c: c.messages)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 10
    assert c.wait_closed(5) and c.close_code == 1001        # going away
    assert server.sessions[0].closed_by == "stop" and server.sessions[0].ended
    again = LoopbackServer(port=server.port).start()          # the port is free again
    again.stop()
    c.close()


@pytest.mark.parametrize("protocol", ["v2", "v3"])
def test_espeak_speech_is_endpointed_into_sentences(srv, connect, speech_wav, protocol):
    texts = ["The quarterly budget review starts at nine tomorrow morning.",
             "Please send the updated slides to everyone before the meeting.",
             "Our customers want captions that are easy to read from across the room."]
    srv.set_script(texts)
    pcm, rate = read_wav(speech_wav(texts))
    c = connect(protocol, {"sample_rate": rate, "format_turns": "true"} if protocol == "v3" else {"sample_rate": rate})
    c.stream(pcm, rate)
    terminate(c, protocol)
    assert c.finals() == texts
    assert srv.sessions[0].partials                         # partials while each sentence went on


def test_transcriber_partials_and_finals(srv, connect):
    seen = []

    def transcriber(pcm, rate):
        seen.append(len(pcm) / 2 / rate)
        return "Words so far." if len(seen) < 3 else "All the words, finally."

    srv.transcriber = transcriber
    c = connect("v3", {"sample_rate": RATE, "format_turns": "true"})
    c.stream(audio([("speech", 1.5)]), RATE, realtime=4.0)
    c.stream(audio([("silence", 0.8)]), RATE)
    assert c.wait(lambda c: any(t["end_of_turn"] for t in c.of_type("Turn")), 5)
    partials = [t for t in c.of_type("Turn") if not t["end_of_turn"]]
    assert partials and " ".join(w["text"] for w in partials[0]["words"]) == "words so far"
    terminate(c, "v3")
    assert srv.sessions[0].finals[-1] == "All the words, finally."
    assert seen[-1] == pytest.approx(1.5, abs=0.02)        # the final saw the whole utterance


def test_broken_transcriber_is_reported_not_fatal(srv, connect):
    def transcriber(pcm, rate):
        raise RuntimeError("model exploded")

    srv.transcriber = transcriber
    c = connect("v2", {"sample_rate": RATE, "disable_partial_transcripts": "true"})
    c.stream(audio([("speech", 0.5), ("silence", 1.0)]), RATE)
    terminate(c, "v2")
    assert c.of_type("FinalTranscript")[0]["text"] == ""
    assert any("model exploded" in v for v in srv.sessions[0].violations)


def test_v3_inactivity_timeout_ends_the_session_normally(srv, connect):
    c = connect("v3", {"sample_rate": RATE, "inactivity_timeout": "5"})
    assert c.wait_closed(12)
    assert c.close_code == 1000 and c.messages[-1]["type"] == "Termination"


def test_runnable_entry_point(tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("First caption.\n\nSecond caption.\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback", "--port", "0", "--script", str(script),
                             "--api-key", "k-123"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("Loopback AssemblyAI server on http://127.0.0.1:"), line
        url = line.split()[4]

        class Target:   # what RawClient needs
            api_key = "k-123"

            @staticmethod
            def ws_url(protocol):
                return url.replace("http://", "ws://") + "/v2/realtime/ws"

        c = RawClient(Target, "v2", params={"sample_rate": RATE})
        c.stream(audio(), RATE, realtime=0)
        terminate(c, "v2")
        assert c.finals() == ["First caption.", "Second caption."]
        c.close()
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "v2 session 1 opened" in err


def test_entry_point_rejects_a_missing_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tests.loopback", "--port", "0", "--script",
                           str(tmp_path / "nope.txt")], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "Cannot read the script file" in proc.stderr
