"""Audio source → speech session, with reconnects. No Qt: used by the headless CLI and the GUI worker.

Policy (documented in the README):
- A transient failure (``Recovery.RECONNECT``) opens a new session after an exponential backoff with
  jitter, capped at ``max_backoff_s``. Auth/billing/config failures (``Recovery.STOP``) end the run
  at once (``fatal_error``), never in a loop.
- Audio captured while no session is accepting it (network outage, device loss) is **dropped** and
  reported as a ``Gap``: sending it late would exceed the real-time rate limit (v2 4029, v3 3007).
- Offsets are converted to one continuous stream time across sessions: a session's offset 0 is the
  stream position of the first audio it received. Stream time follows the wall clock, so a device
  that was away for 5 s leaves a 5 s gap.
- Latency (speech end → final received) needs the wall-clock moment of stream position 0. A device
  hands over audio it buffered while the first session was being opened all at once, so that
  moment is the *earliest* "read returned − audio read so far" seen, not the time of the first read.
- Session rollover (v3): a session ends at ``Begin.expires_at`` (3 h, or less with a token) and
  the server then drops the turn in progress. Inside a window before that moment the next session
  is opened alongside; audio moves to it at the first pause (no turn open, a moment of quiet), or
  at the latest shortly before the limit. Each chunk goes to exactly one session and the old one
  is ended with Terminate, which flushes its last turn: no final is lost or doubled.
- A session the server ended without being asked (v3 ``inactivity_timeout``) is replaced at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from dataclasses import replace
from typing import Callable, Iterable

from app.core.audio.errors import AudioSourceError, DeviceLost
from app.core.audio.source import AudioSource
from app.core.engine import SessionError, SpeechSession
import numpy as np

from app.core.events import (Event, Final, Gap, Listener, Partial, Reconnecting, Recovery,
                             SessionEnded, SessionStarted, StreamError)

log = logging.getLogger(__name__)

QUIET_PEAK = 1000            # int16 peak below which a chunk counts as a pause (about -30 dBFS)
PAUSE_MS = 300               # quiet audio needed before a rollover
PREPARE_RETRY_S = 2.0         # first retry of a failed early open; doubles up to 10 s
MIN_SESSION_S = 1.0


def rollover_margins(length_s: float) -> tuple[float, float]:
    """(window, hard) seconds before expiry: look for a pause from ``window`` before the limit,
    switch regardless at ``hard`` before it. Scaled for short token-limited sessions."""
    window = min(60.0, max(1.5, 0.3 * length_s))
    hard = min(10.0, max(0.5, 0.1 * length_s))
    return window, min(hard, window / 2)


def is_quiet(chunk: bytes) -> bool:
    if len(chunk) < 2:
        return True
    samples = np.frombuffer(chunk[: len(chunk) // 2 * 2], dtype="<i2")
    return int(np.abs(samples.astype(np.int32)).max()) < QUIET_PEAK


class _Run:
    """One session inside the pipeline, with where it sits in stream time."""

    def __init__(self, now: float) -> None:
        self.session: SpeechSession | None = None
        self.offset_ms: float | None = None      # stream position of its first audio sample
        self.started_at = now
        self.stopping = False
        self.failed = False        # ended with an error (maybe before the pipeline installed it)
        self.finals = 0
        self.expires_at: float | None = None     # pipeline clock; v3 sessions only
        self.length_s = 0.0
        self.speaking = False      # a partial is open: the turn has not ended yet


class CaptionPipeline:
    def __init__(self, source: AudioSource, session_factory: Callable[[Listener], SpeechSession],
                 listener: Listener, *, label: str = "", max_backoff_s: float = 10.0,
                 device_retry_s: float = 3.0, rng: random.Random | None = None,
                 base_backoff_s: float = 0.5, unreachable_backoff_s: float = 1.5,
                 max_retries: int | None = None,
                 max_outage_s: float | None = None, connect_timeout_s: float = 10.0,
                 stop_timeout_s: float = 5.0, stable_after_s: float = 10.0,
                 max_bug_errors: int = 3, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.source = source
        # A source that is not live (a file) may wait on the network; one that does not say is live.
        self._source_may_wait = not getattr(source, "live", True)
        self.label = label
        self._factory = session_factory
        self._listener = listener
        self.max_backoff_s = max_backoff_s
        self.base_backoff_s = base_backoff_s
        # While the server cannot even be reached no session is opened (nothing is billed or
        # counted against session limits), so retry often: captions resume soon after it is back.
        self.unreachable_backoff_s = unreachable_backoff_s
        self.device_retry_s = device_retry_s
        self.max_retries = max_retries          # initial connection: failed retries before giving up
        self.max_outage_s = max_outage_s        # after a session ran: longest outage before giving up
        self.connect_timeout_s = connect_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.stable_after_s = stable_after_s
        self.max_bug_errors = max_bug_errors
        self._rng = rng or random.Random()
        self._clock = clock                         # outage and session-age measurements
        self._wall = wall                           # to read the server's expires_at
        self.fatal_error: StreamError | None = None
        self.fatal_source_error: AudioSourceError | None = None
        self.stream_time_origin: float | None = None
        self.connected_once = False
        self._stop = threading.Event()
        self._wake = threading.Event()               # reconnect request or shutdown
        self._lock = threading.RLock()
        self._out_lock = threading.RLock()
        self._current: _Run | None = None
        self._reconnect_reason: str | None = None
        self._reconnect_immediate = False
        self._failures = 0                           # consecutive failed/short-lived sessions
        self._bug_errors = 0
        self._outage_since: float | None = None
        self._position_ms = 0.0
        self._gap_start: float | None = None
        self._gap_reason = ""
        self._silence_ms: int | None = None
        self._vocabulary: tuple[str, ...] | None = None
        self._languages: tuple[str, ...] | None = None
        # Every session opened: a setting changed while one is being opened or waits to take
        # over at a rollover must reach it too, not only the live one.
        self._runs: "weakref.WeakSet[_Run]" = weakref.WeakSet()
        self._finishing = False
        self._token_rejected = False
        self._unreachable = False                    # the last attempt never reached the server
        self._opening: SpeechSession | None = None   # session whose start() is in progress
        self._next: _Run | None = None               # opened ahead of a rollover, no audio yet
        self._preparing = False
        self._prepare_after = 0.0
        self._prepare_failures = 0
        self._quiet_ms = 0.0
        self.rollovers = 0

    # ---- control (any thread) --------------------------------------------------------------
    def stop(self) -> None:
        """Ask ``run()`` to finish: the current session is stopped with its finals flushed, and
        a connection attempt in progress is abandoned at once (a slow server cannot hold Stop)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            opening = self._opening
        cancel = getattr(opening, "cancel", None)
        if cancel is not None:
            cancel()

    def force_end(self) -> None:
        session = self._live_session()
        if session is not None:
            session.force_end()

    def set_silence_threshold(self, ms: int) -> None:
        for session in self._keep_setting("_silence_ms", ms):
            session.set_silence_threshold(ms)

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        terms = tuple(terms)
        self._apply_checked("_vocabulary", terms, lambda s: s.set_vocabulary(terms))

    def set_languages(self, codes: Iterable[str]) -> None:
        """Live where the protocol allows (v3); later sessions (reconnect, rollover) keep it."""
        codes = tuple(codes)
        self._apply_checked("_languages", codes, lambda s: s.set_languages(codes))

    def _keep_setting(self, name: str, value) -> list[SpeechSession]:
        """Store a setting for sessions opened from now on; returns the ones already open or
        opening (kept and read under one lock, so no session misses the change)."""
        with self._lock:
            setattr(self, name, value)
            return [r.session for r in list(self._runs)
                    if r.session is not None and not r.stopping and not r.failed]

    def _apply_checked(self, name: str, value, apply) -> None:
        """The sessions validate: a value one of them refuses (ValueError) is not kept."""
        previous = getattr(self, name)
        try:
            for session in self._keep_setting(name, value):
                apply(session)
        except ValueError:
            with self._lock:
                if getattr(self, name) == value:
                    setattr(self, name, previous)
            raise

    @property
    def position_ms(self) -> float:
        return self._position_ms

    def latency_ms(self, final: Final) -> float | None:
        """Speech end → final received, in ms; ``None`` before any audio was read."""
        origin = self.stream_time_origin
        if origin is None or final.received is None:
            return None
        return (final.received - origin) * 1000.0 - final.audio_end

    def _live_session(self) -> SpeechSession | None:
        with self._lock:
            run = self._current
            return run.session if run is not None and not run.stopping else None

    # ---- events ----------------------------------------------------------------------------
    def _out(self, event: Event) -> None:
        with self._out_lock:
            try:
                self._listener(event)
            except Exception:
                log.exception("the pipeline listener raised")

    def _listener_for(self, run: _Run) -> Listener:
        def on_event(event: Event) -> None:
            if isinstance(event, (Partial, Final)):
                event = replace(self._to_stream_time(run, event), received=time.monotonic())
                run.speaking = isinstance(event, Partial)
                if isinstance(event, Final):
                    run.finals += 1
            elif isinstance(event, SessionStarted) and event.expires_at and event.protocol == "v3":
                # v2's expires_at is not a session limit (wire reference §1.5): v3 only.
                left = event.expires_at - self._wall()
                if left < MIN_SESSION_S:
                    # A limit already (nearly) past is a clock difference, not a real limit:
                    # rolling over on it would open session after session.
                    log.warning("the server's session limit is %.0f s away; not rolling over "
                                "this session (is the computer's clock right?)", left)
                else:
                    with self._lock:
                        run.length_s = left
                        run.expires_at = self._clock() + left
            if isinstance(event, StreamError) and event.recovery is not Recovery.IGNORE \
                    and not run.stopping:
                self._session_failed(run, event)   # a notice (IGNORE) leaves the session running
                return
            if isinstance(event, SessionEnded) and not run.stopping and not run.failed:
                self._out(event)
                self._ended_unasked(run)
                return
            self._out(event)
        return on_event

    def _to_stream_time(self, run: _Run, event):
        off = run.offset_ms if run.offset_ms is not None else self._position_ms
        off = int(round(off))
        if not off:
            return event
        changes = dict(audio_start=event.audio_start + off, audio_end=event.audio_end + off)
        if isinstance(event, Final) and event.words:
            changes["words"] = tuple(_shift_word(w, off) for w in event.words)
        return replace(event, **changes)

    def _ended_unasked(self, run: _Run) -> None:
        """The server closed a session normally without our Terminate (inactivity timeout)."""
        with self._lock:
            run.failed = True
            if self._current is not run:
                return
            self._current = None
            if self._promote_next():
                return
        log.info("the server ended the session; opening a new one")
        self._request_reconnect("The server ended the session.", immediate=True)

    def _promote_next(self) -> bool:
        """Under the lock: a session opened ahead takes over at once."""
        nxt = self._next
        if nxt is None or nxt.failed or self._finishing:
            return False
        self._next = None
        self._current = nxt
        return True

    def _session_failed(self, run: _Run, error: StreamError) -> None:
        with self._lock:
            if run is self._next:             # a session opened ahead died before taking over
                self._next = None
                run.failed = True
                log.info("the session opened for the rollover ended: %s", error.message)
                return
        self._out(error)
        with self._lock:
            run.failed = True
            if self._current is run:
                self._current = None
                if error.recovery is Recovery.RECONNECT and self._promote_next():
                    return
            lived = self._clock() - run.started_at
            if lived >= self.stable_after_s or run.finals:
                self._failures = 0
            if lived >= self.stable_after_s:
                self._bug_errors = 0
            if self._outage_since is None:
                self._outage_since = self._clock()
            self._gap_reason = error.message
        if error.recovery is Recovery.STOP:
            self._fatal(error)
            return
        if error.recovery is Recovery.BUG:
            self._bug_errors += 1
            log.error("protocol fault reported by the server: %s", error.message)
            if self._bug_errors >= self.max_bug_errors:
                self._fatal(error)
                return
        self._request_reconnect(error.message, immediate=False)

    def _fatal(self, error: StreamError) -> None:
        if self.fatal_error is None:
            self.fatal_error = error
        self.stop()

    def _request_reconnect(self, reason: str, immediate: bool) -> None:
        with self._lock:
            self._reconnect_reason = reason
            self._reconnect_immediate = immediate
        self._wake.set()

    # ---- connecting ------------------------------------------------------------------------
    def backoff_s(self, failures: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, capped."""
        base = min(self.max_backoff_s, self.base_backoff_s * (2 ** max(0, failures - 1)))
        return base * (0.5 + 0.5 * self._rng.random())

    def _open_session(self) -> _Run | StreamError:
        run = _Run(self._clock())
        self._token_rejected = False
        self._unreachable = False
        opened = False
        try:
            session = run.session = self._factory(self._listener_for(run))
            with self._lock:
                self._runs.add(run)
                silence, vocabulary, languages = self._silence_ms, self._vocabulary, self._languages
            if silence is not None:
                session.set_silence_threshold(silence)
            if vocabulary is not None:
                session.set_vocabulary(vocabulary)
            if languages is not None:
                try:
                    session.set_languages(languages)
                except ValueError as exc:    # this engine cannot: say so once, keep captioning
                    log.warning("languages not applied: %s", exc)
                    with self._lock:
                        if self._languages == languages:
                            self._languages = None
            with self._lock:
                self._opening = session
            if self._stop.is_set():
                cancel = getattr(session, "cancel", None)
                if cancel is not None:
                    cancel()
            session.start(self.connect_timeout_s)
            opened = True
        except SessionError as exc:
            self._token_rejected = bool(getattr(run.session, "token_rejected", False))
            self._unreachable = not getattr(run.session, "reached_server", True)
            return exc.error
        except ValueError as exc:
            return StreamError(None, str(exc), Recovery.STOP)
        except Exception as exc:  # an engine that cannot even be built: say so, do not crash
            log.exception("could not start the speech session")
            return StreamError(None, f"The speech engine could not start ({exc}).", Recovery.STOP)
        finally:
            with self._lock:
                self._opening = None
                run.failed = run.failed or not opened     # settings no longer go to it
        run.started_at = self._clock()
        return run

    def _connect(self, initial: bool, reason: str, immediate: bool = False) -> _Run | None:
        """Open a session, retrying transient failures; None if stopped or given up."""
        retries = 0
        token_retried = False
        while not self._stop.is_set():
            if not initial or retries:
                if immediate and not retries:
                    delay = 0.0
                else:
                    with self._lock:
                        self._failures += 1
                        failures = self._failures
                    delay = self.backoff_s(failures)
                    if retries and self._unreachable:
                        delay = min(delay, self.unreachable_backoff_s * (0.5 + 0.5 * self._rng.random()))
                attempt = retries if initial else retries + 1
                self._out(Reconnecting(attempt, round(delay, 3), reason))
                if delay and self._stop.wait(delay):
                    return None
            result = self._open_session()
            if isinstance(result, _Run):
                if self._stop.is_set():       # stopped while connecting: end it quietly
                    result.stopping = True
                    result.session.stop(self.stop_timeout_s)
                    return None
                with self._lock:
                    self._outage_since = None
                self.connected_once = True
                return result
            error = result
            if self._stop.is_set():           # Stop during the attempt: not a failure to report
                return None
            self._out(error)
            if error.recovery is Recovery.STOP and self._token_rejected and not token_retried:
                # A temporary token can expire or be used up; one fresh token settles it.
                log.info("the server refused the temporary token; trying once with a new one")
                token_retried = True
                continue
            if error.recovery is Recovery.STOP:
                self._fatal(error)
                return None
            retries += 1
            reason = error.message
            if not self.connected_once and self.max_retries is not None and retries > self.max_retries:
                log.info("giving up after %d attempts: %s", retries, error.message)
                self._fatal(error)
                return None
            with self._lock:
                since = self._outage_since
            if (self.connected_once and self.max_outage_s is not None and since is not None
                    and self._clock() - since > self.max_outage_s):
                log.info("giving up after an outage of %.0f s", self._clock() - since)
                self._fatal(error)
                return None
        return None

    def _connector_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                return
            with self._lock:
                reason, immediate = self._reconnect_reason, self._reconnect_immediate
                self._reconnect_reason = None
                self._wake.clear()
                have_session = self._current is not None
            if reason is None or have_session:
                continue
            run = self._connect(initial=False, reason=reason, immediate=immediate)
            if run is None:
                return
            with self._lock:
                if self._finishing:
                    run.stopping = True
                elif not run.failed:      # a session that already died asked for another
                    self._current = run
                    run = None
            if run is not None:
                run.session.stop(self.stop_timeout_s)

    # ---- the run ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self.source.open()
        except AudioSourceError as exc:
            self._source_failed(exc)
            return
        try:
            first = self._connect(initial=True, reason="")
            if first is None:
                return
            with self._lock:
                if not first.failed:      # else its reconnect request is already waiting
                    self._current = first
            connector = threading.Thread(target=self._connector_loop, daemon=True,
                                         name=f"reconnect-{self.label or 'audio'}")
            connector.start()
            try:
                self._read_loop()
            finally:
                self._finish(connector)
        finally:
            try:
                self.source.close()
            except AudioSourceError:
                pass

    def _source_failed(self, exc: AudioSourceError) -> None:
        self.fatal_source_error = exc
        self.fatal_error = StreamError(None, str(exc), Recovery.STOP)
        self._out(self.fatal_error)

    def _read_loop(self) -> None:
        rate = self.source.sample_rate
        while not self._stop.is_set():
            try:
                chunk = self.source.read()
            except DeviceLost as exc:
                self._device_lost(exc)
                continue
            except AudioSourceError as exc:
                self._source_failed(exc)
                return
            if not chunk:
                log.info("end of the audio source")
                return
            self._maybe_roll_over(chunk)
            with self._lock:
                run = self._current
                live = run is not None and not run.stopping and not run.failed
                if live and run.offset_ms is None:
                    run.offset_ms = self._position_ms
            if live:
                self._close_gap()
                run.session.send_audio(chunk, may_block=self._source_may_wait)
            elif self._gap_start is None:
                self._gap_start = self._position_ms
            self._position_ms += len(chunk) / 2 / rate * 1000.0
            start = time.monotonic() - self._position_ms / 1000.0
            if self.stream_time_origin is None or start < self.stream_time_origin:
                self.stream_time_origin = start

    # ---- rollover ----------------------------------------------------------------------------
    def _maybe_roll_over(self, chunk: bytes) -> None:
        with self._lock:
            run = self._current
            if (run is None or run.expires_at is None or run.stopping or run.failed
                    or self._finishing):
                return
            now = self._clock()
            window, hard = rollover_margins(run.length_s)
            if now < run.expires_at - window:
                self._quiet_ms = 0.0
                return
            if self._next is None:
                if not self._preparing and now >= self._prepare_after:
                    self._preparing = True
                    threading.Thread(target=self._prepare_next, daemon=True,
                                     name=f"rollover-{self.label or 'audio'}").start()
                return
            ms = len(chunk) / 2 / self.source.sample_rate * 1000.0
            self._quiet_ms = self._quiet_ms + ms if is_quiet(chunk) else 0.0
            pause = not run.speaking and self._quiet_ms >= PAUSE_MS
            if not (pause or now >= run.expires_at - hard):
                return
            nxt, self._next = self._next, None
            run.stopping = True
            self._current = nxt
            self.rollovers += 1
            self._quiet_ms = 0.0
        log.info("session rollover %s (%.1f s before the limit)",
                 "at a pause" if pause else "without a pause", run.expires_at - now)
        # Terminate flushes the old session's last turn; never on the audio thread.
        threading.Thread(target=run.session.stop, args=(self.stop_timeout_s,), daemon=True,
                         name=f"rollover-stop-{self.label or 'audio'}").start()

    def _prepare_next(self) -> None:
        result = None
        try:
            result = self._open_session()
        finally:
            with self._lock:
                self._preparing = False
                current = self._current
                keep = (isinstance(result, _Run) and not result.failed and current is not None
                        and not current.stopping and not self._finishing
                        and not self._stop.is_set())
                if keep:
                    self._next = result
                    self._prepare_failures = 0
                elif not isinstance(result, _Run):
                    self._prepare_failures += 1
                    delay = min(10.0, PREPARE_RETRY_S * 2 ** (self._prepare_failures - 1))
                    self._prepare_after = self._clock() + delay
        if isinstance(result, _Run) and not keep:
            result.stopping = True
            result.session.stop(self.stop_timeout_s)
        elif not isinstance(result, _Run) and result is not None:
            log.info("could not open the next session ahead of the limit: %s", result.message)

    def _drop_next(self) -> None:
        with self._lock:
            nxt, self._next = self._next, None
        if nxt is not None:
            nxt.stopping = True
            nxt.session.stop(self.stop_timeout_s)

    def _close_gap(self, reason: str | None = None) -> None:
        if self._gap_start is None:
            return
        start, self._gap_start = self._gap_start, None
        duration = int(round(self._position_ms - start))
        if duration > 0:
            self._out(Gap(int(round(start)), duration, reason or self._gap_reason or "outage"))

    def _device_lost(self, exc: DeviceLost) -> None:
        lost_at = self._clock()
        self._drop_next()
        with self._lock:
            run, self._current = self._current, None
        if run is not None:
            run.stopping = True
            run.session.stop(self.stop_timeout_s)      # finals of what was heard are kept
        # What happened and what the app does come first: the status line has room for little.
        message = f"The audio device was lost; waiting for it to come back. {exc}"
        self._out(StreamError(None, message, Recovery.RECONNECT))
        if self._gap_start is None:
            self._gap_start = self._position_ms
        self._gap_reason = "audio device lost"
        try:
            self.source.close()
        except AudioSourceError:
            pass
        while not self._stop.wait(self.device_retry_s):
            try:
                self.source.open()
                break
            except AudioSourceError as again:
                log.info("audio device still unavailable: %s", again)
        self._position_ms += (self._clock() - lost_at) * 1000.0
        if self._stop.is_set():
            return
        log.info("audio device is back; starting a new session")
        self._request_reconnect("The audio device is back.", immediate=True)

    def _finish(self, connector: threading.Thread) -> None:
        with self._lock:
            self._finishing = True
            run, self._current = self._current, None
        self._stop.set()
        self._wake.set()
        if run is not None:
            run.stopping = True
            run.session.stop(self.stop_timeout_s)
        self._drop_next()
        self._close_gap()
        connector.join(timeout=self.connect_timeout_s + self.stop_timeout_s + 1)


def _shift_word(word, off: int):
    try:
        return replace(word, start=word.start + off, end=word.end + off)
    except (TypeError, AttributeError, ValueError):
        return word

