"""SIGKILL the headless app mid-session: its transcript parses and holds every final sent before."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from app.core.transcript import read_transcript
from tests.e2e.transcript_helpers import (SCRIPT, describe, saved_finals, sent_finals, start_headless,
                                          transcript_path, wait_until)

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")]

PHRASES = ["Echo one two three.", "Foxtrot four five six.", "Golf seven eight nine.",
           "Hotel ten eleven twelve.", "India thirteen fourteen."]


@pytest.mark.parametrize("protocol", ["v3", "v2"])
def test_sigkill_mid_session_keeps_every_final(loopback_server, speech_wav, tmp_path, protocol):
    wav = speech_wav(PHRASES, gap_ms=900)
    loopback_server.set_script(SCRIPT)
    tdir = tmp_path / "t"
    proc = start_headless(loopback_server.url, loopback_server.api_key, wav, tdir, "--protocol", protocol,
                          stdout=subprocess.DEVNULL, home=tmp_path / "home")
    try:
        # Two finals sent by the server and saved by the app, while more audio is still streaming.
        got_two = wait_until(lambda: len(saved_finals(tdir)) >= 2 or proc.poll() is not None, timeout=60)
        assert got_two and proc.poll() is None, describe(None, loopback_server, tdir)
        sent_before = sent_finals(loopback_server)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    path = transcript_path(tdir)
    entries = read_transcript(path)               # parses: no exception, header first
    assert entries and entries[0].kind == "header", path.read_text(errors="replace")
    assert entries[-1].kind != "end"              # it really was killed, not closed
    saved = [e.text for e in entries if e.kind == "final"]
    sent = sent_finals(loopback_server)
    # Every final the server had sent before the kill is on disk, once, in order. (A final the
    # server sent in the instant of the kill may or may not have reached the app.)
    assert saved[:len(sent_before)] == sent_before, describe(None, loopback_server, tdir)
    assert saved == sent[:len(saved)]
    # Every complete line is valid JSON; at most the very last one may be torn.
    lines = path.read_bytes().split(b"\n")
    assert all(line.startswith(b"{") and line.endswith(b"}") for line in lines[:-1] if line)
    assert os.path.getsize(path) > 0
