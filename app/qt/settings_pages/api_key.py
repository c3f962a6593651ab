"""API key page: masked entry, Save to / Delete from the OS keyring, Test connection.

Opening the page never waits on the keyring (a locked keyring can hold a call until its
unlock prompt is answered): the page describes the key from what the app last learnt from the
keyring, or shows "Checking…" and asks it on a worker thread whose answer comes back through a
signal. Save and Delete, which the user asks for, call it on the GUI thread, waiting only
briefly for a check still in progress. The connection test runs on a worker thread too. The key is only ever held in a ``Secret`` or
the masked field; when the keyring is unavailable the user may use it for this session only
(``controller.set_session_api_key``) — it is never written anywhere in plain text.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QLineEdit, QPushButton, QToolButton,
                               QVBoxLayout)

from app.core import credentials, run_plan
from app.core.credentials import KeyringBusy, KeyringState, KeyringUnavailable, Secret
from app.core.events import StreamError
from app.core.settings import API_KEY_CHANGED, PREF_BY_KEY
from app.core.streaming.check import refusal_message
from app.qt.settings_pages.base import SettingsPage, explanation

log = logging.getLogger(__name__)

_GOOD = "color: #2e7d32;"
_BAD = "color: #c62828;"


def run_check(config, api_key):
    """Open and close a test session with these settings (runs on a worker thread)."""
    from app.core.streaming.check import check_connection
    return check_connection(config, api_key)


class _CheckRelay(QObject):
    """Carries the worker thread's result to the GUI thread (queued signal → page slot)."""
    done = Signal(object, object)   # (StreamError | None, unexpected exception text | None)


class _KeyringRelay(QObject):
    """Carries a background keyring check's answer to the GUI thread. One for the app's life,
    made on the GUI thread: a check outliving a closed dialog then never emits from, or drops
    the last reference to, a deleted object on the worker thread."""
    checked = Signal(object)        # KeyringState


_keyring_relay: _KeyringRelay | None = None

# How long Save / Delete wait for a background check still in progress (it may be waiting for
# the keyring's unlock prompt) before saying so instead of freezing the window.
KEYRING_WAIT_S = 0.25


def _relay_for_keyring_checks() -> _KeyringRelay:
    global _keyring_relay
    if _keyring_relay is None:
        _keyring_relay = _KeyringRelay()
    return _keyring_relay


class ApiKeyPage(SettingsPage):
    title = "API key"
    keys = ()

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.values_provider: Callable[[], dict] = settings.snapshot  # dialog gives pending values
        self.session_key: Secret | None = None
        self.key_changed = False
        self._check_thread: threading.Thread | None = None
        self._test_origin: str | None = None     # where the key under test came from
        self._relay = _CheckRelay()
        self._relay.done.connect(self._on_check_done)
        self._keyring = _relay_for_keyring_checks()
        self._keyring.checked.connect(self._on_keyring_checked)

        self.field = QLineEdit()
        self.field.setEchoMode(QLineEdit.EchoMode.Password)
        self.field.setAccessibleName("AssemblyAI API key")
        self.field.setPlaceholderText("Paste your AssemblyAI API key")
        self.field.setClearButtonEnabled(True)
        self.show_button = QToolButton()
        self.show_button.setText("Show")
        self.show_button.setCheckable(True)
        self.show_button.toggled.connect(self._toggle_visible)
        self.save_button = QPushButton("Save to keyring")
        self.delete_button = QPushButton("Delete from keyring")
        self.session_button = QPushButton("Use for this session only")
        self.test_button = QPushButton("Test connection")
        self.stored_label = QLabel()
        self.stored_label.setWordWrap(True)
        self.message = QLabel()
        self.message.setObjectName("apiKeyMessage")
        self.message.setWordWrap(True)
        self.test_result = QLabel()
        self.test_result.setObjectName("testResult")
        self.test_result.setWordWrap(True)

        entry = QHBoxLayout()
        entry.addWidget(self.field, 1)
        entry.addWidget(self.show_button)
        buttons = QHBoxLayout()
        for b in (self.save_button, self.delete_button, self.session_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation(
            "The key is stored in your operating system's keyring (Secret Service, macOS Keychain, "
            "Windows Credential Manager) \u2014 never in the settings file or logs. "
            "ASSEMBLYAI_API_KEY in the environment overrides it for one run."))
        layout.addLayout(entry)
        layout.addLayout(buttons)
        layout.addWidget(self.stored_label)
        layout.addWidget(self.message)
        layout.addLayout(test_row)
        layout.addStretch(1)

        self.save_button.clicked.connect(self.save_key)
        self.delete_button.clicked.connect(self.delete_key)
        self.session_button.clicked.connect(self.use_for_session)
        self.test_button.clicked.connect(self.test_connection)
        self.field.textChanged.connect(lambda _t: self.message.setText(""))
        self.session_button.hide()  # offered only when the keyring is unavailable

    # -- contract ------------------------------------------------------------------------------
    def load(self) -> None:
        self.field.clear()
        self._describe_stored()

    def save(self) -> set[str]:
        """OK / Apply with a newly typed key saves it like the Save button would."""
        self.save_error = ""
        if self.field.text().strip() and not self.save_key():
            self.save_error = self.message.text()
        changed = {API_KEY_CHANGED} if self.key_changed else set()
        self.key_changed = False
        return changed

    def restore_defaults(self) -> None:
        self.field.clear()   # the stored key is only removed by the explicit Delete button

    # -- actions -------------------------------------------------------------------------------
    def _typed_key(self) -> Secret | None:
        try:
            return credentials.parse_api_key(self.field.text())
        except ValueError as exc:
            self._say(str(exc), ok=False)
            return None

    def save_key(self) -> bool:
        key = self._typed_key()
        if key is None:
            return False
        try:
            credentials.save_api_key(key, wait=KEYRING_WAIT_S)
        except KeyringBusy as exc:
            self._say(str(exc), ok=False)       # the typed key stays in the field
            return False
        except KeyringUnavailable as exc:
            self._keyring_unavailable(exc)
            return False
        self.field.clear()
        self.key_changed = True
        self._say("Saved in the system keyring.", ok=True)
        self._describe_stored()
        return True

    def delete_key(self) -> None:
        try:
            credentials.delete_api_key(wait=KEYRING_WAIT_S)
        except KeyringBusy as exc:
            self._say(str(exc), ok=False)
            return
        except KeyringUnavailable as exc:
            self._keyring_unavailable(exc)
            return
        self.key_changed = True
        self._say("The stored key was deleted from the keyring.", ok=True)
        self._describe_stored()

    def use_for_session(self) -> bool:
        key = self._typed_key()
        if key is None:
            return False
        self.session_key = key
        self.controller.set_session_api_key(key)
        self.field.clear()
        self.key_changed = True
        self._describe_stored()
        self._say("The key will be used until the app quits; it was not saved anywhere.", ok=True)
        return True

    def _keyring_unavailable(self, exc: KeyringUnavailable) -> None:
        self.session_button.show()
        self._say(f"{exc} Press \u201cUse for this session only\u201d to caption now; you will "
                  "need to enter the key again next time.", ok=False)

    def _describe_stored(self) -> None:
        if credentials.env_api_key_present():
            self.stored_label.setText(f"A key from {credentials.ENV_VAR} is in use for this run.")
            return
        state = credentials.known_keyring_state()
        if state is None:           # never asked in this run: ask off the GUI thread
            self.stored_label.setText("Checking the system keyring\u2026")
            relay = self._keyring

            def done(result: KeyringState) -> None:   # worker thread: only the signal
                relay.checked.emit(result)

            credentials.check_keyring_in_background(done)
            return
        self._show_state(state)

    @Slot(object)
    def _on_keyring_checked(self, state: KeyringState) -> None:
        if not credentials.env_api_key_present():
            self._show_state(state)

    def _show_state(self, state: KeyringState) -> None:
        if state.locked:
            self.stored_label.setText(state.problem)
            self.session_button.show()
            return
        if not state.available:
            self.stored_label.setText(
                "The system keyring is not available here (on Linux it needs a Secret Service "
                "such as GNOME Keyring or KWallet), so the key cannot be stored. Paste it and "
                "press \u201cUse for this session only\u201d to caption now; it is never saved in "
                "plain text." if not self.session_key else
                "The system keyring is not available; a key is in use for this session only.")
            self.session_button.show()
            log.info("keyring unavailable: %s", state.problem)
            return
        refused = getattr(self.controller, "key_refused", None)
        if state.stored and not self.key_changed and callable(refused) and refused():
            self.stored_label.setText(
                f"A key is stored in the keyring ({state.backend}), but AssemblyAI refused it "
                "when captions last started. Paste the right key and press \u201cSave to "
                "keyring\u201d.")
            self.stored_label.setStyleSheet(_BAD)
            return
        self.stored_label.setStyleSheet("")
        if state.stored:
            self.stored_label.setText(f"A key is stored in the keyring ({state.backend}). "
                                      "Type a new one to replace it.")
        elif self.session_key:
            self.stored_label.setText("A key is in use for this session only.")
        else:
            self.stored_label.setText("No key is stored. Without one, the offline engine is used.")

    def _say(self, text: str, *, ok: bool) -> None:
        self.message.setText(text)
        self.message.setStyleSheet(_GOOD if ok else _BAD)

    def _toggle_visible(self, shown: bool) -> None:
        self.field.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_button.setText("Hide" if shown else "Show")

    # -- connection test -----------------------------------------------------------------------
    def _key_for_test(self) -> tuple[bool, Secret | None]:
        """(usable, key). Keyring read here, on the GUI thread, when the user asked for a test."""
        if self.field.text().strip():
            key = self._typed_key()
            self._test_origin = "typed"
            return key is not None, key
        if self.session_key:
            self._test_origin = "session"
            return True, self.session_key
        self._test_origin = "environment" if credentials.env_api_key_present() else "stored"
        try:
            return True, credentials.load_api_key(wait=KEYRING_WAIT_S)
        except KeyringBusy as exc:
            self._show_test(str(exc), ok=False)
            return False, None
        except KeyringUnavailable:
            return True, None

    def test_connection(self) -> None:
        if self._check_thread is not None:
            return
        values = self.values_provider()
        usable, key = self._key_for_test()
        if not usable:
            return
        try:
            config = run_plan.session_config(
                lambda k: values.get(k, PREF_BY_KEY[k].default), "assemblyai")
        except ValueError as exc:
            self._show_test(str(exc), ok=False)
            return
        if key is None and config.auth_mode != "broker":
            self._show_test("No API key to test: paste one above (or configure a token broker).",
                            ok=False)
            return
        self.test_button.setEnabled(False)
        self._show_test("Testing\u2026", ok=True)
        relay = self._relay

        def work() -> None:  # worker thread: no widgets here, only the relay's signal
            error, unexpected = None, None
            try:
                error = run_check(config, key)
            except Exception as exc:  # noqa: BLE001 — reported to the user, key never in it
                unexpected = f"{type(exc).__name__}"
                log.warning("connection test failed unexpectedly: %s", type(exc).__name__)
            try:
                relay.done.emit(error, unexpected)
            except RuntimeError:
                pass  # the dialog was closed meanwhile

        self._check_thread = threading.Thread(target=work, name="connection-test", daemon=True)
        self._check_thread.start()

    @Slot(object, object)
    def _on_check_done(self, error, unexpected) -> None:
        self._check_thread = None
        self.test_button.setEnabled(True)
        if unexpected:
            self._show_test(f"The test could not run ({unexpected}).", ok=False)
        elif error is None:
            self._show_test("Connected: the key works and a test session opened and closed.",
                            ok=True)
        elif isinstance(error, StreamError):
            self._show_test(refusal_message(error, self._test_origin), ok=False)
        else:
            self._show_test(str(error), ok=False)

    def _show_test(self, text: str, *, ok: bool) -> None:
        self.test_result.setText(text)
        self.test_result.setStyleSheet(_GOOD if ok else _BAD)
