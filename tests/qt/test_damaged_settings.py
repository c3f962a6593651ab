"""A damaged settings file: set aside as a copy (nothing lost) and the user is told so, when
the app starts and in Settings, with where the copy is."""

from __future__ import annotations

import argparse

import pytest

from app.core.settings import Settings
from app.qt.settings_dialog import SettingsDialog
from app.qt.settings_store import QSettingsStore
from tests.qt.test_controller import Harness
from tests.qt.test_settings_fakes import FakeController

JUNK = b"[appearance]\nfont_size=\xff\xfe garbage\x00\n[[[\nlines=abc\n" * 5


@pytest.fixture
def damaged(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_bytes(JUNK)
    return path


@pytest.fixture(autouse=True)
def _shutdown(qapp):
    yield
    while Harness.alive:
        Harness.alive.pop().controller.shutdown()


def test_settings_say_the_file_was_damaged_and_where_the_copy_is(qtbot, damaged, monkeypatch):
    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    store = QSettingsStore(str(damaged))
    dlg = SettingsDialog(Settings(store), FakeController())
    qtbot.addWidget(dlg)
    [copy] = damaged.parent.glob("settings.ini.corrupt-*")
    assert copy.read_bytes() == JUNK                         # nothing lost
    text = dlg.problem.text()
    assert "damaged" in text and str(copy) in text, text


def test_the_app_tells_at_start_that_settings_were_reset(qtbot, damaged, tmp_path, monkeypatch):
    from app.qt.application import GuiApp
    h = Harness(transcript_dir=tmp_path / "t")
    settings = Settings(QSettingsStore(str(damaged)))
    settings.set("app/start_on_launch", False)
    app = GuiApp(settings, argparse.Namespace(), controller=h.controller)
    qtbot.addWidget(app.overlay)
    told = []
    monkeypatch.setattr(app.tray, "notify", lambda title, message: told.append((title, message)))
    try:
        app.start()
        [copy] = damaged.parent.glob("settings.ini.corrupt-*")
        shown = " ".join(m for _, m in told) + " " + app.overlay.full_status()
        assert "damaged" in shown and str(copy) in shown, (told, app.overlay.full_status())
        app.open_settings()                          # it is said there in full from now on
        assert "damaged" in app._settings_dialog.problem.text()
        assert "damaged" not in app.overlay.full_status()
    finally:
        app.hotkeys.close()
        app.tray.hide()
        if app._settings_dialog is not None:
            app._settings_dialog.close()
