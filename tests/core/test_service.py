"""CaptionService: every decision about a run, tested without Qt (fake sources and pipelines)."""

from __future__ import annotations

import argparse
import json
import threading

import pytest

from app.core.audio.errors import DeviceNotFound
from app.core.audio.level import FLOOR_DBFS
from app.core.credentials import KeyringUnavailable, Secret, save_api_key
from app.core.events import Final, Partial, Recovery, Revision, SessionStarted, StreamError
from app.core.run_plan import overrides_from_args, source_specs
from app.core.service import CaptionService, ServiceListener
from app.core.settings import DictStore, Settings
from app.core.status import State


class FakeSource:
    def __init__(self, label):
        self.label = label


class FakeGroup:
    """Stands in for PipelineGroup: records controls; the test plays the workers' part."""

    instances: list["FakeGroup"] = []

    def __init__(self, sources, session_factory, listener, on_done, **options):
        self.labels = [s.label for s in sources]
        self.session_factory = session_factory
        self.listener = listener
        self.on_done = on_done
        self.options = options
        self.calls: list[tuple] = []
        self.flush_on_stop: list = []      # events the workers still deliver while stopping
        self.fatal_error = None
        self.fatal_source_error = None
        self.latency = 250.0
        self.done_on_stop = True
        FakeGroup.instances.append(self)

    def start(self):
        self.calls.append(("start",))

    def stop(self):
        self.calls.append(("stop",))
        for label, event in self.flush_on_stop:
            self.listener(label, event)
        if self.done_on_stop:
            self.on_done()

    def join(self, timeout):
        return True

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


class Recorder(ServiceListener):
    def __init__(self):
        self.events, self.statuses, self.problems, self.started, self.ended = [], [], [], [], []

    def caption_event(self, label, event, latency_ms):
        self.events.append((label, event, latency_ms))

    def status_changed(self, status):
        self.statuses.append(status)

    def problem(self, message, from_captions=False):
        self.problems.append(message)

    def run_started(self, labels):
        self.started.append(labels)

    def run_ended(self, outcome):
        self.ended.append(outcome)


class Harness:
    def __init__(self, settings=None, overrides=None, **kw):
        FakeGroup.instances = []
        self.settings = settings or Settings(DictStore())
        self.opened: list[tuple] = []
        self.created: list[dict] = []
        self.open_error = None
        self.rec = Recorder()

        def open_sources(spec, rate, chunk):
            self.opened.append((spec, rate, chunk))
            if self.open_error:
                raise self.open_error
            return [FakeSource(spec.split(":")[0])]

        def create_session(config, listener, *, api_key, token_url=None):
            self.created.append({"config": config, "api_key": api_key, "token_url": token_url})
            return object()

        kw.setdefault("offline_available", lambda: (True, "test engine"))
        self.service = CaptionService(self.settings, overrides, listener=self.rec,
                                      open_sources=open_sources, create_session=create_session,
                                      group_factory=FakeGroup, **kw)

    @property
    def group(self) -> FakeGroup:
        return FakeGroup.instances[-1]

    def emit(self, label, event):
        self.group.listener(label, event)

    def session_config(self):
        self.group.session_factory(lambda e: None)
        return self.created[-1]

    def stop(self):
        self.service.stop()
        self.service.shutdown(5)


@pytest.fixture
def h(tmp_path):
    harness = Harness(transcript_dir=tmp_path / "transcripts")
    yield harness
    harness.service.shutdown(5)


def test_start_with_a_key_uses_assemblyai(h):
    save_api_key(Secret("sk-test-123"))
    assert h.service.start()
    assert h.rec.started == [["mic"]] and h.service.running
    assert h.opened == [("mic", 16000, 100)]
    assert ("start",) in h.group.calls
    created = h.session_config()
    assert created["config"].engine == "assemblyai"
    assert created["api_key"] == Secret("sk-test-123")
    assert h.service.status.state is State.CONNECTING


def test_no_key_and_auto_engine_falls_back_to_offline(h):
    h.service.start()
    assert h.session_config()["config"].engine == "local"
    assert h.session_config()["api_key"] is None


def test_no_key_but_assemblyai_requested_is_a_clear_error(h):
    h.settings.set("engine/engine", "assemblyai")
    assert not h.service.start()
    assert not h.service.running
    assert h.service.status.state is State.ERROR
    assert "No AssemblyAI API key" in h.rec.problems[-1]
    assert h.service.start_error.auth
    assert h.opened == []  # nothing opened before the configuration is known to be usable


def test_offline_engine_missing_is_a_clear_error(tmp_path):
    h = Harness(transcript_dir=tmp_path, offline_available=lambda: (False, "no model"))
    assert not h.service.start()
    assert "offline engine is not available (no model)" in h.rec.problems[-1]
    assert not h.service.start_error.auth


def test_keyring_unavailable_falls_back_or_uses_session_key(tmp_path):
    def broken():
        raise KeyringUnavailable("The system keyring is not available (NoKeyringError).")

    h = Harness(transcript_dir=tmp_path, key_loader=broken)
    h.service.start()
    assert h.session_config()["config"].engine == "local"
    # A key typed for this session only: the service restarts and uses it.
    h.service.set_session_api_key(Secret("sk-session"))
    assert len(FakeGroup.instances) == 2
    created = h.session_config()
    assert created["config"].engine == "assemblyai" and created["api_key"] == Secret("sk-session")

    h2 = Harness(transcript_dir=tmp_path, key_loader=broken)
    h2.settings.set("engine/engine", "assemblyai")
    h2.service.start()
    assert "keyring is not available" in h2.rec.problems[-1]


def test_events_reach_the_front_with_latency_and_status_follows(h):
    save_api_key(Secret("k"))
    h.service.start()
    h.emit("mic", SessionStarted("s1", "v3"))
    assert h.service.status.state is State.LIVE
    h.emit("mic", Partial("hello", 0, 300))
    h.emit("mic", Final("Hello world.", 0, 900))
    assert [(lab, e.text, lat) for lab, e, lat in h.rec.events if isinstance(e, (Partial, Final))] == [
        ("mic", "hello", None), ("mic", "Hello world.", 250.0)]
    assert h.service.status.latency_ms == 250.0
    assert "latency 250 ms" in h.service.status.summary()
    assert h.rec.statuses[-1].latency_ms == 250.0


def test_transcript_gets_every_final_and_is_closed_when_the_run_ends(h, tmp_path):
    h.service.start()
    h.emit("mic", SessionStarted("s1", "local"))
    h.emit("mic", Final("First.", 0, 500))
    h.emit("mic", Final("Second.", 600, 900))
    path = h.service.transcript_path
    assert path is not None and path.parent == tmp_path / "transcripts"
    h.stop()
    assert ("stop",) in h.group.calls
    assert not h.service.running and len(h.rec.ended) == 1 and h.rec.ended[0].stopped
    assert h.service.status.state is State.STOPPED
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["text"] for r in records if r["type"] == "final"] == ["First.", "Second."]
    assert records[-1]["type"] == "end"


def test_finals_flushed_at_stop_reach_the_front_and_transcript(h):
    h.service.start()
    h.group.flush_on_stop = [("mic", Final("Said just before Stop.", 0, 900))]
    path = h.service.transcript_path
    h.stop()
    assert [e.text for _, e, _ in h.rec.events] == ["Said just before Stop."]
    assert "Said just before Stop." in path.read_text()


def test_stop_only_asks_and_the_run_ends_when_the_pipelines_have(h):
    h.service.start()
    h.group.done_on_stop = False          # a slow server: the pipelines take their time
    h.service.stop()
    assert h.service.running and h.service.stopping and h.rec.ended == []
    h.group.on_done()
    assert not h.service.running and len(h.rec.ended) == 1


def test_restart_while_stopping_starts_once_the_old_run_ended(h):
    h.service.start()
    first = h.group
    first.done_on_stop = False
    h.settings.set("connection/protocol", "v2")
    h.service.apply_settings({"connection/protocol"})
    assert len(FakeGroup.instances) == 1            # not yet: the old run is still flushing
    first.on_done()
    assert len(FakeGroup.instances) == 2 and h.service.running
    assert h.session_config()["config"].protocol == "v2"


def test_transcript_disabled(h):
    h.settings.set("transcript/enabled", False)
    h.service.start()
    assert h.service.transcript_path is None


def test_stop_class_error_is_reported(h):
    h.service.start()
    h.emit("mic", StreamError(1008, "The API key was not accepted.", Recovery.STOP))
    assert h.rec.problems[-1] == "The API key was not accepted."
    assert h.service.status.state is State.ERROR


def test_run_ending_with_a_fatal_error(h):
    h.service.start()
    h.group.fatal_error = StreamError(4001, "Not authorized.", Recovery.STOP)
    h.group.on_done()
    assert not h.service.running
    assert h.service.status.state is State.ERROR
    assert "Not authorized." in h.service.status.text
    assert h.rec.ended[-1].error.code == 4001 and not h.rec.ended[-1].stopped


def test_device_not_found_is_a_clear_error_not_a_crash(h):
    h.open_error = DeviceNotFound("mic:Nope", ["Built-in Microphone"])
    h.settings.set("audio/mic_device", "Nope")
    assert not h.service.start()
    assert not h.service.running
    assert "'mic:Nope' was not found" in h.rec.problems[-1]
    assert "Built-in Microphone" in h.service.status.text


def test_live_changes_and_restart_rules(h):
    h.service.start()
    first = h.group
    h.settings.set("recognition/silence_ms", 1200)
    h.service.apply_settings({"recognition/silence_ms"})
    assert ("silence", 1200) in first.calls
    assert h.service.status.silence_ms == 1200
    h.settings.set("recognition/vocabulary", ["Kubernetes", "Añejo"])
    h.service.apply_settings({"recognition/vocabulary"})
    assert ("vocabulary", ("Kubernetes", "Añejo")) in first.calls
    h.service.apply_settings({"appearance/font_size"})
    assert len(FakeGroup.instances) == 1
    # A connection setting needs a new run.
    h.settings.set("connection/protocol", "v2")
    h.service.apply_settings({"connection/protocol"})
    assert ("stop",) in first.calls
    assert len(FakeGroup.instances) == 2 and h.service.running
    assert h.session_config()["config"].protocol == "v2"


def test_fixing_a_failed_configuration_starts_captions(h):
    h.settings.set("connection/auth_mode", "broker")  # no broker URL: cannot start
    h.service.start()
    assert not h.service.running and h.service.status.state is State.ERROR
    h.settings.set("connection/token_url", "https://broker.example/token")
    h.service.apply_settings({"connection/token_url"})
    assert h.service.running
    assert h.session_config()["token_url"] == "https://broker.example/token"


def test_force_end_and_direct_controls(h):
    h.service.force_end()  # not running: nothing to do, no error
    h.service.start()
    h.service.force_end()
    h.service.set_silence_threshold(300)
    h.service.set_vocabulary(["Term"])
    assert ("force_end",) in h.group.calls and ("silence", 300) in h.group.calls
    assert ("vocabulary", ("Term",)) in h.group.calls


def test_source_specs_from_settings(h):
    get = h.settings.get
    assert source_specs(get) == ("mic",)
    h.settings.set("audio/mic_device", "USB Headset")
    assert source_specs(get) == ("mic:USB Headset",)
    h.settings.set("audio/source", "system")
    assert source_specs(get) == ("system",)
    h.settings.set("audio/source", "both")
    h.settings.set("audio/system_device", "vsink.monitor")
    # both: the saved devices, not the system defaults
    assert source_specs(get) == ("mic:USB Headset", "system:vsink.monitor")
    h.service.start()
    assert h.rec.started == [["mic", "system"]]
    assert [o[0] for o in h.opened] == ["mic:USB Headset", "system:vsink.monitor"]


def test_saved_chunk_size_clamped_but_an_explicit_one_is_checked(tmp_path):
    h = Harness(transcript_dir=tmp_path)
    h.settings.set("connection/chunk_ms", 2000)
    h.service.start()
    assert h.session_config()["config"].chunk_ms == 1000  # v3 maximum
    explicit = Harness(transcript_dir=tmp_path, overrides={"connection/chunk_ms": 20})
    assert not explicit.service.start()
    assert "20 ms is outside the v3 limits (50-1000 ms)" in explicit.rec.problems[-1]


def cli_args(**given):
    names = ("source", "engine", "protocol", "server", "region", "auth_mode", "token_url",
             "vocabulary", "silence_ms", "speech_model", "encoding", "sample_rate", "chunk_ms")
    return argparse.Namespace(**{n: given.get(n) for n in names})


def test_cli_overrides_win_until_the_user_changes_that_setting(tmp_path):
    overrides = overrides_from_args(cli_args(source="file:/tmp/a.wav", engine="local",
                                             protocol="v2", vocabulary='"Smith, John", B',
                                             silence_ms=900))
    assert overrides["recognition/vocabulary"] == ("Smith, John", "B")
    assert "connection/server_url" not in overrides
    h = Harness(overrides=overrides, transcript_dir=tmp_path)
    h.service.start()
    cfg = h.session_config()["config"]
    assert (cfg.engine, cfg.protocol, cfg.silence_ms, cfg.vocabulary) == (
        "local", "v2", 900, ("Smith, John", "B"))
    assert h.opened[-1][0] == "file:/tmp/a.wav"
    h.settings.set("connection/protocol", "v3")
    h.service.apply_settings({"connection/protocol"})
    assert h.session_config()["config"].protocol == "v3"
    h.settings.set("audio/source", "system")
    h.service.apply_settings({"audio/source"})
    assert h.opened[-1][0] == "system"         # --source gave way to the saved choice


def test_bad_configuration_is_reported(h):
    h.settings.set("connection/auth_mode", "broker")  # broker without a URL
    h.service.start()
    assert not h.service.running
    assert "token URL" in h.rec.problems[-1]


def test_vocabulary_over_the_limit_live_is_reported_not_raised(h):
    h.service.start()
    h.group.set_vocabulary = lambda terms: (_ for _ in ()).throw(ValueError("101 terms too many"))
    h.settings.set("recognition/vocabulary", ["x"])
    h.service.apply_settings({"recognition/vocabulary"})
    assert h.rec.problems[-1] == "101 terms too many"


def test_api_key_never_in_problems_or_logs(tmp_path, caplog):
    save_api_key(Secret("sk-very-secret-value"))
    h = Harness(transcript_dir=tmp_path)
    h.service.start()
    h.emit("mic", StreamError(1008, "The API key was not accepted.", Recovery.STOP))
    h.stop()
    blob = " ".join(h.rec.problems) + caplog.text + " ".join(s.summary() for s in h.rec.statuses)
    assert "sk-very-secret-value" not in blob
    assert "sk-very-secret-value" not in repr(h.session_config())
    assert "sk-very-secret-value" not in repr(h.service.plan)


def test_saving_a_key_in_settings_switches_the_running_captions_to_it(h):
    h.service.start()                       # no key yet: the offline engine
    assert h.session_config()["config"].engine == "local"
    save_api_key(Secret("sk-new"))
    h.service.apply_settings({"credentials/api_key"})
    assert len(FakeGroup.instances) == 2 and h.service.running
    assert h.session_config()["config"].engine == "assemblyai"
    assert h.session_config()["api_key"] == Secret("sk-new")


def test_worker_reports_are_handled_on_the_owner_thread(tmp_path):
    """What the pipelines report from their threads is only handled where ``post`` runs it."""
    import queue
    posted = queue.SimpleQueue()
    h = Harness(transcript_dir=tmp_path, post=posted.put)
    h.service.start()
    seen = []
    h.rec.caption_event = lambda label, event, lat: seen.append(threading.current_thread().name)
    worker = threading.Thread(target=h.emit, args=("mic", Final("From a worker.", 0, 100)),
                              name="captions-mic")
    worker.start()
    worker.join()
    assert seen == []                       # nothing ran on the worker thread
    posted.get(timeout=1)()
    assert seen == [threading.current_thread().name]


def test_speakers_revisions_and_renames(h):
    save_api_key(Secret("k"))
    for key, value in (("audio/source", "both"), ("connection/speech_model", "universal-3-5-pro"),
                       ("recognition/speaker_labels", True), ("recognition/max_speakers", 4),
                       ("recognition/prompt", "Budget review")):
        h.settings.set(key, value)
    h.service.start()
    config = h.session_config()["config"]
    assert (config.speaker_labels, config.max_speakers, config.prompt) == (True, 4, "Budget review")
    assert h.service.names.mic_is_you                    # both sources: the microphone is "You"
    first = Final("Good morning.", 0, 900, speaker="A")
    h.emit("system", first)
    h.emit("system", Revision(first.id, "B"))
    h.emit("system", Revision(first.id, "B"))           # changes nothing: not passed on
    h.emit("mic", Final("I agree.", 900, 1200, speaker="A"))
    h.emit("system", Revision(99999999, "C"))            # an unknown final
    assert [e for _, e, _ in h.rec.events if isinstance(e, Revision)] == [Revision(first.id, "B")]
    h.service.rename_speaker("B", "Dana")
    h.service.rename_speaker("B", "  ")                  # refused in plain words, not kept
    assert any("empty" in p for p in h.rec.problems)
    assert h.service.names.display("B", "system") == "Dana"
    assert h.service.names.display("A", "mic") == "You"
    path = h.service.transcript_path
    h.stop()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert {"type": "revision", "id": first.id, "speaker": "B"}.items() <= \
        next(r for r in records if r["type"] == "revision").items()
    assert any(r["type"] == "rename" and r["name"] == "Dana" for r in records)


def test_saved_options_the_model_lacks_are_left_out_with_a_notice_but_a_flag_is_an_error(tmp_path):
    notices = []
    h = Harness(transcript_dir=tmp_path)
    h.rec.notice = notices.append
    save_api_key(Secret("k"))
    h.settings.set("connection/speech_model", "whisper-rt")
    h.settings.set("recognition/speaker_labels", True)
    assert h.service.start()
    assert not h.session_config()["config"].speaker_labels
    assert notices and "off for this run" in notices[0]
    flagged = Harness(transcript_dir=tmp_path, overrides={"recognition/speaker_labels": True,
                                                          "connection/speech_model": "whisper-rt"})
    assert not flagged.service.start()
    assert "label speakers" in flagged.rec.problems[-1]


def test_a_restart_within_the_sitting_keeps_one_transcript_with_a_record_per_restart(h, tmp_path):
    h.service.start()
    h.emit("mic", Final("Before the change.", 0, 500))
    path = h.service.transcript_path
    h.settings.set("connection/protocol", "v2")
    h.service.apply_settings({"connection/protocol"})      # new settings: the same sitting
    assert h.service.transcript_path == path
    h.emit("mic", Final("After the change.", 600, 900))
    h.stop()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in records].count("restart") == 1
    assert [r["text"] for r in records if r["type"] == "final"] == ["Before the change.", "After the change."]
    assert records[-1]["type"] == "end"
    h.service.start()                                       # stopped, then started: a new sitting
    assert h.service.transcript_path != path
    assert len(list((tmp_path / "transcripts").glob("*.jsonl"))) == 2


def test_the_offline_engine_chosen_explicitly_never_asks_the_keyring(tmp_path):
    asked = []
    h = Harness(transcript_dir=tmp_path, key_loader=lambda: asked.append(1) or Secret("k"),
                overrides={"engine/engine": "local"})
    assert h.service.start()
    assert asked == [] and h.session_config()["config"].engine == "local"


def test_a_run_ended_by_a_refused_key_is_known_as_such(h):
    save_api_key(Secret("sk-wrong"))
    h.service.start()
    assert not h.service.key_refused()                   # running: nothing to say yet
    h.group.fatal_error = StreamError(4001, "Not authorized.", Recovery.STOP)
    h.group.on_done()
    assert h.service.key_refused()
    h.service.start()                                    # a new run (e.g. a new key saved)
    assert not h.service.key_refused()


def test_other_endings_are_not_a_refused_key(h):
    save_api_key(Secret("sk-test"))
    h.service.start()
    h.group.fatal_error = StreamError(None, "The server closed the session.", Recovery.STOP)
    h.group.on_done()
    assert not h.service.key_refused()


class MeteredSource(FakeSource):
    def __init__(self, label):
        super().__init__(label)
        from app.core.audio.level import LevelMeter
        self.level = LevelMeter(16000, source=label)


def test_level_moves_reach_a_front_that_shows_a_meter_on_the_owner_thread_one_report_at_a_time(
        tmp_path, monkeypatch):
    import queue

    import numpy as np
    posted = queue.SimpleQueue()
    h = Harness(transcript_dir=tmp_path, post=posted.put)
    h.rec.wants_levels = True
    moves = []
    h.rec.levels_changed = lambda levels: moves.append(levels)
    sources = [MeteredSource("mic")]
    h.service._open_sources = lambda spec, rate, chunk: sources
    monkeypatch.setattr(FakeGroup, "levels", lambda self: {"mic": sources[0].level.snapshot()})
    assert h.service.start()
    loud = np.full(1600, 9000, dtype="<i2").tobytes()
    worker = threading.Thread(target=lambda: [sources[0].level.update(loud) for _ in range(3)])
    worker.start()
    worker.join()
    assert moves == []                               # nothing ran on the capture thread
    posted.get(timeout=1)()
    assert posted.empty()                            # the rest waited for that report
    assert len(moves) == 1 and moves[0]["mic"].rms_dbfs > -20
    h.service.shutdown(5)


def test_a_front_without_a_meter_is_not_woken_by_levels_nor_charged_for_them(tmp_path):
    import queue
    posted = queue.SimpleQueue()
    h = Harness(transcript_dir=tmp_path, post=posted.put)
    sources = [MeteredSource("mic")]
    h.service._open_sources = lambda spec, rate, chunk: sources
    assert h.service.start()
    sources[0].level.update(b"\x00\x40" * 1600)
    assert posted.empty()
    assert sources[0].level.snapshot().rms_dbfs == FLOOR_DBFS      # not even measured
    h.service.shutdown(5)


def test_next_tick_is_none_while_nothing_waits_and_follows_notices_and_translations(h):
    from app.core.events import Gap
    from app.core.service import TRANSLATION_WAIT_S
    assert h.service.next_tick_s() is None               # not running
    h.service.start()
    h.emit("mic", SessionStarted("s", "v3"))
    assert h.service.next_tick_s() is None               # running, nothing timed
    h.emit("mic", Gap(0, 2000, "reconnecting"))
    assert 0 < h.service.next_tick_s() <= 20
    h.service._run.untranslated[7] = h.service._clock() - (TRANSLATION_WAIT_S - 0.5)
    assert h.service.next_tick_s() == pytest.approx(0.5, abs=0.1)
