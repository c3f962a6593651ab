"""Energy VAD endpointer: finds utterances in the audio a client streams.

Audio is cut into 10 ms windows; a window is speech when its RMS level is above
``threshold_dbfs``. An utterance starts after ``min_speech_ms`` of consecutive speech and
ends once the silence that follows reaches the *current* silence threshold — read at every
window, so a threshold changed mid-session applies to the utterance already in progress.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UtteranceStart:
    start_ms: int


@dataclass(frozen=True)
class UtteranceEnd:
    start_ms: int
    end_ms: int       # end of the last speech window (the trailing silence is not part of it)


class Endpointer:
    def __init__(self, sample_rate: int, silence_ms: int, *, threshold_dbfs: float = -40.0,
                 window_ms: int = 10, min_speech_ms: int = 40) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.sample_rate = sample_rate
        self.silence_ms = int(silence_ms)
        self.window_ms = window_ms
        self.min_speech_ms = min_speech_ms
        self._window = max(1, sample_rate * window_ms // 1000)
        # RMS threshold in int16 units.
        self._threshold = 32768.0 * 10 ** (threshold_dbfs / 20)
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples_done = 0          # samples already classified
        self._run_start: int | None = None   # sample index where the current speech run began
        self._run_len = 0               # samples of consecutive speech before an utterance started
        self.in_utterance = False
        self.utterance_start_ms = 0
        self.last_speech_end_ms = 0
        self._silence_run = 0           # samples of silence since the last speech window

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio classified so far."""
        return self._ms(self._samples_done)

    def utterance_speech_ms(self) -> int:
        """How long the utterance in progress has been going (0 if none)."""
        return self.last_speech_end_ms - self.utterance_start_ms if self.in_utterance else 0

    def _ms(self, samples: int) -> int:
        return int(round(samples * 1000 / self.sample_rate))

    def feed(self, pcm16: np.ndarray) -> list[UtteranceStart | UtteranceEnd]:
        """Classify new samples; returns the utterance boundaries they complete, in order."""
        events: list[UtteranceStart | UtteranceEnd] = []
        data = np.concatenate((self._pending, np.asarray(pcm16, dtype=np.int16)))
        w = self._window
        usable = len(data) - len(data) % w
        if usable:
            windows = data[:usable].astype(np.float64).reshape(-1, w)
            rms = np.sqrt((windows ** 2).mean(axis=1))
            for level in rms:
                self._step(level > self._threshold, events)
        self._pending = data[usable:]
        return events

    def _step(self, speech: bool, events: list) -> None:
        start = self._samples_done
        self._samples_done += self._window
        if speech:
            if self.in_utterance:
                self._silence_run = 0
                self.last_speech_end_ms = self._ms(self._samples_done)
                return
            if self._run_start is None:
                self._run_start = start
            self._run_len += self._window
            if self._ms(self._run_len) >= self.min_speech_ms:
                self.in_utterance = True
                self.utterance_start_ms = self._ms(self._run_start)
                self.last_speech_end_ms = self._ms(self._samples_done)
                self._silence_run = 0
                self._run_start, self._run_len = None, 0
                events.append(UtteranceStart(self.utterance_start_ms))
            return
        # Silence.
        self._run_start, self._run_len = None, 0
        if self.in_utterance:
            self._silence_run += self._window
            if self._ms(self._silence_run) >= self.silence_ms:
                events.append(self._finish())

    def _finish(self) -> UtteranceEnd:
        end = UtteranceEnd(self.utterance_start_ms, self.last_speech_end_ms)
        self.in_utterance = False
        self._silence_run = 0
        return end

    def force_end(self) -> UtteranceEnd | None:
        """End the utterance in progress now (force_end_utterance / ForceEndpoint / terminate)."""
        if not self.in_utterance:
            return None
        return self._finish()
