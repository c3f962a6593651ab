"""The Connection page: plain http/ws to another computer needs the explicit opt-in."""

import pytest

from app.core.settings import DictStore, Settings
from app.qt.settings_dialog import SettingsDialog
from tests.qt.test_settings_fakes import FakeController


@pytest.fixture
def dialog(qtbot, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names",
                        lambda: ([("usb", "USB Mic")], [("out.monitor", "Speakers")], ""))
    settings = Settings(DictStore())
    dlg = SettingsDialog(settings, FakeController())
    qtbot.addWidget(dlg)
    return dlg, settings


def test_plain_text_server_needs_the_checkbox(dialog):
    dlg, settings = dialog
    page = dlg.connection
    page.server_url.setText("http://stt.example.org:8080")
    assert not dlg.ok_button.isEnabled() and "unencrypted" in dlg.problem.text()
    page.allow_insecure.setChecked(True)
    assert dlg.ok_button.isEnabled()
    assert dlg.apply()
    assert settings.get("connection/allow_insecure") is True
    assert settings.get("connection/server_url") == "http://stt.example.org:8080"


def test_loopback_needs_no_opt_in_and_userinfo_is_refused(dialog):
    dlg, _ = dialog
    page = dlg.connection
    page.server_url.setText("http://127.0.0.1:8765")
    assert dlg.ok_button.isEnabled()
    page.server_url.setText("https://me:hunter2@stt.example.org")
    assert not dlg.ok_button.isEnabled()
    assert "user name or password" in dlg.problem.text() and "hunter2" not in dlg.problem.text()
