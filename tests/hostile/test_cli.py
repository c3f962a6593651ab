"""The headless CLI against misbehaving peers: Ctrl+C always works, nothing leaks, output is clean.

Each run is a real ``python -m app --headless`` process with a bounded wait.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import pytest

from tests.hostile.server import KEY, tunnel_then, ws_header

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def wav(tmp_path) -> Path:
    path = tmp_path / "quiet.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 16000)   # one second of silence
    return path


def cli(args, key=KEY, env_extra=None, **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "ASSEMBLYAI_API_KEY"}
    env.update(PYTHONPATH=str(ROOT), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    env.update(env_extra or {})
    if key is not None:
        env["ASSEMBLYAI_API_KEY"] = key
    return subprocess.Popen([sys.executable, "-m", "app", "--headless", *args], cwd=ROOT, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", **kw)


def slow_handshake(conn):
    for byte in b"HTTP/1.1 101 Switching Protocols\r\n" * 100:
        if conn.expired() or not conn.send(bytes([byte])):
            return
        time.sleep(0.5)


@pytest.mark.parametrize("auth", ["key", "broker"])
def test_ctrl_c_ends_a_run_stuck_on_a_slow_server_within_two_seconds(hostile, wav, auth):
    server = hostile(slow_handshake)
    args = ["--server", server.url, "--source", f"file:{wav}", "--engine", "assemblyai"]
    if auth == "broker":
        args += ["--auth", "broker", "--token-url", server.url + "/token"]
    proc = cli(args, key=KEY if auth == "key" else None)
    deadline = time.monotonic() + 15
    while server.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.connections, "the CLI never connected"
    time.sleep(1.0)                              # now blocked on the dribbling answer
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)              # one Ctrl+C, not two
    out, err = proc.communicate(timeout=10)
    took = time.monotonic() - sent
    assert took < 2.0, f"Ctrl+C took {took:.1f} s"
    assert proc.returncode == 0, err
    assert KEY not in out + err and "Traceback" not in err


def test_server_control_characters_never_reach_the_terminal(hostile, wav):
    evil = "Hello\x1b]0;owned\x07 world\x1b[2J\r\nrm -rf\x9b31m done\x00"

    def captions(conn):
        conn.accept_websocket()
        conn.ws_text({"type": "Begin", "id": "s1", "expires_at": 2000000000})
        conn.ws_text({"type": "Turn", "turn_order": 0, "transcript": evil, "end_of_turn": True,
                      "turn_is_formatted": True, "words": []})
        conn.drain(0.3)
        conn.ws_text({"type": "Termination", "audio_duration_seconds": 1})
        conn.send(ws_header(2, opcode=8) + (1000).to_bytes(2, "big"))
        conn.drain(1.0)

    server = hostile(captions)
    proc = cli(["--server", server.url, "--source", f"file:{wav}", "--engine", "assemblyai"])
    out, err = proc.communicate(timeout=30)
    lines = [line for line in out.split("\n") if line]
    assert lines, err
    for line in lines:
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in line), repr(line)
        assert line.startswith("Hello") and "world" in line and line.endswith("done ")
    assert KEY not in out + err


def test_json_mode_keeps_the_text_but_escaped(hostile, wav):
    def captions(conn):
        conn.accept_websocket()
        conn.ws_text({"type": "Begin", "id": "s1"})
        conn.ws_text({"type": "Turn", "turn_order": 0, "transcript": "a\x1b[31mb\nc",
                      "end_of_turn": True, "turn_is_formatted": True})
        conn.drain(0.3)
        conn.ws_text({"type": "Termination"})
        conn.drain(1.0)

    server = hostile(captions)
    proc = cli(["--server", server.url, "--source", f"file:{wav}", "--engine", "assemblyai", "--json"])
    out, _ = proc.communicate(timeout=30)
    finals = [json.loads(line) for line in out.splitlines() if '"final"' in line]
    assert finals and finals[0]["text"] == "a\x1b[31mb\nc"
    assert "\x1b" not in out


def test_a_key_with_a_line_break_is_refused_before_anything_is_sent(hostile, wav, tmp_path):
    server = hostile(lambda conn: conn.http(200, {"token": "t"}))
    bad = "abc123\r\nX-Injected: yes"
    transcripts = tmp_path / "transcripts"
    proc = cli(["--server", server.url, "--source", f"file:{wav}", "--engine", "assemblyai", "--json",
                "--transcript-dir", str(transcripts)], key=bad)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    assert "ASSEMBLYAI_API_KEY" in err and "line breaks" in err
    assert "abc123" not in out + err and "X-Injected" not in out + err
    assert server.connections == 0
    for path in transcripts.rglob("*") if transcripts.exists() else []:
        assert b"abc123" not in path.read_bytes()


def test_allow_insecure_warns_on_stderr_and_plain_text_needs_it(hostile, wav):
    # The "remote" server is reached through a proxy on 127.0.0.1, so nothing leaves the machine
    # and no name is looked up.
    def captions(conn):
        conn.accept_websocket()
        conn.ws_text({"type": "Begin", "id": "s1"})
        conn.drain(0.3)
        conn.ws_text({"type": "Termination"})
        conn.drain(1.0)

    proxy = hostile(tunnel_then(captions))
    remote = "http://stt.example.invalid:8080"
    env = {"http_proxy": f"http://127.0.0.1:{proxy.port}", "no_proxy": ""}
    proc = cli(["--server", remote, "--allow-insecure", "--engine", "assemblyai",
                "--source", f"file:{wav}"], env_extra=env)
    _, err = proc.communicate(timeout=30)
    assert f"unencrypted connection to {remote}" in err, err
    assert proxy.tunnels and proxy.tunnels[0].startswith("CONNECT stt.example.invalid:8080 ")
    tunnels = len(proxy.tunnels)
    proc = cli(["--server", remote, "--engine", "assemblyai", "--source", f"file:{wav}"],
               env_extra=env)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "--allow-insecure" in err
    assert len(proxy.tunnels) == tunnels          # refused before connecting
