"""CaptionSession: one pipeline per source on QThreads, events relayed to the GUI thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QThread

from app.core.audio.errors import AudioSourceError, DeviceLost
from app.core.audio.source import AudioSource, WavFileSource
from app.core.engine import SessionError, SpeechSession
from app.core.events import (Final, Partial, Recovery, SessionEnded, SessionStarted, StreamError)
from app.qt.session_worker import CaptionSession


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

    def send_audio(self, pcm16):
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
    def __init__(self, session: CaptionSession):
        self.events = []
        self.threads = set()
        self.finished = 0
        session.event.connect(self.on_event)
        session.finished.connect(self.on_finished)

    def on_event(self, label, event):
        self.threads.add(QThread.currentThread())
        self.events.append((label, event))

    def on_finished(self):
        self.finished += 1

    def finals(self, label=None):
        return [e for lab, e in self.events if isinstance(e, Final) and (label is None or lab == label)]


def test_file_source_runs_to_the_end_with_every_final_on_the_gui_thread(qtbot, speech_wav):
    wav = speech_wav("Captions for everyone.", lead_ms=100, tail_ms=200)
    session = CaptionSession([file_source(wav, "file", realtime=False)], factory("f"))
    rec = Recorder(session)
    lambda_threads = []
    session.event.connect(lambda label, ev: lambda_threads.append(QThread.currentThread()))
    with qtbot.waitSignal(session.finished, timeout=30000):
        session.start()
    assert rec.finished == 1
    assert rec.threads == {QCoreApplication.instance().thread()}
    assert set(lambda_threads) == {QCoreApplication.instance().thread()}   # lambdas too
    [fake] = FakeSession.instances
    finals = rec.finals("file")
    assert finals and finals[-1].audio_end == pytest.approx(fake.received * 1000 / 16000, abs=1)
    assert isinstance(rec.events[-1][1], SessionEnded)
    assert session.fatal_error is None and not session.running
    lv = session.levels()["file"]
    assert lv.peak_dbfs > -30


def test_two_sources_are_captioned_separately_and_concurrently(qtbot, speech_wav):
    a = speech_wav("The microphone talks.", lead_ms=100, tail_ms=200)
    b = speech_wav("The speakers play something else entirely, and for longer.", lead_ms=100, tail_ms=200)
    factories = iter([factory("one"), factory("two")])
    tags = {}

    def make(listener):
        # the pipeline for each label asks for its own sessions
        name = threading.current_thread().name
        tags.setdefault(name, next(factories))
        return tags[name](listener)

    session = CaptionSession([file_source(a, "mic"), file_source(b, "system")], make)
    rec = Recorder(session)
    with qtbot.waitSignal(session.finished, timeout=60000):
        session.start()
    mic, system = rec.finals("mic"), rec.finals("system")
    assert mic and system
    assert {f.text.split()[0] for f in mic} != {f.text.split()[0] for f in system}
    # concurrently: the streams' finals interleave instead of one source after the other
    order = [lab for lab, e in rec.events if isinstance(e, Final)]
    assert order.index("system") < len(order) - 1 - order[::-1].index("mic")
    assert rec.finished == 1


def test_stop_mid_run_flushes_finals_and_joins_threads(qtbot, speech_wav):
    wav = speech_wav(["First sentence here.", "Second sentence here.", "Third one."])
    session = CaptionSession([file_source(wav, "file")], factory("s"))
    rec = Recorder(session)
    session.start()
    qtbot.waitUntil(lambda: len(rec.finals()) >= 1, timeout=20000)
    t0 = time.monotonic()
    session.stop()
    assert time.monotonic() - t0 < 10
    assert not session.running
    assert rec.finished == 1                         # emitted by stop() itself ...
    [fake] = FakeSession.instances
    assert fake.stopped
    assert isinstance(rec.events[-1][1], SessionEnded)   # ... after every queued event
    # the remainder sent before stop became a final that still reached the GUI
    assert rec.finals()[-1].audio_end == pytest.approx(fake.received * 1000 / 16000, abs=1)
    session.stop()                                   # idempotent
    qtbot.wait(100)
    assert rec.finished == 1


def test_controls_reach_the_live_session(qtbot, speech_wav):
    wav = speech_wav("Controls while running.", tail_ms=3000)
    session = CaptionSession([file_source(wav, "file")], factory("c"))
    rec = Recorder(session)
    session.start()
    qtbot.waitUntil(lambda: any(isinstance(e, SessionStarted) for _, e in rec.events), timeout=20000)
    session.set_silence_threshold(900)
    session.set_vocabulary(["Kubernetes", "Añejo"])
    session.force_end()
    session.stop()
    [fake] = FakeSession.instances
    assert ("silence", 900) in fake.controls
    assert ("vocabulary", ("Kubernetes", "Añejo")) in fake.controls
    assert "force_end" in fake.controls


def test_auth_failure_is_fatal_and_finishes(qtbot, speech_wav):
    def refuse(listener):
        class Refusing(FakeSession):
            def start(self, timeout=10.0):
                raise SessionError(StreamError(401, "The API key was rejected.", Recovery.STOP))
        return Refusing(listener)

    session = CaptionSession([file_source(speech_wav("x"), "file")], refuse)
    rec = Recorder(session)
    with qtbot.waitSignal(session.finished, timeout=30000):
        session.start()
    assert session.fatal_error is not None and session.fatal_error.code == 401
    assert any(isinstance(e, StreamError) and e.code == 401 for _, e in rec.events)


def test_missing_file_is_a_clear_fatal_error(qtbot, tmp_path):
    session = CaptionSession([file_source(tmp_path / "gone.wav", "file")], factory("m"))
    with qtbot.waitSignal(session.finished, timeout=30000):
        session.start()
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


def test_device_loss_ends_the_session_cleanly_and_resumes(qtbot):
    src = FlakyDevice()
    session = CaptionSession([src], factory("d"), device_retry_s=0.2)
    rec = Recorder(session)
    session.start()
    qtbot.waitUntil(lambda: len(FakeSession.instances) >= 2 and FakeSession.instances[1].received >= 8000,
                    timeout=30000)
    session.stop()
    first, second = FakeSession.instances[:2]
    assert first.stopped                              # ended cleanly, its finals kept
    kinds = [type(e).__name__ for _, e in rec.events]
    lost = next(i for i, (_, e) in enumerate(rec.events)
                if isinstance(e, StreamError) and e.recovery is Recovery.RECONNECT)
    assert "unplugged" in rec.events[lost][1].message or "stopped delivering" in rec.events[lost][1].message
    assert any(isinstance(e, Final) for _, e in rec.events[:lost])
    assert "SessionStarted" in kinds[lost:]           # a new session after the device came back
    assert src.opens >= 3
    assert session.fatal_error is None


def test_latency_and_levels(qtbot, speech_wav):
    wav = speech_wav("Latency check.", lead_ms=100, tail_ms=200)
    session = CaptionSession([file_source(wav, "file")], factory("l"))
    rec = Recorder(session)
    with qtbot.waitSignal(session.finished, timeout=30000):
        session.start()
    final = rec.finals()[0]
    lat = session.latency_ms("file", final)
    # the fake recognizer answers as soon as the audio arrives: well under a second
    assert lat is not None and -50 < lat < 1000
    assert session.latency_ms("nope", final) is None


def test_needs_a_source():
    with pytest.raises(ValueError):
        CaptionSession([], factory("x"))


def test_duplicate_labels_get_suffixes(speech_wav):
    wav = speech_wav("x")
    session = CaptionSession([file_source(wav, "file"), file_source(wav, "file")], factory("x"))
    assert session.labels == ["file", "file2"]
