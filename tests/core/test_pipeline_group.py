"""PipelineGroup: one pipeline per source on its own thread, ended together, never blocking."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.core.audio.errors import AudioSourceError, DeviceLost
from app.core.audio.source import AudioSource, WavFileSource
from app.core.engine import SessionError, SpeechSession
from app.core.events import (Final, Partial, Recovery, SessionEnded, SessionStarted, StreamError)
from app.core.pipeline_group import PipelineGroup


class FakeSession(SpeechSession):
    """Emits a final per 500 ms of audio it received, and one more for the remainder on stop()."""

    instances: list["FakeSession"] = []

    def __init__(self, listener, tag=""):
        super().__init__(listener)
        self.tag = tag
        self.received = 0
        self.pending = 0
        self.sent_ms = 0
        self.controls = []
        self.stopped = False
        FakeSession.instances.append(self)

    def start(self, timeout=10.0):
        self._listener(SessionStarted(f"fake-{self.tag}-{len(FakeSession.instances)}", "v3"))

    def send_audio(self, pcm16, *, may_block=False):
        n = len(pcm16) // 2
        self.received += n
        self.pending += n
        if self.pending >= 8000:
            self._final()

    def _final(self):
        start = self.sent_ms
        self.sent_ms += self.pending * 1000 // 16000
        self.pending = 0
        self._listener(Partial("…", start, self.sent_ms))
        self._listener(Final(f"{self.tag} {start}-{self.sent_ms}", start, self.sent_ms))

    def force_end(self):
        self.controls.append("force_end")

    def set_silence_threshold(self, ms):
        self.controls.append(("silence", ms))

    def set_vocabulary(self, terms):
        self.controls.append(("vocabulary", tuple(terms)))

    def stop(self, timeout=5.0):
        if self.stopped:
            return
        self.stopped = True
        if self.pending:
            self._final()
        self._listener(SessionEnded(self.received / 16000))


@pytest.fixture(autouse=True)
def _reset():
    FakeSession.instances = []


def factory(tag):
    return lambda listener: FakeSession(listener, tag)


def file_source(path, label, realtime=True):
    src = WavFileSource(path, 16000, 100, realtime=realtime)
    src.label = label
    return src


class Recorder:
    """Collects what a group reports; ``done`` is set by ``on_done``."""

    def __init__(self):
        self.events = []
        self.threads = set()
        self.finished = 0
        self.events_at_done = None
        self.done = threading.Event()
        self._lock = threading.Lock()

    def on_event(self, label, event):
        with self._lock:
            self.threads.add(threading.current_thread().name)
            self.events.append((label, event))

    def on_done(self):
        self.finished += 1
        self.events_at_done = len(self.events)
        self.done.set()

    def finals(self, label=None):
        return [e for lab, e in self.events if isinstance(e, Final) and (label is None or lab == label)]

    def wait(self, timeout=30):
        assert self.done.wait(timeout), "the group did not end"

    def wait_until(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)


def make_group(sources, session_factory, **options):
    rec = Recorder()
    return PipelineGroup(sources, session_factory, rec.on_event, rec.on_done, **options), rec


def test_file_source_runs_to_the_end_and_done_comes_after_every_event(speech_wav):
    wav = speech_wav("Captions for everyone.", lead_ms=100, tail_ms=200)
    session, rec = make_group([file_source(wav, "file", realtime=False)], factory("f"))
    session.start()
    rec.wait()
    assert rec.finished == 1 and rec.events_at_done == len(rec.events)
    assert rec.threads == {"captions-file"}          # events come from the pipeline's thread
    [fake] = FakeSession.instances
    finals = rec.finals("file")
    assert finals and finals[-1].audio_end == pytest.approx(fake.received * 1000 / 16000, abs=1)
    assert isinstance(rec.events[-1][1], SessionEnded)
    assert session.fatal_error is None and not session.alive
    lv = session.levels()["file"]
    assert lv.ever_sound                              # the meter heard the speech


def test_two_sources_are_captioned_separately_and_concurrently(speech_wav):
    a = speech_wav("The microphone talks.", lead_ms=100, tail_ms=200)
    b = speech_wav("The speakers play something else entirely, and for longer.", lead_ms=100, tail_ms=200)
    factories = iter([factory("one"), factory("two")])
    tags = {}

    def make(listener):
        # the pipeline for each label asks for its own sessions
        name = threading.current_thread().name
        tags.setdefault(name, next(factories))
        return tags[name](listener)

    session, rec = make_group([file_source(a, "mic"), file_source(b, "system")], make)
    session.start()
    rec.wait(60)
    mic, system = rec.finals("mic"), rec.finals("system")
    assert mic and system
    assert {f.text.split()[0] for f in mic} != {f.text.split()[0] for f in system}
    # concurrently: the streams' finals interleave instead of one source after the other
    order = [lab for lab, e in rec.events if isinstance(e, Final)]
    assert order.index("system") < len(order) - 1 - order[::-1].index("mic")
    assert rec.finished == 1


def test_stop_returns_at_once_and_the_run_ends_with_every_final_flushed(speech_wav):
    wav = speech_wav(["First sentence here.", "Second sentence here.", "Third one."])
    session, rec = make_group([file_source(wav, "file")], factory("s"))
    session.start()
    rec.wait_until(lambda: len(rec.finals()) >= 1)
    t0 = time.monotonic()
    session.stop()
    assert time.monotonic() - t0 < 0.05              # a request, not a join
    rec.wait(10)
    assert not session.alive
    assert rec.finished == 1 and rec.events_at_done == len(rec.events)
    [fake] = FakeSession.instances
    assert fake.stopped
    assert isinstance(rec.events[-1][1], SessionEnded)   # ... after every queued event
    # the remainder sent before stop became a final that still reached the GUI
    assert rec.finals()[-1].audio_end == pytest.approx(fake.received * 1000 / 16000, abs=1)
    session.stop()                                   # idempotent
    time.sleep(0.1)
    assert rec.finished == 1


def test_controls_reach_the_live_session(speech_wav):
    wav = speech_wav("Controls while running.", tail_ms=3000)
    session, rec = make_group([file_source(wav, "file")], factory("c"))
    session.start()
    rec.wait_until(lambda: any(isinstance(e, SessionStarted) for _, e in rec.events))
    session.set_silence_threshold(900)
    session.set_vocabulary(["Kubernetes", "Añejo"])
    session.force_end()
    session.stop()
    rec.wait()
    [fake] = FakeSession.instances
    assert ("silence", 900) in fake.controls
    assert ("vocabulary", ("Kubernetes", "Añejo")) in fake.controls
    assert "force_end" in fake.controls


def test_auth_failure_is_fatal_and_finishes(speech_wav):
    def refuse(listener):
        class Refusing(FakeSession):
            def start(self, timeout=10.0):
                raise SessionError(StreamError(401, "The API key was rejected.", Recovery.STOP))
        return Refusing(listener)

    session, rec = make_group([file_source(speech_wav("x"), "file")], refuse)
    session.start()
    rec.wait()
    assert session.fatal_error is not None and session.fatal_error.code == 401
    assert any(isinstance(e, StreamError) and e.code == 401 for _, e in rec.events)


def test_missing_file_is_a_clear_fatal_error(tmp_path):
    session, rec = make_group([file_source(tmp_path / "gone.wav", "file")], factory("m"))
    session.start()
    rec.wait()
    assert "not found" in session.fatal_error.message
    assert session.fatal_source_error is not None


def test_one_source_failing_for_good_ends_the_other_too(speech_wav, tmp_path):
    long = speech_wav(["A long sentence that keeps going.", "And another one after it."])
    session, rec = make_group([file_source(long, "mic"), file_source(tmp_path / "gone.wav", "system")],
                              factory("x"))
    session.start()
    rec.wait(10)       # the mic file alone would take several seconds of real time
    assert "not found" in session.fatal_error.message


class FlakyDevice(AudioSource):
    """A 440 Hz tone that vanishes after ``lose_after`` chunks and is away for ``away_opens`` opens."""

    label = "mic"

    def __init__(self, lose_after=10, away_opens=2):
        super().__init__(16000, 100)
        self.lose_after, self.away_opens = lose_after, away_opens
        self.reads = self.opens = 0
        self.lost = False
        self.is_open = False

    def open(self):
        self.opens += 1
        if self.lost and self.away_opens > 0:
            self.away_opens -= 1
            raise DeviceLost("The test microphone is unplugged.")
        self.is_open = True

    def read(self):
        if not self.is_open:
            raise AudioSourceError("not open")
        time.sleep(0.1)
        self.reads += 1
        if self.reads == self.lose_after:
            self.lost, self.is_open = True, False
            raise DeviceLost("The test microphone stopped delivering audio.")
        t = np.arange(1600) / 16000
        data = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
        self.level.update(data)
        return data

    def close(self):
        self.is_open = False


def test_device_loss_ends_the_session_cleanly_and_resumes():
    src = FlakyDevice()
    session, rec = make_group([src], factory("d"), device_retry_s=0.2)
    session.start()
    rec.wait_until(lambda: len(FakeSession.instances) >= 2 and FakeSession.instances[1].received >= 8000,
                   timeout=30)
    session.stop()
    rec.wait()
    first, second = FakeSession.instances[:2]
    assert first.stopped                              # ended cleanly, its finals kept
    kinds = [type(e).__name__ for _, e in rec.events]
    lost = next(i for i, (_, e) in enumerate(rec.events)
                if isinstance(e, StreamError) and e.recovery is Recovery.RECONNECT)
    assert "unplugged" in rec.events[lost][1].message or "stopped delivering" in rec.events[lost][1].message
    # The status line shows the start of it: what happened and what the app does.
    assert rec.events[lost][1].message.startswith("The audio device was lost; waiting for it")
    assert any(isinstance(e, Final) for _, e in rec.events[:lost])
    assert "SessionStarted" in kinds[lost:]           # a new session after the device came back
    assert src.opens >= 3
    assert session.fatal_error is None


def test_latency_and_levels(speech_wav):
    wav = speech_wav("Latency check.", lead_ms=100, tail_ms=200)
    session, rec = make_group([file_source(wav, "file")], factory("l"))
    session.start()
    rec.wait()
    final = rec.finals()[0]
    assert final.received is not None                # stamped when the pipeline got it
    lat = session.latency_ms("file", final)
    # the fake recognizer answers as soon as the audio arrives: never negative, under a second
    assert lat is not None and 0 <= lat < 1000
    assert session.latency_ms("nope", final) is None


def test_needs_a_source():
    with pytest.raises(ValueError):
        make_group([], factory("x"))


def test_duplicate_labels_get_suffixes(speech_wav):
    wav = speech_wav("x")
    session, _ = make_group([file_source(wav, "file"), file_source(wav, "file")], factory("x"))
    assert session.labels == ["file", "file2"]
