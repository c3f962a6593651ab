"""The GUI-thread face of ``CaptionService``: widgets call it, its signals tell them what happened.

It decides nothing. The service owns the run (settings → plan, key, sources, pipelines,
transcript, status, latency, restart rules); this adapter hands the service a ``post`` that runs
work on the GUI thread (a queued signal), and turns the service's reports into signals, so every
receiver runs on the GUI thread. Stopping never blocks: the run ends with ``running_changed(False)``
once its last finals were delivered; only quitting waits, bounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, Signal, Slot

from app.core.credentials import Secret
from app.core.events import Final, Gap, Partial, Revision, Translation
from app.core.service import CaptionService, RunOutcome, ServiceListener
from app.core.settings import Settings
from app.core.status import Status



class Controller(QObject):
    partial = Signal(str, object)          # (source label, Partial)
    final = Signal(str, object)            # (source label, Final)
    gap = Signal(str, object)              # (source label, Gap): audio that was not captioned
    revision = Signal(str, object)         # (source label, Revision): a final's better speaker
    translation = Signal(str, object)      # (source label, Translation): under its final
    # What the overlay shows of translations for this run: "" (not translating), "both",
    # "translation" (translation only). Sent when a run starts.
    translation_mode = Signal(str)
    # Every event of the run: (source label, Event, latency ms or None, speaker display name
    # or None), for what re-publishes the whole stream (the caption page, caption targets).
    caption_event = Signal(str, object, object, object)
    speakers_renamed = Signal(str, str)    # (label, name): "A is Dana", for this session
    status_changed = Signal(object)        # app.core.status.Status
    error = Signal(str)                    # something the user must know, plain words
    running_changed = Signal(bool)
    levels_changed = Signal(object)        # {label: app.core.audio.level.Level}, when a bar moves
    sources_changed = Signal(object)       # [label, ...] of the running sources
    settings_applied = Signal(object)      # set of setting keys saved by the settings dialog
    style_preview = Signal(object)         # dict of unsaved appearance values, or None

    _posted = Signal(object)               # a callable to run on the GUI thread

    def __init__(self, settings: Settings, *, overrides: dict[str, Any] | None = None,
                 transcript_dir: Path | str | None = None, parent: QObject | None = None,
                 **service_options) -> None:
        super().__init__(parent)
        self.settings = settings
        self._posted.connect(self._run_posted, Qt.QueuedConnection)
        self.service = CaptionService(settings, overrides, listener=_Relay(self),
                                      post=self._posted.emit, transcript_dir=transcript_dir,
                                      **service_options)
        # Woken only when the service has something timed to do (a notice to fade): an open
        # microphone in a quiet room costs the GUI thread nothing.
        self._tick_timer = QTimer(self, singleShot=True)
        self._tick_timer.timeout.connect(self._tick)

    # ---- what widgets read -------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.service.running

    @property
    def status(self) -> Status:
        return self.service.status

    @property
    def status_model(self):
        return self.service.status_model

    @property
    def transcript_path(self) -> Path | None:
        return self.service.transcript_path

    @property
    def transcript_dir(self) -> Path:
        return self.service.transcript_dir

    @property
    def live_record(self):
        """The sitting's finals and gaps (History shows them, opened at any time)."""
        return self.service.live_record

    @property
    def names(self):
        """Speaker names of the running session (the overlay and history show them)."""
        return self.service.names

    @property
    def config(self):
        plan = self.service.plan
        return plan.config if plan is not None else None

    # ---- what widgets ask for ----------------------------------------------------------------
    def key_refused(self) -> bool:
        return self.service.key_refused()

    def start(self) -> None:
        self.service.start()

    def stop(self) -> None:
        self.service.stop()

    def restart(self) -> None:
        self.service.restart()

    def force_end(self) -> None:
        self.service.force_end()

    def set_silence_threshold(self, ms: int) -> None:
        self.service.set_silence_threshold(ms)

    def set_vocabulary(self, terms: Iterable[str]) -> None:
        self.service.set_vocabulary(terms)

    def set_session_api_key(self, key: Secret | None) -> None:
        self.service.set_session_api_key(key)

    def use_overrides(self, overrides: dict) -> None:
        """Command-line options handed over by a second launch: captions (re)start with them."""
        self.service.use_overrides(overrides)

    def speaker_renamed(self, label: str, name: str) -> None:
        """Rename a speaker for this session ("A is Dana"), from the overlay's menu or history."""
        self.service.rename_speaker(label, name)

    def apply_settings(self, changed_keys: set[str]) -> None:
        keys = set(changed_keys or ())
        self.service.apply_settings(keys)
        self.settings_applied.emit(keys)

    def preview_style(self, values: dict | None) -> None:
        self.style_preview.emit(dict(values) if values else None)

    def shutdown(self) -> None:
        """Application quit: stop and wait (bounded) so the last finals are saved."""
        self._tick_timer.stop()
        self.service.shutdown()
        QCoreApplication.sendPostedEvents(self)     # deliver what the workers handed over

    # ---- plumbing ----------------------------------------------------------------------------
    @Slot(object)
    def _run_posted(self, fn: Callable[[], None]) -> None:
        fn()

    def _tick(self) -> None:
        self.service.tick()
        self._arm_tick()

    def _arm_tick(self) -> None:
        due = self.service.next_tick_s()
        if due is None:
            return
        ms = int(due * 1000) + 1
        if not self._tick_timer.isActive() or self._tick_timer.remainingTime() > ms:
            self._tick_timer.start(ms)


class _Relay(ServiceListener):
    """The service's reports as the controller's signals (already on the GUI thread)."""

    wants_levels = True

    def __init__(self, controller: Controller) -> None:
        self.c = controller

    def caption_event(self, label, event, latency_ms):
        speaker = self.c.names.display(event.speaker, label) \
            if isinstance(event, (Final, Revision)) else None
        self.c.caption_event.emit(label, event, latency_ms, speaker)
        self.c._arm_tick()          # a final may wait for its translation; a partial clears a notice
        if isinstance(event, Partial):
            self.c.partial.emit(label, event)
        elif isinstance(event, Final):
            self.c.final.emit(label, event)
        elif isinstance(event, Gap):
            self.c.gap.emit(label, event)
        elif isinstance(event, Revision):
            self.c.revision.emit(label, event)
        elif isinstance(event, Translation):
            self.c.translation.emit(label, event)

    def speaker_renamed(self, label, name):
        self.c.speakers_renamed.emit(label, name)

    def status_changed(self, status):
        self.c.status_changed.emit(status)
        self.c._arm_tick()

    def levels_changed(self, levels):
        self.c.levels_changed.emit(levels)

    def problem(self, message, from_captions=False):
        self.c.error.emit(message)

    def run_started(self, labels):
        plan = self.c.service.plan
        translating = plan is not None and plan.translate_to
        self.c.translation_mode.emit(self.c.settings.get("translation/show") if translating else "")
        self.c.sources_changed.emit(list(labels))
        self.c.running_changed.emit(True)

    def run_ended(self, outcome: RunOutcome):
        self.c._tick_timer.stop()
        self.c.levels_changed.emit({})
        self.c.running_changed.emit(False)
