"""The app's own windows never sit under its always-on-top overlay, and OK is reachable by keyboard."""

from __future__ import annotations

import argparse

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog

from app.core.placement import intersects, parse_geometry
from app.qt.overlay_placement import rect_tuple
from tests.qt.test_controller import Harness


@pytest.fixture(autouse=True)
def _shutdown(qapp):
    yield
    while Harness.alive:
        Harness.alive.pop().controller.shutdown()


@pytest.fixture
def gui(qtbot, tmp_path):
    from app.qt.application import GuiApp
    h = Harness(transcript_dir=tmp_path / "t")
    h.settings.set("appearance/font_size", 48)
    h.settings.set("captions/lines", 3)
    app = GuiApp(h.settings, argparse.Namespace(), controller=h.controller)
    qtbot.addWidget(app.overlay)
    app.overlay.set_overlay_visible(True, persist=False)
    yield h, app
    app.hotkeys.close()
    app.tray.hide()
    for w in (app._settings_dialog, app._history):
        if w is not None:
            w.close()


def overlay_rect(app):
    return rect_tuple(app.overlay.geometry())


def test_settings_at_48pt_open_clear_of_the_overlay(gui):
    h, app = gui
    screen = rect_tuple(QGuiApplication.primaryScreen().availableGeometry())
    assert overlay_rect(app)[3] > screen[3] // 3      # a big overlay: a centred dialog would be under it
    app.open_settings()
    dialog = app._settings_dialog
    assert dialog.isVisible()
    covered = intersects(rect_tuple(dialog.geometry()), overlay_rect(app))
    # Either clear of the overlay, or (no clear spot on a small screen) in the overlay's top layer.
    assert not covered or dialog.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    ok = dialog.ok_button.mapTo(dialog, dialog.ok_button.rect().center())
    ok_global = (dialog.geometry().x() + ok.x(), dialog.geometry().y() + ok.y())
    o = overlay_rect(app)
    under = o[0] <= ok_global[0] < o[0] + o[2] and o[1] <= ok_global[1] < o[1] + o[3]
    assert not under or dialog.placement.on_top


def test_dialog_steps_aside_when_a_preview_grows_the_overlay(gui, qtbot):
    h, app = gui
    h.settings.set("appearance/font_size", 20)
    h.settings.set("captions/lines", 2)
    app.overlay.apply_settings()
    app.open_settings()
    dialog = app._settings_dialog
    assert not intersects(rect_tuple(dialog.geometry()), overlay_rect(app))
    h.controller.preview_style({"appearance/font_size": 72, "captions/lines": 4})
    qtbot.waitUntil(lambda: not intersects(rect_tuple(dialog.geometry()), overlay_rect(app))
                    or dialog.placement.on_top, timeout=2000)


def test_dialog_reopens_where_the_user_left_it(gui):
    h, app = gui
    h.settings.set("appearance/font_size", 16)
    h.settings.set("captions/lines", 1)
    app.overlay.apply_settings()
    app.overlay.set_dock("top")
    app.open_settings()
    dialog = app._settings_dialog
    dialog.move(dialog.x() + 17, dialog.y() + 23)
    moved = rect_tuple(dialog.geometry())
    dialog.reject()
    assert parse_geometry(h.settings.store.value("windows/settings")) == moved
    app.open_settings()
    assert rect_tuple(app._settings_dialog.geometry()) == moved


def test_return_presses_ok(gui, qtbot):
    h, app = gui
    app.open_settings()
    dialog = app._settings_dialog
    assert dialog.ok_button.isDefault()
    results = []
    dialog.finished.connect(results.append)
    qtbot.keyClick(dialog.nav, Qt.Key.Key_Return)
    assert results == [QDialog.DialogCode.Accepted]


def test_history_window_also_avoids_the_overlay(gui):
    h, app = gui
    app.open_history()
    win = app._history
    # History may get shorter: it fits above the big overlay instead of covering it.
    assert not intersects(rect_tuple(win.geometry()), overlay_rect(app))
    assert not win.placement.on_top and win.height() >= win.minimumSizeHint().height()
