"""The GUI-thread facade every widget talks to: start/stop captions, live changes, status.

It builds the pieces owned by other modules — audio sources (``app.core.audio.devices``), speech
sessions (``app.core.session_factory``), the threaded runner (``app.qt.session_worker``) and the
transcript (``app.core.transcript``) — and relays what comes back as its own signals. The runner
delivers its events on the GUI thread, so every receiver of these signals runs there too
(architecture rule 1). The API key is read from the keyring here, on the GUI thread (rule 7), and
handed to the session factory; it is never stored on disk or logged.

Collaborators are injectable (tests pass fakes); by default the real modules are imported lazily.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterable

from PySide6.QtCore import QCoreApplication, QObject, QTimer, Signal

from app.core.credentials import KeyringUnavailable, Secret, load_api_key
from app.core.events import Final, Partial, Recovery, Revision, StreamError
from app.core.session_config import CHUNK_LIMITS_MS, SessionConfig
from app.core import recognition_options
from app.core.settings import Settings
from app.core.speakers import SpeakerNames
from app.core.status import Status, StatusModel

log = logging.getLogger(__name__)

LEVEL_POLL_MS = 200   # 5 Hz is smooth enough for a small meter; each poll costs GUI-thread time

# Settings whose change needs a new session (the running one cannot change them live).
# A changed key ("credentials/api_key") restarts too: a new key is used at once.
RESTART_PREFIXES = ("engine/", "connection/", "audio/", "credentials/")

# CLI flag (argparse dest) → the setting it overrides for this run.
OVERRIDE_KEYS = {
    "engine": "engine/engine", "protocol": "connection/protocol", "region": "connection/region",
    "server": "connection/server_url", "auth_mode": "connection/auth_mode",
    "token_url": "connection/token_url", "speech_model": "connection/speech_model",
    "encoding": "connection/encoding", "sample_rate": "connection/sample_rate",
    "chunk_ms": "connection/chunk_ms", "vocabulary": "recognition/vocabulary",
    "silence_ms": "recognition/silence_ms", "source": "audio/source",
}


def overrides_from_args(args) -> dict[str, Any]:
    """The command-line values that were actually given (None/absent ones are left out)."""
    out: dict[str, Any] = {}
    for dest in list(OVERRIDE_KEYS) + ["transcript_dir"]:
        value = getattr(args, dest, None)
        if value is None:
            continue
        if dest == "vocabulary" and isinstance(value, str):
            value = tuple(t.strip() for t in value.split(",") if t.strip())
        out[dest] = value
    return out


class Controller(QObject):
    partial = Signal(str, object)          # (source label, Partial)
    final = Signal(str, object)            # (source label, Final)
    revision = Signal(str, object)         # (source label, Revision): a final's better speaker
    speakers_renamed = Signal(str, str)    # (label, name): "A is Dana", for this session
    status_changed = Signal(object)        # app.core.status.Status
    error = Signal(str)                    # something the user must know, plain words
    running_changed = Signal(bool)
    # Added by "overlay" (beyond apis.md):
    levels_changed = Signal(object)        # {label: app.core.audio.level.Level}, ~5 per second
    sources_changed = Signal(object)       # [label, ...] of the running sources
    settings_applied = Signal(object)      # set of setting keys saved by the settings dialog
    style_preview = Signal(object)         # dict of unsaved appearance values, or None

    def __init__(self, settings: Settings, *, overrides: dict[str, Any] | None = None,
                 transcript_dir: Path | str | None = None,
                 session_class: Callable | None = None,
                 open_sources: Callable | None = None,
                 create_session: Callable | None = None,
                 resolve_engine: Callable | None = None,
                 key_loader: Callable[[], Secret | None] = load_api_key,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.overrides = dict(overrides or {})
        if transcript_dir is None and self.overrides.get("transcript_dir"):
            transcript_dir = self.overrides["transcript_dir"]
        self._transcript_dir = Path(transcript_dir) if transcript_dir else None
        self._session_class = session_class
        self._open_sources = open_sources
        self._create_session = create_session
        self._resolve_engine = resolve_engine
        self._key_loader = key_loader
        self._session_key: Secret | None = None
        self._runner = None                 # CaptionSession while running
        self._writer = None                 # TranscriptWriter while running
        self.names = SpeakerNames()         # speaker names of the running session (overlay, history)
        self._labels: list[str] = []
        self._stopping = False
        self.config: SessionConfig | None = None
        self.status_model = StatusModel(silence_ms=self._get("recognition/silence_ms"))
        self._level_timer = QTimer(self, interval=LEVEL_POLL_MS)
        self._level_timer.timeout.connect(self._poll_levels)

    # ---- properties ---------------------------------------------------------------------------
    @property
    def transcript_dir(self) -> Path:
        if self._transcript_dir is None:
            from app.core.transcript import default_transcript_dir
            self._transcript_dir = default_transcript_dir()
        return self._transcript_dir

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def status(self) -> Status:
        return self.status_model.status

    @property
    def transcript_path(self) -> Path | None:
        return getattr(self._writer, "path", None)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._runner is not None:
            return
        self._publish(self.status_model.starting([]))
        try:
            key = self._api_key()
            config = self.build_config(key)
            spec = self.source_spec()
            sources = self._sources_opener()(spec, config.sample_rate, config.chunk_ms)
        except Exception as exc:  # noqa: BLE001 - every failure here is shown, none crashes the app
            self._fail(_plain(exc))
            return
        self.config = config
        self.names.reset()
        self._labels = [getattr(s, "label", "") or "" for s in sources]
        # With both sources and speaker labels the microphone is the user ("You").
        self.names.mic_is_you = bool(config.speaker_labels and len(self._labels) > 1
                                     and "mic" in self._labels)
        factory = self._session_factory(config, key)
        runner_class = self._session_class or _default_session_class()
        runner = runner_class(sources, factory, parent=self)
        # Wire everything before the worker threads start (architecture rule 2).
        runner.event.connect(self._on_event)
        runner.finished.connect(self._on_finished)
        self._runner = runner
        self._stopping = False
        self._open_transcript(config, spec)
        self._publish(self.status_model.starting(self._labels))
        self.sources_changed.emit(list(self._labels))
        try:
            runner.start()
        except Exception as exc:  # noqa: BLE001
            self._runner = None
            self._close_transcript()
            self._fail(_plain(exc))
            return
        self._level_timer.start()
        self.running_changed.emit(True)

    def stop(self) -> None:
        """Stop captions; finals still in flight are delivered and saved first."""
        runner = self._runner
        if runner is None:
            return
        self._stopping = True
        runner.stop()          # returns after the threads are joined, finals flushed
        # Finals the worker emitted just before it ended may still be queued for this thread:
        # deliver them now so they reach the overlay and the transcript before it is closed.
        QCoreApplication.sendPostedEvents()
        self._finish()

    def restart(self) -> None:
        was_running = self._runner is not None
        self.stop()
        if was_running or self.status.state.value == "error":
            self.start()

    def force_end(self) -> None:
        if self._runner is not None:
            self._runner.force_end()

    def set_silence_threshold(self, ms: int) -> None:
        ms = int(ms)
        if self._runner is not None:
            self._runner.set_silence_threshold(ms)
        self._publish(self.status_model.set_silence(ms))

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        if self._runner is not None:
            self._runner.set_vocabulary(list(terms))

    def apply_settings(self, changed_keys: set[str]) -> None:
        keys = set(changed_keys or ())
        # The user's newest choice beats a command-line value given at launch.
        for dest, key in OVERRIDE_KEYS.items():
            if key in keys:
                self.overrides.pop(dest, None)
        restart = any(k.startswith(RESTART_PREFIXES) for k in keys)
        failed = self.status.state.value == "error"
        if restart and (self._runner is not None or failed):
            self.restart()  # also retries after a failure the new settings may have fixed
        elif self._runner is not None:
            if "recognition/silence_ms" in keys:
                self.set_silence_threshold(self._get("recognition/silence_ms"))
            if "recognition/vocabulary" in keys:
                self.set_vocabulary(self._get("recognition/vocabulary"))
        if "recognition/silence_ms" in keys:
            self._publish(self.status_model.set_silence(self._get("recognition/silence_ms")))
        self.settings_applied.emit(keys)

    def preview_style(self, values: dict | None) -> None:
        self.style_preview.emit(dict(values) if values else None)

    def set_session_api_key(self, key: Secret | None) -> None:
        """A key for this run only (no usable keyring); never saved. Restarts to use it."""
        self._session_key = key if key else None
        if self._runner is not None or self.status.state.value == "error":
            self.restart()

    def shutdown(self) -> None:
        """Application quit: stop cleanly (finals saved)."""
        self.stop()
        self._level_timer.stop()

    # ---- building blocks ----------------------------------------------------------------------
    def _get(self, key: str):
        for dest, k in OVERRIDE_KEYS.items():
            if k == key and dest in self.overrides:
                value = self.overrides[dest]
                return "" if value is None else value
        return self.settings.get(key)

    def source_spec(self) -> str:
        if "source" in self.overrides:
            return str(self.overrides["source"])
        kind = self.settings.get("audio/source")
        if kind == "mic":
            name = self.settings.get("audio/mic_device")
        elif kind == "system":
            name = self.settings.get("audio/system_device")
        else:
            return "both"
        return f"{kind}:{name}" if name else kind

    def build_config(self, key: Secret | None) -> SessionConfig:
        protocol = self._get("connection/protocol")
        token_url = self._get("connection/token_url") or None
        auth_mode = self._get("connection/auth_mode")
        requested = self._get("engine/engine")
        requested = None if requested in ("auto", "", None) else requested
        resolve = self._resolve_engine or _default_resolve_engine()
        engine = resolve(requested, key is not None,
                         token_url if auth_mode == "broker" else None)
        lo, hi = CHUNK_LIMITS_MS[protocol]
        chunk = min(max(int(self._get("connection/chunk_ms")), lo), hi)
        config = SessionConfig(
            engine=engine, protocol=protocol, region=self._get("connection/region"),
            server_url=self._get("connection/server_url") or None, auth_mode=auth_mode,
            token_url=token_url, speech_model=self._get("connection/speech_model"),
            encoding=self._get("connection/encoding"), sample_rate=int(self._get("connection/sample_rate")),
            chunk_ms=chunk, vocabulary=tuple(self._get("recognition/vocabulary")),
            silence_ms=int(self._get("recognition/silence_ms")))
        # Options this model or engine lacks are shown disabled on the Recognition page; saved
        # ones are left out of the run (logged), so captions still start.
        config, notes = recognition_options.apply(config, self._get)
        for note in notes:
            log.info("%s", note)
        config.validate()
        if config.engine == "assemblyai" and config.auth_mode != "broker" and key is None:
            raise ValueError("No AssemblyAI API key is set. Add one in Settings → Connection, set "
                             "ASSEMBLYAI_API_KEY, or choose the offline engine.")
        return config

    def _api_key(self) -> Secret | None:
        if self._session_key is not None:
            return self._session_key
        if self._get("connection/auth_mode") == "broker":
            return None  # the broker hands out tokens; no key on this machine
        try:
            return self._key_loader()
        except KeyringUnavailable as exc:
            requested = self._get("engine/engine")
            if requested == "assemblyai":
                raise
            log.warning("%s", exc)
            return None  # "auto" falls back to the offline engine

    def _session_factory(self, config: SessionConfig, key: Secret | None):
        create = self._create_session or _default_create_session()
        token_url = config.token_url if config.auth_mode == "broker" else None

        def factory(listener):
            return create(config, listener, api_key=key, token_url=token_url)

        return factory

    def _sources_opener(self):
        if self._open_sources is None:
            from app.core.audio.devices import open_sources
            self._open_sources = open_sources
        return self._open_sources

    def _open_transcript(self, config: SessionConfig, spec: str) -> None:
        if not self.settings.get("transcript/enabled"):
            return
        try:
            from app.core.transcript import TranscriptWriter, prune
            days = self.settings.get("transcript/retention_days")
            if days:
                prune(self.transcript_dir, days)
            protocol = "local" if config.engine == "local" else config.protocol
            self._writer = TranscriptWriter(self.transcript_dir, protocol=protocol, source=spec)
        except OSError as exc:
            self._writer = None
            self.error.emit(f"Captions are running but cannot be saved: {exc}")

    def _close_transcript(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError as exc:
                self.error.emit(f"The transcript could not be closed cleanly: {exc}")

    # ---- runner signals (GUI thread) ----------------------------------------------------------
    def speaker_renamed(self, label: str, name: str) -> None:
        """Rename a speaker for this session (from the overlay's menu or the history window);
        recorded in the transcript so exports use the name. A bad name is reported, not kept."""
        try:
            clean = self.names.rename(label, name)
        except ValueError as exc:
            self.error.emit(str(exc))
            return
        if self._writer is not None:
            self._writer.rename(label, clean)
        self.speakers_renamed.emit(label, clean)

    def _on_event(self, label: str, event) -> None:
        if self._writer is not None:
            self._writer.on_event(event, label)
        if isinstance(event, Partial):
            self.partial.emit(label, event)
        elif isinstance(event, Final):
            self.final.emit(label, event)
            runner = self._runner
            latency = runner.latency_ms(label, event) if runner is not None else None
            if latency is not None:
                self._publish(self.status_model.set_latency(latency))
        elif isinstance(event, Revision):
            self.revision.emit(label, event)
        elif isinstance(event, StreamError) and event.recovery in (Recovery.STOP, Recovery.BUG):
            self.error.emit(event.message)
        self._publish(self.status_model.on_event(label, event))

    def _on_finished(self) -> None:
        if self._runner is None or self._stopping:
            return  # stop() finishes up itself, after the last queued finals were delivered
        QCoreApplication.sendPostedEvents()  # events queued before "finished" come first
        self._finish()

    def _finish(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._level_timer.stop()
        self._close_transcript()
        fatal = getattr(runner, "fatal_error", None)
        if fatal is not None and not self._stopping:
            self._publish(self.status_model.failed(fatal.message))
        elif self.status.state.value != "error" or self._stopping:
            self._publish(self.status_model.stopped())
        self._stopping = False
        self.levels_changed.emit({})
        self.running_changed.emit(False)

    def _poll_levels(self) -> None:
        if self._runner is not None:
            self.levels_changed.emit(self._runner.levels())

    def _fail(self, message: str) -> None:
        self._publish(self.status_model.failed(message))
        self.error.emit(message)

    def _publish(self, status: Status) -> None:
        if self.status_model.changed:
            self.status_changed.emit(status)


def _plain(exc: Exception) -> str:
    error = getattr(exc, "error", None)          # SessionError carries a StreamError
    if isinstance(error, StreamError):
        return error.message
    text = str(exc).strip()
    return text or type(exc).__name__


def _default_session_class():
    from app.qt.session_worker import CaptionSession
    return CaptionSession


def _default_create_session():
    from app.core.session_factory import create_session
    return create_session


def _default_resolve_engine():
    from app.core.session_factory import resolve_engine
    return resolve_engine
