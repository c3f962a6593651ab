"""Controller: builds config/sources/sessions, relays events as signals, status, transcript, live changes.

The threaded runner (app.qt.session_worker.CaptionSession) is replaced by a fake with the same
signals, so these tests are synchronous; the real one is exercised in tests/e2e.
"""

from __future__ import annotations

import argparse
import json

import pytest
from PySide6.QtCore import QObject, Qt, Signal

from app.core.audio.errors import DeviceNotFound
from app.core.credentials import KeyringUnavailable, Secret, save_api_key
from app.core.events import Final, Partial, Recovery, SessionStarted, StreamError
from app.core.settings import DictStore, Settings
from app.core.status import State
from app.qt.controller import Controller, overrides_from_args


class FakeSource:
    def __init__(self, label):
        self.label = label


class FakeRunner(QObject):
    event = Signal(str, object)
    finished = Signal()
    _queued = Signal(str, object)
    instances: list["FakeRunner"] = []

    def __init__(self, sources, session_factory, parent=None):
        super().__init__(parent)
        self._queued.connect(self.event.emit, Qt.ConnectionType.QueuedConnection)
        self.flush_on_stop: list = []   # finals the "worker" emits while stopping (queued)
        self.sources = sources
        self.session_factory = session_factory
        self.calls: list[tuple] = []
        self.fatal_error = None
        self.latency = 250.0
        FakeRunner.instances.append(self)

    def start(self):
        self.calls.append(("start",))

    def stop(self):
        self.calls.append(("stop",))
        for label, event in self.flush_on_stop:   # like worker threads: queued to the GUI thread
            self._queued.emit(label, event)
        self.finished.emit()

    def force_end(self):
        self.calls.append(("force_end",))

    def set_silence_threshold(self, ms):
        self.calls.append(("silence", ms))

    def set_vocabulary(self, terms):
        self.calls.append(("vocabulary", tuple(terms)))

    def levels(self):
        return {}

    def latency_ms(self, label, final):
        return self.latency


class Harness:
    alive: list["Harness"] = []

    def __init__(self, settings=None, **kw):
        Harness.alive.append(self)
        FakeRunner.instances = []
        self.settings = settings or Settings(DictStore())
        self.opened: list[tuple] = []
        self.created: list[dict] = []
        self.open_error = None

        def open_sources(spec, rate, chunk):
            self.opened.append((spec, rate, chunk))
            if self.open_error:
                raise self.open_error
            return [FakeSource(label) for label in (("mic", "system") if spec == "both" else (spec.split(":")[0],))]

        def create_session(config, listener, *, api_key, token_url=None):
            self.created.append({"config": config, "api_key": api_key, "token_url": token_url})
            return object()

        self.controller = Controller(self.settings, session_class=FakeRunner, open_sources=open_sources,
                                     create_session=create_session, **kw)
        self.statuses = []
        self.errors = []
        self.controller.status_changed.connect(self.statuses.append)
        self.controller.error.connect(self.errors.append)

    @property
    def runner(self) -> FakeRunner:
        return FakeRunner.instances[-1]

    def session_config(self):
        self.runner.session_factory(lambda e: None)
        return self.created[-1]


@pytest.fixture(autouse=True)
def _shutdown_controllers(qapp):
    """Stop every controller on the GUI thread before the test ends. Left running, a later garbage
    collection on another thread (e.g. the transcript's fsync thread) would free its QTimer there."""
    yield
    while Harness.alive:
        Harness.alive.pop().controller.shutdown()


@pytest.fixture
def h(qapp, tmp_path):
    return Harness(transcript_dir=tmp_path / "transcripts")


def test_start_with_a_key_uses_assemblyai(h):
    save_api_key(Secret("sk-test-123"))
    running = []
    h.controller.running_changed.connect(running.append)
    h.controller.start()
    assert running == [True] and h.controller.running
    assert h.opened == [("mic", 16000, 100)]
    assert ("start",) in h.runner.calls
    created = h.session_config()
    assert created["config"].engine == "assemblyai"
    assert created["api_key"] == Secret("sk-test-123")
    assert h.controller.status.state is State.CONNECTING


def test_no_key_and_auto_engine_falls_back_to_offline(h):
    h.controller.start()
    assert h.session_config()["config"].engine == "local"
    assert h.session_config()["api_key"] is None


def test_no_key_but_assemblyai_requested_is_a_clear_error(h):
    h.settings.set("engine/engine", "assemblyai")
    h.controller.start()
    assert not h.controller.running
    assert h.controller.status.state is State.ERROR
    assert "No AssemblyAI API key" in h.errors[-1]
    assert h.opened == []  # nothing opened before the configuration is known to be usable


def test_keyring_unavailable_falls_back_or_uses_session_key(qapp, tmp_path):
    def broken():
        raise KeyringUnavailable("The system keyring is not available (NoKeyringError).")

    h = Harness(transcript_dir=tmp_path, key_loader=broken)
    h.controller.start()
    assert h.session_config()["config"].engine == "local"
    # A key typed for this session only: the controller restarts and uses it.
    h.controller.set_session_api_key(Secret("sk-session"))
    assert len(FakeRunner.instances) == 2
    created = h.session_config()
    assert created["config"].engine == "assemblyai" and created["api_key"] == Secret("sk-session")

    h2 = Harness(transcript_dir=tmp_path, key_loader=broken)
    h2.settings.set("engine/engine", "assemblyai")
    h2.controller.start()
    assert "keyring is not available" in h2.errors[-1]


def test_events_are_relayed_and_status_follows(h):
    save_api_key(Secret("k"))
    partials, finals = [], []
    h.controller.partial.connect(lambda label, ev: partials.append((label, ev.text)))
    h.controller.final.connect(lambda label, ev: finals.append((label, ev.text)))
    h.controller.start()
    h.runner.event.emit("mic", SessionStarted("s1", "v3"))
    assert h.controller.status.state is State.LIVE
    h.runner.event.emit("mic", Partial("hello", 0, 300))
    h.runner.event.emit("mic", Final("Hello world.", 0, 900))
    assert partials == [("mic", "hello")]
    assert finals == [("mic", "Hello world.")]
    assert h.controller.status.latency_ms == 250.0
    assert "latency 250 ms" in h.controller.status.summary()
    assert h.statuses[-1].latency_ms == 250.0  # the overlay was told, too


def test_transcript_gets_every_final_and_is_closed_on_stop(h, tmp_path):
    h.controller.start()
    h.runner.event.emit("mic", SessionStarted("s1", "local"))
    h.runner.event.emit("mic", Final("First.", 0, 500))
    h.runner.event.emit("mic", Final("Second.", 600, 900))
    path = h.controller.transcript_path
    assert path is not None and path.parent == tmp_path / "transcripts"
    h.controller.stop()
    assert ("stop",) in h.runner.calls
    assert not h.controller.running
    assert h.controller.status.state is State.STOPPED
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["text"] for r in records if r["type"] == "final"] == ["First.", "Second."]
    assert records[-1]["type"] == "end"


def test_finals_flushed_at_stop_reach_overlay_and_transcript(h):
    finals = []
    h.controller.final.connect(lambda label, ev: finals.append(ev.text))
    h.controller.start()
    h.runner.flush_on_stop = [("mic", Final("Said just before Stop.", 0, 900))]
    path = h.controller.transcript_path
    h.controller.stop()
    assert finals == ["Said just before Stop."]
    assert "Said just before Stop." in path.read_text()


def test_transcript_disabled(h):
    h.settings.set("transcript/enabled", False)
    h.controller.start()
    assert h.controller.transcript_path is None


def test_stop_class_error_is_shown(h):
    h.controller.start()
    h.runner.event.emit("mic", StreamError(1008, "The API key was not accepted.", Recovery.STOP))
    assert h.errors[-1] == "The API key was not accepted."
    assert h.controller.status.state is State.ERROR


def test_runner_ending_with_a_fatal_error(h):
    h.controller.start()
    h.runner.fatal_error = StreamError(4001, "Not authorized.", Recovery.STOP)
    h.runner.finished.emit()
    assert not h.controller.running
    assert h.controller.status.state is State.ERROR
    assert "Not authorized." in h.controller.status.text


def test_device_not_found_is_a_clear_error_not_a_crash(h):
    h.open_error = DeviceNotFound("mic:Nope", ["Built-in Microphone"])
    h.settings.set("audio/mic_device", "Nope")
    h.controller.start()
    assert not h.controller.running
    assert "'mic:Nope' was not found" in h.errors[-1]
    assert "Built-in Microphone" in h.controller.status.text


def test_live_changes_and_restart_rules(h):
    h.controller.start()
    first = h.runner
    applied = []
    h.controller.settings_applied.connect(applied.append)
    h.settings.set("recognition/silence_ms", 1200)
    h.controller.apply_settings({"recognition/silence_ms"})
    assert ("silence", 1200) in first.calls
    assert h.controller.status.silence_ms == 1200
    h.settings.set("recognition/vocabulary", ["Kubernetes", "Añejo"])
    h.controller.apply_settings({"recognition/vocabulary"})
    assert ("vocabulary", ("Kubernetes", "Añejo")) in first.calls
    h.controller.apply_settings({"appearance/font_size"})
    assert len(FakeRunner.instances) == 1 and applied[-1] == {"appearance/font_size"}
    # A connection setting needs a new session.
    h.settings.set("connection/protocol", "v2")
    h.controller.apply_settings({"connection/protocol"})
    assert ("stop",) in first.calls
    assert len(FakeRunner.instances) == 2 and h.controller.running
    assert h.session_config()["config"].protocol == "v2"


def test_fixing_a_failed_configuration_starts_captions(h):
    h.settings.set("connection/auth_mode", "broker")  # no broker URL: cannot start
    h.controller.start()
    assert not h.controller.running and h.controller.status.state is State.ERROR
    h.settings.set("connection/token_url", "https://broker.example/token")
    h.controller.apply_settings({"connection/token_url"})
    assert h.controller.running
    assert h.session_config()["token_url"] == "https://broker.example/token"


def test_force_end_and_direct_controls(h):
    h.controller.force_end()  # not running: nothing to do, no error
    h.controller.start()
    h.controller.force_end()
    h.controller.set_silence_threshold(300)
    h.controller.set_vocabulary(["Term"])
    assert ("force_end",) in h.runner.calls and ("silence", 300) in h.runner.calls
    assert ("vocabulary", ("Term",)) in h.runner.calls


def test_source_spec_from_settings(h):
    assert h.controller.source_spec() == "mic"
    h.settings.set("audio/mic_device", "USB Headset")
    assert h.controller.source_spec() == "mic:USB Headset"
    h.settings.set("audio/source", "system")
    assert h.controller.source_spec() == "system"
    h.settings.set("audio/source", "both")
    assert h.controller.source_spec() == "both"
    labels = []
    h.controller.sources_changed.connect(labels.append)
    h.controller.start()
    assert labels == [["mic", "system"]]


def test_chunk_size_clamped_to_protocol_limits(h):
    h.settings.set("connection/chunk_ms", 2000)
    h.controller.start()
    assert h.session_config()["config"].chunk_ms == 1000  # v3 maximum


def test_cli_overrides_win_until_the_user_changes_that_setting(qapp, tmp_path):
    args = argparse.Namespace(source="file:/tmp/a.wav", engine="local", protocol="v2", server=None,
                              region=None, auth_mode=None, token_url=None, vocabulary="A, B",
                              silence_ms=900, speech_model=None, encoding=None, sample_rate=None,
                              chunk_ms=None, transcript_dir=str(tmp_path / "t"))
    overrides = overrides_from_args(args)
    assert overrides["vocabulary"] == ("A", "B") and "server" not in overrides
    h = Harness(overrides=overrides)
    assert h.controller.transcript_dir == tmp_path / "t"
    h.controller.start()
    cfg = h.session_config()["config"]
    assert (cfg.engine, cfg.protocol, cfg.silence_ms, cfg.vocabulary) == ("local", "v2", 900, ("A", "B"))
    assert h.opened[-1][0] == "file:/tmp/a.wav"
    h.settings.set("connection/protocol", "v3")
    h.controller.apply_settings({"connection/protocol"})
    assert h.session_config()["config"].protocol == "v3"


def test_bad_configuration_is_reported(h):
    h.settings.set("connection/auth_mode", "broker")  # broker without a URL
    h.controller.start()
    assert not h.controller.running
    assert "token URL" in h.errors[-1]


def test_preview_style_is_relayed(h):
    seen = []
    h.controller.style_preview.connect(seen.append)
    h.controller.preview_style({"appearance/font_size": 40})
    h.controller.preview_style(None)
    assert seen == [{"appearance/font_size": 40}, None]


def test_api_key_never_in_errors_or_logs(qapp, tmp_path, caplog):
    save_api_key(Secret("sk-very-secret-value"))
    h = Harness(transcript_dir=tmp_path)
    h.controller.start()
    h.runner.event.emit("mic", StreamError(1008, "The API key was not accepted.", Recovery.STOP))
    h.controller.stop()
    blob = " ".join(h.errors) + caplog.text + " ".join(s.summary() for s in h.statuses)
    assert "sk-very-secret-value" not in blob
    assert "sk-very-secret-value" not in repr(h.created[-1] if h.created else h.session_config())


def test_saving_a_key_in_settings_switches_the_running_captions_to_it(h):
    h.controller.start()                       # no key yet: the offline engine
    assert h.session_config()["config"].engine == "local"
    save_api_key(Secret("sk-new"))
    h.controller.apply_settings({"credentials/api_key"})
    assert len(FakeRunner.instances) == 2 and h.controller.running
    assert h.session_config()["config"].engine == "assemblyai"
    assert h.session_config()["api_key"] == Secret("sk-new")


def test_history_opened_mid_session_shows_the_whole_sitting_once(h, qtbot):
    from app.qt.history_window import HistoryWindow
    h.controller.start()
    h.runner.event.emit("mic", SessionStarted("s1", "local"))
    for i in range(25):
        h.runner.event.emit("mic", Final(f"Caption {i}.", i * 1000, i * 1000 + 800))
    win = HistoryWindow(h.controller, h.controller.transcript_dir)
    qtbot.addWidget(win)
    assert win.list.count() == 25 and win.status.text() == "Live: 25 captions"
    # The running session is the live view, not also a saved entry with a stale count.
    assert [win.session_box.itemText(i) for i in range(win.session_box.count())] == ["Live session"]
    h.runner.event.emit("mic", Final("Caption 25.", 25000, 25800))
    assert win.list.count() == 26 and win.list.item(25).text().endswith("Caption 25.")
    # New settings restart the session: still one sitting, nothing lost from the live view.
    h.settings.set("connection/protocol", "v2")
    h.controller.apply_settings({"connection/protocol"})
    h.runner.event.emit("mic", Final("After the restart.", 0, 500))
    assert win.list.count() == 27 and win.session_box.count() == 1
    h.controller.stop()
    assert win.session_box.count() > 1       # stopped: its files are saved sessions now
