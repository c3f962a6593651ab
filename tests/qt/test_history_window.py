"""The history window renders the history model: live finals, search, copy, past sessions, export."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog

from app.core.events import Final, Gap, Partial
from app.core.transcript import TranscriptWriter
from app.qt.history_window import HistoryWindow


class FakeController(QObject):
    final = Signal(str, object)
    running_changed = Signal(bool)

    def __init__(self, transcript_path=None):
        super().__init__()
        self.transcript_path = transcript_path


@pytest.fixture
def saved(tmp_path):
    d = tmp_path / "transcripts"
    w = TranscriptWriter(d, protocol="v2", source="mic", clock=lambda: 1_600_000_000.0)
    w.on_event(Final("An older meeting", 0, 1000))
    w.on_event(Gap(1000, 3000, "connection lost"))
    w.on_event(Final("Older second line", 4000, 5000))
    w.close()
    return d, w.path


def texts(win):
    return [win.list.item(i).text() for i in range(win.list.count())]


def test_live_finals_appear_and_follow(qtbot, saved):
    d, _ = saved
    c = FakeController()
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    win.show()
    assert win.session_box.itemText(0) == "Live session" and win.session_box.count() == 2
    c.final.emit("mic", Final("Hello there", 0, 800))
    c.final.emit("mic", Partial("ignored", 0, 10))
    c.final.emit("system", Final("General Kenobi", 900, 1500))
    assert [t.split("  ", 1)[1] for t in texts(win)] == ["mic  Hello there", "system  General Kenobi"]
    assert "2 captions" in win.status.text()
    for i in range(60):
        c.final.emit("mic", Final(f"line {i}", 2000 + i, 2001 + i))
    bar = win.list.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()   # follows the newest caption
    c.running_changed.emit(True)                                  # a new session starts
    assert texts(win) == []


def test_search_filters_live_and_new_rows(qtbot, saved):
    d, _ = saved
    c = FakeController()
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    c.final.emit("mic", Final("budget review at nine", 0, 800))
    c.final.emit("mic", Final("send the slides", 900, 1500))
    win.search.setText("BUDGET")
    assert len(texts(win)) == 1 and "budget review" in texts(win)[0]
    c.final.emit("mic", Final("the budget is approved", 1600, 2000))
    c.final.emit("mic", Final("unrelated", 2100, 2200))
    assert len(texts(win)) == 2 and "2 matches" in win.status.text()
    win.search.clear()
    assert len(texts(win)) == 4


def test_copy_selected_or_all(qtbot, saved):
    d, _ = saved
    c = FakeController()
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    c.final.emit("mic", Final("first caption", 0, 800))
    c.final.emit("mic", Final("second caption", 900, 1500))
    c.final.emit("mic", Final("third caption", 1600, 2000))
    win.list.item(2).setSelected(True)
    win.list.item(0).setSelected(True)
    copied = win.copy_selected()
    assert [line.split("] ", 1)[1] for line in copied.splitlines()] == ["first caption", "third caption"]
    assert QGuiApplication.clipboard().text() == copied
    win.list.clearSelection()
    assert win.copy_selected().count("\n") == 2


def test_open_past_session_and_back(qtbot, saved):
    d, path = saved
    c = FakeController()
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    c.final.emit("mic", Final("live text", 0, 800))
    win.session_box.setCurrentIndex(1)
    win.session_box.activated.emit(1)
    shown = texts(win)
    assert "An older meeting" in shown[0] and "no captions for 3.0 s" in shown[1]
    assert win.list.item(1).font().italic()
    assert "Saved session: 2 captions · 1 gap" in win.status.text()
    c.final.emit("mic", Final("arrives while browsing", 900, 1200))
    assert len(texts(win)) == 3          # the saved view is not disturbed
    win.session_box.setCurrentIndex(0)
    win.session_box.activated.emit(0)
    assert [t.split("  ")[-1] for t in texts(win)] == ["live text", "arrives while browsing"]


def test_open_a_missing_file_reports_and_stays_live(qtbot, saved, tmp_path):
    d, _ = saved
    win = HistoryWindow(FakeController(), d)
    qtbot.addWidget(win)
    assert not win.open_session(tmp_path / "nope.jsonl")
    assert win.model.is_live and "Could not open nope.jsonl" in win.status.text()


def test_export_dialog_writes_the_chosen_format(qtbot, saved, tmp_path, monkeypatch):
    d, path = saved
    c = FakeController()
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    assert win.open_session(path)
    out = tmp_path / "exports"
    out.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (str(out / "meeting"), "WebVTT subtitles (*.vtt)"))
    win.export_dialog()
    vtt = (out / "meeting.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "An older meeting" in vtt and "NOTE gap of 3.0 s" in vtt
    assert "Exported to" in win.status.text()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out / "m.srt"), ""))
    win.export_dialog()
    assert (out / "m.srt").read_text().startswith("1\n00:00:00,000 --> 00:00:01,000\nAn older meeting")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: ("", ""))
    win.export_dialog()  # cancelled: nothing happens


def test_live_export_uses_the_autosaved_file(qtbot, tmp_path):
    d = tmp_path / "transcripts"
    w = TranscriptWriter(d, protocol="v3", source="mic")
    c = FakeController(transcript_path=w.path)
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    for ev in (Final("one", 0, 500), Gap(500, 2000, "connection lost"), Final("two", 2500, 3000)):
        w.on_event(ev, "mic")
        c.final.emit("mic", ev)   # the controller relays finals only; the gap lives in the file
    assert win.export_to(tmp_path / "live.txt")
    text = (tmp_path / "live.txt").read_text()
    assert "one" in text and "no captions for 2.0 s" in text and "two" in text
    w.close()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_export_failure_is_reported(qtbot, saved, tmp_path):
    d, path = saved
    win = HistoryWindow(FakeController(), d)
    qtbot.addWidget(win)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert not win.export_to(locked / "x.srt")
    assert "Export failed" in win.status.text()


def test_export_failure_to_a_missing_folder_is_reported(qtbot, saved, tmp_path):
    d, path = saved
    win = HistoryWindow(FakeController(), d)
    qtbot.addWidget(win)
    win.open_session(path)
    assert not win.export_to(tmp_path / "no" / "such" / "dir" / "x.srt")
    assert "Export failed" in win.status.text() and "try again" in win.status.text()
    assert not win.export_to(tmp_path / "x.docx")
    assert "txt, srt or vtt" in win.status.text()


def test_ctrl_c_copies_the_selection(qtbot, saved):
    d, _ = saved
    c = FakeController()
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    c.final.emit("mic", Final("copy me", 0, 800))
    c.final.emit("mic", Final("not me", 900, 1500))
    win.list.item(0).setSelected(True)
    win.activateWindow()
    win.list.setFocus()
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(win.list, Qt.Key_C, Qt.ControlModifier)
    assert qtbot.waitUntil(lambda: QGuiApplication.clipboard().text().endswith("copy me"), timeout=5000) is None


def test_gaps_relayed_by_the_controller_show_live(qtbot, saved):
    class GapController(FakeController):
        gap = Signal(str, object)

    d, _ = saved
    c = GapController()
    win = HistoryWindow(c, d)
    qtbot.addWidget(win)
    c.final.emit("mic", Final("before", 0, 800))
    c.gap.emit("mic", Gap(800, 1500, "connection lost"))
    c.final.emit("mic", Final("after", 2300, 2900))
    shown = texts(win)
    assert "before" in shown[0] and "no captions for 1.5 s (connection lost)" in shown[1] and "after" in shown[2]


def test_history_window_speakers_revision_and_rename(qtbot, tmp_path):
    from PySide6.QtCore import QObject, Signal

    from app.core.events import Final, Revision
    from app.core.speakers import SpeakerNames
    from app.qt.history_window import HistoryWindow

    class Controller(QObject):
        final = Signal(str, object)
        revision = Signal(str, object)
        speakers_renamed = Signal(str, str)

        def __init__(self):
            super().__init__()
            self.names = SpeakerNames()

        def speaker_renamed(self, label, name):
            self.speakers_renamed.emit(label, self.names.rename(label, name))

    c = Controller()
    w = HistoryWindow(c, tmp_path)
    qtbot.addWidget(w)
    first = Final("Good morning.", 0, 900, speaker="A", language="en")
    c.final.emit("system", first)
    c.final.emit("system", Final("Hola.", 1000, 1800, speaker="B", language="es"))
    texts = [w.list.item(i).text() for i in range(w.list.count())]
    assert texts[0].endswith("Speaker A: [en] Good morning.") and texts[1].endswith("Speaker B: [es] Hola.")
    c.revision.emit("system", Revision(first.id, "B"))
    assert w.list.item(0).text().endswith("Speaker B: [en] Good morning.")
    w.rename_speaker("B", "Dana")
    assert [w.list.item(i).text().split("  ", 1)[1] for i in range(2)] == [
        "system  Dana: [en] Good morning.", "system  Dana: [es] Hola."]


class TranslatingController(FakeController):
    translation = Signal(str, object)


def test_live_translation_goes_under_its_caption_and_exports_translation_only(
        qtbot, tmp_path, monkeypatch):
    from app.core.events import Translation
    c = TranslatingController()
    win = HistoryWindow(c, tmp_path / "none")
    qtbot.addWidget(win)
    one, two = Final("Good morning", 0, 800), Final("See you", 900, 1500)
    c.final.emit("mic", one)
    c.final.emit("mic", two)
    c.translation.emit("mic", Translation(two.id, "es", "Hasta luego"))
    c.translation.emit("mic", Translation(one.id, "es", "Buenos días"))
    shown = texts(win)
    assert shown[0].endswith("Good morning\n      Buenos días")
    assert shown[1].endswith("See you\n      Hasta luego")
    seen = {}

    def save(parent, title, start, filters, default):
        seen["filters"] = filters.split(";;")
        return str(tmp_path / "es"), "SubRip subtitles, translation only (*.srt)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save)
    win.export_dialog()
    assert "SubRip subtitles, original + translation (*.srt)" in seen["filters"]
    text = (tmp_path / "es.srt").read_text(encoding="utf-8")
    assert "Buenos días" in text and "Hasta luego" in text and "Good morning" not in text
