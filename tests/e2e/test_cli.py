"""The headless CLI end to end: `python -m app --headless` against the loopback server.

Runs that do not depend on each other run concurrently (each against its own server) to keep
the wall time short; every run streams a few seconds of espeak-ng speech at real time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest

REPO = Path(__file__).resolve().parents[2]
KEY = "test-key-0123456789-SECRET"
S1 = "Good morning, everyone."
S2 = "Let us begin the meeting."
VOCAB = '"Smith, John", Añejo, 5" screen, naïve café, O\'Brien'
VOCAB_TERMS = ["Smith, John", "Añejo", '5" screen', "naïve café", "O'Brien"]
LIMITS = {"v2": (100, 2000), "v3": (50, 1000)}


def cli_env(key: str | None = KEY) -> dict:
    env = dict(os.environ)
    env.pop("ASSEMBLYAI_API_KEY", None)
    if key is not None:
        env["ASSEMBLYAI_API_KEY"] = key
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.null.Keyring"   # never the desktop keyring
    env["PYTHONPATH"] = str(REPO)
    return env


def start(args, key: str | None = KEY, stdin=subprocess.DEVNULL, log: str | None = None) -> subprocess.Popen:
    env = cli_env(key)
    if log:
        env["CAPTION_OVERLAY_LOG"] = log
    return subprocess.Popen([sys.executable, "-m", "app", "--headless", *args], cwd=REPO,
                            env=env, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8")


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_frames(record, protocol):
    lo, hi = LIMITS[protocol]
    assert record.frames_ms, "no audio reached the server"
    assert all(lo <= ms <= hi for ms in record.frames_ms), record.frames_ms
    assert record.violations == []


def test_protocols_encodings_auth_modes_and_vocabulary(loopback_factory, speech_wav):
    """Both protocols × both encodings × key/token auth; the vocabulary (quotes, commas,
    non-ASCII) reaches the server intact in each."""
    wav = speech_wav(S1, rate=22050, channels=2, tail_ms=900)   # any WAV: resampled, downmixed
    runs = []
    for protocol in ("v3", "v2"):
        for encoding in ("pcm_s16le", "pcm_mulaw"):
            for auth in ("key", "token"):
                server = loopback_factory(api_keys=(KEY,), script=[S1])
                as_json = (encoding == "pcm_mulaw")
                args = ["--server", server.url, "--protocol", protocol, "--encoding", encoding,
                        "--auth", auth, "--vocabulary", VOCAB,
                        "--source", f"file:{wav}"] + (["--json"] if as_json else [])
                # debug logging on: even then neither the key nor a token may be printed
                runs.append((protocol, encoding, auth, as_json, server, start(args, log="debug")))
    for protocol, encoding, auth, as_json, server, proc in runs:
        code, out, err = finish(proc)
        label = f"{protocol}/{encoding}/{auth}"
        assert code == 0, f"{label}: {err}"
        if as_json:
            evs = events(out)
            assert [e["event"] for e in evs][0] == "session_started"
            assert evs[-1]["event"] == "session_ended"
            finals = [e for e in evs if e["event"] == "final"]
            assert [f["text"] for f in finals] == [S1], label
            assert 0 <= finals[0]["audio_start"] < finals[0]["audio_end"]
            assert any(e["event"] == "partial" for e in evs)
        else:
            assert out.splitlines() == [S1], label
        assert len(server.sessions) == 1, label
        rec = server.sessions[0]
        assert rec.protocol == protocol and rec.encoding == encoding and rec.auth == auth, label
        assert rec.query["sample_rate"] == "16000"
        check_frames(rec, protocol)
        assert rec.audio_ms >= 1500
        param = "word_boost" if protocol == "v2" else "keyterms_prompt"
        assert json.loads(rec.query[param]) == VOCAB_TERMS, label
        assert rec.vocabulary == VOCAB_TERMS, label
        assert KEY not in json.dumps(rec.query) and KEY not in err and KEY not in out
        assert "connecting" in err                      # the debug log really was on
        for match in re.findall(r"token=([^&\s]*)", err):
            assert match == "%2A%2A%2A", label         # tokens only ever appear redacted
        if auth == "token":
            token_calls = [h for h in server.http if "token" in h.path]
            assert token_calls and token_calls[0].status == 200
            if protocol == "v2":
                assert token_calls[0].method == "POST" and token_calls[0].body["expires_in"] >= 60
            else:
                assert token_calls[0].method == "GET" and "expires_in_seconds" in token_calls[0].query


def test_threshold_at_start_and_changed_mid_session(loopback_factory, speech_wav):
    """Two sentences 1.2 s apart. With a 5 s threshold they would merge into one utterance;
    lowering it to 300 ms mid-session (stdin command) splits them — the server obeyed live."""
    wav = speech_wav([S1, S2], tail_ms=700)
    runs = []
    for protocol in ("v3", "v2"):
        server = loopback_factory(api_keys=(KEY,), script=[S1, S2])
        proc = start(["--server", server.url, "--protocol", protocol, "--silence-ms", "5000",
                      "--json", "--source", f"file:{wav}"], stdin=subprocess.PIPE)
        runs.append((protocol, server, proc))
    for protocol, server, proc in runs:
        assert server.wait_for(lambda: server.sessions and server.sessions[0].partials, 15)
        proc.stdin.write("silence 300\n")
        proc.stdin.flush()
    for protocol, server, proc in runs:
        code, out, err = finish(proc)
        assert code == 0, err
        rec = server.sessions[0]
        if protocol == "v2":
            assert rec.control[0]["end_utterance_silence_threshold"] == 5000
            assert any(c.get("end_utterance_silence_threshold") == 300 for c in rec.control[1:])
        else:
            assert rec.query["min_turn_silence"] == "5000"
            assert any(c.get("type") == "UpdateConfiguration" and c.get("min_turn_silence") == 300
                       for c in rec.control)
        finals = [e["text"] for e in events(out) if e["event"] == "final"]
        assert finals == [S1, S2], (protocol, finals)
        assert rec.violations == []


def test_force_end_produces_an_immediate_final(loopback_factory, speech_wav):
    wav = speech_wav("The quarterly budget review starts at nine.", tail_ms=400)
    S1_LONG = "The quarterly budget review"
    runs = []
    for protocol in ("v3", "v2"):
        server = loopback_factory(api_keys=(KEY,), script=[S1_LONG, "rest"])
        proc = start(["--server", server.url, "--protocol", protocol, "--silence-ms", "20000",
                      "--json", "--source", f"file:{wav}"], stdin=subprocess.PIPE)
        runs.append((protocol, server, proc))
    sent_at = {}
    for protocol, server, proc in runs:
        assert server.wait_for(lambda: server.sessions and len(server.sessions[0].partials) >= 2, 15)
        proc.stdin.write("force-end\n")
        proc.stdin.flush()
        sent_at[protocol] = server.sessions[0].audio_ms
    for protocol, server, proc in runs:
        code, out, err = finish(proc)
        assert code == 0, err
        evs = events(out)
        finals = [e for e in evs if e["event"] == "final"]
        # the final came at once, not at the end (speech ~3 s; silence threshold 20 s)
        rec = server.sessions[0]
        assert finals[0]["audio_end"] <= sent_at[protocol] + 1500
        # the rest of the sentence became a second utterance: the first one was cut mid-speech
        assert [f["text"] for f in finals] == [S1_LONG, "rest"]
        assert any(c.get("force_end_utterance") or c.get("type") == "ForceEndpoint" for c in rec.control)


def test_dropped_connection_reconnects_and_captions_continue(loopback_factory, speech_wav, tmp_path):
    wav = speech_wav([S1, S2], tail_ms=700)
    server = loopback_factory(api_keys=(KEY,), script=[S1, S2, "three", "four"])
    server.inject(drop_after_ms=1200)
    tdir = tmp_path / "transcripts"
    code, out, err = finish(start(["--server", server.url, "--json", "--silence-ms", "400",
                                   "--transcript-dir", str(tdir), "--source", f"file:{wav}"]))
    assert code == 0, err
    evs = events(out)
    kinds = [e["event"] for e in evs]
    assert kinds.count("session_started") == 2
    error = next(e for e in evs if e["event"] == "error")
    assert error["retryable"] is True
    assert "reconnecting" in kinds and "gap" in kinds
    assert kinds.index("error") < kinds.index("reconnecting") < kinds.index("gap")
    gap = next(e for e in evs if e["event"] == "gap")
    finals = [e for e in evs if e["event"] == "final"]
    assert finals, out
    assert finals[-1]["audio_start"] >= gap["start_ms"] + gap["duration_ms"]   # continuous time
    assert len(server.sessions) == 2 and all(not r.violations for r in server.sessions)
    assert "reconnecting" in err
    files = list(tdir.glob("*.jsonl"))
    assert len(files) == 1
    records = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [r["text"] for r in records if r["type"] == "final"] == [f["text"] for f in finals]
    assert any(r["type"] == "gap" for r in records)


def test_sigint_stops_cleanly_with_finals_flushed(loopback_factory, speech_wav):
    wav = speech_wav([S1, S2, S1], tail_ms=500)
    server = loopback_factory(api_keys=(KEY,), script=[S1, S2, S1])
    proc = start(["--server", server.url, "--json", "--silence-ms", "20000", "--source", f"file:{wav}"])
    assert server.wait_for(lambda: server.sessions and len(server.sessions[0].partials) >= 2, 15)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc, timeout=20)
    assert time.monotonic() - began < 8
    assert code == 0, err
    evs = events(out)
    assert evs[-1]["event"] == "session_ended"
    assert [e["text"] for e in evs if e["event"] == "final"] == [S1]   # the utterance in progress
    rec = server.sessions[0]
    assert any(c.get("type") == "Terminate" for c in rec.control)
    assert "Traceback" not in err


def test_error_exit_codes(loopback_factory, speech_wav, tmp_path):
    wav = speech_wav("Hello.", tail_ms=300)
    server = loopback_factory(api_keys=(KEY,), script=["Hello."])
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("this is not audio")
    dead = f"http://127.0.0.1:{free_port()}"
    wrong = "sk-WRONG-key-must-not-leak-42"
    cases = {
        # 2: usage or configuration
        "chunk out of range": (2, ["--server", server.url, "--protocol", "v2", "--chunk-ms", "50",
                                   "--source", f"file:{wav}"], KEY),
        "v2 in the EU": (2, ["--protocol", "v2", "--region", "eu", "--source", f"file:{wav}"], KEY),
        "term too long": (2, ["--server", server.url, "--vocabulary", "x" * 51,
                              "--source", f"file:{wav}"], KEY),
        "bad server url": (2, ["--server", "ftp://example", "--source", f"file:{wav}"], KEY),
        # 3: authentication
        "wrong key v3": (3, ["--server", server.url, "--source", f"file:{wav}"], wrong),
        "wrong key v2": (3, ["--server", server.url, "--protocol", "v2", "--source", f"file:{wav}"], wrong),
        "wrong key token mode": (3, ["--server", server.url, "--auth", "token",
                                     "--source", f"file:{wav}"], wrong),
        "no key at all": (3, ["--engine", "assemblyai", "--server", server.url,
                              "--source", f"file:{wav}"], None),
        # 4: nothing listening, after bounded retries
        "nothing listening": (4, ["--server", dead, "--source", f"file:{wav}"], KEY),
        # 5: audio source
        "missing file": (5, ["--server", server.url, "--source", f"file:{tmp_path / 'nope.wav'}"], KEY),
        "not a wav": (5, ["--server", server.url, "--source", f"file:{not_wav}"], KEY),
    }
    procs = {name: (expected, time.monotonic(), start(args, key=key))
             for name, (expected, args, key) in cases.items()}
    for name, (expected, began, proc) in procs.items():
        code, out, err = finish(proc, timeout=40)
        elapsed = time.monotonic() - began
        assert code == expected, f"{name}: exit {code}, stderr: {err}"
        assert err.strip(), f"{name}: no message on stderr"
        assert "Traceback" not in err, f"{name}: {err}"
        assert wrong not in err and wrong not in out and KEY not in err
        if name == "nothing listening":
            assert elapsed < 20, elapsed     # ~4 s alone; generous for a loaded machine
            assert "Giving up" in err
    assert not any(r.auth == "key" and r.frames_ms for r in server.sessions if r.auth_error)
