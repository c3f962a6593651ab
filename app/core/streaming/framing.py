"""Re-chunk PCM16 into wire frames that always respect the protocol's duration limits.

Every frame — the last one included — lasts between the protocol's minimum and maximum
(v2 100–2000 ms, v3 50–1000 ms). A short tail at the end of the stream is padded with silence up to
the minimum, so the server never sees an undersized frame (v2 4032 / v3 3007).
"""

from __future__ import annotations

import math

import numpy as np

from app.core.audio.convert import mulaw_encode
from app.core.audio.level import mean_square
from app.core.session_config import CHUNK_LIMITS_MS

LOUD_RMS = 300.0   # about -40 dBFS: "someone may be speaking" (used by stall detection)


class Frame:
    """One wire frame. ``loud`` is measured only when asked: the stall check asks for a few
    frames a second, and a numpy pass per frame costs more than the rest of sending it."""

    __slots__ = ("payload", "samples", "duration_ms", "_pcm")

    def __init__(self, payload: bytes, samples: int, duration_ms: float, pcm: bytes) -> None:
        self.payload = payload          # encoded bytes as they go on the wire
        self.samples = samples          # audio samples in it (padding included)
        self.duration_ms = duration_ms
        self._pcm = pcm                 # the PCM16 it holds (the payload itself for pcm_s16le)

    @property
    def loud(self) -> bool:
        """Above LOUD_RMS: the server should answer with transcripts."""
        return is_loud(self._pcm)


def is_loud(pcm16: bytes) -> bool:
    samples = np.frombuffer(pcm16, dtype="<i2")
    return bool(len(samples)) and mean_square(samples) >= LOUD_RMS * LOUD_RMS


def frame_samples(protocol: str, sample_rate: int, chunk_ms: int) -> tuple[int, int]:
    """(samples per regular frame, minimum samples of any frame) within the protocol limits."""
    lo, hi = CHUNK_LIMITS_MS[protocol]
    ms = min(max(chunk_ms, lo), hi)
    min_samples = math.ceil(sample_rate * lo / 1000)
    max_samples = math.floor(sample_rate * hi / 1000)
    regular = min(max(round(sample_rate * ms / 1000), min_samples), max_samples)
    return regular, min_samples


class Framer:
    def __init__(self, protocol: str, sample_rate: int, chunk_ms: int, encoding: str) -> None:
        if encoding not in ("pcm_s16le", "pcm_mulaw"):
            raise ValueError(f"unsupported encoding {encoding!r}")
        self.sample_rate = sample_rate
        self.encoding = encoding
        self.regular, self.minimum = frame_samples(protocol, sample_rate, chunk_ms)
        self._buf = bytearray()   # PCM16 little-endian, may hold an odd trailing byte

    def push(self, pcm16: bytes) -> list[Frame]:
        size = self.regular * 2
        if not self._buf and len(pcm16) == size:
            return [self._frame(bytes(pcm16))]     # a chunk that is one frame goes as it is
        self._buf.extend(pcm16)
        out = []
        while len(self._buf) >= size:
            chunk = bytes(self._buf[:size])
            del self._buf[:size]
            out.append(self._frame(chunk))
        return out

    def flush(self) -> list[Frame]:
        """The remainder as one last frame, padded with silence to the minimum duration."""
        usable = len(self._buf) - len(self._buf) % 2
        chunk = bytes(self._buf[:usable])
        self._buf.clear()
        if not chunk:
            return []
        samples = len(chunk) // 2
        if samples < self.minimum:
            chunk += b"\x00\x00" * (self.minimum - samples)
        return [self._frame(chunk)]

    def _frame(self, chunk: bytes) -> Frame:
        samples = len(chunk) // 2
        payload = chunk
        if self.encoding == "pcm_mulaw":
            payload = mulaw_encode(np.frombuffer(chunk, dtype="<i2")).tobytes()
        return Frame(payload, samples, samples * 1000.0 / self.sample_rate, chunk)
