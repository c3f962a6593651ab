"""API key page: keyring save/delete, show/hide, keyring-unavailable path, Test connection."""

import logging
import time
import threading

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring
from PySide6.QtWidgets import QLineEdit

from app.core import credentials
from app.core.credentials import Secret
from app.core.events import Recovery, StreamError
from app.core.settings import Settings
from app.qt.settings_dialog import SettingsDialog
from app.qt.settings_pages import api_key as api_key_page
from app.qt.settings_pages.api_key import API_KEY_CHANGED
from app.qt.settings_store import QSettingsStore
from tests.qt.test_settings_fakes import FakeController

KEY = "k3y-9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.fixture
def controller():
    return FakeController()


@pytest.fixture
def store(tmp_path):
    return QSettingsStore(str(tmp_path / "settings.ini"))


@pytest.fixture
def dialog(qtbot, store, controller, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    dlg = SettingsDialog(Settings(store), controller)
    qtbot.addWidget(dlg)
    return dlg


@pytest.fixture
def failing_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    yield
    keyring.set_keyring(previous)


def test_field_is_masked_with_show_hide(dialog):
    page = dialog.api_key
    assert page.field.echoMode() == QLineEdit.EchoMode.Password
    page.show_button.click()
    assert page.field.echoMode() == QLineEdit.EchoMode.Normal and page.show_button.text() == "Hide"
    page.show_button.click()
    assert page.field.echoMode() == QLineEdit.EchoMode.Password


def test_save_and_delete_through_the_keyring(dialog, qtbot, _memory_keyring):
    page = dialog.api_key
    qtbot.waitUntil(lambda: "No key is stored" in page.stored_label.text())
    page.field.setText(f"  {KEY}  ")
    page.save_button.click()
    assert _memory_keyring.store[(credentials.KEYRING_SERVICE, credentials.KEYRING_USER)] == KEY
    assert page.field.text() == "" and "Saved" in page.message.text()
    assert "stored in the keyring" in page.stored_label.text()
    page.delete_button.click()
    assert (credentials.KEYRING_SERVICE, credentials.KEYRING_USER) not in _memory_keyring.store
    assert "deleted" in page.message.text()


def test_ok_with_a_typed_key_saves_it_and_reports_the_change(dialog, controller, _memory_keyring):
    dialog.api_key.field.setText(KEY)
    dialog.accept()
    assert credentials.load_api_key() == Secret(KEY)
    assert controller.named("apply_settings") == [({API_KEY_CHANGED},)]


def test_bad_key_is_refused_with_a_reason(dialog, _memory_keyring):
    dialog.api_key.field.setText("two words")
    assert not dialog.apply()
    assert "spaces" in dialog.problem.text()
    assert _memory_keyring.store == {}


def test_keyring_unavailable_offers_session_only(dialog, controller, failing_keyring, store):
    page = dialog.api_key
    page.field.setText(KEY)
    page.save_button.click()
    text = page.message.text()
    assert "not available" in text and "this session only" in text
    assert not page.session_button.isHidden()
    assert page.field.text() == KEY                       # nothing lost
    page.session_button.click()
    assert controller.named("set_session_api_key") == [(Secret(KEY),)]
    assert page.field.text() == "" and "not saved anywhere" in page.message.text()
    dialog.silence.box.setValue(800)
    assert dialog.apply()
    assert controller.named("apply_settings") == [({API_KEY_CHANGED, "recognition/silence_ms"},)]
    store.sync()
    assert KEY not in store.path.read_text(encoding="utf-8")


def test_ok_with_keyring_unavailable_keeps_the_dialog_open(dialog, controller, failing_keyring):
    dialog.api_key.field.setText(KEY)
    dialog.accept()
    assert dialog.result() == 0 and "not available" in dialog.problem.text()
    assert dialog.stack.currentWidget() is dialog.api_key
    assert controller.named("apply_settings") == []


def test_keyring_unavailable_on_open_is_explained(qtbot, controller, failing_keyring):
    dlg = SettingsDialog(Settings(QSettingsStore()), controller)
    qtbot.addWidget(dlg)
    qtbot.waitUntil(lambda: "keyring is not available" in dlg.api_key.stored_label.text())
    assert "for this session only" in dlg.api_key.stored_label.text()
    assert not dlg.api_key.session_button.isHidden()


def test_connection_check_runs_off_the_gui_thread(dialog, qtbot, monkeypatch, _memory_keyring):
    seen = {}

    def fake_check(config, api_key):
        seen["thread"] = threading.current_thread()
        seen["config"], seen["key"] = config, api_key
        return None

    monkeypatch.setattr(api_key_page, "run_check", fake_check)
    credentials.save_api_key(Secret(KEY))
    shown_on = []
    original = dialog.api_key._show_test
    monkeypatch.setattr(dialog.api_key, "_show_test", lambda text, ok: (
        shown_on.append(threading.current_thread()), original(text, ok=ok)))
    dialog.connection.protocol.setCurrentIndex(dialog.connection.protocol.findData("v2"))
    dialog.connection.server_url.setText("http://127.0.0.1:1")
    dialog.api_key.test_button.click()
    qtbot.waitUntil(lambda: dialog.api_key.test_button.isEnabled(), timeout=10000)
    assert seen["thread"] is not threading.main_thread()
    assert seen["key"] == Secret(KEY)
    assert seen["config"].protocol == "v2" and seen["config"].server_url == "http://127.0.0.1:1"
    assert "Connected" in dialog.api_key.test_result.text()
    assert shown_on and all(t is threading.main_thread() for t in shown_on)   # result on GUI thread


def test_connection_check_reports_the_mapped_error(dialog, qtbot, monkeypatch):
    monkeypatch.setattr(api_key_page, "run_check", lambda config, key: StreamError(
        402, "AssemblyAI says the account needs payment (HTTP 402).", Recovery.STOP))
    dialog.api_key.field.setText(KEY)                      # a typed, unsaved key is tested
    dialog.api_key.test_button.click()
    qtbot.waitUntil(lambda: dialog.api_key.test_button.isEnabled(), timeout=10000)
    assert dialog.api_key.test_result.text() == "AssemblyAI says the account needs payment (HTTP 402)."


REFUSED = StreamError(401, "The AssemblyAI token service refused the credentials (HTTP 401). "
                           "Check the API key in Settings.", Recovery.STOP)


def test_a_refused_typed_key_is_named_and_kept(dialog, qtbot, monkeypatch, _memory_keyring):
    monkeypatch.setattr(api_key_page, "run_check", lambda config, key: REFUSED)
    page = dialog.api_key
    page.field.setText("wr0ng-" + KEY)
    page.test_button.click()
    qtbot.waitUntil(lambda: page.test_button.isEnabled(), timeout=10000)
    text = page.test_result.text()
    assert text.startswith("AssemblyAI refused this key (HTTP 401)") and "not been saved" in text
    assert "in Settings" not in text and "token service" not in text
    assert page.field.text() == "wr0ng-" + KEY and _memory_keyring.store == {}   # nothing lost


def test_a_refused_stored_key_says_to_save_the_right_one(dialog, qtbot, monkeypatch):
    credentials.save_api_key(Secret(KEY))
    monkeypatch.setattr(api_key_page, "run_check", lambda config, key: REFUSED)
    page = dialog.api_key
    page.test_button.click()
    qtbot.waitUntil(lambda: page.test_button.isEnabled(), timeout=10000)
    assert "refused the key stored in the keyring" in page.test_result.text()
    assert "Save to keyring" in page.test_result.text()


def test_connection_check_without_a_key(dialog):
    dialog.api_key.test_button.click()
    assert "No API key to test" in dialog.api_key.test_result.text()


def test_connection_check_crash_is_reported_without_the_key(dialog, qtbot, monkeypatch, caplog):
    def broken(config, key):
        raise RuntimeError(f"boom {key.reveal()}")          # even if a bug leaks it into text
    monkeypatch.setattr(api_key_page, "run_check", broken)
    dialog.api_key.field.setText(KEY)
    with caplog.at_level(logging.DEBUG):
        dialog.api_key.test_button.click()
        qtbot.waitUntil(lambda: dialog.api_key.test_button.isEnabled(), timeout=10000)
    assert "could not run (RuntimeError)" in dialog.api_key.test_result.text()
    assert KEY not in caplog.text and KEY not in dialog.api_key.test_result.text()


def test_the_key_never_reaches_logs_or_the_settings_file(dialog, qtbot, monkeypatch, caplog,
                                                         store, controller):
    """Every path the key travels through the dialog; then grep logs and the INI file."""
    monkeypatch.setattr(api_key_page, "run_check", lambda config, key: StreamError(
        4001, "Not authorised", Recovery.STOP))
    with caplog.at_level(logging.DEBUG):
        page = dialog.api_key
        page.field.setText(KEY)
        page.test_button.click()
        qtbot.waitUntil(lambda: page.test_button.isEnabled(), timeout=10000)
        page.save_button.click()                          # in-memory keyring
        page.field.setText(KEY)
        dialog.silence.box.setValue(900)
        assert dialog.apply()                             # saves the typed key again + settings
        previous = keyring.get_keyring()
        keyring.set_keyring(FailKeyring())
        try:
            page.field.setText(KEY)
            page.save_button.click()                      # keyring error path
            page.session_button.click()                   # session-only path
            page.delete_button.click()
            dialog.apply()
        finally:
            keyring.set_keyring(previous)
        logging.getLogger("probe").info("settings changed: %s", controller.calls)
    assert store.sync() is None
    ini = store.path.read_bytes()
    assert b"900" in ini                                   # the file was really written
    assert KEY.encode() not in ini
    assert KEY not in caplog.text
    for name in ("message", "stored_label", "test_result"):
        assert KEY not in getattr(page, name).text()
    assert KEY not in repr(controller.calls)


# --- opening the page never waits on the keyring --------------------------------------------

@pytest.fixture
def prompting_keyring():
    """A keyring whose reads wait for ``gate``, like one showing its unlock prompt."""
    from tests.core.test_keyring_state import GatedKeyring
    previous = keyring.get_keyring()
    backend = GatedKeyring()
    backend.store[(credentials.KEYRING_SERVICE, credentials.KEYRING_USER)] = KEY
    keyring.set_keyring(backend)
    yield backend
    backend.gate.set()
    keyring.set_keyring(previous)


def _open(qtbot, controller, store):
    dlg = SettingsDialog(Settings(store), controller)
    qtbot.addWidget(dlg)
    return dlg


def test_opening_settings_with_a_prompting_keyring_does_not_wait(qtbot, controller, store,
                                                                  prompting_keyring):
    started = time.monotonic()
    dlg = _open(qtbot, controller, store)
    assert time.monotonic() - started < 3.0          # the keyring below waits 10 s
    page = dlg.api_key
    assert "Checking" in page.stored_label.text()
    assert prompting_keyring.calls == 1 and threading.current_thread() is threading.main_thread()
    prompting_keyring.gate.set()                      # the user unlocked it
    qtbot.waitUntil(lambda: "A key is stored in the keyring" in page.stored_label.text())


def test_a_second_opening_uses_what_is_known_without_asking_again(qtbot, controller, store,
                                                                  prompting_keyring):
    prompting_keyring.gate.set()
    first = _open(qtbot, controller, store)
    qtbot.waitUntil(lambda: "A key is stored" in first.api_key.stored_label.text())
    first.close()
    calls = prompting_keyring.calls
    second = _open(qtbot, controller, store)
    assert "A key is stored" in second.api_key.stored_label.text()
    assert prompting_keyring.calls == calls


def test_closing_settings_before_the_keyring_answers_is_harmless(qtbot, controller, store,
                                                                 prompting_keyring):
    dlg = SettingsDialog(Settings(store), controller)   # dropped like the app drops it
    dlg.reject()
    dlg.deleteLater()
    del dlg
    qtbot.wait(10)
    prompting_keyring.gate.set()
    qtbot.waitUntil(lambda: credentials.known_keyring_state() is not None)
    qtbot.wait(50)                                    # the answer's queued signal is delivered
    again = _open(qtbot, controller, store)
    assert "A key is stored" in again.api_key.stored_label.text()


def test_save_while_the_keyring_prompts_keeps_the_typed_key(qtbot, controller, store,
                                                            prompting_keyring):
    dlg = _open(qtbot, controller, store)
    page = dlg.api_key
    page.field.setText("n3w-" + KEY)
    started = time.monotonic()
    assert not dlg.apply()
    assert time.monotonic() - started < 2.0
    assert "waiting to be unlocked" in dlg.problem.text()
    assert page.field.text() == "n3w-" + KEY               # nothing lost
    assert controller.named("apply_settings") == []
    prompting_keyring.gate.set()
    qtbot.waitUntil(lambda: "A key is stored" in page.stored_label.text())
    assert dlg.apply()
    assert prompting_keyring.store[(credentials.KEYRING_SERVICE,
                                    credentials.KEYRING_USER)] == "n3w-" + KEY


def test_a_stored_key_that_was_refused_is_pointed_out_until_a_new_one_is_saved(
        qtbot, controller, store):
    credentials.save_api_key(Secret(KEY))
    controller.refused = True
    dlg = _open(qtbot, controller, store)
    page = dlg.api_key
    assert "AssemblyAI refused it when captions last started" in page.stored_label.text()
    page.field.setText("r1ght-" + KEY)
    page.save_button.click()
    assert "Saved" in page.message.text()
    assert page.stored_label.text().startswith("A key is stored in the keyring")
    assert "refused" not in page.stored_label.text()


def test_a_dismissed_unlock_prompt_is_explained_not_called_unavailable(qtbot, controller, store):
    from tests.core.test_keyring_state import DismissedKeyring
    previous = keyring.get_keyring()
    keyring.set_keyring(DismissedKeyring())
    try:
        dlg = _open(qtbot, controller, store)
        page = dlg.api_key
        qtbot.waitUntil(lambda: "locked" in page.stored_label.text())
        assert "dismissed" in page.stored_label.text()
        assert "not available here" not in page.stored_label.text()
        assert not page.session_button.isHidden()
    finally:
        keyring.set_keyring(previous)
