"""The one event vocabulary every speech engine speaks (AssemblyAI v3, v2, the offline engine).

Events are immutable values; engines call a listener with them from their own thread, so a
listener must be quick and thread-safe (the Qt layer re-emits them as signals).
Audio offsets are milliseconds of audio since the start of *that* session. Partials and finals
carry ``received``: when the caption pipeline got them (``time.monotonic()``), so latency can be
measured however late a front gets round to showing them.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field
from typing import Callable, Union


class Recovery(enum.Enum):
    """What the caller should do after an error."""

    STOP = "stop"            # auth, billing, bad configuration: tell the user, never retry in a loop
    RECONNECT = "reconnect"  # transient: new session after backoff, captions continue
    BUG = "bug"              # our own protocol fault (rate, frame size, bad message): must never happen
    IGNORE = "ignore"        # informational; the session goes on


_final_ids = itertools.count(1)


def next_final_id() -> int:
    """Unique for the life of the process, so unique within a run across sessions and sources
    (``next`` on an ``itertools.count`` is atomic under the GIL)."""
    return next(_final_ids)


@dataclass(frozen=True)
class SessionStarted:
    session_id: str
    protocol: str                 # "v3", "v2" or "local"
    expires_at: float | None = None  # POSIX seconds, when the server said
    model: str | None = None      # the model the server says it uses (v3 Begin.configuration)


@dataclass(frozen=True)
class Partial:
    """The latest text of the utterance in progress; replaces the previous partial."""

    text: str
    audio_start: int
    audio_end: int
    speaker: str | None = None
    received: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Final:
    text: str
    audio_start: int
    audio_end: int
    words: tuple = field(default=(), compare=False)
    # Run-unique: what a later Revision names. Kept by dataclasses.replace (stream-time shifts).
    id: int = field(default_factory=next_final_id, compare=False)
    speaker: str | None = None    # the engine's label ("A", "B", … or "UNKNOWN"); None = unlabelled
    language: str | None = None   # detected language code, when detection is on
    received: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Revision:
    """A later, better speaker label for a final already emitted (v3 SpeakerRevision)."""

    id: int                       # Final.id
    speaker: str | None


@dataclass(frozen=True)
class LLMResponse:
    """The per-turn LLM gateway answer (a translation, say), possibly out of turn order.

    Sessions emit it only after the final it answers, so ``final_id`` always names a final
    the listener has already seen (``None`` only when no final was emitted for the turn)."""

    turn_order: int
    transcript: str
    text: str | None              # data.choices[0].message.content; None if the gateway failed
    final_id: int | None = None   # Final.id of the turn it answers
    error: str | None = None      # the gateway's own words when it sent no text


@dataclass(frozen=True)
class Translation:
    """The translation of one final (``id`` = its ``Final.id``), as every front shows it."""

    id: int
    language: str                 # the target language code ("es", "pt-BR")
    text: str


@dataclass(frozen=True)
class SessionEnded:
    audio_duration_s: float | None = None


@dataclass(frozen=True)
class StreamError:
    code: int | None          # close code / HTTP status / None for local faults
    message: str              # for a person: plain words, never a secret
    recovery: Recovery

    @property
    def retryable(self) -> bool:
        return self.recovery is Recovery.RECONNECT


@dataclass(frozen=True)
class Reconnecting:
    """Emitted by the pipeline (not by sessions) before a reconnect attempt."""

    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True)
class Gap:
    """Audio that reached no recognizer (outage, device loss), in continuous stream time (ms)."""

    start_ms: int
    duration_ms: int
    reason: str


Event = Union[SessionStarted, Partial, Final, Revision, LLMResponse, Translation, SessionEnded,
              StreamError, Reconnecting, Gap]
Listener = Callable[[Event], None]
