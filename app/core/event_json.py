"""The JSON record of each event: what ``--headless --json`` prints, one object per line.

Other tools rely on these fields (the README documents them): new fields may be added, existing
ones never change meaning.
"""

from __future__ import annotations

from app.core.events import (Event, Final, Gap, Partial, Reconnecting, SessionEnded, SessionStarted,
                             StreamError)


def event_json(event: Event, latency_ms: float | None = None) -> dict | None:
    """The record for ``event``, or ``None`` for events that have none."""
    if isinstance(event, Final):
        record = {"event": "final", "text": event.text, "audio_start": event.audio_start,
                  "audio_end": event.audio_end}
        if latency_ms is not None:
            record["latency_ms"] = round(latency_ms)
        return record
    if isinstance(event, Partial):
        return {"event": "partial", "text": event.text, "audio_start": event.audio_start,
                "audio_end": event.audio_end}
    if isinstance(event, SessionStarted):
        return {"event": "session_started", "session_id": event.session_id,
                "protocol": event.protocol, "expires_at": event.expires_at}
    if isinstance(event, SessionEnded):
        return {"event": "session_ended", "audio_duration_s": event.audio_duration_s}
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
