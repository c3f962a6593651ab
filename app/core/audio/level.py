"""Input level for the UI: RMS in dBFS, overflow count, and a "silent device" hint.

The capture thread calls :meth:`LevelMeter.update` once per chunk; the UI reads
:meth:`LevelMeter.snapshot` when the meter says its display moved (:meth:`LevelMeter.on_change`):
at most a few times a second, and never while the bar and the hint stay as they are, so an open
microphone in a quiet room does not wake the UI at all.

A quiet device is not a dead one: a microphone after speech stops, or the monitor of an output
while the far side of a call says nothing, delivers digital silence too. So the hint only comes
when a device has *never* delivered a non-zero sample since it was opened, and it is worded as a
question, not a fault.

The bar is told at most a few times a second, so once a device has delivered sound the chunks
are measured together, one window per display interval (two 100 ms chunks at 5 Hz): the same
numpy calls for twice the audio, and each call costs more than its arithmetic. The window's RMS
covers all of its audio, so nothing between two measurements goes unseen. Until the first sound,
and while a change waits to be told, every chunk is measured at once.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from app.core.audio.meter import METER_STEPS, meter_fraction

FLOOR_DBFS = -120.0          # what silence reads as (log of zero is -inf)
SILENT_HINT_AFTER_S = 5.0    # a microphone silent since it opened: likely muted or the wrong one
SYSTEM_HINT_AFTER_S = 30.0   # system audio: nothing playing yet is normal for a while
DIGITAL_SILENCE = 2          # |sample| at or below this is "nothing" (allows ±1-2 LSB dither)
_FULL_SCALE = 32768.0
METER_HYSTERESIS = 0.3       # of a step: noise hovering at a step's edge does not flicker the bar
CHANGE_INTERVAL_S = 0.2      # the display is told at most this often (5 Hz is smooth for a meter)
SILENT_RETELL_S = 10.0       # while the silence hint shows, its "silent for N s" is retold this often


def hint_after_s(source: str) -> float:
    """How long a device that never delivered sound stays silent before the hint comes."""
    return SYSTEM_HINT_AFTER_S if source == "system" else SILENT_HINT_AFTER_S


def to_dbfs(value: float) -> float:
    """Linear amplitude in int16 units → dBFS (0 dBFS = full-scale), floored."""
    if value <= 0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * math.log10(value / _FULL_SCALE))


def mean_square(samples: np.ndarray) -> float:
    """Mean of the squared int16 samples (RMS² in int16 units), in few numpy calls: after a
    wake-up each call costs more than its arithmetic on 100 ms of audio."""
    wide = samples.astype(np.float64)
    return float(np.dot(wide, wide)) / len(wide)


_ZEROS: dict[int, bytes] = {}    # by length: the few chunk sizes a session uses


def is_zero(pcm16: bytes) -> bool:
    """Every byte 0: a muted device, or an output playing nothing. One memcmp, no numpy (the
    common case of an open device nobody uses costs next to nothing)."""
    n = len(pcm16)
    zeros = _ZEROS.get(n)
    if zeros is None:
        if len(_ZEROS) >= 16:
            _ZEROS.clear()
        zeros = _ZEROS[n] = bytes(n)
    return pcm16 == zeros


@dataclass(frozen=True)
class Level:
    rms_dbfs: float = FLOOR_DBFS     # of the latest measured chunk
    overflows: int = 0               # input overflows (audio dropped because we read too late)
    silent_s: float = 0.0            # seconds of continuous digital silence so far
    source: str = ""                 # "mic", "system", "file"… (words the hint is put in)
    ever_sound: bool = False         # delivered a non-zero sample since the device opened

    @property
    def silent(self) -> bool:
        """Nothing at all since the device opened, for long enough to be worth a gentle word."""
        return not self.ever_sound and self.silent_s >= hint_after_s(self.source)

    @property
    def short_hint(self) -> str:
        """A few words for the overlay's status line ("" when there is nothing to say)."""
        if not self.silent:
            return ""
        if self.source == "system":
            return "nothing heard from system audio yet"
        name = "the microphone" if self.source in ("mic", "") else self.source
        return f"no sound from {name} yet: muted?"

    @property
    def hint(self) -> str | None:
        """A sentence for the UI when the device has delivered only silence since it opened."""
        if not self.silent:
            return None
        if self.source == "system":
            return (f"Nothing has been heard from this output in {self.silent_s:.0f} s. Perhaps "
                    "nothing is playing yet, or the sound goes to a different output than the "
                    "one selected.")
        return (f"This device has been silent for {self.silent_s:.0f} s since it opened. It may "
                "be muted, or another microphone may be the one you speak into; check Settings → "
                "Audio and that the app is allowed to use it.")


class LevelMeter:
    """Thread-safe: one writer (capture), any number of readers."""

    def __init__(self, sample_rate: int = 16000, source: str = "") -> None:
        self.sample_rate = sample_rate
        self.source = source
        self._lock = threading.Lock()
        self._rms = FLOOR_DBFS
        self._overflows = 0
        self._silent_samples = 0
        self._ever_sound = False
        self._on_change: Callable[[], None] | None = None
        self._change_interval_s = CHANGE_INTERVAL_S
        self._clock: Callable[[], float] = time.monotonic
        self._shown: tuple | None = None     # (bar step, silence hint bucket) the display last had
        self._told_at = -math.inf
        self._measuring = True
        self._window: list[bytes] = []   # chunks not measured yet (after the first sound)
        self._window_samples = 0
        self._owed = False               # the display moved but could not be told yet

    def set_measuring(self, on: bool) -> None:
        """Off: ``update`` does nothing (a front with no meter, e.g. ``--headless``, is not
        charged for levels nobody reads); overflows are still counted."""
        self._measuring = bool(on)

    def on_change(self, callback: Callable[[], None] | None, *, interval_s: float = CHANGE_INTERVAL_S,
                  clock: Callable[[], float] = time.monotonic) -> None:
        """``callback()`` (on the capture thread, must not block) whenever the bar moves by a
        step or the silence hint changes, at most every ``interval_s``; a change inside the
        interval is told with a later chunk. ``None`` stops it."""
        with self._lock:
            self._on_change = callback
            self._change_interval_s = interval_s
            self._clock = clock
            self._shown = None
            self._told_at = -math.inf

    def update(self, pcm16: bytes) -> None:
        if not self._measuring:
            return
        n = len(pcm16) // 2
        if not n:
            return
        if len(pcm16) % 2:
            pcm16 = pcm16[: 2 * n]
        windowed = self._ever_sound and not self._owed
        if not windowed and not self._window:
            self._measure(pcm16, n)
            return
        self._window.append(pcm16)
        self._window_samples += n
        if windowed and self._window_samples < self._change_interval_s * self.sample_rate:
            return
        window, n = self._window, self._window_samples
        self._window, self._window_samples = [], 0
        self._measure(window[0] if len(window) == 1 else b"".join(window), n)

    def _measure(self, pcm16: bytes, n: int) -> None:
        if is_zero(pcm16):
            rms, silent = 0.0, True
        else:
            samples = np.frombuffer(pcm16, dtype="<i2", count=n)
            rms = math.sqrt(mean_square(samples))
            # Digital silence needs every |sample| <= DIGITAL_SILENCE, which a higher RMS rules out.
            silent = rms <= DIGITAL_SILENCE and \
                max(int(samples.max()), -int(samples.min())) <= DIGITAL_SILENCE
        with self._lock:
            self._rms = to_dbfs(rms)
            if silent:
                self._silent_samples += n
            else:
                self._silent_samples = 0
                self._ever_sound = True
            tell = self._on_change is not None and self._display_moved()
            callback = self._on_change
        if tell:
            callback()

    def _display_moved(self) -> bool:
        """Under the lock: has the display changed enough to be told (and may it be told now)?"""
        position = meter_fraction(self._rms) * METER_STEPS
        shown = self._shown
        step = int(position)
        if shown is not None and step != shown[0] and \
                shown[0] - METER_HYSTERESIS <= position < shown[0] + 1 + METER_HYSTERESIS:
            step = shown[0]          # within the hysteresis band of the step shown
        silent_s = self._silent_samples / self.sample_rate
        limit = hint_after_s(self.source)
        hint = -1 if self._ever_sound or silent_s < limit else int((silent_s - limit) // SILENT_RETELL_S)
        key = (step, hint)
        if key == shown:
            self._owed = False
            return False
        now = self._clock()
        if now - self._told_at < self._change_interval_s:
            self._owed = True
            return False
        self._shown, self._told_at = key, now
        self._owed = False
        return True

    def count_overflow(self, n: int = 1) -> None:
        with self._lock:
            self._overflows += n

    def reset_silence(self) -> None:
        """A new device was opened: the silence counter starts over."""
        with self._lock:
            self._silent_samples = 0
            self._ever_sound = False
            self._window, self._window_samples = [], 0

    def snapshot(self) -> Level:
        with self._lock:
            return Level(self._rms, self._overflows, self._silent_samples / self.sample_rate,
                         self.source, self._ever_sound)

