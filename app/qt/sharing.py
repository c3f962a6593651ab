"""Caption sharing in the app: a thin Qt adapter over ``app.core.sharing.runner.ShareRunner``.

Feeds the controller's captions to the share, follows saved settings, and re-emits the
runner's callbacks (worker/loop threads) as signals, which Qt delivers on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app.core.settings import Settings
from app.core.sharing.runner import ShareRunner

RESTYLE_PREFIXES = ("sharing/", "appearance/", "captions/")
ARG_OVERRIDES = ("serve", "zoom_url", "youtube_url", "webhook_url", "caption_lang")


class ShareBridge(QObject):
    changed = Signal()              # link, running state or error changed
    status = Signal(str, str)       # (target name, status text), e.g. ("Zoom", "Zoom: sending")
    problem = Signal(str)           # a target started failing (once until it recovers)

    def __init__(self, settings: Settings, controller, args=None, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        overrides = {name: getattr(args, name, None) for name in ARG_OVERRIDES}
        self.runner = ShareRunner(on_change=self.changed.emit, on_status=self.status.emit,
                                  overrides=overrides, on_problem=self.problem.emit)
        controller.partial.connect(self.runner.on_event)
        controller.final.connect(self.runner.on_event)
        controller.settings_applied.connect(self._on_applied)
        controller.sharing = self    # the Sharing settings page finds the running link here

    def start(self) -> None:
        self.runner.apply(self.settings.snapshot())

    def shutdown(self) -> None:
        self.runner.shutdown()

    def _on_applied(self, keys) -> None:
        if any(str(k).startswith(RESTYLE_PREFIXES) for k in keys or ()):
            self.runner.apply(self.settings.snapshot())
