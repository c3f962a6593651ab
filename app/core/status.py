"""Connection status in plain words, from the same events the captions come from. Pure Python.

States (``State``): stopped → connecting → live / offline (the local engine is running) →
reconnecting (transient fault, the pipeline retries) → error (stopped for a reason the user must
fix). With several sources (mic + system) each has its own state; the shown state is the most
urgent one.

Notices are not errors: an informational message (the offline engine is behind, audio was not
captioned) shows next to the state and clears when its cause is gone. "Behind" ends when live
words flow again (the engine only sends partials once it has caught up); a gap report is news
for ``GAP_NOTICE_S``. Every notice shows for at least ``MIN_NOTICE_S`` so it can be read.
"""

from __future__ import annotations

import enum
import re
import time
from dataclasses import dataclass
from typing import Callable

from app.core.events import (Final, Gap, Partial, Reconnecting, Recovery, SessionEnded, SessionStarted,
                             StreamError)


class State(enum.Enum):
    STOPPED = "stopped"
    CONNECTING = "connecting"
    LIVE = "live"
    OFFLINE = "offline"          # captions from the offline engine (no network involved)
    RECONNECTING = "reconnecting"
    ERROR = "error"


# Which source's state wins when they differ (most urgent first).
_URGENCY = [State.ERROR, State.RECONNECTING, State.CONNECTING, State.LIVE, State.OFFLINE, State.STOPPED]


@dataclass(frozen=True)
class Status:
    state: State = State.STOPPED
    text: str = "Captions stopped"
    detail: str = ""                      # the error / reconnect reason, plain words
    latency_ms: float | None = None
    silence_ms: int | None = None
    engine: str = ""                      # "AssemblyAI v3", "AssemblyAI v2", "offline engine"
    notice: str = ""                      # e.g. "4.2 s of audio were not captioned"
    warning: str = ""                     # e.g. an unencrypted connection the user allowed

    @property
    def running(self) -> bool:
        return self.state not in (State.STOPPED, State.ERROR)

    def summary(self) -> str:
        """One line for the overlay's status strip and the tray tooltip."""
        parts = [self.text]
        if self.state in (State.LIVE, State.OFFLINE) and self.latency_ms is not None:
            parts.append(f"latency {format_latency(self.latency_ms)}")
        if self.notice:
            parts.append(self.notice)
        if self.warning and self.running:
            parts.append(self.warning)
        return " · ".join(parts)


# From launch until the run is planned (the key read, the engine chosen): the overlay's first frame.
STARTING = Status(State.CONNECTING, "Starting captions…")


def format_latency(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s"


_ENGINE_NAMES = {"v3": "AssemblyAI", "v2": "AssemblyAI (legacy v2)", "local": "offline engine"}

MIN_NOTICE_S = 5.0        # a notice stays at least this long, even if its cause ends sooner
GAP_NOTICE_S = 20.0       # "N s of audio were not captioned" is news for this long
ENGINE_NOTICE_S = 60.0    # an engine notice nobody clears (no more speech) fades after this


@dataclass
class _Notice:
    text: str
    shown_at: float
    expires_at: float
    clears_on_partial: bool = False   # live words again = the engine has caught up
    cause_gone: bool = False


_URL = re.compile(r"\b(?:wss?|https?)://(?:[^/\s@]*@)?([^/\s?#)]+)[^\s)]*")


def plain_addresses(text: str) -> str:
    """``ws://host:port/v3/ws?…`` → "the server at host:port" (AssemblyAI's by name): a person
    needs to know which server, not a WebSocket address."""

    def name(m: re.Match) -> str:
        host = m.group(1)
        if host.split(":")[0].endswith("assemblyai.com"):
            return "AssemblyAI"
        return f"the server at {host}"

    return _URL.sub(name, text or "")


@dataclass
class _Source:
    state: State = State.CONNECTING
    detail: str = ""
    engine: str = ""


class StatusModel:
    """Feed events in; read ``status``. ``changed`` tells whether the last call changed it."""

    def __init__(self, silence_ms: int | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._sources: dict[str, _Source] = {}
        self._overall = State.STOPPED
        self._stop_detail = ""
        self._latency: float | None = None
        self._silence = silence_ms
        self._warning = ""
        self._clock = clock
        self._notices: dict[tuple[str, str], _Notice] = {}   # (source label, kind) → notice
        self._loading = False
        self.status = Status(silence_ms=silence_ms)
        self.changed = False

    # ---- lifecycle from the caption service -----------------------------------------------
    def starting(self, labels: list[str], engine: str = "") -> Status:
        """A run begins. ``engine="local"``: the offline model loads first (not a connection)."""
        self._sources = {label: _Source() for label in (labels or [""])}
        self._overall = State.CONNECTING
        self._stop_detail = ""
        self._latency = None
        self._notices = {}
        self._loading = engine == "local"
        return self._publish()

    def tick(self) -> Status:
        """Expire notices whose time is up (call when ``next_change_in`` says)."""
        return self._publish()

    def next_change_in(self) -> float | None:
        """Seconds until a notice's time is up; None when no notice is showing."""
        if not self._notices:
            return None
        due = min(min(n.expires_at, n.shown_at + MIN_NOTICE_S) if n.cause_gone else n.expires_at
                  for n in self._notices.values())
        return max(0.0, due - self._clock())

    def stopped(self) -> Status:
        self._sources = {}
        self._overall = State.STOPPED
        return self._publish()

    def failed(self, message: str) -> Status:
        """Could not start or stopped for good (no key, device missing, auth refused...)."""
        self._sources = {}
        self._overall = State.ERROR
        self._stop_detail = plain_addresses(message)
        return self._publish()

    def set_warning(self, text: str | None) -> Status:
        """A standing warning for this run (shown while captions run), or none."""
        self._warning = text or ""
        return self._publish()

    def set_latency(self, ms: float | None) -> Status:
        self._latency = ms
        return self._publish()

    def set_silence(self, ms: int | None) -> Status:
        self._silence = ms
        return self._publish()

    def translation_unavailable(self, message: str) -> Status:
        """A turn was not translated (gateway error, refusal, no answer): captions go on; the
        notice clears once translations arrive again."""
        now = self._clock()
        self._notices[("", "translation")] = _Notice(message, now, now + ENGINE_NOTICE_S)
        return self._publish()

    def translation_arrived(self) -> Status:
        notice = self._notices.get(("", "translation"))
        if notice is not None:
            notice.cause_gone = True
        return self._publish()

    # ---- events ----------------------------------------------------------------------------
    def on_event(self, label: str, event) -> Status:
        src = self._sources.get(label)
        if src is None:
            if self._overall in (State.STOPPED, State.ERROR) and not isinstance(event, SessionStarted):
                return self.status  # a late event after stop: keep the final word
            src = self._sources.setdefault(label, _Source())
            self._overall = State.CONNECTING
        now = self._clock()
        if isinstance(event, SessionStarted):
            src.engine = _ENGINE_NAMES.get(event.protocol, event.protocol)
            model = " ".join((getattr(event, "model", None) or "").split())[:40]
            if model:
                src.engine += f" · {model}"      # the model the server really uses
            src.state = State.OFFLINE if event.protocol == "local" else State.LIVE
            src.detail = ""
            self._notices.pop((label, "engine"), None)   # a new session: the old one's news is moot
        elif isinstance(event, (Partial, Final)):
            if src.state in (State.CONNECTING, State.RECONNECTING):
                src.state = State.OFFLINE if src.engine == _ENGINE_NAMES["local"] else State.LIVE
                src.detail = ""
            notice = self._notices.get((label, "engine"))
            if isinstance(event, Partial) and notice is not None and notice.clears_on_partial:
                notice.cause_gone = True
        elif isinstance(event, Reconnecting):
            src.state = State.RECONNECTING
            wait = f" in {event.delay_s:.0f} s" if event.delay_s >= 1 else ""
            reason = plain_addresses(event.reason)
            src.detail = f"{reason} — trying again{wait} (attempt {event.attempt})" \
                if reason else f"Trying again{wait} (attempt {event.attempt})"
        elif isinstance(event, StreamError):
            if event.recovery is Recovery.RECONNECT:
                src.state = State.RECONNECTING
                src.detail = plain_addresses(event.message)
            elif event.recovery is Recovery.IGNORE:
                self._notices[(label, "engine")] = _Notice(
                    event.message, now, now + ENGINE_NOTICE_S, clears_on_partial=True)
            else:
                src.state = State.ERROR
                src.detail = plain_addresses(event.message)
        elif isinstance(event, Gap):
            seconds = event.duration_ms / 1000
            text = f"{seconds:.1f} s of audio were not captioned ({event.reason})" \
                if event.reason else f"{seconds:.1f} s of audio were not captioned"
            self._notices[(label, "gap")] = _Notice(text, now, now + GAP_NOTICE_S)
        elif isinstance(event, SessionEnded):
            pass  # the pipeline says what comes next (reconnect or the end); the controller stops us
        self._overall = self._aggregate()
        return self._publish()

    # ---- internals -------------------------------------------------------------------------
    def _aggregate(self) -> State:
        if not self._sources:
            return self._overall
        states = {s.state for s in self._sources.values()}
        for state in _URGENCY:
            if state in states:
                return state
        return State.STOPPED

    def _current_notice(self) -> str:
        now = self._clock()
        for key, n in list(self._notices.items()):
            if now >= n.expires_at or (n.cause_gone and now - n.shown_at >= MIN_NOTICE_S):
                del self._notices[key]
        if not self._notices:
            return ""
        return max(self._notices.values(), key=lambda n: n.shown_at).text

    def _publish(self) -> Status:
        state = self._overall
        if state is not State.CONNECTING:
            self._loading = False
        engines = sorted({s.engine for s in self._sources.values() if s.engine})
        engine = ", ".join(engines)
        detail = ""
        for label, src in self._sources.items():
            if src.state is state and src.detail:
                detail = f"{label}: {src.detail}" if len(self._sources) > 1 and label else src.detail
                break
        if state is State.ERROR and not detail:
            detail = self._stop_detail
        text = "Loading the offline speech model…" if self._loading and state is State.CONNECTING \
            else _plain_words(state, engine, detail)
        notice = self._current_notice()
        new = Status(state=state, text=text, detail=detail,
                     latency_ms=self._latency if state in (State.LIVE, State.OFFLINE) else None,
                     silence_ms=self._silence, engine=engine,
                     notice=notice if state in (State.LIVE, State.OFFLINE, State.RECONNECTING) else "",
                     warning=self._warning if state not in (State.STOPPED, State.ERROR) else "")
        self.changed = new != self.status
        self.status = new
        return new


def _plain_words(state: State, engine: str, detail: str) -> str:
    if state is State.STOPPED:
        return "Captions stopped"
    if state is State.CONNECTING:
        return "Connecting…"
    if state is State.LIVE:
        return f"Live ({engine})" if engine else "Live"
    if state is State.OFFLINE:
        return "Live (offline engine)"
    if state is State.RECONNECTING:
        return f"Reconnecting: {detail}" if detail else "Reconnecting…"
    return f"Stopped: {detail}" if detail else "Stopped by an error"

