"""The legacy v2 real-time client (``/v2/realtime/ws``), kept fully working.

Vocabulary (``word_boost``) is a connection parameter, so a change applies from the next session;
the silence threshold is a message the server accepts any number of times, from the moment the
socket opens.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from app.core.events import Final, Partial, SessionEnded, SessionStarted
from app.core.streaming import close_codes, messages as m
from app.core.streaming.session import StreamingSession

log = logging.getLogger(__name__)


def _iso_to_posix(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):   # informational only: never fatal
        return None


class V2Session(StreamingSession):
    protocol = "v2"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._last_partial = ""
        self._audio_duration: float | None = None

    def _on_connected(self) -> None:
        # Sent before SessionBegins on purpose: the server applies it from the first audio.
        self._control(m.build_v2_silence_threshold(self._silence_ms), "silence threshold")

    def _force_end_message(self) -> str:
        return m.build_v2_force_end()

    def _silence_message(self, ms: int) -> str:
        return m.build_v2_silence_threshold(ms)

    def _vocabulary_message(self, terms):
        return None   # word_boost is only read at connection time

    def _terminate_message(self) -> str:
        return m.build_v2_terminate()

    def _handle_text(self, text: str) -> None:
        try:
            msg = m.parse_v2(text)
        except m.MalformedMessage as exc:
            log.warning("ignoring a malformed v2 message (%s)", exc)
            return
        if isinstance(msg, m.SessionBegins):
            self._emit(SessionStarted(msg.session_id, "v2", _iso_to_posix(msg.expires_at)))
        elif isinstance(msg, m.PartialTranscript):
            if msg.text and msg.text != self._last_partial:
                self._last_partial = msg.text
                self._emit(Partial(msg.text, msg.audio_start, msg.audio_end))
        elif isinstance(msg, m.FinalTranscript):
            self._last_partial = ""
            if msg.text:
                self._emit(Final(msg.text, msg.audio_start, msg.audio_end, msg.words))
        elif isinstance(msg, m.SessionInformation):
            self._audio_duration = msg.audio_duration_seconds
        elif isinstance(msg, m.SessionTerminated):
            self._finish(SessionEnded(self._audio_duration))
        elif isinstance(msg, m.V2Error):
            self._server_error(close_codes.from_error_text(msg.error, "v2"), msg.error)
        else:
            log.debug("ignoring v2 message of type %s", msg.kind)
