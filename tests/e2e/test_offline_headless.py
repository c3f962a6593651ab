"""The headless CLI with no API key: the offline engine is the default and prints correct captions,
also inside a network namespace with no network at all (nothing is downloaded at run time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.engines.speech_refs import SENTENCES, wer

pytestmark = [pytest.mark.offline_engine, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, isolate_network: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ASSEMBLYAI_API_KEY"}   # no key anywhere
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "app", "--headless", *args]
    if isolate_network:
        cmd = ["unshare", "-n", *cmd]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=90)


def test_default_engine_without_a_key_is_offline_and_correct(speech_wav):
    wav = speech_wav(SENTENCES[1])
    proc = run_cli("--json", "--source", f"file:{wav}")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert events[0]["event"] == "session_started" and events[0]["protocol"] == "local"
    finals = [e["text"] for e in events if e["event"] == "final"]
    assert len(finals) == 1 and wer(SENTENCES[1], finals[0]) <= 0.25, proc.stdout
    kinds = [e["event"] for e in events]
    assert kinds.index("partial") < kinds.index("final") and kinds[-1] == "session_ended"


def can_isolate_network() -> bool:
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


def test_engine_local_prints_captions_with_no_network(speech_wav):
    if not can_isolate_network():
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces)")
    wav = speech_wav(SENTENCES[2])
    proc = run_cli("--engine", "local", "--silence-ms", "400", "--source", f"file:{wav}",
                   isolate_network=True)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1 and wer(SENTENCES[2], lines[0]) <= 0.25, proc.stdout
