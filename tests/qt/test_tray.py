"""Tray menu and the GUI composition (GuiApp): every action does what it says, check marks stay in step."""

from __future__ import annotations

import argparse

import pytest
from PySide6.QtCore import Qt

from app.core.settings import DictStore, Settings
from app.core.status import State, Status
from app.qt.tray import Tray, app_icon, tray_icon
from tests.qt.test_controller import Harness


@pytest.fixture(autouse=True)
def _shutdown(qapp):
    yield
    while Harness.alive:
        Harness.alive.pop().controller.shutdown()


@pytest.fixture
def parts(qtbot, tmp_path):
    from app.qt.overlay import CaptionOverlay
    h = Harness(transcript_dir=tmp_path / "t")
    overlay = CaptionOverlay(h.settings)
    qtbot.addWidget(overlay)
    overlay.show()
    tray = Tray(h.controller, overlay)
    yield h, overlay, tray
    tray.hide()


def test_every_action_is_there_and_described(parts):
    h, overlay, tray = parts
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    for wanted in ("Start captions", "Click-through (locked)", "Show overlay", "End the current line now",
                   "Position", "History…", "Settings…", "Quit"):
        assert wanted in texts
    for action in tray.menu.actions():
        if not action.isSeparator() and action.menu() is None:
            assert action.toolTip() and action.toolTip() != action.text().replace("&", "")
    assert not app_icon().isNull() and not tray_icon(State.ERROR).isNull()


def test_start_stop_and_force_end(parts):
    h, overlay, tray = parts
    assert not tray.force_end_action.isEnabled()
    tray.start_action.trigger()
    assert h.controller.running and tray.start_action.text() == "Stop captions"
    assert tray.force_end_action.isEnabled()
    tray.force_end_action.trigger()
    assert ("force_end",) in h.group.calls
    tray.start_action.trigger()
    h.pump()                                   # stopping ends when the run has flushed
    assert not h.controller.running and tray.start_action.text() == "Start captions"


def test_lock_unlock_both_ways(parts):
    h, overlay, tray = parts
    tray.lock_action.trigger()
    assert overlay.click_through and tray.lock_action.isChecked()
    assert overlay.windowHandle().flags() & Qt.WindowType.WindowTransparentForInput
    overlay.set_click_through(False)  # e.g. from the hotkey
    assert not tray.lock_action.isChecked()


def test_show_hide(parts):
    h, overlay, tray = parts
    assert tray.show_action.isChecked()
    tray.show_action.trigger()
    assert not overlay.isVisible() and not tray.show_action.isChecked()
    overlay.toggle_visible()
    assert tray.show_action.isChecked()


def test_dock_actions(parts):
    h, overlay, tray = parts
    assert tray.dock_actions["bottom"].isChecked()
    tray.dock_actions["top"].trigger()
    assert h.settings.get("overlay/dock") == "top"
    assert tray.dock_actions["top"].isChecked()


def test_requests_are_signals(parts):
    h, overlay, tray = parts
    got = []
    tray.settings_requested.connect(lambda: got.append("settings"))
    tray.history_requested.connect(lambda: got.append("history"))
    tray.quit_requested.connect(lambda: got.append("quit"))
    tray.settings_action.trigger()
    tray.history_action.trigger()
    tray.quit_action.trigger()
    assert got == ["settings", "history", "quit"]


def test_status_in_tooltip_and_hotkey_hints(parts):
    h, overlay, tray = parts
    h.controller.status_changed.emit(Status(state=State.LIVE, text="Live (AssemblyAI)", latency_ms=300))
    assert "Live (AssemblyAI) · latency 300 ms" in tray.icon.toolTip()
    tray.set_hotkey_hints({"force_end": "Ctrl+Alt+E"})
    assert tray.force_end_action.text() == "End the current line now\tCtrl+Alt+E"
    tray.set_hotkey_hints({})
    assert tray.force_end_action.text() == "End the current line now"


def test_overlay_right_click_menu_is_the_tray_menu(parts):
    h, overlay, tray = parts
    assert overlay._context_menu is tray.menu


# ---- GuiApp composition -----------------------------------------------------------------------
@pytest.fixture
def gui(qtbot, tmp_path):
    from app.qt.application import GuiApp
    h = Harness(transcript_dir=tmp_path / "t")
    app = GuiApp(h.settings, argparse.Namespace(), controller=h.controller)
    qtbot.addWidget(app.overlay)
    yield h, app
    app.hotkeys.close()
    app.tray.hide()
    for w in (app._settings_dialog, app._history):
        if w is not None:
            w.close()


from app.qt.application import FIRST_FRAME_WAIT_MS  # noqa: E402


def start(app, qtbot) -> None:
    """``GuiApp.start`` shows the overlay now and starts the rest after its first frame."""
    app.start()
    qtbot.waitUntil(lambda: app.services_started, timeout=5000)


def test_gui_starts_captions_and_shows_them(gui, qtbot):
    h, app = gui
    start(app, qtbot)
    assert h.controller.running
    assert app.overlay.isVisible()
    from app.core.events import Final, SessionStarted
    h.from_worker("mic", SessionStarted("s", "v3"))
    h.from_worker("mic", Final("Shown on the overlay.", 0, 500))
    assert app.overlay.caption_text() == "Shown on the overlay."
    assert "Live" in app.overlay._status.text


def test_overlay_is_painted_before_captions_start(gui, qtbot):
    h, app = gui
    order = []
    app.overlay.first_frame.connect(lambda: order.append(("painted", h.controller.running)))
    app.start()
    assert app.overlay.isVisible() and not h.controller.running   # nothing slow before the frame
    assert app.overlay._status.text == "Starting captions…"       # not "Captions stopped"
    qtbot.waitUntil(lambda: h.controller.running, timeout=5000)
    assert order == [("painted", False)]


def test_quit_before_the_first_frame_starts_nothing(gui, qtbot, monkeypatch):
    monkeypatch.setattr("PySide6.QtWidgets.QApplication.quit", lambda: None)
    h, app = gui
    app.start()
    app.quit()
    qtbot.wait(FIRST_FRAME_WAIT_MS + 200)
    assert not h.controller.running and not app.services_started


def test_hidden_overlay_starts_captions_without_waiting_for_a_frame(gui, qtbot, monkeypatch):
    h, app = gui
    h.settings.set("overlay/visible", False)
    monkeypatch.setattr(Tray, "available", property(lambda self: True))  # else it is shown anyway
    monkeypatch.setattr(app.tray, "show", lambda: None)
    app.start()
    assert not app.overlay.isVisible()
    qtbot.waitUntil(lambda: h.controller.running, timeout=1000)


def test_start_on_launch_off(gui, qtbot):
    h, app = gui
    h.settings.set("app/start_on_launch", False)
    start(app, qtbot)
    assert not h.controller.running


def test_never_trapped_without_tray_or_hotkeys(gui, qtbot):
    """Offscreen has neither a tray nor global hotkeys: a saved click-through is undone at start."""
    h, app = gui
    app.overlay.set_click_through(True)
    assert not app.tray.available and not app.hotkeys.active
    start(app, qtbot)
    assert not app.overlay.click_through
    assert app.overlay.isVisible()


def test_hotkey_actions(gui, qtbot):
    h, app = gui
    start(app, qtbot)
    app._on_hotkey("toggle_click_through")
    assert app.overlay.click_through
    app._on_hotkey("toggle_visible")
    assert not app.overlay.isVisible()
    app._on_hotkey("toggle_click_through")  # unlocking also brings a hidden overlay back
    assert not app.overlay.click_through and app.overlay.isVisible()
    app._on_hotkey("force_end")
    assert ("force_end",) in h.group.calls


def test_settings_applied_restyles_overlay(gui):
    h, app = gui
    h.settings.set("appearance/text_color", "#00ff00")
    h.controller.apply_settings({"appearance/text_color"})
    assert app.overlay.caption_style().text_color == "#00ff00"
    h.controller.preview_style({"appearance/font_size": 50})
    assert app.overlay.caption_style().font_size == 50


def test_settings_and_history_windows_open(gui):
    h, app = gui
    app.open_settings()
    assert app._settings_dialog is not None and app._settings_dialog.isVisible()
    app.open_history()
    assert app._history is not None and app._history.isVisible()


def test_xwayland_restart_stops_captions_first(gui, monkeypatch, qtbot):
    from app.qt import platform as plat
    h, app = gui
    start(app, qtbot)
    calls = []
    monkeypatch.setattr(plat, "restart_under_xwayland", lambda: calls.append(h.controller.running))
    app.tray.xwayland_requested.emit()
    assert calls == [False]  # the session was stopped (finals saved) before the process is replaced


def test_wayland_is_explained_and_xwayland_offered(qtbot, tmp_path, monkeypatch):
    from app.qt import platform as plat
    from app.qt.application import GuiApp
    monkeypatch.setattr(plat, "qpa_name", lambda: "wayland")
    monkeypatch.setenv("DISPLAY", ":0")
    h = Harness(transcript_dir=tmp_path)
    app = GuiApp(h.settings, argparse.Namespace(), controller=h.controller)
    qtbot.addWidget(app.overlay)
    try:
        assert app.tray.xwayland_action is not None
        assert "XWayland" in app.tray.xwayland_action.text()
        assert "Wayland" in app.overlay._status_note
        assert "keep a window above" in app.overlay.toolTip()
    finally:
        app.hotkeys.close()


def test_a_click_on_the_icon_toggles_the_overlay(parts, monkeypatch):
    from PySide6.QtWidgets import QSystemTrayIcon
    import app.qt.tray as tray_module
    h, overlay, tray = parts
    monkeypatch.setattr(tray_module.sys, "platform", "win32")
    assert overlay.isVisible()
    tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)
    assert not overlay.isVisible()
    tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)
    assert overlay.isVisible()


def test_opening_the_macos_menu_bar_menu_keeps_the_overlay(parts, monkeypatch):
    from PySide6.QtWidgets import QSystemTrayIcon
    import app.qt.tray as tray_module
    h, overlay, tray = parts
    monkeypatch.setattr(tray_module.sys, "platform", "darwin")
    tray.icon.activated.emit(QSystemTrayIcon.ActivationReason.Trigger)   # what opening the menu sends
    assert overlay.isVisible()
    tray.show_action.trigger()                                          # the menu entry still works
    assert not overlay.isVisible()
