"""Settings → Sharing: validation, saving, and the running link with its QR code."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication

from app.core.settings import DictStore, Settings
from app.qt.settings_dialog import SettingsDialog
from app.qt.sharing import ShareBridge
from tests.e2e.test_cli import free_port
from tests.qt.test_settings_fakes import FakeController


class Controller(FakeController):
    caption_event = Signal(str, object, object, object)
    settings_applied = Signal(object)

    def apply_settings(self, changed_keys):
        super().apply_settings(changed_keys)
        self.settings_applied.emit(set(changed_keys))


@pytest.fixture
def settings():
    return Settings(DictStore())


@pytest.fixture
def controller():
    return Controller()


@pytest.fixture
def bridge(settings, controller):
    b = ShareBridge(settings, controller)
    yield b
    b.shutdown()
    assert b.runner.wait_idle()


@pytest.fixture
def dialog(qtbot, settings, controller, bridge, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    dlg = SettingsDialog(settings, controller)
    qtbot.addWidget(dlg)
    dlg.show_page("Sharing")
    return dlg


def test_bad_urls_block_ok_with_a_plain_reason(dialog):
    page = dialog.sharing
    page.zoom_url.setText("http://wmcapi.zoom.us/closedcaption?id=1")
    assert "must use https://" in page.problem_label.text()
    assert not dialog.apply()
    page.zoom_url.setText("https://wmcapi.zoom.us/closedcaption?id=1")
    page.caption_lang.setText("English")
    assert "should look like en-US" in page.problem_label.text()
    page.caption_lang.setText("en-GB")
    page.webhook_url.setText("ftp://hooks.example")
    assert "should start with https://" in page.problem_label.text()
    page.webhook_url.setText("")
    assert page.problem() == ""


def test_apply_starts_sharing_and_shows_link_and_qr(dialog, settings, controller, bridge, qtbot):
    page = dialog.sharing
    assert not page.copy_button.isEnabled() and not page.qr.isVisible()
    page.serve.setChecked(True)
    page.lan.setChecked(True)
    page.port.setValue(free_port())
    assert dialog.apply()
    assert settings.get("sharing/serve") and settings.get("sharing/lan")
    qtbot.waitUntil(lambda: page.qr.pixmap() is not None and not page.qr.pixmap().isNull(),
                    timeout=10000)
    url = page.link.text()
    assert url == bridge.runner.url and "token=" in url
    assert page.qr.pixmap().width() >= 100
    page.copy_button.click()
    assert QGuiApplication.clipboard().text() == url
    page.copy_obs_button.click()
    assert QGuiApplication.clipboard().text() == url + "&transparent=1"
    page.renew_button.click()
    qtbot.waitUntil(lambda: page.link.text() != url, timeout=10000)
    assert "token=" in page.link.text()
    page.serve.setChecked(False)
    assert dialog.apply()
    qtbot.waitUntil(lambda: not page.copy_button.isEnabled(), timeout=10000)
    assert not bridge.runner.running


def test_captions_reach_the_share_from_the_controller(dialog, settings, controller, bridge, qtbot):
    from app.core.events import Final
    from tests.sharing.helpers import SSEReader, local_url
    page = dialog.sharing
    page.serve.setChecked(True)
    page.port.setValue(free_port())
    assert dialog.apply()
    qtbot.waitUntil(lambda: bridge.runner.running, timeout=10000)
    reader = SSEReader(local_url(bridge.runner._share))
    controller.caption_event.emit("mic", Final("from the overlay's feed", 0, 1), None, None)
    assert reader.take(1)[0]["text"] == "from the overlay's feed"
    reader.close()


def test_restore_defaults_turns_sharing_off(dialog):
    page = dialog.sharing
    page.serve.setChecked(True)
    page.zoom_url.setText("https://wmcapi.zoom.us/closedcaption?id=1")
    page.restore_defaults()
    assert not page.serve.isChecked() and page.zoom_url.text() == ""
    assert page.caption_lang.text() == "en-US" and not page.lan.isEnabled()


def test_the_app_shares_while_running_and_stops_on_quit(qtbot, tmp_path, monkeypatch):
    """GuiApp wiring: --serve from the command line, captions from the controller, quit stops."""
    import argparse

    from app.core.events import Final, SessionStarted
    from app.qt.application import GuiApp
    from tests.qt.test_controller import Harness
    from tests.sharing.helpers import SSEReader, local_url
    monkeypatch.setattr("PySide6.QtWidgets.QApplication.quit", lambda: None)
    h = Harness(transcript_dir=tmp_path / "t")
    app = GuiApp(h.settings, argparse.Namespace(serve=f"127.0.0.1:{free_port()}"),
                 controller=h.controller)
    qtbot.addWidget(app.overlay)
    try:
        app.start()
        qtbot.waitUntil(lambda: app.sharing.runner.running, timeout=10000)
        reader = SSEReader(local_url(app.sharing.runner._share))
        h.from_worker("mic", SessionStarted("s", "v3"))
        h.from_worker("mic", Final("Shown on the overlay and the page.", 0, 500))
        got = reader.take(2)             # the whole stream, as --json has it
        assert [r["event"] for r in got] == ["session_started", "final"]
        assert got[1]["text"] == "Shown on the overlay and the page."
        reader.close()
        app.quit()
        assert app.sharing.runner.wait_idle()
        assert not app.sharing.runner.running
    finally:
        app.hotkeys.close()
        app.tray.hide()
        h.controller.shutdown()


def test_bridge_signals_arrive_on_the_gui_thread(qtbot, settings, controller, targets):
    import threading
    targets.zoom.fail = [503] * 3
    settings.set("sharing/zoom_url", targets.zoom_url)
    bridge = ShareBridge(settings, controller)
    seen = []
    bridge.problem.connect(lambda text: seen.append(("problem", threading.current_thread().name)))
    bridge.status.connect(lambda n, t: seen.append(("status", threading.current_thread().name)))
    bridge.changed.connect(lambda: seen.append(("changed", threading.current_thread().name)))
    try:
        bridge.start()
        qtbot.waitUntil(lambda: bridge.runner.running, timeout=10000)
        from app.core.events import Final
        controller.caption_event.emit("mic", Final("hi", 0, 1), None, None)
        qtbot.waitUntil(lambda: any(k == "problem" for k, _ in seen), timeout=15000)
    finally:
        bridge.shutdown()
        assert bridge.runner.wait_idle()
    assert {k for k, _ in seen} >= {"problem", "status", "changed"}
    assert {t for _, t in seen} == {threading.main_thread().name}
