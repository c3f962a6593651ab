"""Every preference, declared once: key, type, default, allowed range. Validation on load.

The storage is pluggable (``SettingsStore``): QSettings in the app, a dict in tests. Values come
back from INI files as strings in a new process, so every read goes through ``Pref.coerce``;
anything corrupt or out of range falls back to the default with a logged warning — never a crash.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

log = logging.getLogger(__name__)

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class Pref:
    key: str
    kind: str                 # bool | int | str | choice | list | color
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    doc: str = ""

    def coerce(self, raw: Any) -> Any:
        """Raw stored value → typed value. Raises ``ValueError`` when it is not acceptable."""
        if self.kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if self.kind == "int":
            if isinstance(raw, bool):
                raise ValueError("boolean where a number was expected")
            value = int(str(raw).strip()) if not isinstance(raw, int) else raw
            if (self.minimum is not None and value < self.minimum) or (
                    self.maximum is not None and value > self.maximum):
                raise ValueError(f"{value} outside {self.minimum}..{self.maximum}")
            return value
        if self.kind == "choice":
            text = str(raw)
            if text not in self.choices:
                raise ValueError(f"{raw!r} is not one of {', '.join(self.choices)}")
            return text
        if self.kind == "color":
            text = str(raw)
            if not _COLOR.match(text):
                raise ValueError(f"{raw!r} is not a #rrggbb colour")
            return text.lower()
        if self.kind == "list":
            if raw is None or raw == "":
                return ()
            items = [raw] if isinstance(raw, str) else list(raw)  # QSettings: one item → bare str
            if not all(isinstance(i, str) for i in items):
                raise ValueError("a list of texts was expected")
            return tuple(items)
        if self.kind == "str":
            if not isinstance(raw, str):
                raise ValueError(f"text expected, got {type(raw).__name__}")
            return raw
        raise AssertionError(f"unknown kind {self.kind}")


def _p(key, kind, default, **kw) -> Pref:
    return Pref(key, kind, default, **kw)


PREFS: tuple[Pref, ...] = (
    # Connection and engine
    _p("engine/engine", "choice", "auto", choices=("auto", "assemblyai", "local"),
       doc="auto = AssemblyAI when a key or token broker is configured, else the offline engine"),
    _p("connection/protocol", "choice", "v3", choices=("v3", "v2")),
    _p("connection/region", "choice", "us", choices=("us", "eu")),
    _p("connection/server_url", "str", ""),
    _p("connection/auth_mode", "choice", "key", choices=("key", "token", "broker")),
    _p("connection/token_url", "str", ""),
    _p("connection/speech_model", "str", "universal-streaming-english"),
    _p("connection/encoding", "choice", "pcm_s16le", choices=("pcm_s16le", "pcm_mulaw")),
    _p("connection/sample_rate", "int", 16000, minimum=8000, maximum=48000),
    _p("connection/chunk_ms", "int", 100, minimum=50, maximum=2000,
       doc="clamped to the protocol's frame limits when a session starts"),
    # Recognition
    _p("recognition/vocabulary", "list", ()),
    _p("recognition/silence_ms", "int", 700, minimum=0, maximum=20000),
    # Audio
    _p("audio/source", "choice", "mic", choices=("mic", "system", "both")),
    _p("audio/mic_device", "str", "", doc="empty = follow the system default"),
    _p("audio/system_device", "str", "", doc="empty = monitor of the default output"),
    # Appearance
    _p("appearance/preset", "choice", "white_on_black",
       choices=("white_on_black", "yellow_on_black", "high_contrast", "custom")),
    _p("appearance/font_family", "str", ""),
    _p("appearance/font_size", "int", 28, minimum=16, maximum=120),
    _p("appearance/text_color", "color", "#ffffff"),
    _p("appearance/background_color", "color", "#000000"),
    _p("appearance/background_opacity", "int", 85, minimum=0, maximum=100),
    _p("appearance/text_effect", "choice", "outline", choices=("none", "outline", "shadow")),
    # Caption layout
    _p("captions/lines", "int", 2, minimum=1, maximum=8),
    _p("captions/stable_only", "bool", False),
    _p("captions/clear_after_s", "int", 6, minimum=0, maximum=3600, doc="0 = never clear"),
    _p("captions/show_source_labels", "bool", True),
    # Overlay window
    _p("overlay/dock", "choice", "bottom", choices=("bottom", "top", "floating")),
    _p("overlay/geometry", "str", "", doc="x,y,w,h in logical pixels; empty = dock preset"),
    _p("overlay/screen", "str", ""),
    _p("overlay/click_through", "bool", False),
    _p("overlay/visible", "bool", True),
    # Global hotkeys
    _p("hotkeys/toggle_visible", "str", "Ctrl+Alt+H"),
    _p("hotkeys/toggle_click_through", "str", "Ctrl+Alt+L"),
    _p("hotkeys/force_end", "str", "Ctrl+Alt+E"),
    # Transcripts
    _p("transcript/enabled", "bool", True),
    _p("transcript/retention_days", "int", 30, minimum=0, maximum=3650, doc="0 = keep forever"),
    # Start-up
    _p("app/start_on_launch", "bool", True),
    # Screen readers
    _p("accessibility/finals_only", "bool", False,
       doc="announce finished sentences only (braille-friendly), not connection changes"),
)

PREF_BY_KEY = {p.key: p for p in PREFS}


class SettingsStore(Protocol):
    def value(self, key: str) -> Any: ...          # None when absent
    def set_value(self, key: str, value: Any) -> None: ...
    def remove(self, key: str) -> None: ...


class DictStore:
    """In-memory store (tests, headless runs)."""

    def __init__(self, data: dict | None = None) -> None:
        self.data = dict(data or {})

    def value(self, key):
        return self.data.get(key)

    def set_value(self, key, value):
        self.data[key] = value

    def remove(self, key):
        self.data.pop(key, None)


class Settings:
    """Typed, validated view over a store. Reads never raise; writes validate."""

    def __init__(self, store: SettingsStore) -> None:
        self.store = store
        self.warnings: list[str] = []

    def get(self, key: str) -> Any:
        pref = PREF_BY_KEY[key]
        raw = self.store.value(key)
        if raw is None:
            return pref.default
        try:
            return pref.coerce(raw)
        except (ValueError, TypeError) as exc:
            message = f"Setting {key} had an unusable value ({exc}); using the default."
            if message not in self.warnings:   # warn once, not on every read
                log.warning(message)
                self.warnings.append(message)
            return pref.default

    def set(self, key: str, value: Any) -> None:
        pref = PREF_BY_KEY[key]
        typed = pref.coerce(value)
        self.store.set_value(key, list(typed) if pref.kind == "list" else typed)

    def reset(self, keys: Iterable[str] | None = None) -> None:
        for key in keys if keys is not None else PREF_BY_KEY:
            self.store.remove(key)

    def snapshot(self) -> dict[str, Any]:
        return {p.key: self.get(p.key) for p in PREFS}


# --- Added by "settings": page grouping, validation helpers, SessionConfig from preferences ------

#: Which preferences each settings page edits (the dialog's load/save/restore_defaults contract
#: works on these groups). Keys not listed here (overlay geometry, hotkeys, ...) are edited elsewhere.
PAGE_KEYS: dict[str, tuple[str, ...]] = {
    "connection": ("engine/engine", "connection/protocol", "connection/region",
                   "connection/server_url", "connection/auth_mode", "connection/token_url",
                   "connection/speech_model", "connection/encoding", "connection/sample_rate",
                   "connection/chunk_ms"),
    "vocabulary": ("recognition/vocabulary",),
    "silence": ("recognition/silence_ms",),
    "audio": ("audio/source", "audio/mic_device", "audio/system_device"),
    "appearance": tuple(p.key for p in PREFS
                        if p.key.startswith(("appearance/", "captions/"))),
    "general": ("app/start_on_launch", "transcript/enabled", "transcript/retention_days",
                "hotkeys/toggle_visible", "hotkeys/toggle_click_through", "hotkeys/force_end",
                "accessibility/finals_only"),
}

#: Keys whose change needs a new recognition session (the controller restarts it on apply).
RESTART_KEYS: frozenset[str] = frozenset(PAGE_KEYS["connection"] + PAGE_KEYS["audio"])


def defaults(keys: Iterable[str]) -> dict[str, Any]:
    return {k: PREF_BY_KEY[k].default for k in keys}


def validation_error(key: str, value: Any) -> str | None:
    """``None`` when ``value`` is acceptable for ``key``, else a sentence saying why not."""
    try:
        PREF_BY_KEY[key].coerce(value)
    except (ValueError, TypeError) as exc:
        return f"{key}: {exc}"
    return None


def _optional_url(text: str) -> str | None:
    text = (text or "").strip()
    return text or None


def session_config_from(values: dict[str, Any], *, engine: str = "assemblyai"):
    """A ``SessionConfig`` from preference values (a ``snapshot()`` or a dialog's pending values).

    ``engine`` is the resolved engine ("assemblyai" or "local"); the chunk size is clamped into
    the chosen protocol's frame limits so a saved value never makes a session invalid.
    """
    from app.core.session_config import CHUNK_LIMITS_MS, SessionConfig  # core, no cycle

    def get(key):
        return values.get(key, PREF_BY_KEY[key].default)

    protocol = get("connection/protocol")
    lo, hi = CHUNK_LIMITS_MS[protocol]
    return SessionConfig(
        engine=engine,
        protocol=protocol,
        region=get("connection/region"),
        server_url=_optional_url(get("connection/server_url")),
        auth_mode=get("connection/auth_mode"),
        token_url=_optional_url(get("connection/token_url")),
        speech_model=get("connection/speech_model") or PREF_BY_KEY["connection/speech_model"].default,
        encoding=get("connection/encoding"),
        sample_rate=int(get("connection/sample_rate")),
        chunk_ms=max(lo, min(hi, int(get("connection/chunk_ms")))),
        vocabulary=tuple(get("recognition/vocabulary")),
        silence_ms=int(get("recognition/silence_ms")),
    )
