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

from app.core import silence
from app.core.session_config import AUTH_MODES, ENCODINGS, ENGINES, PROTOCOLS, REGIONS

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
    # What a change does to running captions: "restart" (a new run), "live" (sent to the running
    # sessions) or "view" (the overlay or the app only, or the next run; captions go on untouched).
    applies: str = "view"

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
    _p("engine/engine", "choice", "auto", choices=("auto",) + ENGINES, applies="restart",
       doc="auto = AssemblyAI when a key or token broker is configured, else the offline engine"),
    _p("connection/protocol", "choice", "v3", choices=PROTOCOLS, applies="restart"),
    _p("connection/region", "choice", "us", choices=REGIONS, applies="restart"),
    _p("connection/server_url", "str", "", applies="restart"),
    _p("connection/auth_mode", "choice", "key", choices=AUTH_MODES, applies="restart"),
    _p("connection/token_url", "str", "", applies="restart"),
    _p("connection/allow_insecure", "bool", False, applies="restart",
       doc="allow unencrypted http:// and ws:// to hosts other than this computer"),
    _p("connection/speech_model", "str", "universal-streaming-english", applies="restart"),
    _p("connection/encoding", "choice", "pcm_s16le", choices=ENCODINGS, applies="restart"),
    _p("connection/sample_rate", "int", 16000, minimum=8000, maximum=48000, applies="restart"),
    _p("connection/chunk_ms", "int", 100, minimum=50, maximum=2000, applies="restart",
       doc="a saved value is clamped to the protocol's frame limits when captions start"),
    # Recognition
    _p("recognition/vocabulary", "list", (), applies="live"),
    _p("recognition/silence_ms", "int", silence.DEFAULT_MS, minimum=silence.MIN_MS,
       maximum=silence.MAX_MS, applies="live"),
    _p("recognition/speaker_labels", "bool", False, applies="restart"),
    _p("recognition/max_speakers", "int", 0, applies="restart", minimum=0, maximum=10,
       doc="0 = no cap"),
    _p("recognition/languages", "list", (), applies="restart",
       doc="language codes; empty = the model's default"),
    _p("recognition/language_detection", "bool", False, applies="restart"),
    _p("recognition/prompt", "str", "", applies="restart",
       doc="meeting context for the Pro models: topic, names"),
    _p("recognition/mode", "choice", "", applies="restart",
       choices=("", "min_latency", "balanced", "max_accuracy"), doc="empty = the model's default"),
    _p("recognition/voice_focus", "choice", "", applies="restart",
       choices=("", "near-field", "far-field")),
    _p("recognition/filter_profanity", "bool", False, applies="restart"),
    _p("recognition/inactivity_timeout_s", "int", 0, applies="restart", minimum=0, maximum=3600,
       doc="0 = none; otherwise 5-3600 s (KeepAlive holds a silent source's session open)"),
    _p("recognition/heartbeat", "bool", True, applies="restart",
       doc="ask for Heartbeats: say when the service lags"),
    # Live translation (AssemblyAI LLM Gateway, v3 Pro models)
    _p("translation/target", "str", "", applies="restart",
       doc="language name or code to translate captions into; empty = off"),
    _p("translation/show", "choice", "both", choices=("both", "translation"), applies="restart",
       doc="both = the original with its translation under it; translation = the translation only"),
    _p("translation/model", "str", "", applies="restart",
       doc="LLM model; empty = gemini-2.5-flash-lite"),
    _p("translation/context", "str", "", applies="restart",
       doc="one line for the translator: names, a glossary"),
    # Audio
    _p("audio/source", "choice", "mic", choices=("mic", "system", "both"), applies="restart"),
    _p("audio/mic_device", "str", "", applies="restart", doc="empty = follow the system default"),
    _p("audio/system_device", "str", "", applies="restart",
       doc="empty = monitor of the default output"),
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
    # Global hotkeys. Windows reads Ctrl+Alt as AltGr, so Ctrl+Alt(+Shift)+letter would steal
    # characters such as € or ł; no keyboard layout types a character with an F-key. Shift
    # keeps clear of Ctrl+Alt+F1..F12, which switch virtual terminals on Linux.
    _p("hotkeys/toggle_visible", "str", "Ctrl+Alt+Shift+F9"),
    _p("hotkeys/toggle_click_through", "str", "Ctrl+Alt+Shift+F10"),
    _p("hotkeys/force_end", "str", "Ctrl+Alt+Shift+F11"),
    # Transcripts
    _p("transcript/enabled", "bool", True),
    _p("transcript/retention_days", "int", 30, minimum=0, maximum=3650, doc="0 = keep forever"),
    # Start-up
    _p("app/start_on_launch", "bool", True),
    # New-version check: off until the user says yes (asked once, on first run)
    _p("updates/check", "bool", False, doc="read the latest release tag once a day"),
    _p("updates/asked", "bool", False),
    _p("updates/last_check", "int", 0, minimum=0, doc="seconds since the epoch; 0 = never"),
    # Sharing: the caption page (OBS, phones in the room) and caption targets
    _p("sharing/serve", "bool", False, doc="serve the caption page while captioning"),
    _p("sharing/lan", "bool", False, doc="reachable from the local network (access token required)"),
    _p("sharing/port", "int", 8765, minimum=1024, maximum=65535),
    _p("sharing/zoom_url", "str", "", doc="Zoom meeting caption API token URL"),
    _p("sharing/youtube_url", "str", "", doc="YouTube Live caption ingestion URL"),
    _p("sharing/webhook_url", "str", "", doc="receives each final as JSON"),
    _p("sharing/caption_lang", "str", "en-US", doc="Zoom's lang parameter, language-COUNTRY"),
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


#: Which preferences each settings page edits (the dialog's load/save/restore_defaults contract
#: works on these groups). Keys not listed here (overlay geometry, hotkeys, ...) are edited elsewhere.
PAGE_KEYS: dict[str, tuple[str, ...]] = {
    "connection": ("engine/engine", "connection/protocol", "connection/region",
                   "connection/server_url", "connection/auth_mode", "connection/token_url",
                   "connection/speech_model", "connection/encoding", "connection/sample_rate",
                   "connection/chunk_ms", "connection/allow_insecure"),
    "vocabulary": ("recognition/vocabulary",),
    "silence": ("recognition/silence_ms",),
    "recognition": ("recognition/speaker_labels",
                    "recognition/max_speakers", "recognition/languages",
                    "recognition/language_detection", "recognition/prompt", "recognition/mode",
                    "recognition/voice_focus", "recognition/filter_profanity",
                    "recognition/inactivity_timeout_s", "recognition/heartbeat"),
    "audio": ("audio/source", "audio/mic_device", "audio/system_device"),
    "appearance": tuple(p.key for p in PREFS
                        if p.key.startswith(("appearance/", "captions/"))),
    "general": ("app/start_on_launch", "transcript/enabled", "transcript/retention_days",
                "hotkeys/toggle_visible", "hotkeys/toggle_click_through", "hotkeys/force_end",
                "updates/check", "accessibility/finals_only"),
}

PAGE_KEYS["translation"] = tuple(p.key for p in PREFS if p.key.startswith("translation/"))
PAGE_KEYS["sharing"] = tuple(p.key for p in PREFS if p.key.startswith("sharing/"))

#: Not a preference, but a change the settings dialog reports like one: the saved API key.
API_KEY_CHANGED = "credentials/api_key"

#: The one list of changes that need a new run (the running sessions cannot take them live).
RESTART_KEYS: frozenset[str] = frozenset(
    {p.key for p in PREFS if p.applies == "restart"} | {API_KEY_CHANGED})
#: Changes the running sessions take as they are (v2 message / v3 UpdateConfiguration).
LIVE_KEYS: frozenset[str] = frozenset(p.key for p in PREFS if p.applies == "live")


def defaults(keys: Iterable[str]) -> dict[str, Any]:
    return {k: PREF_BY_KEY[k].default for k in keys}

