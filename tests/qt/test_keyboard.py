"""Keyboard only: every settings page, the history window and the tray menu work without a mouse."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox,
                               QApplication, QComboBox, QLineEdit, QPlainTextEdit, QWidget)

from app.core.settings import DictStore, Settings
from app.qt.settings_dialog import SettingsDialog
from tests.qt.test_settings_fakes import FakeController

CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QAbstractSlider, QPlainTextEdit,
            QAbstractItemView)


def operable(root: QWidget) -> list[QWidget]:
    out = []
    for w in root.findChildren(QWidget):
        if not isinstance(w, CONTROLS) or not (w.isVisibleTo(root) and w.isEnabled()):
            continue
        if isinstance(w, QLineEdit) and isinstance(w.parentWidget(), (QComboBox, QAbstractSpinBox)):
            continue                     # focus goes to the combo / spin box itself
        if w.focusPolicy() & Qt.FocusPolicy.TabFocus:
            out.append(w)
    return out


def tab_through(qtbot, window, n: int) -> list[QWidget]:
    seen = []
    for _ in range(n):
        focus = QApplication.focusWidget()
        qtbot.keyClick(focus or window, Qt.Key.Key_Tab)
        seen.append(QApplication.focusWidget())
    return seen


@pytest.fixture
def dialog(qtbot, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names",
                        lambda: ([("usb", "USB Mic")], [("out.monitor", "Speakers")], ""))
    dlg = SettingsDialog(Settings(DictStore()), FakeController())
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    dlg.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dlg)
    return dlg


def test_every_settings_page_is_reachable_and_operable_by_keyboard(dialog, qtbot):
    dialog.nav.setFocus()
    for row, page in enumerate(dialog.pages):
        dialog.nav.setFocus()
        if row:
            qtbot.keyClick(dialog.nav, Qt.Key.Key_Down)          # arrow keys pick the page
        assert dialog.stack.currentWidget() is page
        wanted = set(operable(page))
        seen = set(tab_through(qtbot, dialog, len(operable(dialog)) + 5))
        missing = [f"{type(w).__name__} {w.accessibleName() or getattr(w, 'text', lambda: '')()}"
                   for w in wanted - seen]
        assert not missing, f"{page.title}: Tab never reaches {missing}"
    for button in (dialog.ok_button, dialog.cancel_button, dialog.apply_button):
        assert button.focusPolicy() & Qt.FocusPolicy.TabFocus


def test_escape_cancels_the_settings(dialog, qtbot):
    results = []
    dialog.finished.connect(results.append)
    qtbot.keyClick(dialog.nav, Qt.Key.Key_Escape)
    assert results == [0]


def test_history_window_by_keyboard(qtbot, tmp_path):
    from app.core.events import Final
    from app.qt.history_window import HistoryWindow
    from tests.qt.test_history_window import FakeController as HistoryController
    c = HistoryController()
    win = HistoryWindow(c, tmp_path)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)
    c.final.emit("mic", Final("Budget review at nine.", 0, 900))
    c.final.emit("mic", Final("Send the slides.", 1000, 1800))
    wanted = set(operable(win))
    win.session_box.setFocus()
    seen = set(tab_through(qtbot, win, len(wanted) + 3))
    assert not [type(w).__name__ for w in wanted - seen]
    # Ctrl+F jumps to the search; typing filters; Tab to the list, Ctrl+A, Ctrl+C copies.
    qtbot.keyClick(win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is win.search
    qtbot.keyClicks(win.search, "slides")
    assert win.list.count() == 1
    win.list.setFocus()
    qtbot.keyClick(win.list, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(win.list, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().text().endswith("Send the slides.")
