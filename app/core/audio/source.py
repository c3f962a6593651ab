"""Audio sources deliver the session format: mono int16 PCM at ``sample_rate``, one chunk a read."""

from __future__ import annotations

import abc
import time
import wave
from pathlib import Path

import numpy as np

from app.core.audio.convert import Converter
from app.core.audio.errors import AudioSourceError, UnsupportedAudio
from app.core.audio.level import LevelMeter


class AudioSource(abc.ABC):
    """Blocking reader. ``read()`` returns ``chunk_ms`` of audio, or ``b""`` at end of stream."""

    label = "audio"  # shown beside captions when several sources run ("mic", "system", "file")

    def __init__(self, sample_rate: int, chunk_ms: int) -> None:
        self.sample_rate = sample_rate
        self.chunk_ms = chunk_ms
        self._level_meter = LevelMeter(sample_rate)

    @property
    def level(self) -> LevelMeter:
        """RMS/peak/overflows/silence of what ``read()`` delivered (the UI polls its snapshot)."""
        meter = getattr(self, "_level_meter", None)
        if meter is None:  # a subclass that skipped AudioSource.__init__
            meter = self._level_meter = LevelMeter(getattr(self, "sample_rate", 16000))
        meter.source = self.label    # subclasses set their label after __init__
        return meter

    @property
    def chunk_samples(self) -> int:
        return self.sample_rate * self.chunk_ms // 1000

    @abc.abstractmethod
    def open(self) -> None:
        """Acquire the device or file. Raises ``AudioSourceError`` subclasses."""

    @abc.abstractmethod
    def read(self) -> bytes:
        """Block until one chunk is ready. Raises ``DeviceLost`` if the device vanished."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice."""

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()


_SAMPLE_TYPES = {1: np.uint8, 2: np.int16, 4: np.int32}


def _wav_to_int16_units(raw: bytes, width: int) -> np.ndarray:
    """PCM bytes of any integer width → float samples scaled to int16 units."""
    if width == 3:  # 24-bit: widen each sample to 32 bits
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = (b[:, 0].astype(np.int32) << 8) | (b[:, 1].astype(np.int32) << 16) | (
            b[:, 2].astype(np.int32) << 24)
        return wide.astype(np.float64) / 65536.0
    data = np.frombuffer(raw, dtype=_SAMPLE_TYPES[width]).astype(np.float64)
    if width == 1:
        return (data - 128.0) * 256.0
    if width == 4:
        return data / 65536.0
    return data


class WavFileSource(AudioSource):
    """Any integer-PCM WAV, converted to the session format and paced at real time.

    Chunk k is released no earlier than start + (k+1)·chunk, so the stream is never ahead of
    real time (servers close sessions that send audio too fast).
    """

    label = "file"

    def __init__(self, path: str | Path, sample_rate: int, chunk_ms: int, realtime: bool = True,
                 clock=time.monotonic, sleep=time.sleep) -> None:
        super().__init__(sample_rate, chunk_ms)
        self.path = Path(path)
        self.realtime = realtime
        self._clock, self._sleep = clock, sleep
        self._wav: wave.Wave_read | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._eof = False
        self._started: float | None = None
        self._chunks_sent = 0

    def open(self) -> None:
        try:
            self._wav = wave.open(str(self.path), "rb")
        except FileNotFoundError:
            raise AudioSourceError(f"Audio file not found: {self.path}") from None
        except (wave.Error, EOFError) as exc:
            raise UnsupportedAudio(
                f"{self.path} is not a PCM WAV file this app can read ({exc}).") from None
        width = self._wav.getsampwidth()
        if width not in (1, 2, 3, 4):
            raise UnsupportedAudio(f"{self.path}: {8 * width}-bit samples are not supported.")
        self._width = width
        self._converter = Converter(self._wav.getframerate(), self._wav.getnchannels(),
                                    self.sample_rate)
        self._frames_per_read = max(1, self._wav.getframerate() * self.chunk_ms // 1000)

    def _fill(self, needed: int) -> None:
        parts = [self._pending]
        have = len(self._pending)
        while have < needed and not self._eof:
            raw = self._wav.readframes(self._frames_per_read)
            if not raw:
                self._eof = True
                parts.append(self._converter.flush())
                break
            block = self._converter.convert(_wav_to_int16_units(raw, self._width))
            parts.append(block)
            have += len(block)
        self._pending = np.concatenate(parts)

    def read(self) -> bytes:
        if self._wav is None:
            raise AudioSourceError("The audio file is not open.")
        n = self.chunk_samples
        self._fill(n)
        chunk, self._pending = self._pending[:n], self._pending[n:]
        if not len(chunk):
            return b""
        if self.realtime:
            if self._started is None:
                self._started = self._clock()
            due = self._started + (self._chunks_sent * self.chunk_ms + len(chunk) * 1000 /
                                   self.sample_rate) / 1000.0
            delay = due - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._chunks_sent += 1
        data = chunk.astype("<i2").tobytes()
        self.level.update(data)
        return data

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
