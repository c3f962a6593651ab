"""Capture from a PortAudio device with PyAudio blocking reads (the read releases the GIL).

What device to open is decided by a *target resolver* (see ``devices.py``) each time the
source opens, so a device that vanished and came back, or a new default, is found again.
The device's own rate and channel count are converted to the session format here
(``app.core.audio.convert``); PortAudio's "Invalid sample rate" falls back to the device's
native rate.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from app.core.audio.convert import Converter
from app.core.audio.errors import AudioSourceError, DeviceLost, DeviceNotFound
from app.core.audio.source import AudioSource

# PortAudio error codes (portaudio.h) that PyAudio raises as OSError(errno, text).
PA_INVALID_CHANNEL_COUNT = -9998
PA_INVALID_SAMPLE_RATE = -9997
PA_INVALID_DEVICE = -9996
PA_INPUT_OVERFLOWED = -9981
PA_DEVICE_UNAVAILABLE = -9985
PA_SAMPLE_FORMAT_NOT_SUPPORTED = -9994

# libpulse reads PULSE_SOURCE when a stream's context is created, i.e. during the ALSA open:
# the variable is process-wide, so opens that set it are serialised.
_PULSE_ENV_LOCK = threading.Lock()
_STDERR_LOCK = threading.Lock()   # fd 2 is process-wide too: concurrent redirects would lose it


@dataclass
class CaptureTarget:
    """One concrete device to open, as a resolver found it."""

    device_index: int | None                 # PortAudio index; None = PortAudio's default input
    description: str                         # for messages and the UI
    rates: list[int] = field(default_factory=list)   # to try first, in order (native first)
    channels: int = 1                        # preferred channel count (native)
    max_channels: int = 1                    # device limit (fallback on invalid channel count)
    pulse_source: str | None = None          # PULSE_SOURCE to set while opening (Linux)
    identity: str = ""                       # changes when the resolver would pick another device
    # WASAPI loopback delivers nothing while no app plays sound, so a blocking read would never
    # return (and would hold the lock close() needs): poll what is available, fill silence by the clock.
    poll: bool = False


Resolver = Callable[[object], CaptureTarget]   # (PyAudio instance) → target; raises DeviceNotFound


@contextlib.contextmanager
def quiet_stderr():
    """Silence ALSA/JACK chatter PortAudio prints on init (C-level fd 2), POSIX only."""
    if sys.platform.startswith("win") or os.environ.get("CAPTION_AUDIO_DEBUG"):
        yield
        return
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def load_pyaudio(module_name: str = "pyaudio"):
    try:
        return __import__(module_name)
    except ImportError as exc:
        raise AudioSourceError(
            f"Audio capture needs the {module_name} package, which could not be loaded ({exc}).") from None


def new_pyaudio(module):
    """A fresh PortAudio session (its device list is the one current *now*)."""
    with quiet_stderr():
        return module.PyAudio()


class PyAudioSource(AudioSource):
    """Microphone or loopback capture; ``read()`` returns ``chunk_ms`` of session-format audio.

    ``watch`` (optional) is polled off the capture thread every ``watch_interval_s``; when it
    returns an identity different from the open device's, the stream is reopened on the new
    target (e.g. the default output changed while capturing its monitor).
    """

    def __init__(self, label: str, resolver: Resolver, sample_rate: int, chunk_ms: int, *,
                 module_name: str = "pyaudio", watch: Callable[[], str | None] | None = None,
                 watch_interval_s: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(sample_rate, chunk_ms)
        self.label = label
        self._resolver = resolver
        self._module_name = module_name
        self._watch = watch
        self._watch_interval_s = watch_interval_s
        self._lock = threading.RLock()        # read() vs close() from another thread
        self._pa = None
        self._stream = None
        self._converter: Converter | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self.target: CaptureTarget | None = None
        self.device_rate: int | None = None
        self.device_channels: int | None = None
        self._watch_stop = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self._wanted_identity: str | None = None
        self._clock = clock
        self._sleep = sleep
        self._silence_due = 0.0   # polled targets: when a silent device yields a chunk of silence
        self._closed = threading.Event()

    # --- open / close ------------------------------------------------------------------------
    def open(self) -> None:
        with self._lock:
            self._close_stream()
            module = load_pyaudio(self._module_name)
            self._pa = new_pyaudio(module)
            try:
                self.target = self._resolver(self._pa)
                self._open_stream(module, self.target)
            except BaseException:
                self._close_stream()
                raise
            self._pending = np.zeros(0, dtype=np.int16)
            self._silence_due = self._clock() + 2 * self.chunk_ms / 1000
            self._closed.clear()
            self.level.reset_silence()
        self._start_watch()

    def _open_stream(self, module, target: CaptureTarget) -> None:
        rates = _unique([*target.rates, self.sample_rate, 48000, 44100, 32000, 16000])
        channel_options = _unique([target.channels, 1, 2, target.max_channels])
        last_error: OSError | None = None
        for channels in channel_options:
            if channels < 1 or channels > max(1, target.max_channels):
                continue
            for rate in rates:
                try:
                    stream = self._try_open(module, target, rate, channels)
                except OSError as exc:
                    last_error = exc
                    code = _pa_code(exc)
                    if code == PA_INVALID_SAMPLE_RATE:
                        continue                   # next rate (native ones come first)
                    if code in (PA_INVALID_CHANNEL_COUNT, PA_SAMPLE_FORMAT_NOT_SUPPORTED):
                        break                      # next channel count
                    if code in (PA_INVALID_DEVICE, PA_DEVICE_UNAVAILABLE):
                        raise DeviceLost(f"{target.description} is not available right now "
                                         f"({_pa_text(exc)}).") from None
                    raise AudioSourceError(
                        f"Could not open {target.description}: {_pa_text(exc)}.") from None
                self._stream = stream
                self.device_rate, self.device_channels = rate, channels
                self._converter = Converter(rate, channels, self.sample_rate)
                return
        raise AudioSourceError(
            f"{target.description} accepts none of the sample rates/channel counts tried "
            f"({_pa_text(last_error) if last_error else 'no usable format'}).")

    def _try_open(self, module, target: CaptureTarget, rate: int, channels: int):
        kwargs = dict(format=module.paInt16, channels=channels, rate=rate, input=True,
                      frames_per_buffer=max(64, rate * self.chunk_ms // 1000))
        if target.device_index is not None:
            kwargs["input_device_index"] = target.device_index
        if target.pulse_source is None:
            with quiet_stderr():
                return self._pa.open(**kwargs)
        with _PULSE_ENV_LOCK:
            previous = os.environ.get("PULSE_SOURCE")
            os.environ["PULSE_SOURCE"] = target.pulse_source
            try:
                with quiet_stderr():
                    return self._pa.open(**kwargs)
            finally:
                if previous is None:
                    os.environ.pop("PULSE_SOURCE", None)
                else:
                    os.environ["PULSE_SOURCE"] = previous

    def close(self) -> None:
        self._closed.set()        # a polling read() gives up between polls, not after a timeout
        self._stop_watch()
        with self._lock:
            self._close_stream()

    def _close_stream(self) -> None:
        stream, pa = self._stream, self._pa
        self._stream = self._pa = None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.stop_stream()
            with contextlib.suppress(Exception):
                stream.close()
        if pa is not None:
            with contextlib.suppress(Exception):
                pa.terminate()

    # --- reading -------------------------------------------------------------------------------
    def read(self) -> bytes:
        if self.target is not None and self.target.poll:
            return self._read_polled()
        need = self.chunk_samples
        with self._lock:
            if self._stream is None:
                raise AudioSourceError(f"The {self.label} device is not open.")
            if self._wanted_identity is not None and self.target is not None \
                    and self._wanted_identity != self.target.identity:
                self._switch_device()
            pending = self._pending
            if not len(pending) and self._converter.identity:
                # The device gives the session format and one read is one chunk: its bytes go
                # out as they are (no numpy on the way; each call costs more than its work).
                raw = self._read_raw(need)
                if len(raw) == 2 * need:
                    self.level.update(raw)
                    return raw
                pending = np.frombuffer(raw, dtype="<i2")
            while len(pending) < need:
                block = self._read_block()
                pending = np.concatenate((pending, block)) if len(pending) else block
            chunk, self._pending = pending[:need], pending[need:]
        data = chunk.astype("<i2", copy=False).tobytes()
        self.level.update(data)
        return data

    def _read_polled(self) -> bytes:
        """One chunk without ever blocking in PortAudio; the lock is held only per poll.

        Audio that is there is returned as soon as a chunk is full. Only when the device has
        delivered nothing for a chunk plus one chunk of grace (bursty delivery) is the missing
        part silence, then one chunk of silence per chunk of clock: the session keeps its
        real-time pace and Stop is prompt. The deadline moves with every delivery, so a device
        clock slightly slower than the system's never gets silence spliced into its audio.
        """
        need = self.chunk_samples
        step = self.chunk_ms / 1000
        poll_s = min(0.01, step / 4)
        while True:
            with self._lock:
                if self._stream is None:
                    raise AudioSourceError(f"The {self.label} device is not open.")
                if self._wanted_identity is not None and self.target is not None \
                        and self._wanted_identity != self.target.identity:
                    self._switch_device()
                    self._silence_due = self._clock() + 2 * step
                block = self._read_available()
                now = self._clock()
                if len(block):
                    self._pending = np.concatenate((self._pending, block))
                    self._silence_due = now + 2 * step
                if len(self._pending) >= need:
                    chunk, self._pending = self._pending[:need], self._pending[need:]
                    break
                if now >= self._silence_due:
                    pad = np.zeros(need - len(self._pending), dtype=np.int16)
                    chunk, self._pending = np.concatenate((self._pending, pad)), np.zeros(0, dtype=np.int16)
                    # Paced by the clock; after a long stall resume from now, no burst to catch up.
                    self._silence_due = max(self._silence_due + step, now)
                    break
            if self._closed.is_set():
                raise AudioSourceError(f"The {self.label} device is not open.")
            self._sleep(poll_s)
        data = chunk.astype("<i2").tobytes()
        self.level.update(data)
        return data

    def _read_available(self) -> np.ndarray:
        """What the device already holds (at most one chunk), converted; empty when none."""
        try:
            available = int(self._stream.get_read_available())
        except OSError as exc:
            self._lost(exc)
        if available <= 0:
            return np.zeros(0, dtype=np.int16)
        frames = min(available, max(1, self.device_rate * self.chunk_ms // 1000))
        try:
            raw = self._stream.read(frames, exception_on_overflow=False)
        except OSError as exc:
            self._lost(exc)
        return self._converter.convert(np.frombuffer(raw, dtype="<i2"))

    def _lost(self, exc: OSError):
        description = self.target.description if self.target else self.label
        self._close_stream()
        raise DeviceLost(f"{description} stopped delivering audio ({_pa_text(exc)}); "
                         "it may have been unplugged or disabled.") from None

    def _read_block(self) -> np.ndarray:
        raw = self._read_raw(max(1, self.device_rate * self.chunk_ms // 1000))
        return self._converter.convert(np.frombuffer(raw, dtype="<i2"))

    def _read_raw(self, frames: int) -> bytes:
        while True:
            try:
                return self._stream.read(frames, exception_on_overflow=True)
            except OSError as exc:
                if _pa_code(exc) == PA_INPUT_OVERFLOWED:
                    self.level.count_overflow()   # audio was dropped; count it and read on
                    continue
                self._lost(exc)

    def _switch_device(self) -> None:
        """The followed default changed: reopen on the new device (a few ms of audio skipped)."""
        module = load_pyaudio(self._module_name)
        self._close_stream()
        self._pa = new_pyaudio(module)
        try:
            self.target = self._resolver(self._pa)
            self._open_stream(module, self.target)
        except AudioSourceError as exc:
            self._close_stream()
            raise DeviceLost(f"Switching to the new default device failed: {exc}") from None
        self.level.reset_silence()

    # --- following a default ---------------------------------------------------------------
    def _start_watch(self) -> None:
        if self._watch is None or self._watch_thread is not None:
            return
        self._watch_stop.clear()
        self._wanted_identity = None
        self._watch_thread = threading.Thread(target=self._watch_loop, name=f"{self.label}-default-watch",
                                              daemon=True)
        self._watch_thread.start()

    def _stop_watch(self) -> None:
        self._watch_stop.set()
        t, self._watch_thread = self._watch_thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout=10)

    def _watch_loop(self) -> None:
        while not self._watch_stop.wait(self._watch_interval_s):
            try:
                identity = self._watch()
            except Exception:  # a hiccup of the sound server: keep the current device
                continue
            if identity:
                self._wanted_identity = identity


def _unique(values) -> list:
    seen, out = set(), []
    for v in values:
        if v is None:
            continue
        v = int(v)
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _pa_code(exc: BaseException) -> int | None:
    if exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return getattr(exc, "errno", None)


def _pa_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    if len(exc.args) >= 2 and isinstance(exc.args[1], str):
        return exc.args[1]
    return str(exc)


__all__ = ["CaptureTarget", "PyAudioSource", "DeviceNotFound", "quiet_stderr", "new_pyaudio",
           "load_pyaudio"]
