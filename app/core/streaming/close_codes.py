"""Close codes, HTTP statuses and server error texts → a ``StreamError`` a person understands.

Every documented v2 code (4000–4034, 4100–4104, 1013) and v3 code (1008, 3005–3009) has a plain
message and a ``Recovery`` policy (wire reference §1.6, §3.6):
- auth / billing / account limits / bad configuration → STOP (never retry in a loop);
- transient (network, 1013, 3005, session expiry 4008/3008, idle) → RECONNECT;
- our own protocol faults (rate, frame size, bad message) → BUG: must never happen.

``category`` tells callers *why* (the headless CLI turns it into an exit code).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.events import Recovery, StreamError
from app.core.text import one_line

AUTH, BILLING, LIMIT, CONFIG, TRANSIENT, BUG, NORMAL = (
    "auth", "billing", "limit", "config", "transient", "bug", "normal")

STOP, RECONNECT, BUG_R = Recovery.STOP, Recovery.RECONNECT, Recovery.BUG


@dataclass(frozen=True)
class CodeInfo:
    code: int
    doc_text: str         # the server's documented text (used to recognise a bare {"error": ...})
    message: str          # what we tell the user
    recovery: Recovery
    category: str


def _c(code, doc_text, message, recovery, category) -> CodeInfo:
    return CodeInfo(code, doc_text, message, recovery, category)


V2_CODES: dict[int, CodeInfo] = {c.code: c for c in (
    _c(4000, "Sample rate must be a positive integer",
       "The server rejected the sample rate. Choose a supported sample rate (8000-48000 Hz).",
       STOP, CONFIG),
    _c(4001, "Not Authorized",
       "AssemblyAI did not accept the API key or token. Check the API key in Settings.", STOP, AUTH),
    _c(4002, "Insufficient Funds",
       "The AssemblyAI account has insufficient funds. Add funds in the AssemblyAI dashboard.",
       STOP, BILLING),
    _c(4003, "This feature is paid-only and requires you to add a credit card",
       "Real-time transcription needs a paid AssemblyAI account: add a credit card at "
       "https://app.assemblyai.com/.", STOP, BILLING),
    _c(4004, "Session not found", "The server no longer knows this session; starting a new one.",
       RECONNECT, TRANSIENT),
    _c(4008, "Session Expired", "The streaming session expired; starting a new one.",
       RECONNECT, TRANSIENT),
    _c(4010, "Session previously closed", "The session had already been closed; starting a new one.",
       RECONNECT, TRANSIENT),
    _c(4029, "Client sent audio too fast",
       "The server says audio arrived faster than real time (a bug in this app).", BUG_R, BUG),
    _c(4030, "Session is handled by another WebSocket",
       "Another connection took over this session; starting a new one.", RECONNECT, TRANSIENT),
    _c(4031, "Session idle for too long",
       "The server closed the session because no audio arrived for too long; starting a new one.",
       RECONNECT, TRANSIENT),
    _c(4032, "Audio duration is too short",
       "The server says an audio frame was too short (a bug in this app).", BUG_R, BUG),
    _c(4033, "Audio duration is too long",
       "The server says an audio frame was too long (a bug in this app).", BUG_R, BUG),
    _c(4034, "Audio too small to transcode",
       "The server says an audio frame was too small to decode (a bug in this app).", BUG_R, BUG),
    _c(4100, "Endpoint received invalid JSON",
       "The server received a malformed message (a bug in this app).", BUG_R, BUG),
    _c(4101, "Endpoint received a message with an invalid schema",
       "The server received a message it did not understand (a bug in this app).", BUG_R, BUG),
    _c(4102, "This account has exceeded the number of allowed streams",
       "The AssemblyAI account has too many streams open at once. Close other caption sessions "
       "and start again.", STOP, LIMIT),
    _c(4103, "This session has been reconnected. This WebSocket is no longer valid",
       "The session was reconnected elsewhere; starting a new one.", RECONNECT, TRANSIENT),
    _c(4104, "Could not parse word boost parameter",
       "The server could not read the custom vocabulary. Simplify the vocabulary list.",
       STOP, CONFIG),
    _c(1013, "Temporary server condition forced blocking client's request",
       "The server is temporarily busy; trying again shortly.", RECONNECT, TRANSIENT),
)}

V3_CODES: dict[int, CodeInfo] = {c.code: c for c in (
    _c(1008, "Unauthorized Connection",
       "AssemblyAI did not accept the connection (API key, token or account). Check the API key "
       "in Settings.", STOP, AUTH),
    _c(3005, "Session Cancelled: An error occurred",
       "The server cancelled the session after an error on its side; starting a new one.",
       RECONNECT, TRANSIENT),
    _c(3006, "Invalid Message",
       "The server received a message it did not understand (a bug in this app).", BUG_R, BUG),
    _c(3007, "Input duration violation",
       "The server rejected the audio pacing or frame size (a bug in this app).", BUG_R, BUG),
    _c(3008, "Session Expired: Maximum session duration exceeded",
       "The streaming session reached its maximum length; starting a new one.", RECONNECT, TRANSIENT),
    _c(3009, "Unauthorized Connection: Too many concurrent sessions",
       "The AssemblyAI account has too many sessions open at once. Close other caption sessions "
       "and start again.", STOP, LIMIT),
)}

# Generic WebSocket codes either server may use.
_GENERIC: dict[int, CodeInfo] = {c.code: c for c in (
    _c(1001, "Going away", "The server is going away; reconnecting.", RECONNECT, TRANSIENT),
    _c(1006, "Abnormal closure", "The connection to the server was lost; reconnecting.",
       RECONNECT, TRANSIENT),
    _c(1011, "Internal error", "The server had an internal error; reconnecting.", RECONNECT, TRANSIENT),
    _c(1012, "Service restart", "The server is restarting; reconnecting.", RECONNECT, TRANSIENT),
    _c(1014, "Bad gateway", "A gateway between here and the server failed; reconnecting.",
       RECONNECT, TRANSIENT),
)}

UNEXPECTED_END = ("The server ended the session without being asked to; starting a new one.")
CONNECTION_LOST = "The connection to the server was lost; reconnecting."
STALLED = "The server stopped responding; reconnecting."
MODEL_DEPRECATED = ("AssemblyAI no longer serves the legacy v2 real-time API. Switch the protocol "
                    "to v3 (Universal-Streaming) in Settings or with --protocol v3.")


def lookup(code: int | None, protocol: str) -> CodeInfo | None:
    """The table entry for a close code (the v3 server may also use the v2 4000 range)."""
    if code is None:
        return None
    primary, secondary = (V3_CODES, V2_CODES) if protocol == "v3" else (V2_CODES, V3_CODES)
    return primary.get(code) or secondary.get(code) or _GENERIC.get(code)


def _with_detail(message: str, detail: str | None, doc_text: str = "") -> str:
    detail = one_line(detail or "")   # the server's text: no escapes or line breaks
    if not detail or detail.lower().startswith(doc_text.lower()) and len(detail) <= len(doc_text) + 1:
        return message
    return f"{message} (server said: {detail})"


def from_close(code: int | None, reason: str | None, protocol: str) -> StreamError:
    """A WebSocket close (or a v3 Error message, whose error_code equals the close code)."""
    if reason and "model deprecated" in reason.lower():
        return StreamError(code, MODEL_DEPRECATED, STOP)
    info = lookup(code, protocol)
    if info is not None:
        return StreamError(code, _with_detail(info.message, reason, info.doc_text), info.recovery)
    if code == 1000:
        return StreamError(code, UNEXPECTED_END, RECONNECT)
    if code is None:
        return StreamError(None, _with_detail(CONNECTION_LOST, reason), RECONNECT)
    # Undocumented code: assume transient so captions continue; the retry cap stops a loop.
    return StreamError(code, _with_detail(f"The server closed the connection (code {code}); "
                                          "reconnecting.", reason), RECONNECT)


def from_error_text(text: str, protocol: str) -> StreamError:
    """A bare v2 ``{"error": "..."}`` (no close code yet): recognise the documented texts."""
    lowered = text.lower()
    if "model deprecated" in lowered:
        return StreamError(None, MODEL_DEPRECATED, STOP)
    tables = (V2_CODES, V3_CODES) if protocol == "v2" else (V3_CODES, V2_CODES)
    for table in tables:
        for info in table.values():
            if lowered.startswith(info.doc_text.lower()[:24]):
                return StreamError(info.code, _with_detail(info.message, text, info.doc_text),
                                   info.recovery)
    return StreamError(None, _with_detail("The server reported an error; reconnecting.", text),
                       RECONNECT)


def from_http_status(status: int, what: str, detail: str | None = None,
                     hint: str = "Check the API key in Settings.") -> StreamError:
    """An HTTP failure of the WebSocket handshake or a token request. ``what`` names the server."""
    if status in (401, 403):
        return StreamError(status, f"{what} refused the credentials (HTTP {status}). {hint}", STOP)
    if status == 402:
        return StreamError(status, f"{what} says the account needs payment (HTTP 402).", STOP)
    if status == 429:
        return StreamError(status, f"{what} is rate-limiting requests (HTTP 429); retrying.", RECONNECT)
    if status in (408,) or status >= 500:
        return StreamError(status, f"{what} is unavailable (HTTP {status}); retrying.", RECONNECT)
    return StreamError(status, _with_detail(
        f"{what} rejected the request (HTTP {status}). Check the server URL and settings.", detail),
        STOP)


def category(error: StreamError) -> str:
    """auth | billing | limit | config | transient | bug — for exit codes and UI wording."""
    if error.recovery is Recovery.RECONNECT:
        return TRANSIENT
    if error.recovery is Recovery.BUG:
        return BUG
    if error.message == MODEL_DEPRECATED:
        return CONFIG
    code = error.code
    if code in (401, 403):
        return AUTH
    if code == 402:
        return BILLING
    if code is not None and 400 <= code < 600:
        return CONFIG
    for table in (V2_CODES, V3_CODES):
        if code in table:
            return table[code].category
    return CONFIG
