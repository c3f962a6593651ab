"""The Universal-Streaming v3 client (``/v3/ws``) — the default.

Turn → events: a turn not yet ended is a partial (its latest text); ``end_of_turn`` makes it final.
With ``format_turns`` the server sends the unformatted end-of-turn first and the formatted turn
right after: we hold the unformatted one (bounded by ``format_wait_s``) and emit the formatted one
as the single final; if it never comes, the unformatted text becomes the final. One final per
``turn_order``, never two.
"""

from __future__ import annotations

import logging

from app.core import silence
from app.core.events import Final, Partial, SessionEnded, SessionStarted
from app.core.streaming import close_codes, messages as m, urls
from app.core.streaming.session import StreamingSession

log = logging.getLogger(__name__)


class V3Session(StreamingSession):
    protocol = "v3"

    def __init__(self, *args, format_wait_s: float = 2.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.format_wait_s = format_wait_s
        self._last_partial = ""
        self._done: set[int] = set()                              # turn_orders already final
        self._held: dict[int, tuple[m.Turn, float]] = {}          # unformatted end-of-turn, deadline
        self._last_end = 0

    def _force_end_message(self) -> str:
        return m.build_v3_force_endpoint()

    def _silence_message(self, ms: int) -> str:
        return m.build_v3_update_configuration(**silence.v3_params(ms))

    def _vocabulary_message(self, terms):
        return m.build_v3_update_configuration(keyterms_prompt=list(terms))

    def _terminate_message(self) -> str:
        return m.build_v3_terminate()

    def _handle_text(self, text: str) -> None:
        try:
            msg = m.parse_v3(text)
        except m.MalformedMessage as exc:
            log.warning("ignoring a malformed v3 message (%s)", exc)
            return
        if isinstance(msg, m.Begin):
            self._emit(SessionStarted(msg.id, "v3", float(msg.expires_at) if msg.expires_at else None))
        elif isinstance(msg, m.Turn):
            with self._lock:
                self._turn(msg)
        elif isinstance(msg, m.Termination):
            self._finish(SessionEnded(msg.audio_duration_seconds))
        elif isinstance(msg, m.V3Error):
            error = close_codes.from_close(msg.error_code, msg.error, "v3")
            self._server_error(error, msg.error)
        else:
            log.debug("ignoring v3 message of type %s", msg.kind)

    def _span(self, turn: m.Turn) -> tuple[int, int]:
        if turn.words:
            return turn.words[0].start, turn.words[-1].end
        return self._last_end, max(self._last_end, int(self.sent_ms))

    def _turn(self, turn: m.Turn) -> None:
        if turn.turn_order in self._done:
            return
        # A later turn started: earlier held finals come first (a final never follows the
        # next turn's partial), even if their formatted version is still on its way.
        for order in [o for o in sorted(self._held) if o < turn.turn_order]:
            self._final(self._held[order][0])
        if not turn.end_of_turn:
            text = " ".join(w.text for w in turn.words) if turn.words else turn.transcript
            text = text.strip()
            if text and text != self._last_partial:
                self._last_partial = text
                start, end = self._span(turn)
                self._emit(Partial(text, start, end))
            return
        if self.config.format_turns and not turn.turn_is_formatted:
            if turn.turn_order not in self._held:
                self._held[turn.turn_order] = (turn, self._clock() + self.format_wait_s)
            return
        self._final(turn)

    def _final(self, turn: m.Turn) -> None:
        self._done.add(turn.turn_order)
        self._held.pop(turn.turn_order, None)
        self._last_partial = ""
        text = turn.transcript.strip()
        if not text:
            return
        start, end = self._span(turn)
        self._last_end = end
        self._emit(Final(text, start, end, turn.words))

    def _flush_pending(self, now: float, force: bool) -> None:
        for order in sorted(self._held):
            turn, deadline = self._held[order]
            if force or now >= deadline:
                if not force:
                    log.info("formatted turn %d did not arrive in time; using the raw text", order)
                self._final(turn)
