"""macOS: the overlay joins every Space and stays over full-screen apps (PyObjC faked here)."""

from __future__ import annotations

import sys
import types

from PySide6.QtWidgets import QWidget

from app.qt import platform


class FakeNSWindow:
    def __init__(self):
        self.behaviour = None
        self.hides_on_deactivate = True

    def setCollectionBehavior_(self, value):
        self.behaviour = value

    def setHidesOnDeactivate_(self, value):
        self.hides_on_deactivate = value


def test_overlay_window_joins_all_spaces_and_full_screen_apps(qtbot, monkeypatch):
    window = FakeNSWindow()
    seen = {}

    class FakeView:
        def __init__(self, c_void_p):
            seen["pointer"] = c_void_p

        def window(self):
            return window

    monkeypatch.setitem(sys.modules, "objc", types.SimpleNamespace(objc_object=FakeView))
    monkeypatch.setitem(sys.modules, "AppKit", types.SimpleNamespace(
        NSWindowCollectionBehaviorCanJoinAllSpaces=1 << 0,
        NSWindowCollectionBehaviorFullScreenAuxiliary=1 << 8))
    monkeypatch.setattr(platform.sys, "platform", "darwin")
    widget = QWidget()
    qtbot.addWidget(widget)
    platform.prepare_window(widget)
    assert seen["pointer"] == int(widget.winId())
    assert window.behaviour == (1 << 0) | (1 << 8)
    assert window.hides_on_deactivate is False


def test_without_pyobjc_the_overlay_still_opens(qtbot, monkeypatch, caplog):
    caplog.set_level("INFO", logger="app.qt.platform")
    monkeypatch.setitem(sys.modules, "objc", None)          # import fails
    monkeypatch.setattr(platform.sys, "platform", "darwin")
    widget = QWidget()
    qtbot.addWidget(widget)
    platform.prepare_window(widget)
    assert any("PyObjC" in r.getMessage() for r in caplog.records)
