"""The Universal-Streaming v3 client (``/v3/ws``) — the default.

Turn → events: a turn not yet ended is a partial (its latest text); ``end_of_turn`` makes it final.
With ``format_turns`` the server sends the unformatted end-of-turn first and the formatted turn
right after: we hold the unformatted one (bounded by ``format_wait_s``) and emit the formatted one
as the single final; if it never comes, the unformatted text becomes the final. One final per
``turn_order``, never two.

Speaker labels and languages ride on the final (``Final.speaker``/``language``); a later
``SpeakerRevision`` names turns by ``turn_order`` of *this* session, which we map to the
run-unique ``Final.id`` so the revision reaches the right caption even after reconnects.
Warnings and a server falling behind (Heartbeat) become notices that leave the session running.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace

from app.core import silence
from app.core.events import (Final, LLMResponse, Partial, Recovery, Revision, SessionEnded,
                             SessionStarted, StreamError)
from app.core.speech_models import check_language_code
from app.core.streaming import close_codes, messages as m, urls
from app.core.streaming.session import StreamingSession

log = logging.getLogger(__name__)

BEHIND_FACTOR = 0.9         # Heartbeat realtime_factor below this: the service falls behind
CAUGHT_UP_FACTOR = 1.0
_unknown_seen: set[str] = set()   # message types already logged once in this process


class V3Session(StreamingSession):
    protocol = "v3"

    def __init__(self, *args, format_wait_s: float = 2.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.format_wait_s = format_wait_s
        self._last_partial = ""
        self._done: set[int] = set()                              # turn_orders already final
        self._held: dict[int, tuple[m.Turn, float]] = {}          # unformatted end-of-turn, deadline
        self._last_end = 0
        self._final_ids: dict[int, int] = {}                     # turn_order → Final.id
        self._speakers: dict[int, str | None] = {}               # turn_order → label as emitted
        self._relabel: dict[int, str | None] = {}                # revisions for held turns
        self._behind = False
        self._llm_held: dict[int, m.LLMGatewayResponse] = {}      # answers to turns not yet final

    def _keepalive_message(self) -> str | None:
        return m.build_v3_keepalive()

    def _force_end_message(self) -> str:
        return m.build_v3_force_endpoint()

    def _silence_message(self, ms: int) -> str:
        return m.build_v3_update_configuration(**silence.v3_params(ms))

    def _vocabulary_message(self, terms):
        return m.build_v3_update_configuration(keyterms_prompt=list(terms))

    def _terminate_message(self) -> str:
        return m.build_v3_terminate()

    def set_languages(self, codes) -> None:
        """New ``language_codes`` for this session (UpdateConfiguration) and its successors."""
        codes = tuple(dict.fromkeys(str(c).strip() for c in codes if str(c).strip()))
        if not codes:
            raise ValueError("Give at least one language code, e.g. en or en,es.")
        for code in codes:
            check_language_code(code)
        candidate = replace(self.config, language_codes=codes)
        problems = candidate.unsupported_options()
        if "languages" in problems:
            raise ValueError(problems["languages"])
        self.config = candidate
        if self._state in ("open", "connecting"):
            self._control(m.build_v3_update_configuration(language_codes=list(codes)), "languages")

    def _handle_text(self, text: str) -> None:
        try:
            msg = m.parse_v3(text)
        except m.MalformedMessage as exc:
            log.warning("ignoring a malformed v3 message (%s)", exc)
            return
        if isinstance(msg, m.Begin):
            if msg.model:
                log.info("the server uses the model %s", msg.model)
            self._emit(SessionStarted(msg.id, "v3", float(msg.expires_at) if msg.expires_at else None,
                                      model=msg.model))
        elif isinstance(msg, m.Turn):
            with self._lock:
                self._turn(msg)
        elif isinstance(msg, m.Termination):
            self._finish(SessionEnded(msg.audio_duration_seconds))
        elif isinstance(msg, m.V3Error):
            error = close_codes.from_close(msg.error_code, msg.error, "v3")
            self._server_error(error, msg.error)
        elif isinstance(msg, m.SpeakerRevision):
            with self._lock:
                self._revise(msg)
        elif isinstance(msg, m.LLMGatewayResponse):
            with self._lock:
                self._llm(msg)
        elif isinstance(msg, m.V3Warning):
            text = " ".join(msg.warning.split())[:300] or "no details"
            self._emit(StreamError(msg.warning_code, f"The speech service warns: {text}",
                                   Recovery.IGNORE))
        elif isinstance(msg, m.Heartbeat):
            self._heartbeat(msg)
        elif isinstance(msg, (m.SpeechStarted, m.Silence)):
            log.debug("server: %s", msg)
        else:
            if msg.kind not in _unknown_seen:
                _unknown_seen.add(msg.kind)
                log.info("ignoring v3 messages of type %r (not known to this version)", msg.kind[:60])
            else:
                log.debug("ignoring v3 message of type %s", msg.kind[:60])

    def _heartbeat(self, beat: m.Heartbeat) -> None:
        factor = beat.realtime_factor
        if not self._behind and factor < BEHIND_FACTOR:
            self._behind = True
            self._emit(StreamError(None, f"The speech service is falling behind (it processes "
                                         f"{factor:.2f}× real time); captions may lag.",
                                   Recovery.IGNORE))
        elif self._behind and factor >= CAUGHT_UP_FACTOR:
            self._behind = False
            self._emit(StreamError(None, "The speech service has caught up.", Recovery.IGNORE))

    def _llm(self, msg: m.LLMGatewayResponse) -> None:
        """An answer names its turn; the listener sees it only after that turn's final, so a
        front can always place it under its caption (the final may still be held)."""
        order = msg.turn_order
        if order in self._final_ids:
            self._emit(LLMResponse(order, msg.transcript, msg.content, self._final_ids[order],
                                   msg.error))
        elif order in self._done:
            log.debug("LLM response for turn %d, which had no caption, ignored", order)
        else:
            self._llm_held[order] = msg

    def _revise(self, msg: m.SpeakerRevision) -> None:
        for item in msg.revisions:
            label = item.speaker_label or _majority(item.words)
            order = item.turn_order
            if order in self._held:
                self._relabel[order] = label          # applied when the turn becomes final
            elif order in self._final_ids:
                if self._speakers.get(order) != label:
                    self._speakers[order] = label
                    self._emit(Revision(self._final_ids[order], label))
            else:
                log.debug("speaker revision for unknown turn %d ignored", order)

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
                self._emit(Partial(text, start, end, _speaker_of(turn)))
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
            self._llm_held.pop(turn.turn_order, None)
            return
        start, end = self._span(turn)
        self._last_end = end
        speaker = self._relabel.pop(turn.turn_order, _speaker_of(turn))
        final = Final(text, start, end, turn.words, speaker=speaker, language=turn.language_code)
        self._final_ids[turn.turn_order] = final.id
        self._speakers[turn.turn_order] = speaker
        self._emit(final)
        if (answer := self._llm_held.pop(turn.turn_order, None)) is not None:
            self._llm(answer)

    def _next_deadline(self) -> float | None:
        with self._lock:
            return min((deadline for _, deadline in self._held.values()), default=None)

    def _flush_pending(self, now: float, force: bool) -> None:
        for order in sorted(self._held):
            turn, deadline = self._held[order]
            if force or now >= deadline:
                if not force:
                    log.info("formatted turn %d did not arrive in time; using the raw text", order)
                self._final(turn)


def _majority(words) -> str | None:
    labels = Counter(w.speaker for w in words if w.speaker)
    return labels.most_common(1)[0][0] if labels else None


def _speaker_of(turn: m.Turn) -> str | None:
    return turn.speaker_label or _majority(turn.words)
