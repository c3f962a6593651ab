"""What both AssemblyAI clients share: connect, pace and send audio, receive, stop, fail — once.

Threads: ``send_audio`` runs on the caller's (capture) thread. It sends a frame itself only when
that cannot wait on the network (nothing queued ahead of it, not ahead of real time, room in the
socket); otherwise it queues it. A sender thread sends what is queued — paced at real time,
with the control messages, in order — and does the housekeeping; a receiver thread parses
server messages into events. A caller that may block (a file, not a device) sends all its
frames itself. Events are emitted under one lock, each at most once, and the terminal event
(``SessionEnded`` or ``StreamError``) is always the last one.

``start()`` either returns after the server began the session (``SessionStarted`` was emitted) or
raises ``SessionError`` — then this session emits nothing at all.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from app.core import silence, vocabulary as vocab
from app.core.engine import SessionError, SpeechSession
from app.core.events import Event, Listener, Recovery, SessionEnded, SessionStarted, StreamError
from app.core.session_config import SessionConfig
from app.core.streaming import close_codes, urls
from app.core.streaming.auth import AuthProvider
from app.core.streaming.framing import HOLD_MARGIN_MS, HOLD_MS, Frame, Framer
from app.core.streaming.deadline import Cancelled, Deadline
from app.core.streaming.transport import (ConnectFailed, HandshakeRejected, Incoming, ServerFault,
                                          Transport, TransportClosed, WebSocketTransport)

log = logging.getLogger(__name__)

SERVER_NAME = "The AssemblyAI streaming server"
HOUSEKEEPING_S = 0.1         # the sender thread's wake-up while nothing is queued...
INLINE_HOUSEKEEPING_S = 0.5  # ...and while the caller sends its frames itself
# The caller still sends itself if it sent this recently (held zeros leave every HOLD_MS).
INLINE_RECENT_S = INLINE_HOUSEKEEPING_S + HOLD_MS / 1000.0
# While nothing loud waits for an answer, one frame in this much audio is measured for the stall
# check (speech lasts longer; measuring every frame cost more than sending it).
LOUD_CHECK_MS = 300.0
STOPPED_MESSAGE = "Stopped while connecting."


@dataclass(frozen=True)
class _Text:
    text: str
    what: str


_TERMINATE = object()   # queued after the last audio frame by stop()
_WAKE = object()        # wakes the sender so it notices the end


class StreamingSession(SpeechSession):
    protocol = ""

    def __init__(self, config: SessionConfig, listener: Listener, *, auth: AuthProvider,
                 transport_factory: Callable[[], Transport] = WebSocketTransport,
                 clock: Callable[[], float] = time.monotonic,
                 stall_timeout_s: float = 20.0, ping_interval_s: float = 5.0,
                 dead_after_s: float = 30.0, error_close_wait_s: float = 2.0,
                 keepalive_s: float = 5.0) -> None:
        super().__init__(listener)
        if config.protocol != self.protocol:
            config = _replace(config, protocol=self.protocol)
        self.config = config
        self._auth = auth
        self._transport_factory = transport_factory
        self._clock = clock
        self.stall_timeout_s = stall_timeout_s
        self.ping_interval_s = ping_interval_s
        self.dead_after_s = dead_after_s
        self.error_close_wait_s = error_close_wait_s
        if config.inactivity_timeout_s:
            keepalive_s = min(keepalive_s, config.inactivity_timeout_s / 2.0)
        self.keepalive_s = keepalive_s
        self._last_audio_tx = 0.0
        self._last_rx_start = 0.0              # when the socket opened (keep-alive baseline)
        self._vocabulary = tuple(vocab.clean_terms(config.vocabulary))
        self._silence_ms = config.silence_ms
        self._framer = Framer(self.protocol, config.sample_rate, config.chunk_ms, config.encoding,
                              hold_after_ms=self._hold_after_ms(self._silence_ms))
        self._framer_lock = threading.Lock()     # send_audio and stop may race on the tail
        self._queue: queue.Queue = queue.Queue()
        self._order_lock = threading.Lock()      # a frame sent at once never overtakes a queued item
        self._unsent = 0                         # items queued and not yet sent
        self._lock = threading.RLock()
        self._state = "new"                      # new → connecting → open → ended
        self._began = threading.Event()
        self._ended = threading.Event()
        self._start_error: StreamError | None = None
        self._transport: Transport | None = None
        self._threads: list[threading.Thread] = []
        self._stop_requested = False
        self._terminate_sent = False
        self._pending_error: tuple[StreamError, str, float] | None = None  # (error, text, deadline)
        self._last_rx = 0.0
        self._loud_since: float | None = None
        self._loud_check_at = 0.0                # sent_ms from which the next frame is measured
        self._last_ping = 0.0
        self._first_send: float | None = None
        self._inline_at: float | None = None     # when the caller last sent audio itself
        self.sent_ms = 0.0                      # audio sent on the wire, padding included
        self.session_id: str | None = None
        self._ws_stage = False                  # credentials obtained; now talking to the socket
        self._deadline: Deadline | None = None  # of the start in progress; Stop cancels it
        self._connecting: Transport | None = None
        self.reached_server = False             # the WebSocket handshake got an answer

    @property
    def token_rejected(self) -> bool:
        """The WebSocket refused a temporary token (expired or already used): a fresh token may
        work where retrying the same key would not. Only meaningful after ``start()`` failed."""
        error = self._start_error
        return (self._ws_stage and self._auth.mode in ("token", "broker") and error is not None
                and close_codes.category(error) == close_codes.AUTH)

    # ---- public API ------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> None:
        with self._lock:
            if self._state != "new":
                raise RuntimeError("a session can be started once")
            self._state = "connecting"
        deadline = self._clock() + timeout
        with self._lock:
            self._deadline = Deadline(timeout)
            if self._ended.is_set():            # cancelled before it began
                self._state = "ended"
                raise SessionError(self._start_error or StreamError(None, STOPPED_MESSAGE,
                                                                    Recovery.STOP))
        transport = None
        try:
            creds = self._auth.credentials(self.config, timeout, deadline=self._deadline)
            self._deadline.check()
            self._ws_stage = True
            url = self._build_url(creds.token)
            transport = self._transport_factory()
            with self._lock:
                self._connecting = transport
            if self._deadline.cancelled:
                raise Cancelled()
            log.info("connecting (%s, %s auth) to %s", self.protocol, self._auth.mode,
                     urls.redact_url(url))
            transport.connect(url, creds.headers, max(0.5, min(deadline - self._clock(),
                                                               self._deadline.remaining())))
            self.reached_server = True
        except Cancelled:
            self._abort_connecting(transport)
            self._fail_start(StreamError(None, STOPPED_MESSAGE, Recovery.STOP))
        except SessionError as exc:
            self._fail_start(exc.error)
        except HandshakeRejected as exc:
            self.reached_server = True
            self._fail_start(self._handshake_error(exc))
        except ServerFault as exc:
            self.reached_server = True
            self._fail_start(StreamError(None, str(exc), exc.recovery))
        except ConnectFailed as exc:
            if self._deadline.cancelled:
                self._fail_start(StreamError(None, STOPPED_MESSAGE, Recovery.STOP))
            self._fail_start(StreamError(None, f"{exc}; retrying.", Recovery.RECONNECT))
        except TimeoutError:
            self._fail_start(StreamError(None, "Connecting took too long; retrying.",
                                         Recovery.RECONNECT))
        except ValueError as exc:
            self._fail_start(StreamError(None, str(exc), Recovery.STOP))
        if self._deadline.cancelled:
            self._abort_connecting(transport)
            self._fail_start(StreamError(None, STOPPED_MESSAGE, Recovery.STOP))
        with self._lock:
            self._transport = transport
            self._last_rx = self._last_ping = self._last_rx_start = self._clock()
        self._on_connected()
        for name, target in (("recv", self._receive_loop), ("send", self._send_loop)):
            t = threading.Thread(target=target, name=f"{self.protocol}-{name}", daemon=True)
            self._threads.append(t)
            t.start()
        while not self._began.is_set() and not self._ended.is_set():
            left = deadline - self._clock()
            if left <= 0:
                break
            self._ended.wait(min(left, 0.05))
        with self._lock:
            if self._began.is_set():
                return
            error = self._start_error or StreamError(
                None, "The server did not start the session in time; retrying.", Recovery.RECONNECT)
            self._start_error = error
            self._state = "ended"
            self._ended.set()
        self._teardown(join=True)
        raise SessionError(error)

    def send_audio(self, pcm16: bytes, *, may_block: bool = False) -> None:
        with self._framer_lock:
            if self._ended.is_set() or self._stop_requested:
                return
            frames = self._framer.push(pcm16)
            transport = self._transport
            if not may_block or transport is None:
                lost = None
                for frame in frames:
                    lost = lost or self._hand_over(frame, transport)
                if lost is not None:
                    self._connection_lost(lost)
                return
            # Under the framer lock: stop() queues the tail and the Terminate only after this.
            try:
                for frame in frames:
                    if not self._pace(frame):
                        return
                    transport.send_binary(frame.payload)
                    self._last_audio_tx = self._inline_at = self._clock()
            except TransportClosed as exc:
                self._connection_lost(str(exc))
                return
        try:
            self._housekeeping(transport)
        except TransportClosed as exc:
            self._connection_lost(str(exc))

    def _hand_over(self, frame: Frame, transport: Transport | None) -> str | None:
        """A live frame: sent now if that cannot wait, else queued for the sender thread.
        Returns why the connection is gone, when trying to send found that out."""
        with self._order_lock:
            if self._unsent == 0 and transport is not None:
                now = self._clock()
                if self._due(now) <= now:
                    try:
                        sent = transport.try_send_binary(frame.payload)
                    except TransportClosed as exc:
                        return str(exc)
                    if sent:
                        self._account(frame)
                        self._last_audio_tx = self._inline_at = now
                        return None
            self._unsent += 1
            self._queue.put(frame)
        return None

    def _enqueue(self, item) -> None:
        with self._order_lock:
            self._unsent += 1
            self._queue.put(item)

    def force_end(self) -> None:
        self._control(self._force_end_message(), "force end")

    def _hold_after_ms(self, silence_ms: int) -> float:
        """Zeros this long have outlived any turn: the framer may hold them (framing.py)."""
        return silence.turn_over_ms(self.protocol, silence_ms) + HOLD_MARGIN_MS

    def set_silence_threshold(self, ms: int) -> None:
        self._silence_ms = silence.validate(ms)
        self._framer.hold_after_ms = self._hold_after_ms(self._silence_ms)
        if self._state in ("open", "connecting"):
            self._control(self._silence_message(ms), "silence threshold")

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        terms = vocab.require_within_limits(terms, self.protocol)
        self._vocabulary = terms
        if self._state == "open":
            message = self._vocabulary_message(terms)
            if message is None:
                log.info("vocabulary changed; %s applies it from the next session", self.protocol)
            else:
                self._control(message, "vocabulary")

    def cancel(self) -> None:
        """Abandon a ``start()`` in progress at once (Stop, Ctrl+C): it raises ``SessionError``.

        Any thread may call it; a session that already began is left alone (use ``stop``).
        """
        with self._lock:
            if self._began.is_set() or self._state == "ended":
                return
            deadline, transport = self._deadline, self._connecting
        if deadline is not None:
            deadline.cancel()
        if transport is not None:
            transport.abort()
        with self._lock:
            if not self._began.is_set():
                self._start_error = self._start_error or StreamError(None, STOPPED_MESSAGE,
                                                                     Recovery.STOP)
                self._ended.set()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            if self._state == "new":
                self._state = "ended"
                self._ended.set()
                return
            starting = self._state == "connecting" and not self._began.is_set()
        if starting:
            self.cancel()
            return
        with self._framer_lock:
            first = not self._stop_requested
            self._stop_requested = True
            if first and not self._ended.is_set():
                for frame in self._framer.flush():
                    self._enqueue(frame)
                self._enqueue(_TERMINATE)
        if not self._ended.wait(timeout):
            log.warning("the server did not end the session within %.1f s; closing anyway", timeout)
            self._finish(SessionEnded(None))
        self._teardown(join=True)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        return self._vocabulary

    @property
    def silence_ms(self) -> int:
        return self._silence_ms

    # ---- hooks for the protocol subclasses -------------------------------------------------
    def _build_url(self, token: str | None) -> str:
        return urls.ws_url(self.config, token=token, vocabulary=self._vocabulary,
                           silence_ms=self._silence_ms)

    def set_languages(self, codes: Iterable[str]) -> None:
        raise ValueError("Changing languages needs the v3 Universal-Streaming protocol.")

    def _on_connected(self) -> None:
        """Right after the handshake (v2 sends its threshold here)."""

    def _handle_text(self, text: str) -> None:
        raise NotImplementedError

    def _force_end_message(self) -> str:
        raise NotImplementedError

    def _silence_message(self, ms: int) -> str:
        raise NotImplementedError

    def _vocabulary_message(self, terms: tuple[str, ...]) -> str | None:
        raise NotImplementedError

    def _terminate_message(self) -> str:
        raise NotImplementedError

    def _keepalive_message(self) -> str | None:
        """Sent while no audio flows (a silent source delivers nothing), so the server's
        inactivity timeout does not end the session; None where the protocol has none."""
        return None

    def _flush_pending(self, now: float, force: bool) -> None:
        """Emit finals held back (v3 waits for the formatted turn); called under the lock."""

    # ---- helpers for subclasses ------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        with self._lock:
            if self._ended.is_set():
                log.debug("dropping %s after the end of the session", type(event).__name__)
                return
            if isinstance(event, SessionStarted):
                self.session_id = event.session_id
                self._began.set()
                self._state = "open"
            elif not self._began.is_set():
                log.debug("dropping %s before the session began", type(event).__name__)
                return
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        try:
            self._listener(event)
        except Exception:  # a listener bug must not kill the receiver
            log.exception("the event listener raised")

    def _finish(self, event: Event) -> None:
        """Emit the terminal event (once) and release the connection."""
        with self._lock:
            if self._ended.is_set():
                return
            if not self._began.is_set():
                if isinstance(event, StreamError):
                    self._start_error = event
            else:
                self._flush_pending(self._clock(), force=True)
                self._deliver(event)
            self._state = "ended"
            self._ended.set()
        if isinstance(event, StreamError):
            log.info("session ended with an error: %s (code %s)", event.message, event.code)
        self._teardown(join=False)

    def _abort_connecting(self, transport: Transport | None) -> None:
        if transport is not None:
            transport.abort()

    def _fail_start(self, error: StreamError):
        with self._lock:
            self._start_error = error
            self._state = "ended"
            self._ended.set()
        raise SessionError(error) from None

    def _handshake_error(self, exc: HandshakeRejected) -> StreamError:
        detail = exc.body.strip() or None
        if detail:
            try:
                payload = json.loads(detail)
                if isinstance(payload, dict):
                    detail = str(payload.get("error") or payload.get("message") or detail)
            except ValueError:
                pass
        return close_codes.from_http_status(exc.status, SERVER_NAME, detail)

    def _server_error(self, error: StreamError, text: str) -> None:
        """A server error message: the close that follows carries the code; wait briefly for it."""
        with self._lock:
            if self._pending_error is None:
                self._pending_error = (error, text, self._clock() + self.error_close_wait_s)
        log.info("server error message: %s", text[:200])

    def _control(self, text: str, what: str) -> None:
        if self._ended.is_set() or self._stop_requested:
            return
        self._enqueue(_Text(text, what))

    # ---- threads ---------------------------------------------------------------------------
    def _receive_loop(self) -> None:
        transport = self._transport
        while not self._ended.is_set():
            try:
                msg: Incoming | None = transport.recv()
            except ServerFault as exc:
                log.warning("protocol violation by the server: %s", exc)
                self._finish(StreamError(None, str(exc), exc.recovery))
                return
            except TransportClosed as exc:
                self._connection_lost(str(exc))
                return
            if msg is None:
                continue
            with self._lock:
                self._last_rx = self._clock()
                self._loud_since = None
            if msg.kind == "text":
                try:
                    self._handle_text(msg.data)
                except Exception:  # a parser/handler bug must not end the captions
                    log.exception("could not handle a server message; ignored")
            elif msg.kind == "binary":
                log.warning("ignoring an unexpected binary message from the server")
            elif msg.kind == "close":
                self._closed_by_server(msg.code, msg.reason)
                return

    def _closed_by_server(self, code: int | None, reason: str | None) -> None:
        with self._lock:
            pending = self._pending_error
            normal = code in (1000, None) and self._terminate_sent and pending is None
        if normal:
            self._finish(SessionEnded(None))
            return
        if pending is not None and code in (None, 1000, 1005):
            self._finish(pending[0])
            return
        detail = reason or (pending[1] if pending else None)
        self._finish(close_codes.from_close(code, detail, self.protocol))

    def _connection_lost(self, detail: str) -> None:
        if self._ended.is_set():
            return
        with self._lock:
            pending = self._pending_error
        if pending is not None:
            self._finish(pending[0])
            return
        log.info("connection lost: %s", detail)
        self._finish(StreamError(None, close_codes.CONNECTION_LOST, Recovery.RECONNECT))

    def _send_loop(self) -> None:
        transport = self._transport
        try:
            while not self._ended.is_set():
                now = self._clock()
                inline = self._inline_at is not None and now - self._inline_at < INLINE_RECENT_S
                wait = INLINE_HOUSEKEEPING_S if inline else HOUSEKEEPING_S
                due = self._next_deadline()
                if due is not None:
                    wait = min(wait, max(0.0, due - now) + 0.001)
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    item = None
                if self._ended.is_set() or item is _WAKE:
                    break
                self._housekeeping(transport)
                if item is None:
                    continue
                try:
                    if isinstance(item, Frame):
                        if not self._pace(item):
                            break
                        transport.send_binary(item.payload)
                        self._last_audio_tx = self._clock()
                    elif isinstance(item, _Text):
                        log.debug("sending %s", item.what)
                        transport.send_text(item.text)
                    elif item is _TERMINATE:
                        with self._lock:
                            self._terminate_sent = True
                        transport.send_text(self._terminate_message())
                finally:
                    with self._order_lock:
                        self._unsent -= 1
        except TransportClosed as exc:
            self._connection_lost(str(exc))

    def _pace(self, frame: Frame) -> bool:
        """Never ahead of real time: a backlog (after a stall or a burst) drains at real time.

        One frame of slack: audio handed over live was already captured, so it leaves at once
        instead of inheriting the first frame's send delay; the total sent stays within one
        frame of the time elapsed since the first frame.
        """
        now = self._clock()
        due = self._due(now)
        if due > now and self._ended.wait(due - now):
            return False
        self._account(frame)
        return True

    def _due(self, now: float) -> float:
        """When the next frame may leave (the first one: ``now``, which starts the clock)."""
        if self._first_send is None:
            self._first_send = now
        return self._first_send + max(0.0, self.sent_ms - self.config.chunk_ms) / 1000.0

    def _account(self, frame: Frame) -> None:
        # Unlocked read: the receiver only ever clears it, and a stale value costs one check.
        if self._loud_since is None and self.sent_ms >= self._loud_check_at:
            self._loud_check_at = self.sent_ms + LOUD_CHECK_MS
            if frame.loud:
                now = self._clock()
                with self._lock:
                    if self._loud_since is None:
                        self._loud_since = now
        self.sent_ms += frame.duration_ms

    def _next_deadline(self) -> float | None:
        """When the housekeeping next has something due (a held final), if it knows."""
        return None

    def _housekeeping(self, transport: Transport) -> None:
        now = self._clock()
        with self._lock:
            self._flush_pending(now, force=False)
            pending = self._pending_error
            stalled = (self._loud_since is not None and now - self._loud_since > self.stall_timeout_s
                       and now - self._last_rx > self.stall_timeout_s)
            dead = now - self._last_rx > self.dead_after_s
        if pending is not None and now >= pending[2]:
            self._finish(pending[0])
            return
        if stalled or dead:
            log.warning("no answer from the server for %.0f s", now - self._last_rx)
            self._finish(StreamError(None, close_codes.STALLED, Recovery.RECONNECT))
            return
        if now - self._last_ping >= self.ping_interval_s:
            self._last_ping = now
            transport.ping()
        idle_since = max(self._last_audio_tx, self._last_rx_start)
        if now - idle_since >= self.keepalive_s and not self._stop_requested:
            message = self._keepalive_message()
            if message is not None:
                self._last_audio_tx = now
                log.debug("no audio for %.1f s: keep-alive", now - idle_since)
                transport.send_text(message)

    def _teardown(self, join: bool) -> None:
        transport = self._transport
        if transport is not None:
            if self._terminate_sent or self._began.is_set():
                transport.close(1000)
            else:
                transport.abort()
        self._queue.put(_WAKE)
        if join:
            me = threading.current_thread()
            for t in self._threads:
                if t is not me:
                    t.join(timeout=3.0)


def _replace(config: SessionConfig, **changes) -> SessionConfig:
    from dataclasses import replace
    return replace(config, **changes)

