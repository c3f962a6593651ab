"""Run the headless CLI against the loopback server and read what it saved (e2e tests, soak benchmark)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from app.core.transcript import Entry, read_transcript

ROOT = Path(__file__).resolve().parents[2]

# Short, distinct final texts so "each final exactly once, in order" is checkable by value.
SCRIPT = tuple(f"Caption number {i} from the loopback server." for i in range(1, 400))


def headless_command(server_url: str, wav: Path, transcript_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "app", "--headless", "--source", f"file:{wav}", "--server", server_url,
            "--transcript-dir", str(transcript_dir), "--json", *extra]


def headless_env(api_key: str, home: Path | None = None) -> dict[str, str]:
    """The app's environment: the key by env var (never argv); with ``home``, private XDG dirs
    so the app reads no developer settings and writes nowhere else."""
    env = dict(os.environ)
    if home is not None:
        for sub, var in (("config", "XDG_CONFIG_HOME"), ("data", "XDG_DATA_HOME"),
                         ("cache", "XDG_CACHE_HOME"), ("state", "XDG_STATE_HOME")):
            (Path(home) / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(Path(home) / sub)
    env["ASSEMBLYAI_API_KEY"] = api_key   # the key goes by environment, never argv
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def start_headless(server_url: str, api_key: str, wav: Path, transcript_dir: Path, *extra: str,
                   stdout=subprocess.PIPE, home: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(headless_command(server_url, wav, transcript_dir, *extra), cwd=ROOT,
                            stdin=subprocess.DEVNULL,
                            env=headless_env(api_key, home), stdout=stdout, stderr=subprocess.PIPE, text=True)


def run_headless(server_url: str, api_key: str, wav: Path, transcript_dir: Path, *extra: str,
                 timeout: float = 90.0, home: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(headless_command(server_url, wav, transcript_dir, *extra), cwd=ROOT,
                          stdin=subprocess.DEVNULL,
                          env=headless_env(api_key, home), capture_output=True, text=True, timeout=timeout)


def transcript_path(transcript_dir: Path) -> Path:
    files = sorted(Path(transcript_dir).glob("*.jsonl"))
    assert len(files) == 1, f"expected one transcript file, found {files}"
    return files[0]


def saved_entries(transcript_dir: Path) -> list[Entry]:
    return read_transcript(transcript_path(transcript_dir))


def saved_finals(transcript_dir: Path) -> list[str]:
    files = sorted(Path(transcript_dir).glob("*.jsonl"))
    if not files:
        return []
    return [e.text for e in read_transcript(files[0]) if e.kind == "final"]


def sent_finals(server) -> list[str]:
    """Every final text the server sent, in order (sessions are sequential for one client)."""
    return [text for record in list(server.sessions) for text in list(record.finals)]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def describe(proc: subprocess.CompletedProcess | None, server, transcript_dir: Path) -> str:
    """Everything useful when an e2e assertion fails."""
    parts = []
    if proc is not None:
        parts.append(f"exit code: {proc.returncode}\n--- stdout ---\n{proc.stdout[-4000:]}\n"
                     f"--- stderr ---\n{proc.stderr[-4000:]}")
    for i, s in enumerate(list(server.sessions)):
        parts.append(f"session {i}: {s.protocol} close={s.close_code} {s.close_reason!r} "
                     f"finals={s.finals} violations={s.violations}")
    files = sorted(Path(transcript_dir).glob("*.jsonl"))
    if files:
        parts.append("--- transcript ---\n" + files[0].read_text(encoding="utf-8", errors="replace")[-4000:])
    return "\n".join(parts)
