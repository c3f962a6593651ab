"""Wire messages of both AssemblyAI streaming protocols, as plain values. Pure: no I/O.

``parse_v2`` / ``parse_v3`` turn one server text frame into a dataclass (or ``Unknown`` for a
well-formed message of a type we do not know); they raise ``MalformedMessage`` for anything that
is not a JSON object with the documented fields. ``build_*`` functions give the exact JSON text a
client sends. Field names and shapes follow AssemblyAI's streaming API reference (v2 real-time and
v3 Universal-Streaming).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Union

from app.core import silence


MAX_POSIX_S = 253402300799     # 9999-12-31T23:59:59Z, the last instant datetime can hold


class MalformedMessage(ValueError):
    """A server frame that is not valid JSON or lacks a documented field."""


@dataclass(frozen=True)
class Word:
    text: str
    start: int
    end: int
    confidence: float = 0.0
    is_final: bool = True
    speaker: str | None = None             # v3 with speaker_labels: "A", "B", … or "UNKNOWN"


# --- v2 server → client ---------------------------------------------------------------------
@dataclass(frozen=True)
class SessionBegins:
    session_id: str
    expires_at: str | None = None          # naive ISO-8601; informational only


@dataclass(frozen=True)
class PartialTranscript:
    text: str
    audio_start: int
    audio_end: int
    confidence: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class FinalTranscript:
    text: str
    audio_start: int
    audio_end: int
    confidence: float = 0.0
    words: tuple[Word, ...] = ()
    punctuated: bool = False
    text_formatted: bool = False


@dataclass(frozen=True)
class SessionInformation:
    audio_duration_seconds: float


@dataclass(frozen=True)
class SessionTerminated:
    pass


@dataclass(frozen=True)
class V2Error:
    error: str


# --- v3 server → client ---------------------------------------------------------------------
@dataclass(frozen=True)
class Begin:
    id: str
    expires_at: int | None = None          # POSIX seconds
    model: str | None = None               # configuration.model: the model the server really uses
    mode: str | None = None
    api_version: str | None = None


@dataclass(frozen=True)
class Turn:
    turn_order: int
    transcript: str
    end_of_turn: bool
    turn_is_formatted: bool = False
    end_of_turn_confidence: float = 0.0
    words: tuple[Word, ...] = ()
    speaker_label: str | None = None
    language_code: str | None = None
    language_confidence: float | None = None


@dataclass(frozen=True)
class SpeechStarted:
    timestamp: int                         # ms of session audio
    confidence: float | None = None


@dataclass(frozen=True)
class V3Warning:
    warning_code: int | None
    warning: str


@dataclass(frozen=True)
class Heartbeat:
    total_audio_received_ms: int
    total_duration_ms: int
    realtime_factor: float                 # processing speed; below 1.0 the server falls behind
    max_speech_probability: float = 0.0


@dataclass(frozen=True)
class Silence:
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class LLMGatewayResponse:
    turn_order: int
    transcript: str
    content: str | None                    # data.choices[0].message.content, when present
    error: str | None = None               # data.error(.message) when the gateway failed


@dataclass(frozen=True)
class SpeakerRevisionItem:
    turn_order: int
    speaker_label: str | None = None
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class SpeakerRevision:
    revisions: tuple[SpeakerRevisionItem, ...] = ()


@dataclass(frozen=True)
class Termination:
    audio_duration_seconds: float | None = None
    session_duration_seconds: float | None = None


@dataclass(frozen=True)
class V3Error:
    error_code: int | None
    error: str


@dataclass(frozen=True)
class Unknown:
    """Valid JSON object of a type this client does not handle (SpeechStarted, Heartbeat, …)."""

    kind: str
    raw: dict = field(compare=False, default_factory=dict)


V2Message = Union[SessionBegins, PartialTranscript, FinalTranscript, SessionInformation,
                  SessionTerminated, V2Error, Unknown]
V3Message = Union[Begin, Turn, Termination, V3Error, SpeechStarted, V3Warning, Heartbeat, Silence,
                  LLMGatewayResponse, SpeakerRevision, Unknown]


# --- helpers --------------------------------------------------------------------------------
def _load(text: str | bytes) -> dict:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedMessage(f"not JSON: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(data).__name__}")
    return data


def _req(data: dict, key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in data:
        raise MalformedMessage(f"missing field {key!r}")
    value = data[key]
    # bool is an int subclass: refuse it where a number is wanted, and vice versa.
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise MalformedMessage(f"field {key!r} has the wrong type")
    if not isinstance(value, kind):
        raise MalformedMessage(f"field {key!r} has the wrong type")
    return value


def _opt(data: dict, key: str, kind, default=None):
    if data.get(key) is None:
        return default
    return _req(data, key, kind)


def _float(data: dict, key: str, default: float | None = None) -> float | None:
    """An optional finite number (JSON may carry NaN, Infinity or integers too big for a float)."""
    value = _opt(data, key, (int, float))
    if value is None:
        return default
    try:
        number = float(value)
    except OverflowError:
        raise MalformedMessage(f"field {key!r} is out of range") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise MalformedMessage(f"field {key!r} is not a finite number")
    return number


def _ms(data: dict, key: str) -> int:
    value = _req(data, key, (int, float))
    try:
        return int(round(value))
    except (OverflowError, ValueError):   # inf / nan
        raise MalformedMessage(f"field {key!r} is not a finite number") from None


def _label(data: dict, key: str) -> str | None:
    """A short server-given label (speaker, language); empty means none."""
    value = _opt(data, key, str)
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    return value[:64]          # a label, never a paragraph: an odd one must not cost the turn


def _int(data: dict, key: str, default: int | None = None) -> int | None:
    value = _float(data, key)
    return default if value is None else int(round(value))


def _words(data: dict, v3: bool) -> tuple[Word, ...]:
    raw = data.get("words")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise MalformedMessage("field 'words' is not a list")
    words = []
    for w in raw:
        if not isinstance(w, dict):
            raise MalformedMessage("a word is not an object")
        words.append(Word(
            text=_req(w, "text", str), start=_ms(w, "start"), end=_ms(w, "end"),
            confidence=_float(w, "confidence", 0.0),
            is_final=bool(_opt(w, "word_is_final", bool, True)) if v3 else True,
            speaker=_label(w, "speaker") if v3 else None))
    return tuple(words)


# --- v2 -------------------------------------------------------------------------------------
def parse_v2(text: str | bytes) -> V2Message:
    data = _load(text)
    if "message_type" not in data:
        if "error" in data:
            return V2Error(str(data["error"]))
        raise MalformedMessage("no 'message_type' and no 'error'")
    kind = data["message_type"]
    if not isinstance(kind, str):
        raise MalformedMessage("'message_type' is not a string")
    if kind == "SessionBegins":
        return SessionBegins(session_id=_req(data, "session_id", str),
                             expires_at=_opt(data, "expires_at", str))
    if kind in ("PartialTranscript", "FinalTranscript"):
        common = dict(text=_req(data, "text", str), audio_start=_ms(data, "audio_start"),
                      audio_end=_ms(data, "audio_end"),
                      confidence=_float(data, "confidence", 0.0),
                      words=_words(data, v3=False))
        if kind == "PartialTranscript":
            return PartialTranscript(**common)
        return FinalTranscript(**common, punctuated=bool(_opt(data, "punctuated", bool, False)),
                               text_formatted=bool(_opt(data, "text_formatted", bool, False)))
    if kind == "SessionInformation":
        _req(data, "audio_duration_seconds", (int, float))
        return SessionInformation(_float(data, "audio_duration_seconds"))
    if kind == "SessionTerminated":
        return SessionTerminated()
    return Unknown(kind, data)


def _dump(obj: dict) -> str:
    return json.dumps(obj, separators=(",", ":"))


def build_v2_terminate() -> str:
    return _dump({"terminate_session": True})


def build_v2_force_end() -> str:
    return _dump({"force_end_utterance": True})


def build_v2_silence_threshold(ms: int) -> str:
    return _dump(silence.v2_params(silence.validate(ms)))


# --- v3 -------------------------------------------------------------------------------------
def parse_v3(text: str | bytes) -> V3Message:
    data = _load(text)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage("missing or non-string 'type'")
    if kind == "Begin":
        expires = _opt(data, "expires_at", (int, float))
        try:
            expires = int(expires) if expires is not None else None
        except (OverflowError, ValueError):
            expires = None                  # informational only: a bad value is not fatal
        if expires is not None and not 0 <= expires <= MAX_POSIX_S:
            expires = None                  # beyond year 9999: would overflow float/datetime
        conf = data.get("configuration")
        conf = conf if isinstance(conf, dict) else {}   # informational: a bad shape is not fatal
        return Begin(id=_req(data, "id", str), expires_at=expires,
                     model=_soft_label(conf, "model"), mode=_soft_label(conf, "mode"),
                     api_version=_soft_label(conf, "api_version"))
    if kind == "Turn":
        return Turn(turn_order=_req(data, "turn_order", int),
                    transcript=_req(data, "transcript", str),
                    end_of_turn=_req(data, "end_of_turn", bool),
                    turn_is_formatted=bool(_opt(data, "turn_is_formatted", bool, False)),
                    end_of_turn_confidence=_float(data, "end_of_turn_confidence", 0.0),
                    words=_words(data, v3=True),
                    speaker_label=_label(data, "speaker_label"),
                    language_code=_label(data, "language_code"),
                    language_confidence=_float(data, "language_confidence"))
    if kind == "Termination":
        return Termination(_float(data, "audio_duration_seconds"),
                           _float(data, "session_duration_seconds"))
    if kind == "Error":
        code = _opt(data, "error_code", int)
        return V3Error(error_code=code, error=str(data.get("error", "")))
    if kind == "SpeechStarted":
        return SpeechStarted(_ms(data, "timestamp"), _float(data, "confidence"))
    if kind == "Warning":
        return V3Warning(_opt(data, "warning_code", int), _req(data, "warning", str))
    if kind == "Heartbeat":
        return Heartbeat(_ms(data, "total_audio_received_ms"), _ms(data, "total_duration_ms"),
                         _req_float(data, "realtime_factor"),
                         _float(data, "max_speech_probability", 0.0))
    if kind == "Silence":
        return Silence(_ms(data, "start_ms"), _ms(data, "end_ms"))
    if kind == "LLMGatewayResponse":
        return LLMGatewayResponse(_req(data, "turn_order", int), _req(data, "transcript", str),
                                  _llm_content(data.get("data")), _llm_error(data.get("data")))
    if kind == "SpeakerRevision":
        raw = _opt(data, "revisions", list, [])
        items = []
        for item in raw:
            if not isinstance(item, dict):
                raise MalformedMessage("a speaker revision is not an object")
            items.append(SpeakerRevisionItem(_req(item, "turn_order", int),
                                             _label(item, "speaker_label"),
                                             _words(item, v3=True)))
        return SpeakerRevision(tuple(items))
    return Unknown(kind, data)


def _req_float(data: dict, key: str) -> float:
    _req(data, key, (int, float))
    return _float(data, key)


def _soft_label(data: dict, key: str) -> str | None:
    try:
        return _label(data, key)
    except MalformedMessage:
        return None


def _llm_content(data) -> str | None:
    """The chat-completion text; None when the gateway answered something else (an error)."""
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _llm_error(data) -> str | None:
    """The gateway's reason for an answer without text, one short line (server text: untrusted)."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if not isinstance(error, str):
        return None
    return " ".join("".join(c if c.isprintable() else " " for c in error).split())[:200] or None


V3_UPDATABLE = ("end_of_turn_confidence_threshold", "min_turn_silence", "max_turn_silence",
                "vad_threshold", "format_turns", "keyterms_prompt", "prompt", "filter_profanity",
                "language_codes")


def build_v3_update_configuration(**params) -> str:
    unknown = set(params) - set(V3_UPDATABLE)
    if unknown:
        raise ValueError(f"not updatable on v3: {', '.join(sorted(unknown))}")
    if not params:
        raise ValueError("UpdateConfiguration needs at least one setting")
    return _dump({"type": "UpdateConfiguration", **params})


def build_v3_force_endpoint() -> str:
    return _dump({"type": "ForceEndpoint"})


def build_v3_terminate() -> str:
    return _dump({"type": "Terminate"})


def build_v3_keepalive() -> str:
    return _dump({"type": "KeepAlive"})
