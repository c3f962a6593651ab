"""Settings dialog: pages on the left, OK / Apply / Cancel / Restore Defaults.

The dialog talks only to a controller-like object (``set_silence_threshold``, ``set_vocabulary``,
``apply_settings``, ``preview_style``, ``set_session_api_key``, ``status_changed``), so tests pass a
double. OK and Apply are disabled while any page has a problem (e.g. vocabulary over the limit).
Cancel (button, Escape or closing the window) reverts every live preview.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QListWidget,
                               QSizePolicy, QStackedWidget, QVBoxLayout)

from app import APP_NAME
from app.core.settings import Settings
from app.qt.settings_pages.api_key import ApiKeyPage
from app.qt.settings_pages.appearance import AppearancePage
from app.qt.settings_pages.audio import AudioPage
from app.qt.settings_pages.base import SettingsPage
from app.qt.settings_pages.connection import ConnectionPage
from app.qt.settings_pages.general import GeneralPage
from app.qt.settings_pages.recognition import RecognitionPage
from app.qt.settings_pages.sharing import SharingPage
from app.qt.settings_pages.silence import SilencePage
from app.qt.settings_pages.translation import TranslationPage
from app.qt.settings_pages.vocabulary import VocabularyPage

log = logging.getLogger(__name__)

PAGE_CLASSES = (ConnectionPage, ApiKeyPage, RecognitionPage, TranslationPage, VocabularyPage,
                SilencePage, AudioPage, AppearancePage, GeneralPage, SharingPage)


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, controller, parent=None) -> None:
        super().__init__(parent)
        # The platform adds " — Caption Overlay" (the application display name) itself.
        self.setWindowTitle("Settings")
        self.setAccessibleName(f"{APP_NAME} settings")
        self.settings = settings
        self.controller = controller
        self.pages: list[SettingsPage] = [cls(settings, controller) for cls in PAGE_CLASSES]
        (self.connection, self.api_key, self.recognition, self.translation, self.vocabulary,
         self.silence, self.audio, self.appearance, self.general, self.sharing) = self.pages
        self._closing = False
        self._status_connected = False

        self.nav = QListWidget()
        self.nav.setMaximumWidth(160)
        self.nav.setAccessibleName("Settings pages")
        self.stack = QStackedWidget()
        for page in self.pages:
            self.nav.addItem(page.title)
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.problem = QLabel()
        self.problem.setObjectName("dialogProblem")
        self.problem.setWordWrap(True)
        self.problem.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.problem.setStyleSheet("color: #c62828;")
        self.status = QLabel()
        self.status.setObjectName("dialogStatus")
        # A growing status message wraps instead of widening the dialog under the user's pointer.
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel | QDialogButtonBox.StandardButton.RestoreDefaults)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.cancel_button = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.defaults_button = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        self.defaults_button.setToolTip("Restore the defaults of the page shown (saved by OK or Apply)")

        body = QHBoxLayout()
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self.ok_button.clicked.connect(self.accept)
        self.apply_button.clicked.connect(self.apply)
        self.cancel_button.clicked.connect(self.reject)
        self.defaults_button.clicked.connect(self.restore_page_defaults)
        for page in self.pages:
            page.validity_changed.connect(self._update_buttons)
        # Pages that depend on the protocol follow the (unsaved) choice on the Connection page.
        self.connection.protocol_changed.connect(self.vocabulary.set_protocol)
        self.connection.protocol_changed.connect(self.silence.set_protocol)
        for page in (self.silence, self.vocabulary, self.audio):
            self.connection.engine_changed.connect(page.set_engine)
        self.api_key.values_provider = self.pending_values
        from app.qt.accessible_names import name_controls
        name_controls(self)
        self.recognition.values_provider = self.pending_values
        self.connection.protocol_changed.connect(lambda _p: self.recognition.refresh_context())
        # Translation follows the engine, protocol, region and model chosen on Connection, and
        # choosing a language switches a model without translation to one that has it.
        self.translation.values_provider = self.pending_values
        self.connection.protocol_changed.connect(lambda _p: self.translation.refresh_context())
        self.connection.engine_changed.connect(lambda _e: self.translation.refresh_context())
        self.connection.region.currentIndexChanged.connect(
            lambda *_: self.translation.refresh_context())
        self.connection.speech_model.editTextChanged.connect(
            lambda *_: self.translation.refresh_context())
        self.translation.speech_model_wanted.connect(self._use_speech_model)
        self._status_connected = False
        self.reload()
        self.nav.setCurrentRow(0)

    def reload(self) -> None:
        """Show the saved preferences (on creation, and when a closed dialog is shown again)."""
        self._closing = False
        self._connect_status()
        for page in self.pages:
            page.load()
        protocol = self.connection.current_protocol()
        self.vocabulary.set_protocol(protocol)
        self.silence.set_protocol(protocol)
        for page in (self.silence, self.vocabulary, self.audio):
            page.set_engine(self.connection.current_engine())
        self._update_buttons()
        damaged = list(getattr(self.settings.store, "warnings", ()))   # the file itself, with its copy
        if damaged or self.settings.warnings:
            self.problem.setText(" ".join(damaged) if damaged else
                                 "Some saved settings were unusable and were reset to defaults.")

    def showEvent(self, event) -> None:  # noqa: N802 — a dialog reopened after OK/Cancel
        if self._closing:
            self.reload()
        super().showEvent(event)

    def _connect_status(self) -> None:
        status_signal = getattr(self.controller, "status_changed", None)
        if status_signal is not None and not self._status_connected:
            status_signal.connect(self._on_status)
            self._status_connected = True

    # -- helpers -------------------------------------------------------------------------------
    def _use_speech_model(self, name: str) -> None:
        self.connection.speech_model.setEditText(name)
        self.recognition.refresh_context()

    def show_page(self, title: str) -> None:
        for row, page in enumerate(self.pages):
            if page.title == title:
                self.nav.setCurrentRow(row)

    def pending_values(self) -> dict:
        """Saved preferences overlaid with every page's unsaved edits."""
        values = self.settings.snapshot()
        for page in self.pages:
            values.update(page.values())
        return values

    def problems(self) -> list[tuple[SettingsPage, str]]:
        return [(page, page.problem()) for page in self.pages if page.problem()]

    def _update_buttons(self, *_args) -> None:
        problems = self.problems()
        ok = not problems
        self.ok_button.setEnabled(ok)
        self.apply_button.setEnabled(ok)
        self.problem.setText("" if ok else f"{problems[0][0].title}: {problems[0][1]}")

    def _on_status(self, status) -> None:
        summary = getattr(status, "summary", None)
        text = summary() if callable(summary) else getattr(status, "text", "")
        silence_ms = getattr(status, "silence_ms", None)
        if silence_ms is not None and "silence" not in str(text).lower():
            text = f"{text} · silence {silence_ms} ms"
        self.status.setText(str(text or ""))

    # -- OK / Apply / Cancel -------------------------------------------------------------------
    def restore_page_defaults(self) -> None:
        page = self.stack.currentWidget()
        if isinstance(page, SettingsPage):
            page.restore_defaults()
        self._update_buttons()

    def apply(self) -> bool:
        """Save every page, tell the controller what changed. False when something blocked it."""
        if self.problems():
            self._update_buttons()
            return False
        changed: set[str] = set()
        for page in self.pages:
            try:
                changed |= page.save()
            except ValueError as exc:   # a value the preference rejects: say so, keep the dialog
                page.save_error = str(exc)
            if page.save_error:
                self.show_page(page.title)
                self.problem.setText(f"{page.title}: {page.save_error}")
                return False
        sync = getattr(self.settings.store, "sync", None)
        disk_error = sync() if sync is not None else None
        for page in self.pages:
            page.committed()
        if changed:   # the controller applies vocabulary and silence live itself (once)
            log.info("settings changed: %s", ", ".join(sorted(changed)))
            self.controller.apply_settings(changed)
        self.controller.preview_style(None)   # the saved style is now the previewed one
        if disk_error:
            # In effect for this run, but not on disk: keep the dialog open so the user sees it.
            self.problem.setText(f"{disk_error} The changes apply until the app quits.")
            return False
        self.problem.setText("")
        return True

    def accept(self) -> None:
        if self.apply():
            self._close_pages()
            super().accept()

    def reject(self) -> None:
        for page in self.pages:
            page.revert()
        self._close_pages()
        super().reject()

    def _close_pages(self) -> None:
        self.audio.stop_preview()
        self._closing = True
        status_signal = getattr(self.controller, "status_changed", None)
        if status_signal is not None and self._status_connected:
            self._status_connected = False
            try:
                status_signal.disconnect(self._on_status)
            except (RuntimeError, TypeError):
                pass
