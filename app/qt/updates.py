"""The new-version check in the GUI: the first-run question, then at most one check a day.

The check itself (``app.core.update_check``) runs on a daemon thread; its result comes back to
the GUI thread through a queued signal, so the GUI never waits on the network.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

from app import APP_NAME
from app.core import update_check

log = logging.getLogger(__name__)

QUESTION = (f"Should {APP_NAME} tell you when a new version is out?\n\n"
            "Once a day it would read the latest release number from the project's release page. "
            "Nothing else is sent. You can change this under Settings → General.")


class UpdateNotifier(QObject):
    """``start()`` asks once (first run) and checks when allowed and due; ``notify(title, text)``
    is called on the GUI thread when a newer release exists."""

    _finished = Signal(object)      # UpdateInfo or UpdateCheckError, from the worker thread

    def __init__(self, settings, notify: Callable[[str, str], None], *, check=update_check.check,
                 clock: Callable[[], float] = time.time, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._notify = notify
        self._check = check
        self._clock = clock
        self._question: QMessageBox | None = None
        self._worker: threading.Thread | None = None
        self.last_result = None
        self._finished.connect(self._on_finished)

    def start(self) -> None:
        if not self.settings.get("updates/asked"):
            self.ask()
        else:
            self.check_if_due()

    def ask(self) -> None:
        """Non-modal, so captions start and the overlay stays usable while it is open."""
        box = QMessageBox(QMessageBox.Icon.Question, APP_NAME, QUESTION,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setModal(False)
        # Only a clicked button is an answer: quitting while the question is open closes it too,
        # and then it is asked again next time. The box stays referenced (hidden) afterwards:
        # dropping it from inside its own signal would delete it while Qt still uses it.
        box.buttonClicked.connect(
            lambda button: self.answer(box.standardButton(button) == QMessageBox.StandardButton.Yes))
        self._question = box
        box.show()

    def answer(self, yes: bool) -> None:
        self.settings.set("updates/asked", True)
        self.settings.set("updates/check", bool(yes))
        self.check_if_due()

    def check_if_due(self) -> bool:
        """Start a check on a worker thread when enabled and due; True when one started."""
        if not self.settings.get("updates/check"):
            return False
        if self._worker is not None and self._worker.is_alive():
            return False
        now = self._clock()
        if not update_check.is_due(self.settings.get("updates/last_check"), now):
            return False
        self.settings.set("updates/last_check", int(now))
        self._worker = threading.Thread(target=self._run, name="update-check", daemon=True)
        self._worker.start()
        return True

    def _run(self) -> None:
        try:
            result = self._check()
        except update_check.UpdateCheckError as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 - a bug here must not take the app down
            log.exception("new-version check failed")
            result = update_check.UpdateCheckError(f"The check failed ({type(exc).__name__}).")
        self._finished.emit(result)

    def _on_finished(self, result) -> None:
        self.last_result = result
        if isinstance(result, update_check.UpdateCheckError):
            log.info("New-version check: %s", result)
        elif result.newer:
            self._notify(f"{APP_NAME} {result.latest} is out", result.message())
        else:
            log.info("New-version check: %s is the latest release", result.current)
