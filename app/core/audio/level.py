"""Input level for the UI: RMS and peak in dBFS, overflow count, and a "silent device" hint.

The capture thread calls :meth:`LevelMeter.update` once per chunk; the UI pulls
:meth:`LevelMeter.snapshot` on its own timer (audio rate and paint rate stay decoupled).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

FLOOR_DBFS = -120.0          # what silence reads as (log of zero is -inf)
SILENT_HINT_AFTER_S = 5.0    # continuous digital silence before the UI hints at a wrong device
DIGITAL_SILENCE = 2          # |sample| at or below this is "nothing" (allows ±1-2 LSB dither)
_FULL_SCALE = 32768.0


def to_dbfs(value: float) -> float:
    """Linear amplitude in int16 units → dBFS (0 dBFS = full-scale), floored."""
    if value <= 0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20.0 * math.log10(value / _FULL_SCALE))


@dataclass(frozen=True)
class Level:
    rms_dbfs: float = FLOOR_DBFS     # of the latest chunk
    peak_dbfs: float = FLOOR_DBFS    # highest peak since the previous snapshot and in the latest chunk
    overflows: int = 0               # input overflows (audio dropped because we read too late)
    silent_s: float = 0.0            # seconds of continuous digital silence so far
    source: str = ""                 # "mic", "system", "file"… (words the hint is put in)

    @property
    def silent(self) -> bool:
        return self.silent_s >= SILENT_HINT_AFTER_S

    @property
    def hint(self) -> str | None:
        """A sentence for the UI when the device has delivered only silence for a while."""
        if not self.silent:
            return None
        if self.source == "system":
            return (f"No sound from this output for {self.silent_s:.0f} s. Nothing may be playing, "
                    "or the sound goes to a different output than the one selected.")
        return (f"This device has been silent for {self.silent_s:.0f} s. Check that the right "
                "microphone or output is selected, that it is not muted, and that the app is "
                "allowed to use it.")


class LevelMeter:
    """Thread-safe: one writer (capture), any number of readers."""

    def __init__(self, sample_rate: int = 16000, source: str = "") -> None:
        self.sample_rate = sample_rate
        self.source = source
        self._lock = threading.Lock()
        self._rms = FLOOR_DBFS
        self._peak_hold = 0
        self._last_peak = 0
        self._overflows = 0
        self._silent_samples = 0

    def update(self, pcm16: bytes) -> None:
        samples = np.frombuffer(pcm16, dtype="<i2")
        if not len(samples):
            return
        wide = samples.astype(np.int32)
        peak = int(np.abs(wide).max())
        rms = float(np.sqrt(np.mean(wide.astype(np.float64) ** 2)))
        with self._lock:
            self._rms = to_dbfs(rms)
            self._peak_hold = max(self._peak_hold, peak)
            self._last_peak = peak
            if peak <= DIGITAL_SILENCE:
                self._silent_samples += len(samples)
            else:
                self._silent_samples = 0

    def count_overflow(self, n: int = 1) -> None:
        with self._lock:
            self._overflows += n

    def reset_silence(self) -> None:
        """A new device was opened: the silence counter starts over."""
        with self._lock:
            self._silent_samples = 0

    def snapshot(self) -> Level:
        """Current values; the peak hold restarts after each snapshot (from the latest chunk)."""
        with self._lock:
            level = Level(self._rms, to_dbfs(max(self._peak_hold, self._last_peak)), self._overflows,
                          self._silent_samples / self.sample_rate, self.source)
            self._peak_hold = 0
            return level

