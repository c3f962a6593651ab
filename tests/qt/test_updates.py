"""The first-run question and the daily check in the GUI (the feed itself is faked here)."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtWidgets import QMessageBox

from app.core.settings import DictStore, Settings
from app.core.update_check import UpdateCheckError, UpdateInfo
from app.qt.updates import UpdateNotifier

NEWER = UpdateInfo(current="0.1.0", latest="0.2.0", newer=True,
                   page_url="https://github.com/Owner/app/releases/tag/v0.2.0")


class FakeFeed:
    def __init__(self, result):
        self.result = result
        self.calls = 0
        self.threads: list[str] = []

    def __call__(self):
        self.calls += 1
        self.threads.append(threading.current_thread().name)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture
def settings():
    return Settings(DictStore())


def _notifier(settings, feed, notes, now=1_000_000.0):
    return UpdateNotifier(settings, lambda title, text: notes.append((title, text)), check=feed,
                          clock=lambda: now)


def test_off_by_default_and_asked_once_on_first_run(qtbot, settings):
    assert settings.get("updates/check") is False
    feed, notes = FakeFeed(NEWER), []
    n = _notifier(settings, feed, notes)
    n.start()
    box = n._question
    assert isinstance(box, QMessageBox) and box.isVisible() and not box.isModal()
    assert "new version" in box.text() and "Nothing else is sent" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
    assert feed.calls == 0                                   # nothing sent before the answer
    box.button(QMessageBox.StandardButton.No).click()
    assert settings.get("updates/asked") is True and settings.get("updates/check") is False
    assert feed.calls == 0
    again = _notifier(settings, feed, notes)
    again.start()
    assert again._question is None and feed.calls == 0      # not asked twice


def test_yes_checks_off_the_gui_thread_and_notifies(qtbot, settings):
    feed, notes = FakeFeed(NEWER), []
    n = _notifier(settings, feed, notes)
    n.start()
    n._question.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: bool(notes), timeout=5000)
    assert settings.get("updates/check") is True
    assert feed.threads == ["update-check"]
    title, text = notes[0]
    assert "0.2.0" in title and "https://github.com/Owner/app/releases/tag/v0.2.0" in text
    assert settings.get("updates/last_check") == 1_000_000


def test_at_most_once_a_day(qtbot, settings):
    settings.set("updates/asked", True)
    settings.set("updates/check", True)
    settings.set("updates/last_check", 1_000_000 - 3600)
    feed, notes = FakeFeed(NEWER), []
    n = _notifier(settings, feed, notes)
    n.start()
    assert feed.calls == 0 and not n.check_if_due()
    later = _notifier(settings, feed, notes, now=1_000_000 + 24 * 3600)
    assert later.check_if_due()
    qtbot.waitUntil(lambda: bool(notes), timeout=5000)


@pytest.mark.parametrize("result", [UpdateCheckError("The release feed could not be reached."),
                                    UpdateInfo("0.2.0", "0.2.0", False, "https://x"),
                                    RuntimeError("bug")])
def test_no_news_or_a_failed_check_stays_quiet(qtbot, settings, result):
    settings.set("updates/asked", True)
    settings.set("updates/check", True)
    feed, notes = FakeFeed(result), []
    n = _notifier(settings, feed, notes)
    n.start()
    qtbot.waitUntil(lambda: n.last_result is not None, timeout=5000)
    assert notes == []


def test_closing_the_question_without_answering_asks_again_next_time(qtbot, settings):
    feed, notes = FakeFeed(NEWER), []
    n = _notifier(settings, feed, notes)
    n.start()
    n._question.close()                                   # e.g. the app quits while it is open
    assert settings.get("updates/asked") is False and feed.calls == 0
    again = _notifier(settings, feed, notes)
    again.start()
    assert again._question is not None and again._question.isVisible()
    again._question.close()
