"""Cuts a continuous 16 kHz stream into utterances for an encoder-decoder recognizer.

Moonshine and Whisper are not streaming models: "streaming" here means VAD segmentation,
re-decoding the live utterance for partials and decoding the whole utterance for the final.
Sample positions are absolute (since the start of the session) so offsets stay exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.engines.vad import SAMPLE_RATE, WINDOW, Endpointer, SileroVad

PREROLL_MS = 300        # audio kept before the detected start: onsets are soft, Moonshine needs lead-in
TAIL_MS = 150           # audio kept after the last speech window, so the final word is not clipped
MAX_UTTERANCE_S = 8.0   # decode cost grows with length; long monologues are cut at a quiet moment
CUT_SEARCH_S = 3.0      # where to look for that quiet moment (the end of the utterance so far)
# A long stretch of speech is committed at its next short pause (a breath between phrases) instead
# of waiting for the full silence threshold: finals keep coming during a monologue, and every
# partial re-decodes only the phrase in progress rather than the whole sentence so far.
PHRASE_AFTER_S = 3.0
PHRASE_PAUSE_MS = 150     # a comma-length pause (espeak-ng: 130-190 ms; people: 150-500 ms)


@dataclass(frozen=True)
class Utterance:
    """A finished utterance: speech from ``start`` to ``end`` (samples), ``audio`` to decode."""

    start: int
    end: int
    audio: np.ndarray
    reason: str          # "silence" | "pause" | "force" | "length" | "flush"


class Segmenter:
    def __init__(self, silence_ms: int, *, vad: SileroVad | None = None,
                 preroll_ms: int = PREROLL_MS, max_utterance_s: float = MAX_UTTERANCE_S,
                 phrase_after_s: float | None = PHRASE_AFTER_S,
                 phrase_pause_ms: int = PHRASE_PAUSE_MS) -> None:
        self.endpointer = Endpointer(silence_ms)
        # None: only the silence threshold (and the length cap) end an utterance.
        self._phrase_after = None if phrase_after_s is None else int(phrase_after_s * SAMPLE_RATE)
        self._phrase_pause = phrase_pause_ms * SAMPLE_RATE // 1000
        self._vad = vad if vad is not None else SileroVad()
        self._preroll = preroll_ms * SAMPLE_RATE // 1000
        self._tail = TAIL_MS * SAMPLE_RATE // 1000
        self._max_len = int(max_utterance_s * SAMPLE_RATE)
        self._buf = np.zeros(0, dtype=np.float32)
        self._buf_start = 0          # absolute sample of _buf[0]
        self._vad_pos = 0            # samples already seen by the VAD
        self._floor = 0              # audio before this went into an earlier final: never reused
        self._start: int | None = None
        self._probs: list[tuple[int, float]] = []   # (window start, probability) this utterance

    # ---- state for partials -------------------------------------------------------------
    @property
    def in_speech(self) -> bool:
        return self._start is not None

    @property
    def position(self) -> int:
        """Samples received so far (= stream time)."""
        return self._buf_start + len(self._buf)

    def current(self) -> tuple[int, int, np.ndarray] | None:
        """(speech start, end, audio to decode) of the utterance in progress, or None."""
        if self._start is None:
            return None
        return self._start, self._vad_pos, self._slice(self._audio_from(self._start), self._vad_pos)

    def speculative(self) -> Utterance | None:
        """During a pause: exactly the utterance a silence endpoint would produce now, so it can
        be decoded while the threshold runs out (the final is then ready the moment it does)."""
        if self._start is None or self.endpointer.quiet_samples(self._vad_pos) <= 0:
            return None
        end = max(self.endpointer.last_speech_end, self._start)
        if self.position < end + self._tail:
            return None
        audio = self._slice(self._audio_from(self._start), end + self._tail).copy()
        return Utterance(self._start, end, audio, "silence")

    def phrase_pause_pending(self) -> bool:
        """A pause in progress will end the utterance as a phrase if it lasts ``phrase_pause``:
        the utterance is long enough and that pause is shorter than the silence threshold."""
        if self._start is None or self._phrase_after is None:
            return False
        return (self.endpointer.last_speech_end - self._start >= self._phrase_after
                and self._phrase_pause < self.endpointer.silence_ms * SAMPLE_RATE // 1000)

    # ---- feeding ------------------------------------------------------------------------
    def feed(self, audio: np.ndarray) -> list[Utterance]:
        """Append float32 samples; returns the utterances they completed."""
        self._buf = np.concatenate((self._buf, np.asarray(audio, dtype=np.float32)))
        done: list[Utterance] = []
        while self._vad_pos + WINDOW <= self.position:
            start = self._vad_pos
            window = self._slice(start, start + WINDOW)
            prob = self._vad.probability(window)
            self._vad_pos += WINDOW
            boundary = self.endpointer.push(prob, start)
            if boundary is not None and boundary.kind == "start":
                self._start = max(boundary.sample, self._floor)
                self._probs = []
            elif boundary is not None and boundary.kind == "end":
                done.append(self._finish(boundary.sample, "silence"))
            elif self._phrase_ends_here():
                boundary = self.endpointer.end()
                done.append(self._finish(boundary.sample, "pause"))
            if self._start is not None:
                self._probs.append((start, prob))
                if self._vad_pos - self._start >= self._max_len:
                    done.append(self._cut_for_length())
        self._trim()
        return done

    def force_end(self) -> Utterance | None:
        """End the utterance in progress at the current position (all audio received so far)."""
        if self.endpointer.end() is None or self._start is None:
            return None
        return self._finish(self.position, "force", tail=0)

    def flush(self) -> Utterance | None:
        """End of stream: the utterance in progress becomes final, including unanalysed samples."""
        if self._start is None:
            self.endpointer.end()
            return None
        self.endpointer.end()
        return self._finish(self.position, "flush", tail=0)

    def set_silence_ms(self, ms: int) -> None:
        self.endpointer.set_silence_ms(ms)

    # ---- internals ----------------------------------------------------------------------
    def _phrase_ends_here(self) -> bool:
        return (self.phrase_pause_pending()
                and self.endpointer.quiet_samples(self._vad_pos) >= self._phrase_pause)

    def _audio_from(self, speech_start: int) -> int:
        return max(speech_start - self._preroll, self._floor, self._buf_start)

    def _slice(self, a: int, b: int) -> np.ndarray:
        return self._buf[a - self._buf_start:b - self._buf_start]

    def _finish(self, end: int, reason: str, tail: int | None = None) -> Utterance:
        start = self._start
        audio_end = min(self.position, end + (self._tail if tail is None else tail))
        audio = self._slice(self._audio_from(start), audio_end).copy()
        self._floor = max(self._floor, audio_end if reason in ("force", "flush") else end)
        self._start = None
        self._probs = []
        return Utterance(start, max(end, start), audio, reason)

    def _cut_for_length(self) -> Utterance:
        """The speaker has not paused: end at the quietest recent window and go straight on."""
        recent = [(s, p) for s, p in self._probs if s >= self._vad_pos - CUT_SEARCH_S * SAMPLE_RATE]
        cut_start, _ = min(recent, key=lambda sp: sp[1])
        cut = cut_start + WINDOW // 2
        start = self._start
        audio = self._slice(self._audio_from(start), cut).copy()
        self._floor = cut
        self._start = cut
        self._probs = [(s, p) for s, p in self._probs if s >= cut]
        self.endpointer.restart_at(self._vad_pos)
        return Utterance(start, cut, audio, "length")

    def _trim(self) -> None:
        """Keep only what a future decode can need: the live utterance, or the pre-roll."""
        keep_from = self._vad_pos - self._preroll if self._start is None else self._audio_from(self._start)
        keep_from = max(keep_from, self._buf_start)
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start:]
            self._buf_start = keep_from
