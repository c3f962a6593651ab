"""The JSON record of each event: what ``--headless --json`` prints, one object per line.

Other tools rely on these fields (the README documents them): new fields may be added, existing
ones never change meaning.
"""

from __future__ import annotations

from app.core.events import (Event, Final, Gap, LLMResponse, Partial, Reconnecting, Recovery,
                             Revision, SessionEnded, SessionStarted, StreamError, Translation)


def event_json(event: Event, latency_ms: float | None = None, *,
               speaker: str | None = None) -> dict | None:
    """The record for ``event``, or ``None`` for events that have none. ``speaker`` is the
    display name of a final's or revision's speaker (None: no name is shown)."""
    if isinstance(event, Final):
        record = {"event": "final", "text": event.text, "audio_start": event.audio_start,
                  "audio_end": event.audio_end, "id": event.id, "speaker": speaker,
                  "language": event.language}
        if latency_ms is not None:
            record["latency_ms"] = round(latency_ms)
        return record
    if isinstance(event, Revision):
        return {"event": "revision", "id": event.id, "speaker": speaker}
    if isinstance(event, Translation):
        return {"event": "translation", "id": event.id, "language": event.language,
                "text": event.text}
    if isinstance(event, LLMResponse):
        return {"event": "llm_response", "turn_order": event.turn_order,
                "transcript": event.transcript, "text": event.text}
    if isinstance(event, Partial):
        return {"event": "partial", "text": event.text, "audio_start": event.audio_start,
                "audio_end": event.audio_end}
    if isinstance(event, SessionStarted):
        return {"event": "session_started", "session_id": event.session_id,
                "protocol": event.protocol, "expires_at": event.expires_at, "model": event.model}
    if isinstance(event, SessionEnded):
        return {"event": "session_ended", "audio_duration_s": event.audio_duration_s}
    if isinstance(event, StreamError) and event.recovery is Recovery.IGNORE:
        # Informational (the offline engine is behind, the service warns): the session goes on.
        return {"event": "notice", "message": event.message}
    if isinstance(event, StreamError):
        return {"event": "error", "code": event.code, "message": event.message,
                "recovery": event.recovery.value, "retryable": event.retryable}
    if isinstance(event, Reconnecting):
        return {"event": "reconnecting", "attempt": event.attempt, "delay_s": event.delay_s,
                "reason": event.reason}
    if isinstance(event, Gap):
        return {"event": "gap", "start_ms": event.start_ms, "duration_ms": event.duration_ms,
                "reason": event.reason}
    return None
