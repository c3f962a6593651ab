"""LocalSession: the offline engine behind the same ``SpeechSession`` interface as AssemblyAI.

Threads: ``send_audio`` only appends to a queue (never blocks capture); one worker thread per
session resamples, runs the VAD/endpointer, decodes, and calls the listener. Control calls
(force end, stop) travel through the same queue, so they act at the right point in the audio.

Falling behind real time (slow or busy CPU): audio waiting in the queue is the measure. Beyond
``BEHIND_S`` the worker skips partials (finals are never skipped) and counts them; audio itself
is dropped only past ``MAX_BACKLOG_S``. Both show in ``stats()`` (``behind``, ``partials_skipped``,
``audio_dropped_s``). The listener is told by an informational ``StreamError`` (Recovery.IGNORE:
the pipeline passes it on without touching the session, and the status model shows it as a
notice, replaced by "caught up" when it is over) once audio has also *waited* ``BEHIND_S`` in
the queue: the audio a device buffered while the model loaded arrives all at once at start-up
and is caught up within a moment; that is not the engine falling behind, and saying so on every
launch would be wrong. ``REPORT_BEHIND_EVENTS = False`` keeps it to stats().
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from app.core.audio.convert import Resampler
from app.core.engine import SessionError, SpeechSession
from app.core.engines import models
from app.core.engines.hotwords import apply_vocabulary
from app.core.engines.segmenter import MAX_UTTERANCE_S, PHRASE_AFTER_S, Segmenter, Utterance
from app.core.engines.vad import SAMPLE_RATE, SileroVad
from app.core.events import (Final, Listener, Partial, Recovery, SessionEnded, SessionStarted,
                             StreamError)
from app.core.session_config import SessionConfig

log = logging.getLogger(__name__)

BEHIND_S = 2.0            # audio waiting beyond this: skip partials, report "behind"
CAUGHT_UP_S = 0.5         # ... and under this again: caught up (reported when "behind" was)
MAX_BACKLOG_S = 120.0     # queued audio beyond this is dropped (oldest first) and reported
QUIET_SKIP_MS = 150       # no partial decode once the speaker has paused this long
PARTIAL_BUDGET = 0.4      # share of real time partial decodes may take
PARTIAL_MAX_BACKLOG_S = 0.3   # no partial while more audio than this waits to be analysed
EMPTY_RETRY_S = 0.2       # a partial that found no words yet is retried this much audio later
NOTICE_EVERY_S = 30.0     # at most one "audio skipped" notice per this many seconds
REPORT_BEHIND_EVENTS = True    # tell the listener (status notice), not only stats()
ENGINE_NICE = 3                # the decoder thread yields to capture and the GUI on a busy CPU


_live_sessions: "weakref.WeakSet[LocalSession]" = weakref.WeakSet()


@atexit.register
def _stop_live_sessions() -> None:
    """A worker still inside onnxruntime when the interpreter exits aborts the process
    ("terminate called without an active exception"): end any session nobody stopped."""
    for session in list(_live_sessions):
        session.stop(timeout=1.0)


@dataclass(frozen=True)
class EngineStats:
    """A snapshot for the status / diagnostics; all times in seconds."""

    model: str
    audio_s: float             # audio analysed so far
    backlog_s: float           # audio waiting to be analysed right now
    behind: bool               # currently skipping partials to keep up
    partials_skipped: int
    audio_dropped_s: float
    decode_s: float            # total time spent decoding
    finals: int

    @property
    def realtime_factor(self) -> float:
        return self.decode_s / self.audio_s if self.audio_s else 0.0


class LocalSession(SpeechSession):
    def __init__(self, config: SessionConfig, listener: Listener, *,
                 recognizer: "models.Recognizer | None" = None, vad_factory=SileroVad) -> None:
        super().__init__(listener)
        self._config = config
        self._rate = int(config.sample_rate)
        self._recognizer = recognizer
        self._vad_factory = vad_factory
        self._silence_ms = int(config.silence_ms)
        self._vocabulary: tuple[str, ...] = tuple(config.vocabulary)
        self._cv = threading.Condition()
        self._items: collections.deque = collections.deque()
        self._queued_samples = 0          # input-rate samples waiting in _items
        self._carry = b""                 # an odd trailing byte between send_audio calls
        self._state = "new"               # new → running → stopping → ended
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._ended = threading.Event()
        self._emit_lock = threading.Lock()
        self._closed = False              # nothing is emitted after the last event
        self._segmenter: Segmenter | None = None
        self._run_options = None          # onnxruntime RunOptions: lets stop() abort a decode
        self._last_partial_text = ""
        self._utterance_state: dict = {}
        # stats (guarded by _cv)
        self._audio_samples = 0
        self._partials_skipped = 0
        self._dropped_samples = 0
        self._decode_s = 0.0
        self._finals = 0
        self._behind = False
        self._drop_pending = False        # audio was dropped; the worker reports it
        self._last_notice = -1e9
        self._behind_shown = False        # a "behind" notice is showing; say when it is over
        self.session_id = f"local-{uuid.uuid4().hex[:12]}"

    # ---- SpeechSession ----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        if self._state != "new":
            raise RuntimeError("a LocalSession can be started once")
        try:
            problem = models.vad_problem()
            if problem:
                raise models.EngineUnavailable(f"The offline engine cannot start: {problem}.")
            if self._recognizer is None:
                self._recognizer = models.get_recognizer()
        except models.EngineUnavailable as exc:
            raise SessionError(StreamError(None, str(exc), Recovery.STOP)) from None
        try:
            self._segmenter = Segmenter(
                self._silence_ms, vad=self._vad_factory(),
                phrase_after_s=getattr(self._recognizer, "phrase_after_s", PHRASE_AFTER_S),
                max_utterance_s=getattr(self._recognizer, "max_utterance_s", MAX_UTTERANCE_S))
        except Exception as exc:   # the native VAD library or its model file is broken
            raise SessionError(StreamError(
                None, f"The offline engine's voice detector could not start: {exc}",
                Recovery.STOP)) from None
        try:
            import onnxruntime as ort
            self._run_options = ort.RunOptions()
        except ImportError:
            self._run_options = None
        self._resampler = None if self._rate == SAMPLE_RATE else Resampler(self._rate, SAMPLE_RATE)
        self._state = "running"
        _live_sessions.add(self)
        self._thread = threading.Thread(target=self._run, name="local-engine", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise SessionError(StreamError(None, "The offline engine did not start in time.",
                                           Recovery.RECONNECT))

    def send_audio(self, pcm16: bytes, *, may_block: bool = False) -> None:
        if not pcm16:
            return
        with self._cv:
            if self._state != "running":
                if self._state == "new":
                    raise RuntimeError("send_audio() before start()")
                return                          # after stop: nothing more is recognised
            data = self._carry + bytes(pcm16)
            if len(data) % 2:
                data, self._carry = data[:-1], data[-1:]
            else:
                self._carry = b""
            if not data:
                return
            self._items.append(("audio", data, time.monotonic()))
            self._queued_samples += len(data) // 2
            self._drop_excess_locked()
            self._cv.notify()

    def force_end(self) -> None:
        self._control(("force",))

    def set_silence_threshold(self, ms: int) -> None:
        ms = int(ms)
        if ms < 0:
            raise ValueError("The silence threshold cannot be negative.")
        self._silence_ms = ms
        seg = self._segmenter
        if seg is not None:
            seg.set_silence_ms(ms)          # lock-protected; applies to the utterance in progress

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        # The models cannot be biased, so terms fix the spelling/casing of what they hear
        # (Whisper also gets them as hotwords). Applies from the next decode on.
        self._vocabulary = tuple(t for t in (str(x).strip() for x in terms) if t)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            if self._state == "new":
                self._state = "ended"
                return
            if self._state == "running":
                self._state = "stopping"
                self._items.append(("stop",))
                self._cv.notify()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        if not self._ended.wait(timeout):
            # A decode overran: abort it, give the worker a moment, then end from here.
            if self._run_options is not None:
                self._run_options.terminate = True
            if not self._ended.wait(0.5):
                self._emit(SessionEnded(audio_duration_s=self._audio_samples / SAMPLE_RATE),
                           last=True)

    # ---- extras ---------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return getattr(self._recognizer, "name", "")

    def stats(self) -> EngineStats:
        with self._cv:
            return EngineStats(
                model=self.model_name, audio_s=self._audio_samples / SAMPLE_RATE,
                backlog_s=self._queued_samples / self._rate,
                # Also while the worker is still inside a decode that made it fall behind.
                behind=self._behind or self._queued_samples / self._rate > BEHIND_S,
                partials_skipped=self._partials_skipped,
                audio_dropped_s=self._dropped_samples / self._rate,
                decode_s=self._decode_s, finals=self._finals)

    # ---- worker -------------------------------------------------------------------------------
    def _control(self, item: tuple) -> None:
        with self._cv:
            if self._state == "running":
                self._items.append(item)
                self._cv.notify()

    def _oldest_audio_locked(self) -> int | None:
        """Index of the oldest audio item waiting (control items may sit in front of it)."""
        return next((i for i, it in enumerate(self._items) if it[0] == "audio"), None)

    def _waited_locked(self) -> float:
        """How long the oldest audio still waiting has been in the queue (s)."""
        idx = self._oldest_audio_locked()
        return time.monotonic() - self._items[idx][2] if idx is not None else 0.0

    def _drop_excess_locked(self) -> None:
        limit = int(MAX_BACKLOG_S * self._rate)
        while self._queued_samples > limit:
            idx = self._oldest_audio_locked()
            if idx is None:
                return
            data = self._items[idx][1]
            del self._items[idx]
            n = len(data) // 2
            self._queued_samples -= n
            self._dropped_samples += n
            self._drop_pending = True

    def _emit(self, event, last: bool = False) -> None:
        with self._emit_lock:
            if self._closed:
                return
            if last:
                self._closed = True
            try:
                self._listener(event)
            except Exception:                    # a listener bug must not kill recognition
                log.exception("caption listener failed on %s", type(event).__name__)
        if last:
            self._ended.set()

    def _run(self) -> None:
        lower_thread_priority()
        self._emit(SessionStarted(session_id=self.session_id, protocol="local"))
        self._started.set()
        try:
            self._loop()
        except Exception as exc:
            log.exception("offline engine failed")
            with self._cv:
                self._state = "ended"
            self._emit(StreamError(None, f"The offline engine stopped unexpectedly: {exc}",
                                   Recovery.RECONNECT), last=True)
            return
        with self._cv:
            self._state = "ended"
            seconds = self._audio_samples / SAMPLE_RATE
        self._emit(SessionEnded(audio_duration_s=seconds), last=True)

    def _loop(self) -> None:
        seg = self._segmenter
        seg.set_silence_ms(self._silence_ms)
        while True:
            # One capture chunk at a time, so the queue length is always the true backlog and
            # partials keep flowing between chunks whenever the engine is caught up.
            with self._cv:
                while not self._items:
                    self._cv.wait()
                item = self._items.popleft()
                if item[0] == "audio":
                    self._queued_samples -= len(item[1]) // 2
                drop_notice, self._drop_pending = self._drop_pending, False
            if drop_notice:
                self._notify_behind(dropped=True)
            if item[0] == "audio":
                self._feed([item[1]])
            elif item[0] == "force":
                utt = seg.force_end()
                if utt is not None:
                    self._final(utt)
            elif item[0] == "stop":
                if self._resampler is not None:
                    tail = self._resampler.flush()
                    if len(tail):
                        self._segment(np.asarray(tail, dtype=np.float32) / 32768.0)
                utt = seg.flush()
                if utt is not None:
                    self._final(utt)
                return
            with self._cv:
                was_behind = self._behind
                backlog = self._queued_samples / self._rate
                # Hysteresis: behind past BEHIND_S, caught up again only under CAUGHT_UP_S.
                self._behind = backlog > (CAUGHT_UP_S if was_behind else BEHIND_S)
                left_behind = was_behind and not self._behind
                late = self._behind and self._waited_locked() > BEHIND_S
                stopping = self._state != "running"
            if late and not self._behind_shown and not stopping:
                self._notify_behind(dropped=False)
            elif left_behind and self._behind_shown and not stopping:
                self._behind_shown = False      # the notice says so only while it is true
                self._emit(StreamError(None, "The offline engine has caught up with real time: "
                                       "live words are back.", Recovery.IGNORE))
            if not stopping:
                self._maybe_partial()

    def _feed(self, parts: list[bytes]) -> None:
        if not parts:
            return
        samples = np.frombuffer(b"".join(parts), dtype="<i2")
        if self._resampler is not None:
            samples = self._resampler.process(samples)
        self._segment(np.asarray(samples, dtype=np.float32) / 32768.0)

    def _segment(self, audio: np.ndarray) -> None:
        for utt in self._segmenter.feed(audio):
            self._final(utt)
        with self._cv:
            self._audio_samples = self._segmenter.position

    def _decode(self, audio: np.ndarray, partial: bool) -> str:
        hotwords = " ".join(self._vocabulary) or None
        began = time.monotonic()
        try:
            text = self._recognizer.transcribe(audio, partial=partial, terminate=self._run_options,
                                               hotwords=hotwords, state=self._utterance_state)
        finally:
            elapsed = time.monotonic() - began
            with self._cv:
                self._decode_s += elapsed
            self._last_decode_s = elapsed
        return apply_vocabulary(text, self._vocabulary)

    def _final(self, utt: Utterance) -> None:
        spec, self._speculative = self._speculative, None
        if spec is not None and spec[0] == _key(utt):
            text = spec[1]                      # decoded during the pause: no wait at all
        else:
            try:
                text = self._decode(utt.audio, partial=False)
            except Exception:
                if not self._aborted():
                    raise
                text = self._last_partial_text  # stop() ran out of time: keep what was shown
        self._last_partial_text = ""
        self._next_partial_at = 0
        self._utterance_state = {}              # the next utterance starts with no draft
        if not text:
            return                              # noise the VAD took for speech
        with self._cv:
            self._finals += 1
        self._emit(Final(text=text, audio_start=_ms(utt.start), audio_end=_ms(utt.end)))

    def _aborted(self) -> bool:
        return self._run_options is not None and bool(self._run_options.terminate)

    _next_partial_at = 0
    _last_decode_s = 0.0
    _speculative: tuple | None = None     # ((start, end, samples), text) decoded during a pause

    def _maybe_partial(self) -> None:
        seg = self._segmenter
        current = seg.current()
        if current is None:
            return
        start, end, audio = current
        rec = self._recognizer
        if (end - start) < rec.min_partial_s * SAMPLE_RATE:
            return
        quiet = seg.endpointer.quiet_samples(end) >= QUIET_SKIP_MS * SAMPLE_RATE // 1000
        # The decode during a pause is the final's own: it does not wait for the partial cadence.
        if not quiet and end < self._next_partial_at:
            return
        with self._cv:
            # Live words only when caught up: a partial decoded while audio waits would delay
            # that audio (and its final) further. Finals never wait for partials.
            if self._behind or self._queued_samples > PARTIAL_MAX_BACKLOG_S * self._rate:
                self._partials_skipped += 1
                return
        if quiet:
            # A pause brings no new words; decode what the final will be instead, so it is
            # ready when the silence threshold runs out (and show it as the partial now).
            utt = seg.speculative()
            if utt is None or (self._speculative is not None and self._speculative[0] == _key(utt)):
                return
            text = self._decode(utt.audio, partial=False)
            self._speculative = (_key(utt), text)
            if text and text != self._last_partial_text:
                self._last_partial_text = text
                self._emit(Partial(text=text, audio_start=_ms(utt.start), audio_end=_ms(utt.end)))
            return
        text = self._decode(audio, partial=True)
        # Adaptive cadence: partials take at most PARTIAL_BUDGET of real time, so a slow or busy
        # CPU shows live words less often instead of falling behind. No words yet (the first
        # syllables): look again soon, the first live words matter most.
        interval = max(rec.partial_interval_s, self._last_decode_s / PARTIAL_BUDGET)
        if not text:
            interval = max(EMPTY_RETRY_S, self._last_decode_s / PARTIAL_BUDGET)
        self._next_partial_at = end + int(interval * SAMPLE_RATE)
        if text and text != self._last_partial_text:
            self._last_partial_text = text
            self._emit(Partial(text=text, audio_start=_ms(start), audio_end=_ms(end)))

    def _notify_behind(self, dropped: bool) -> None:
        if not REPORT_BEHIND_EVENTS:
            return                              # stats() still says so
        now = time.monotonic()
        if dropped and now - self._last_notice < NOTICE_EVERY_S:
            return
        self._last_notice = now
        if not dropped:
            self._behind_shown = True
        if dropped:
            with self._cv:
                seconds = self._dropped_samples / self._rate
            message = (f"The offline engine could not keep up: {seconds:.1f} s of audio were "
                       "skipped. Close other busy programs or use AssemblyAI.")
        else:
            message = ("Captions are behind real time while the offline engine catches up: live "
                       "words are paused, finished sentences still appear.")
        self._emit(StreamError(None, message, Recovery.IGNORE))


def lower_thread_priority(nice: int = ENGINE_NICE) -> bool:
    """Make the calling thread a batch thread a few nice levels down, so a decode never delays
    capture or drawing: a busy CPU then delays words, not audio. Linux only (there, priority is
    per thread); elsewhere, or when not permitted, the thread keeps its priority."""
    if not hasattr(os, "sched_setscheduler") or not hasattr(threading, "get_native_id"):
        return False
    tid = threading.get_native_id()
    try:
        # SCHED_BATCH: no wake-up preemption of interactive threads, the same share otherwise.
        os.sched_setscheduler(tid, os.SCHED_BATCH, os.sched_param(0))
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), 0) + nice)
    except OSError:
        return False
    return True


def _key(utt: Utterance) -> tuple[int, int, int]:
    return utt.start, utt.end, len(utt.audio)


def _ms(samples: int) -> int:
    return int(round(samples * 1000 / SAMPLE_RATE))
