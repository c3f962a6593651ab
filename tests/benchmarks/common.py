"""Shared helpers for the benchmark scripts: speech synthesis, percentiles, result lines.

Every benchmark prints human-readable numbers and, last, one ``RESULT {json}`` line per measured
quantity (name, value, unit, target, better="lower"|"higher") that ``run_all`` gathers into a table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

SENTENCES = (
    "Good morning everyone, let's get started with the weekly product review.",
    "The first item on the agenda is the release schedule for next month.",
    "Please remember to update the shared document before Friday afternoon.",
    "We measured the latency of the captions on three different laptops.",
    "Customers asked for larger fonts and a history they can export.",
    "The budget for the new meeting room equipment was approved yesterday.",
)


def percentile(values, q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def speech_wav(path: Path, texts=SENTENCES, rate: int = 16000, gap_s: float = 1.0,
               repeat: int = 1) -> Path:
    """espeak-ng sentences joined by silences, mono int16 at ``rate``."""
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is required (bash packaging/dev.sh test installs it)")
    work = Path(tempfile.mkdtemp(prefix="bench-speech-"))
    parts = []
    gap = work / "gap.wav"
    subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", "-b", "16", str(gap), "trim", "0", str(gap_s)],
                   check=True)
    for i, text in enumerate(list(texts) * repeat):
        raw = work / f"s{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
        parts += [str(raw), str(gap)]
    subprocess.run(["sox", str(gap), *parts, "-r", str(rate), "-c", "1", "-b", "16", str(path)], check=True)
    shutil.rmtree(work, ignore_errors=True)
    return path


def write_wav(path: Path, pcm: bytes, rate: int = 16000) -> Path:
    """Mono PCM16 little-endian bytes as a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def result(name: str, value: float, unit: str, target: float | None = None,
           better: str = "lower") -> dict:
    line = {"name": name, "value": round(float(value), 3), "unit": unit, "target": target,
            "better": better}
    print("RESULT " + json.dumps(line), flush=True)
    return line


class ServerProcess:
    """The loopback AssemblyAI server in its own process (``python -m tests.loopback``)."""

    def __init__(self, *extra_args: str, api_key: str = "test-key") -> None:
        self.api_key = api_key
        self._args = extra_args
        self.url = ""

    def __enter__(self) -> "ServerProcess":
        import re
        import sys
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.loopback", "--port", "0", "--quiet", "--api-key", self.api_key,
             *self._args], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
        for line in self._proc.stdout:
            found = re.search(r"server on (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
                break
        if not self.url:
            self._proc.kill()
            raise RuntimeError("the loopback server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()


def feed(session, pcm: bytes, *, paced: bool, step: int = 3200, chunk_s: float = 0.1) -> None:
    """Send ``pcm`` to a speech session in ``step``-byte chunks, at real time when ``paced``."""
    start = time.monotonic()
    for k, i in enumerate(range(0, len(pcm), step)):
        if paced:
            delay = start + (k + 1) * chunk_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        session.send_audio(pcm[i:i + step])
