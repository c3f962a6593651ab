"""Deterministic stand-ins for the model and the VAD, so session logic tests run in milliseconds."""

from __future__ import annotations

import threading
import time

import numpy as np

RATE = 16000


class EnergyVad:
    """Speech probability 1 for a window louder than -40 dBFS, else 0 (exact on synthetic audio)."""

    def probability(self, window: np.ndarray) -> float:
        return 1.0 if float(np.sqrt(np.mean(np.square(window)))) > 0.01 else 0.0

    def reset(self) -> None:
        pass


class CountingRecognizer:
    """Text = one word per 100 ms of *loud* audio, so finals can be checked against offsets.

    ``gate``: when set, every decode waits on it (to prove capture never waits for decoding).
    ``delay_s``: simulated decode cost.
    """

    name = "fake"
    partial_interval_s = 0.3
    min_partial_s = 0.2

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None,
                 fail_on_final: bool = False) -> None:
        self.delay_s = delay_s
        self.gate = gate
        self.fail_on_final = fail_on_final
        self.calls: list[tuple[bool, int]] = []     # (partial?, samples)
        self.hotwords: list[str | None] = []

    def transcribe(self, audio, *, partial=False, terminate=None, hotwords=None, state=None) -> str:
        self.calls.append((partial, len(audio)))
        self.hotwords.append(hotwords)
        if self.gate is not None:
            self.gate.wait(30)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_on_final and not partial:
            raise RuntimeError("decoder exploded")
        loud = int(np.sum(np.abs(np.asarray(audio)) > 0.01))
        n = int(round(loud / (RATE * 0.1)))
        return " ".join(["word"] * n)


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


class Recorder:
    """A thread-safe listener that keeps every event."""

    def __init__(self) -> None:
        self.events: list = []
        self._lock = threading.Lock()

    def __call__(self, event) -> None:
        with self._lock:
            self.events.append(event)

    def of(self, kind) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def wait_for(self, predicate, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()


def feed_synced(session, audio: np.ndarray, chunk_ms: int = 100, timeout: float = 20.0) -> None:
    """Send ``audio`` chunk by chunk, waiting until the worker analysed each one (like real time
    on an idle machine, but as fast as the worker goes)."""
    step = RATE * chunk_ms // 1000
    for i in range(0, len(audio), step):
        chunk = audio[i:i + step]
        before = session.stats().audio_s
        session.send_audio(pcm16(chunk))
        deadline = time.monotonic() + timeout
        target = before + len(chunk) / RATE - 1e-6
        while session.stats().audio_s < target and time.monotonic() < deadline:
            time.sleep(0.002)
