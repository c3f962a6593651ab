"""What both protocols share: the session record, audio intake with limit checks, endpointing,
partial/final scheduling, deadlines (idle, max duration), fault injection, closing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from websockets.exceptions import ConnectionClosed

from app.core.audio.convert import mulaw_decode

from .endpointer import Endpointer, UtteranceEnd, UtteranceStart
from .faults import FaultPlan
from .transcripts import partial_words, split_entry, unformat

if TYPE_CHECKING:  # pragma: no cover
    from .server import LoopbackServer

MAX_REASON_BYTES = 123   # RFC 6455: a close reason fits in 123 bytes


def close_reason(text: str) -> str:
    data = text.encode("utf-8")
    if len(data) <= MAX_REASON_BYTES:
        return text
    return data[:MAX_REASON_BYTES].decode("utf-8", "ignore")


@dataclass
class SessionRecord:
    """Everything one WebSocket session did, for tests to assert on (read from any thread)."""
    protocol: str                                     # "v2" | "v3"
    query: dict[str, str] = field(default_factory=dict)   # token value redacted
    auth: str = ""                                    # "key" | "token" ("" if refused)
    control: list[dict] = field(default_factory=list)
    frames_ms: list[float] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)   # PCM16 mono, µ-law decoded
    sent: list[dict] = field(default_factory=list)
    finals: list[str] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str | None = None
    violations: list[str] = field(default_factory=list)
    # Additions beyond the shared contract:
    session_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)   # Authorization redacted
    sample_rate: int | None = None
    encoding: str = "pcm_s16le"
    vocabulary: list[str] = field(default_factory=list)     # word_boost / keyterms_prompt as parsed
    closed_by: str | None = None      # "server" | "client" | "drop" | "stop" (server shut down)
    auth_error: str = ""
    skipped_revisions: list = field(default_factory=list)  # scripted revisions of turns not in this session
    sent_t: list[float] = field(default_factory=list)   # time.monotonic() each `sent` message went out
    started_at: float = field(default_factory=time.monotonic)
    ended: bool = False               # the handler has finished (close fields are final)

    @property
    def partials(self) -> list[dict]:
        return [m for m in self.sent if m.get("message_type") == "PartialTranscript"
                or (m.get("type") == "Turn" and not m.get("end_of_turn"))]

    @property
    def audio_ms(self) -> float:
        return len(self.audio) / 2 * 1000 / self.sample_rate if self.sample_rate else 0.0


class ProtocolError(Exception):
    """The client broke a rule: answer with the protocol's error message and close code."""

    def __init__(self, code: int, message: str, violation: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.violation = code, message, violation


def parse_bool(name: str, value: str, record: SessionRecord) -> bool:
    """Booleans arrive as "true" (docs, Node) or "True" (Python SDKs): compare case-insensitively."""
    low = value.strip().lower()
    if low not in ("true", "false"):
        record.violations.append(f"query parameter {name}={value!r} is not a boolean")
    return low == "true"


class BaseSession:
    protocol = ""
    frame_limits_ms = (0.0, 0.0)
    default_silence_ms = 700
    auth_fail = (4001, "Not Authorized")

    def __init__(self, server: "LoopbackServer", ws, record: SessionRecord, plan: FaultPlan,
                 query: dict[str, str], headers) -> None:
        self.server = server
        self.ws = ws
        self.record = record
        self.plan = plan
        self.query = query
        self.headers = headers
        self.sample_rate = 16000
        self.encoding = "pcm_s16le"
        self.endpointer: Endpointer | None = None
        self.partials_enabled = True
        self.max_session_s: float | None = server.max_session_s
        self.idle_timeout_s: float | None = None
        self.begun_at = time.monotonic()
        self.last_audio_at = self.begun_at
        self.audio_samples = 0
        self.stalled = False
        self.done = False
        self._closing = False
        self._send_lock = asyncio.Lock()
        self._background: list[asyncio.Future] = []   # delayed answers still to send
        self._odd_byte = b""
        # Utterance in progress.
        self.utt_index = 0
        self.utt_text: str | None = None      # reserved script/fallback text (None → transcriber decides)
        self.utt_from_script = False
        self.utt_entry = None                 # the script entry as given (str or dict), for give_back
        self.utt_meta: dict = {}              # speaker / language / revisions of the utterance
        self.final_meta: dict = {}            # the same, for the final being built
        self.utt_last_partial_speech_end = -1
        self.utt_partial_future: asyncio.Future | None = None
        self.utt_partial_for = -1
        self.session_id = str(uuid.uuid4())
        record.session_id = self.session_id

    # ---- protocol hooks ------------------------------------------------------------------
    def parse_params(self) -> None: ...
    def begin_message(self) -> dict: raise NotImplementedError
    def error_message(self, code: int, message: str) -> dict | None: raise NotImplementedError
    def partial_messages(self, words: list[str], start_ms: int, end_ms: int) -> list[dict]: raise NotImplementedError
    def final_messages(self, text: str, start_ms: int, end_ms: int) -> tuple[list[dict], str]: raise NotImplementedError
    def termination_messages(self) -> list[dict]: raise NotImplementedError
    def unknown_message(self) -> dict: raise NotImplementedError
    def frame_error(self, ms: float) -> ProtocolError: raise NotImplementedError
    def rate_error(self, audio_s: float, elapsed_s: float) -> ProtocolError: raise NotImplementedError
    def idle_error(self) -> ProtocolError | None: raise NotImplementedError
    def expired_error(self) -> ProtocolError: raise NotImplementedError
    async def on_text(self, text: str) -> None: raise NotImplementedError
    def authenticate(self) -> bool: raise NotImplementedError

    # ---- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        # The session clock (real-time rate, idle, max duration, fault delays) starts when the
        # handshake completes: a client may start streaming before SessionBegins/Begin arrives.
        self.begun_at = self.last_audio_at = time.monotonic()
        tasks: list[asyncio.Task] = []
        try:
            if self.plan.reject_auth or not self.authenticate():
                if self.plan.reject_auth:
                    self.record.auth_error = "rejected by fault injection"
                await self.close_with(*self.auth_fail, send_error=True)
                return
            try:
                self.parse_params()
            except ProtocolError as err:
                await self.fail(err)
                return
            self.record.sample_rate = self.sample_rate
            self.record.encoding = self.encoding
            self.endpointer = Endpointer(self.sample_rate, self.default_silence_ms,
                                         threshold_dbfs=self.server.vad_threshold_dbfs,
                                         min_speech_ms=self.server.min_speech_ms)
            self.apply_initial_silence()
            await self.send(self.begin_message())
            tasks = self._start_faults()
            await self._loop()
        finally:
            for task in tasks + self._background:
                task.cancel()
            if self.utt_text is not None and self.utt_from_script:
                self.server.text.give_back(self.utt_entry)   # never delivered: next session gets it
                self.utt_text = None
            await self._settle_close_record()

    def apply_initial_silence(self) -> None:
        """Hook: a protocol may take the initial silence threshold from the query."""

    async def _loop(self) -> None:
        while not self.done:
            timeout = None
            deadline = self._next_deadline()
            if deadline is not None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    await self._deadline_passed()
                    continue
            if self.utt_partial_future is not None:
                timeout = 0.05 if timeout is None else min(timeout, 0.05)
            try:
                if timeout is None:
                    message = await self.ws.recv()
                else:
                    message = await asyncio.wait_for(self.ws.recv(), timeout)
            except TimeoutError:
                await self._poll_partial_future()
                continue
            except ConnectionClosed:
                break
            if self.stalled:
                continue                      # a stalled server reads and drops everything
            try:
                if isinstance(message, bytes):
                    await self.on_audio(message)
                else:
                    await self.on_text(message)
            except ProtocolError as err:
                await self.fail(err)
            await self._poll_partial_future()

    def _next_deadline(self) -> float | None:
        if self.stalled or self.done:
            return None
        deadlines = []
        if self.idle_timeout_s is not None:
            deadlines.append(self.last_audio_at + self.idle_timeout_s)
        if self.max_session_s is not None:
            deadlines.append(self.begun_at + self.max_session_s)
        return min(deadlines) if deadlines else None

    async def _deadline_passed(self) -> None:
        now = time.monotonic()
        if self.max_session_s is not None and now >= self.begun_at + self.max_session_s:
            await self.fail(self.expired_error())
            return
        if self.idle_timeout_s is not None and now >= self.last_audio_at + self.idle_timeout_s:
            err = self.idle_error()
            if err is None:               # v3 inactivity: a normal end of session
                await self.terminate()
            else:
                await self.fail(err)

    # ---- audio ---------------------------------------------------------------------------
    def frame_ms(self, nbytes: int) -> float:
        per_sample = 1 if self.encoding == "pcm_mulaw" else 2
        return nbytes / per_sample * 1000.0 / self.sample_rate

    def on_audio_hook(self, pcm) -> list[dict]:
        """Messages a protocol sends as audio arrives (v3 Heartbeat, Silence)."""
        return []

    def utterance_started_messages(self) -> list[dict]:
        return []

    async def on_audio(self, data: bytes) -> None:
        now = time.monotonic()
        ms = self.frame_ms(len(data))
        self.record.frames_ms.append(ms)
        lo, hi = self.frame_limits_ms
        # A float tolerance of a microsecond: 1600 bytes at 16 kHz is exactly 50 ms.
        if ms < lo - 1e-6 or ms > hi + 1e-6:
            raise self.frame_error(ms)
        self.last_audio_at = now
        audio_s = (self.audio_samples + len(data) / (1 if self.encoding == "pcm_mulaw" else 2)) / self.sample_rate
        elapsed_s = now - self.begun_at
        if audio_s - elapsed_s > self.server.rate_grace_s:
            raise self.rate_error(audio_s, elapsed_s)
        if self.encoding == "pcm_mulaw":
            pcm = mulaw_decode(np.frombuffer(data, dtype=np.uint8))
        else:
            data = self._odd_byte + data
            if len(data) % 2:
                self.record.violations.append(f"audio frame of {len(data)} bytes is not whole PCM16 samples")
                data, self._odd_byte = data[:-1], data[-1:]
            else:
                self._odd_byte = b""
            pcm = np.frombuffer(data, dtype="<i2")
        self.audio_samples += len(pcm)
        self.record.audio.extend(pcm.astype("<i2").tobytes())
        for event in self.endpointer.feed(pcm):
            if isinstance(event, UtteranceStart):
                self._utterance_started()
                await self.send_all(self.utterance_started_messages())
            elif isinstance(event, UtteranceEnd):
                await self._utterance_ended(event)
        await self.send_all(self.on_audio_hook(pcm))
        await self._maybe_partial()

    # ---- utterances ------------------------------------------------------------------------
    def _utterance_started(self) -> None:
        self.utt_index += 1
        self.utt_last_partial_speech_end = self.endpointer.utterance_start_ms
        entry = self.server.text.reserve()
        self.utt_entry = entry
        text, self.utt_meta = split_entry(entry)
        self.utt_from_script = text is not None
        if text is None and self.server.text.transcriber is None:
            text = self.server.text.fallback()
        self.utt_text = text

    def _utterance_pcm(self, start_ms: int, end_ms: int) -> bytes:
        a = int(start_ms * self.sample_rate / 1000) * 2
        b = int(end_ms * self.sample_rate / 1000) * 2
        return bytes(self.record.audio[a:b])

    async def _maybe_partial(self) -> None:
        ep = self.endpointer
        if not (ep.in_utterance and self.partials_enabled) or self.stalled or self.done:
            return
        # Only while speech goes on: new speech since the last partial, and an interval elapsed.
        if ep.last_speech_end_ms - self.utt_last_partial_speech_end < self.server.partial_interval_ms:
            return
        self.utt_last_partial_speech_end = ep.last_speech_end_ms
        speech_ms = ep.last_speech_end_ms - ep.utterance_start_ms
        if self.utt_text is not None:
            words = partial_words(self.utt_text, speech_ms)
            await self.send_all(self.partial_messages(words, ep.utterance_start_ms, ep.last_speech_end_ms))
        elif self.utt_partial_future is None:
            # Transcriber mode: recognise the utterance so far off the event loop.
            pcm = self._utterance_pcm(ep.utterance_start_ms, ep.last_speech_end_ms)
            loop = asyncio.get_running_loop()
            self.utt_partial_future = loop.run_in_executor(None, self.server.text.transcriber, pcm, self.sample_rate)
            self.utt_partial_for = self.utt_index

    async def _poll_partial_future(self) -> None:
        fut = self.utt_partial_future
        if fut is None or not fut.done():
            return
        self.utt_partial_future = None
        try:
            text = fut.result() or ""
        except Exception as exc:  # a broken transcriber must not kill the session
            self.record.violations.append(f"server transcriber failed: {exc!r}")  # visible to tests
            return
        ep = self.endpointer
        if self.utt_partial_for == self.utt_index and ep.in_utterance and not self.done:
            words = unformat(text).split()
            if words:
                await self.send_all(self.partial_messages(words, ep.utterance_start_ms, ep.last_speech_end_ms))

    async def _utterance_ended(self, end: UtteranceEnd) -> None:
        text = self.utt_text
        self.utt_text = None
        self.final_meta, self.utt_meta = self.utt_meta, {}
        transcriber = self.server.text.transcriber
        if text is None and transcriber is None:      # the transcriber was removed mid-utterance
            text = self.server.text.fallback()
        if text is None:
            pcm = self._utterance_pcm(end.start_ms, end.end_ms)
            try:
                text = await asyncio.get_running_loop().run_in_executor(None, transcriber, pcm, self.sample_rate)
            except Exception as exc:
                self.record.violations.append(f"server transcriber failed: {exc!r}")
                text = ""
            text = (text or "").strip()
        messages, recorded = self.final_messages(text, end.start_ms, max(end.end_ms, end.start_ms + 1))
        self.utt_partial_future = None
        await self.send_all(messages)
        self.record.finals.append(recorded)
        later, self.later = getattr(self, "later", []), []
        for ms, message in later:        # answers produced in the background (v3 LLM gateway)
            self._background.append(asyncio.ensure_future(
                self._after(ms, lambda message=message: self.send(message))))

    async def force_end(self) -> None:
        end = self.endpointer.force_end() if self.endpointer else None
        if end is not None:
            await self._utterance_ended(end)

    async def terminate(self) -> None:
        """Flush the utterance in progress as a final, say goodbye, close normally."""
        await self.force_end()
        pending = [t for t in self._background if not t.done()]
        if pending:     # answers still being produced come before the goodbye (bounded)
            await asyncio.wait(pending, timeout=5.0)
        await self.send_all(self.termination_messages())
        await self.close_with(1000, "", send_error=False)

    # ---- sending and closing ----------------------------------------------------------------
    async def send(self, message: dict) -> None:
        if self.stalled or self._closing:
            return
        async with self._send_lock:
            try:
                await self.ws.send(json.dumps(message))
            except ConnectionClosed:
                return
        self.record.sent_t.append(time.monotonic())
        self.record.sent.append(message)

    async def send_all(self, messages: list[dict]) -> None:
        for message in messages:
            await self.send(message)

    async def send_raw(self, text: str) -> None:
        if self.stalled or self._closing:
            return
        async with self._send_lock:
            try:
                await self.ws.send(text)
            except ConnectionClosed:
                return
        self.record.sent_t.append(time.monotonic())
        self.record.sent.append({"_raw": text})

    async def fail(self, err: ProtocolError) -> None:
        if err.violation:
            self.record.violations.append(err.violation)
        await self.close_with(err.code, err.message, send_error=True)

    async def close_with(self, code: int, message: str, *, send_error: bool) -> None:
        if self._closing:
            return
        if send_error:
            error = self.error_message(code, message)
            if error is not None:
                await self.send(error)
        self._closing = True
        self.done = True
        self.record.closed_by = "server"
        self.record.close_code = code
        self.record.close_reason = close_reason(message)
        # Keep reading while the close handshake runs: a client still streaming would otherwise
        # fill the receive queue, websockets would stop reading, and the client's close frame
        # would sit unread until close_timeout.
        drain = asyncio.ensure_future(self._drain())
        try:
            await self.ws.close(code, close_reason(message))
        except ConnectionClosed:
            pass
        finally:
            drain.cancel()

    async def _drain(self) -> None:
        try:
            while True:
                await self.ws.recv()
        except (ConnectionClosed, RuntimeError):
            pass

    async def _settle_close_record(self) -> None:
        self.done = True
        if self.record.closed_by is None:
            try:
                await asyncio.wait_for(self.ws.wait_closed(), 3.0)
            except (TimeoutError, ConnectionClosed):
                pass
            self.record.closed_by = "stop" if self.server._stopping else "client"
            self.record.close_code = self.ws.close_code
            self.record.close_reason = self.ws.close_reason
        self.record.ended = True

    # ---- faults ----------------------------------------------------------------------------
    def _start_faults(self) -> list[asyncio.Task]:
        plan = self.plan
        actions = []
        if plan.drop_after_ms is not None:
            actions.append((plan.drop_after_ms, self._fault_drop))
        if plan.close_after_ms is not None:
            ms, code, reason = plan.close_after_ms
            actions.append((ms, lambda: self._fault_close(code, reason)))
        if plan.malformed_after_ms is not None:
            actions.append((plan.malformed_after_ms, lambda: self.send_raw('{"message_type": "FinalTranscript", "text": ')))
        if plan.unknown_message_after_ms is not None:
            actions.append((plan.unknown_message_after_ms, lambda: self.send(self.unknown_message())))
        if plan.stall_after_ms is not None:
            actions.append((plan.stall_after_ms, self._fault_stall))
        for ms, message in plan.message_after_ms:
            actions.append((ms, lambda message=message: self.send(message)))
        return [asyncio.ensure_future(self._after(ms, action)) for ms, action in actions]

    async def _after(self, ms: float, action) -> None:
        await asyncio.sleep(ms / 1000.0)
        if not self.done:
            await action()

    async def _fault_drop(self) -> None:
        self.done = True
        self._closing = True
        self.record.closed_by = "drop"
        self.record.close_code = 1006
        self.record.close_reason = "connection dropped (fault injection)"
        self.ws.transport.abort()

    async def _fault_close(self, code: int, reason: str) -> None:
        send_error = code >= 3000 or code == 1008
        await self.close_with(code, reason, send_error=send_error)

    async def _fault_stall(self) -> None:
        # No more messages, no pongs, no timeouts; the socket stays open and the client's frames
        # are read and dropped (a client close is still honoured).
        self.stalled = True
        self.ws.protocol.stalled = True
