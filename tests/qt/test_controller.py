"""Controller: relays the service's reports as signals on the GUI thread, decides nothing.

The decisions themselves are tested without Qt in tests/core/test_service.py; the real pipelines
are exercised in tests/e2e.
"""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QCoreApplication, QThread

from app.core.credentials import Secret, save_api_key
from app.core.events import Final, Gap, Partial, Recovery, Revision, SessionStarted, StreamError
from app.core.settings import DictStore, Settings
from app.core.status import State
from app.qt.controller import Controller
from tests.core.test_service import FakeGroup, FakeSource


class Harness:
    alive: list["Harness"] = []

    def __init__(self, settings=None, **kw):
        Harness.alive.append(self)
        FakeGroup.instances = []
        self.settings = settings or Settings(DictStore())
        self.opened: list[tuple] = []

        def open_sources(spec, rate, chunk):
            self.opened.append((spec, rate, chunk))
            return [FakeSource(spec.split(":")[0])]

        self.controller = Controller(
            self.settings, group_factory=FakeGroup, open_sources=open_sources,
            create_session=lambda config, listener, **kw: object(),
            offline_available=lambda: (True, "test engine"), **kw)
        self.statuses, self.errors, self.running = [], [], []
        self.partials, self.finals, self.gaps = [], [], []
        c = self.controller
        c.status_changed.connect(self.statuses.append)
        c.error.connect(self.errors.append)
        c.running_changed.connect(self.running.append)
        c.partial.connect(lambda label, ev: self.partials.append((label, ev.text)))
        c.final.connect(lambda label, ev: self.finals.append((label, ev.text)))
        c.gap.connect(lambda label, ev: self.gaps.append((label, ev.duration_ms)))

    @property
    def group(self) -> FakeGroup:
        return FakeGroup.instances[-1]

    def from_worker(self, label, event):
        """Deliver an event the way a pipeline thread does, then let the GUI thread run."""
        t = threading.Thread(target=self.group.listener, args=(label, event))
        t.start()
        t.join()
        self.pump()

    def pump(self):
        QCoreApplication.sendPostedEvents()
        QCoreApplication.processEvents()


@pytest.fixture(autouse=True)
def _shutdown_controllers(qapp):
    """Stop every controller on the GUI thread before the test ends."""
    yield
    while Harness.alive:
        Harness.alive.pop().controller.shutdown()


@pytest.fixture
def h(qapp, tmp_path):
    return Harness(transcript_dir=tmp_path / "transcripts")


def test_worker_events_arrive_as_signals_on_the_gui_thread(h):
    save_api_key(Secret("k"))
    threads = []
    h.controller.final.connect(lambda label, ev: threads.append(QThread.currentThread()))
    h.controller.start()
    assert h.running == [True] and h.controller.running
    h.from_worker("mic", SessionStarted("s1", "v3"))
    assert h.controller.status.state is State.LIVE
    h.from_worker("mic", Partial("hello", 0, 300))
    h.from_worker("mic", Final("Hello world.", 0, 900))
    h.from_worker("mic", Gap(900, 1500, "outage"))
    assert h.partials == [("mic", "hello")] and h.finals == [("mic", "Hello world.")]
    assert h.gaps == [("mic", 1500)]
    assert threads == [QCoreApplication.instance().thread()]     # lambdas too
    assert h.statuses[-1].latency_ms == 250.0


def test_stop_returns_at_once_and_running_changes_when_the_run_ended(h):
    h.controller.start()
    h.group.done_on_stop = False              # a server slow to close
    t0 = time.monotonic()
    h.controller.stop()
    assert time.monotonic() - t0 < 0.05
    assert h.controller.running and h.running == [True]
    threading.Thread(target=h.group.on_done).start()   # the watcher thread, later
    deadline = time.monotonic() + 5
    while h.controller.running and time.monotonic() < deadline:
        h.pump()
    assert h.running == [True, False] and h.controller.status.state is State.STOPPED


def test_errors_and_sources_are_relayed(h):
    labels = []
    h.controller.sources_changed.connect(labels.append)
    h.controller.start()
    assert labels == [["mic"]]
    h.from_worker("mic", StreamError(1008, "The API key was not accepted.", Recovery.STOP))
    assert h.errors[-1] == "The API key was not accepted."


def test_settings_applied_and_style_preview_are_relayed(h):
    applied, seen = [], []
    h.controller.settings_applied.connect(applied.append)
    h.controller.style_preview.connect(seen.append)
    h.controller.apply_settings({"appearance/font_size"})
    h.controller.preview_style({"appearance/font_size": 40})
    h.controller.preview_style(None)
    assert applied == [{"appearance/font_size"}]
    assert seen == [{"appearance/font_size": 40}, None]


def test_controls_go_to_the_service(h):
    h.controller.start()
    h.controller.force_end()
    h.controller.set_silence_threshold(300)
    h.controller.set_vocabulary(["Term"])
    assert ("force_end",) in h.group.calls and ("silence", 300) in h.group.calls
    assert ("vocabulary", ("Term",)) in h.group.calls
    assert h.controller.status.silence_ms == 300


def test_shutdown_delivers_the_last_finals_before_returning(h):
    h.controller.start()
    h.group.flush_on_stop = [("mic", Final("Said just before Quit.", 0, 900))]
    path = h.controller.transcript_path
    h.controller.shutdown()
    assert h.finals == [("mic", "Said just before Quit.")]
    assert "Said just before Quit." in path.read_text()
    assert not h.controller.running


def test_revisions_and_renames_are_relayed(h):
    revisions, renamed = [], []
    h.controller.revision.connect(lambda label, ev: revisions.append((label, ev)))
    h.controller.speakers_renamed.connect(lambda label, name: renamed.append((label, name)))
    h.controller.start()
    first = Final("Good morning.", 0, 900, speaker="A")
    h.from_worker("system", first)
    h.from_worker("system", Revision(first.id, "B"))
    assert revisions == [("system", Revision(first.id, "B"))]
    h.controller.speaker_renamed("B", "Dana")
    h.controller.speaker_renamed("B", "  ")                 # refused in plain words, not kept
    assert renamed == [("B", "Dana")] and any("empty" in e for e in h.errors)
    assert h.controller.names.display("B") == "Dana"


def test_history_opened_mid_session_shows_the_whole_sitting_once(h, qtbot):
    from app.qt.history_window import HistoryWindow
    h.controller.start()
    h.from_worker("mic", SessionStarted("s1", "local"))
    for i in range(25):
        h.from_worker("mic", Final(f"Caption {i}.", i * 1000, i * 1000 + 800))
    win = HistoryWindow(h.controller, h.controller.transcript_dir)
    qtbot.addWidget(win)
    assert win.list.count() == 25 and win.status.text() == "Live: 25 captions"
    # The running session is the live view, not also a saved entry with a stale count.
    assert [win.session_box.itemText(i) for i in range(win.session_box.count())] == ["Live session"]
    h.from_worker("mic", Final("Caption 25.", 25000, 25800))
    assert win.list.count() == 26 and win.list.item(25).text().endswith("Caption 25.")
    # New settings restart the session: still one sitting, nothing lost from the live view.
    h.settings.set("connection/protocol", "v2")
    h.controller.apply_settings({"connection/protocol"})
    h.pump()
    h.from_worker("mic", Final("After the restart.", 0, 500))
    assert win.list.count() == 27 and win.session_box.count() == 1
    h.controller.stop()
    h.pump()
    assert win.session_box.count() > 1       # stopped: its files are saved sessions now


def test_translations_and_the_display_mode_are_relayed(qapp, tmp_path):
    from app.core.events import LLMResponse, Translation
    save_api_key(Secret("k"))
    settings = Settings(DictStore({"translation/target": "es", "translation/show": "translation"}))
    h = Harness(settings, transcript_dir=tmp_path / "t")
    modes, translations = [], []
    h.controller.translation_mode.connect(modes.append)
    h.controller.translation.connect(lambda label, ev: translations.append((label, ev)))
    h.controller.start()
    assert modes == ["translation"]
    final = Final("Good morning.", 0, 900)
    h.from_worker("mic", final)
    h.from_worker("mic", LLMResponse(0, "Good morning.", "Buenos días.", final_id=final.id))
    assert translations == [("mic", Translation(final.id, "es", "Buenos días."))]
    # A run that cannot translate (saved EU region) tells the overlay not to hold captions back.
    h.controller.stop()
    h.pump()
    settings.set("connection/region", "eu")
    h.controller.start()
    assert modes == ["translation", ""]


def test_the_meter_is_told_when_it_moves_and_the_gui_thread_sleeps_while_nothing_is_timed(
        qapp, tmp_path, qtbot, monkeypatch):
    """No polling: a level move on the capture thread becomes ``levels_changed`` on the GUI
    thread, and a notice's fade is the only thing that arms the timer."""
    from app.core.audio.level import LevelMeter
    sources = []

    def open_sources(spec, rate, chunk):
        src = FakeSource(spec.split(":")[0])
        src.level = LevelMeter(16000, source=src.label)
        sources.append(src)
        return [src]

    h = Harness(transcript_dir=tmp_path)
    h.controller.service._open_sources = open_sources
    monkeypatch.setattr(FakeGroup, "levels", lambda self: {s.label: s.level.snapshot() for s in sources})
    moves, threads = [], []
    h.controller.levels_changed.connect(lambda lv: (moves.append(lv), threads.append(QThread.currentThread())))
    h.controller.start()
    h.from_worker("mic", SessionStarted("s1", "v3"))
    assert not h.controller._tick_timer.isActive()       # nothing timed: no wake-ups
    t = threading.Thread(target=sources[0].level.update, args=(b"\x00\x30" * 1600,))
    t.start()
    t.join()
    qtbot.waitUntil(lambda: bool(moves), timeout=2000)
    assert moves[-1]["mic"].rms_dbfs > -30 and threads == [QCoreApplication.instance().thread()]
    h.from_worker("mic", Gap(0, 2000, "outage"))          # a notice that fades
    assert h.controller._tick_timer.isActive()
    assert h.controller._tick_timer.remainingTime() > 15000
