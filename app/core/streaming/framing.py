"""Re-chunk PCM16 into wire frames that always respect the protocol's duration limits.

Every frame — the last one included — lasts between the protocol's minimum and maximum
(v2 100–2000 ms, v3 50–1000 ms). A short tail at the end of the stream is padded with silence up to
the minimum, so the server never sees an undersized frame (v2 4032 / v3 3007).

An open device nobody uses (a muted microphone, an output playing nothing) delivers exact zeros
for minutes. Once such zeros have lasted past the point where the server has ended any turn
(``hold_after_ms``), they go out in frames of ``HOLD_MS`` instead of one per chunk: a send costs
more than anything else per chunk, and a late zero delays no word. The first chunk that is not
zero releases what is held at once, ahead of itself, so speech is never held.
"""

from __future__ import annotations

import math

import numpy as np

from app.core.audio.convert import mulaw_encode
from app.core.audio.level import is_zero, mean_square
from app.core.session_config import CHUNK_LIMITS_MS

LOUD_RMS = 300.0   # about -40 dBFS: "someone may be speaking" (used by stall detection)
HOLD_MS = 500      # long digital silence leaves in frames this long (within both protocols' limits)
HOLD_MARGIN_MS = 1000   # zeros held only this long after the server has surely ended the turn


class Frame:
    """One wire frame. ``loud`` is measured only when asked: the stall check asks for a few
    frames a second, and a numpy pass per frame costs more than the rest of sending it."""

    __slots__ = ("payload", "samples", "duration_ms", "_pcm")

    def __init__(self, payload: bytes, samples: int, duration_ms: float, pcm: bytes | None) -> None:
        self.payload = payload          # encoded bytes as they go on the wire
        self.samples = samples          # audio samples in it (padding included)
        self.duration_ms = duration_ms
        self._pcm = pcm                 # the PCM16 it holds (None: known to be zeros)

    @property
    def loud(self) -> bool:
        """Above LOUD_RMS: the server should answer with transcripts."""
        return self._pcm is not None and is_loud(self._pcm)


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
    def __init__(self, protocol: str, sample_rate: int, chunk_ms: int, encoding: str,
                 hold_after_ms: float = math.inf) -> None:
        if encoding not in ("pcm_s16le", "pcm_mulaw"):
            raise ValueError(f"unsupported encoding {encoding!r}")
        self.sample_rate = sample_rate
        self.encoding = encoding
        self.regular, self.minimum = frame_samples(protocol, sample_rate, chunk_ms)
        self._buf = bytearray()   # PCM16 little-endian, may hold an odd trailing byte
        # Held zeros are whole regular frames, so a held frame is never under the minimum.
        hold_max = min(round(sample_rate * HOLD_MS / 1000),
                       math.floor(sample_rate * CHUNK_LIMITS_MS[protocol][1] / 1000))
        self._hold_frames = hold_max // self.regular   # below 2, holding saves nothing
        self.hold_after_ms = hold_after_ms
        self._zero_samples = 0    # exact zeros pushed since the last sample that was not
        self._held = 0            # regular frames of zeros pushed and not yet framed
        self._silence: dict[int, Frame] = {}

    def push(self, pcm16: bytes) -> list[Frame]:
        size = self.regular * 2
        if not self._buf and len(pcm16) == size:
            if self._hold_frames >= 2 and is_zero(pcm16):
                return self._zeros()
            # a chunk that is one frame goes as it is
            return self._take_held() + [self._frame(bytes(pcm16))]
        out = self._take_held()
        self._buf.extend(pcm16)
        while len(self._buf) >= size:
            chunk = bytes(self._buf[:size])
            del self._buf[:size]
            out.append(self._frame(chunk))
        return out

    def _zeros(self) -> list[Frame]:
        """A chunk of exact zeros, one regular frame long, with nothing buffered ahead of it."""
        holding = self._zero_samples * 1000.0 >= self.hold_after_ms * self.sample_rate
        self._zero_samples += self.regular
        if not holding:
            return [self._silence_frames(1)]
        self._held += 1
        return [self._release()] if self._held >= self._hold_frames else []

    def _take_held(self) -> list[Frame]:
        """Audio that is not zero (or the end) came: what is held leaves first."""
        self._zero_samples = 0
        return [self._release()] if self._held else []

    def _release(self) -> Frame:
        """The zeros held so far as one frame."""
        n, self._held = self._held, 0
        return self._silence_frames(n)

    def _silence_frames(self, n: int) -> Frame:
        """One frame of zeros, ``n`` regular frames long (made once: they never change)."""
        frame = self._silence.get(n)
        if frame is None:
            frame = self._silence[n] = self._frame(bytes(n * self.regular * 2), zeros=True)
        return frame

    def flush(self) -> list[Frame]:
        """What is held, then the remainder as one last frame, padded with silence to the
        minimum duration."""
        out = self._take_held()
        usable = len(self._buf) - len(self._buf) % 2
        chunk = bytes(self._buf[:usable])
        self._buf.clear()
        if not chunk:
            return out
        samples = len(chunk) // 2
        if samples < self.minimum:
            chunk += b"\x00\x00" * (self.minimum - samples)
        return out + [self._frame(chunk)]

    def _frame(self, chunk: bytes, *, zeros: bool = False) -> Frame:
        samples = len(chunk) // 2
        payload = chunk
        if self.encoding == "pcm_mulaw":
            payload = mulaw_encode(np.frombuffer(chunk, dtype="<i2")).tobytes()
        return Frame(payload, samples, samples * 1000.0 / self.sample_rate, None if zeros else chunk)
