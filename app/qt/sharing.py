"""Caption sharing in the app: a thin Qt adapter over ``app.core.sharing.runner.ShareRunner``.

Feeds the controller's captions to the share and follows saved settings. The runner calls back
from its own threads; those calls are queued to this object and re-emitted here on the GUI
thread, so every receiver (widgets, the tray, plain functions) runs on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal, Slot

from app.core.settings import Settings
from app.core.sharing.runner import ShareRunner

RESTYLE_PREFIXES = ("sharing/", "appearance/", "captions/")
ARG_OVERRIDES = ("serve", "zoom_url", "youtube_url", "webhook_url", "caption_lang")


class ShareBridge(QObject):
    changed = Signal()              # link, running state or error changed
    status = Signal(str, str)       # (target name, status text), e.g. ("Zoom", "Zoom: sending")
    problem = Signal(str)           # a target started failing (once until it recovers)
    _from_worker = Signal(str, str, str)

    def __init__(self, settings: Settings, controller, args=None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._from_worker.connect(self._relay, Qt.ConnectionType.QueuedConnection)
        overrides = {name: getattr(args, name, None) for name in ARG_OVERRIDES}
        self.runner = ShareRunner(
            on_change=lambda: self._from_worker.emit("changed", "", ""),
            on_status=lambda name, text: self._from_worker.emit("status", name, text),
            on_problem=lambda text: self._from_worker.emit("problem", text, ""),
            overrides=overrides)
        # Every event of the run, as --json has them (hand-over only: never blocks).
        controller.caption_event.connect(self.runner.on_event)
        controller.settings_applied.connect(self._on_applied)
        controller.sharing = self    # the Sharing settings page finds the running link here

    def start(self) -> None:
        self.runner.apply(self.settings.snapshot())

    def shutdown(self) -> None:
        self.runner.shutdown()

    @Slot(str, str, str)
    def _relay(self, kind: str, a: str, b: str) -> None:
        if kind == "changed":
            self.changed.emit()
        elif kind == "status":
            self.status.emit(a, b)
        else:
            self.problem.emit(a)

    def _on_applied(self, keys) -> None:
        if any(str(k).startswith(RESTYLE_PREFIXES) for k in keys or ()):
            self.runner.apply(self.settings.snapshot())
