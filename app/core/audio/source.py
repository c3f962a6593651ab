"""Audio sources deliver the session format: mono int16 PCM at ``sample_rate``, one chunk a read."""

from __future__ import annotations

import abc
import struct
import time
from pathlib import Path

import numpy as np

from app.core.audio.convert import Converter
from app.core.audio.errors import AudioSourceError, UnsupportedAudio
from app.core.audio.level import LevelMeter


class AudioSource(abc.ABC):
    """Blocking reader. ``read()`` returns ``chunk_ms`` of audio, or ``b""`` at end of stream."""

    label = "audio"  # shown beside captions when several sources run ("mic", "system", "file")
    # A device keeps producing while its reader waits (audio is lost if the reader is late); a
    # file just waits. Only a source that is not live may wait on the network.
    live = True

    def __init__(self, sample_rate: int, chunk_ms: int) -> None:
        self.sample_rate = sample_rate
        self.chunk_ms = chunk_ms
        self._level_meter = LevelMeter(sample_rate)

    @property
    def level(self) -> LevelMeter:
        """RMS/peak/overflows/silence of what ``read()`` delivered (the UI is told when it moves)."""
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
WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE   # what sox, Audacity and ffmpeg write for 24-bit and multichannel


def check_audio_file(path: Path) -> None:
    """Plain-words errors for a ``file:`` path that cannot be an audio file."""
    if path.is_dir():
        raise AudioSourceError(f"{path} is a folder, not an audio file: give the path of a WAV file in it.")
    if not path.exists():
        raise AudioSourceError(f"Audio file not found: {path}")
    if not path.is_file():
        raise AudioSourceError(f"{path} is not a regular file: give the path of a WAV file.")


class WavReader:
    """RIFF/WAVE reader for integer PCM (8/16/24/32-bit) and IEEE float (32/64-bit), plain or
    ``WAVE_FORMAT_EXTENSIBLE``. (Python 3.11's ``wave`` module reads neither float nor extensible.)"""

    def __init__(self, path: Path) -> None:
        self._fh = open(path, "rb")
        try:
            self._parse(path)
        except BaseException:
            self._fh.close()
            raise

    def _parse(self, path: Path) -> None:
        head = self._fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            raise UnsupportedAudio(f"{path} is not a WAV file (it has no RIFF/WAVE header).")
        fmt = None
        while True:
            chunk = self._fh.read(8)
            if len(chunk) < 8:
                raise UnsupportedAudio(f"{path} has no audio data (no 'data' chunk).")
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                fmt = self._fh.read(size + (size & 1))
            elif cid == b"data":
                if fmt is None:
                    raise UnsupportedAudio(f"{path} is damaged: its audio comes before its format.")
                self._data_left = size
                break
            else:
                self._fh.seek(size + (size & 1), 1)
        if len(fmt) < 16:
            raise UnsupportedAudio(f"{path} is damaged: its format description is too short.")
        tag, channels, rate, _byte_rate, block, bits = struct.unpack("<HHIIHH", fmt[:16])
        if tag == WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 40:
            tag = struct.unpack("<H", fmt[24:26])[0]     # the sub-format GUID starts with the tag
        if tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
            raise UnsupportedAudio(f"{path} holds compressed audio (format {tag:#06x}); convert it to "
                                   "PCM WAV, e.g. sox in.wav -b 16 out.wav.")
        width = block // channels if channels else 0
        if channels < 1 or rate < 1 or width < 1:
            raise UnsupportedAudio(f"{path} is damaged: {channels} channels at {rate} Hz.")
        if tag == WAVE_FORMAT_PCM and width not in (1, 2, 3, 4):
            raise UnsupportedAudio(f"{path}: {bits}-bit samples are not supported.")
        if tag == WAVE_FORMAT_IEEE_FLOAT and width not in (4, 8):
            raise UnsupportedAudio(f"{path}: {bits}-bit float samples are not supported.")
        self.is_float = tag == WAVE_FORMAT_IEEE_FLOAT
        self.channels, self.rate, self.width = channels, rate, width

    def readframes(self, n: int) -> bytes:
        want = min(self._data_left, n * self.channels * self.width)
        raw = self._fh.read(want)
        self._data_left -= len(raw)
        usable = len(raw) - len(raw) % (self.channels * self.width)   # a truncated last frame
        return raw[:usable]

    def close(self) -> None:
        self._fh.close()


def _wav_to_int16_units(raw: bytes, width: int, is_float: bool = False) -> np.ndarray:
    """PCM bytes of any integer width (or float) → samples in int16 units (16-bit PCM stays
    int16, so a file already in the session format is passed through without arithmetic)."""
    if is_float:
        data = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
        return np.clip(np.nan_to_num(data), -1.0, 1.0) * 32767.0
    if width == 3:  # 24-bit: widen each sample to 32 bits
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = (b[:, 0].astype(np.int32) << 8) | (b[:, 1].astype(np.int32) << 16) | (
            b[:, 2].astype(np.int32) << 24)
        return wide.astype(np.float64) / 65536.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2")
    data = np.frombuffer(raw, dtype=_SAMPLE_TYPES[width]).astype(np.float64)
    if width == 1:
        return (data - 128.0) * 256.0
    return data / 65536.0          # 32-bit


class WavFileSource(AudioSource):
    """Any PCM or float WAV, converted to the session format and paced at real time.

    Chunk k is released no earlier than start + (k+1)·chunk, so the stream is never ahead of
    real time (servers close sessions that send audio too fast).
    """

    label = "file"
    live = False

    def __init__(self, path: str | Path, sample_rate: int, chunk_ms: int, realtime: bool = True,
                 clock=time.monotonic, sleep=time.sleep) -> None:
        super().__init__(sample_rate, chunk_ms)
        self.path = Path(path)
        self.realtime = realtime
        self._clock, self._sleep = clock, sleep
        self._wav: WavReader | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._eof = False
        self._started: float | None = None
        self._chunks_sent = 0

    def open(self) -> None:
        check_audio_file(self.path)
        try:
            self._wav = WavReader(self.path)
        except FileNotFoundError:
            raise AudioSourceError(f"Audio file not found: {self.path}") from None
        except PermissionError:
            raise AudioSourceError(f"{self.path} cannot be read: permission denied.") from None
        except (struct.error, EOFError) as exc:
            raise UnsupportedAudio(f"{self.path} is not a WAV file this app can read ({exc}).") from None
        self._width = self._wav.width
        self._float = self._wav.is_float
        self._converter = Converter(self._wav.rate, self._wav.channels, self.sample_rate)
        self._frames_per_read = max(1, self._wav.rate * self.chunk_ms // 1000)
        # 16-bit mono at the session rate: whole chunks go out as read, with no numpy at all.
        self._raw_chunks = self._converter.identity and self._width == 2 and not self._float \
            and self._frames_per_read == self.chunk_samples

    def _fill(self, needed: int) -> None:
        parts = [self._pending]
        have = len(self._pending)
        while have < needed and not self._eof:
            raw = self._wav.readframes(self._frames_per_read)
            if not raw:
                self._eof = True
                parts.append(self._converter.flush())
                break
            block = self._converter.convert(_wav_to_int16_units(raw, self._width, self._float))
            parts.append(block)
            have += len(block)
        self._pending = np.concatenate(parts)

    def read(self) -> bytes:
        if self._wav is None:
            raise AudioSourceError("The audio file is not open.")
        n = self.chunk_samples
        data = None
        if self._raw_chunks and not len(self._pending) and not self._eof:
            raw = self._wav.readframes(n)
            if len(raw) == 2 * n:
                data = raw
            elif raw:
                self._pending = np.frombuffer(raw, dtype="<i2")    # the short last chunk
        if data is None:
            self._fill(n)
            chunk, self._pending = self._pending[:n], self._pending[n:]
            if not len(chunk):
                return b""
            data = chunk.astype("<i2", copy=False).tobytes()
            samples = len(chunk)
        else:
            samples = n
        if self.realtime:
            if self._started is None:
                self._started = self._clock()
            due = self._started + (self._chunks_sent * self.chunk_ms + samples * 1000 /
                                   self.sample_rate) / 1000.0
            delay = due - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._chunks_sent += 1
        self.level.update(data)
        return data

    def close(self) -> None:
        if self._wav is not None:
            self._wav.close()
            self._wav = None
