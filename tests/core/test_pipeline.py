"""CaptionPipeline with a fake source and fake sessions: reconnects, time, gaps, device loss."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.audio.errors import AudioSourceError, DeviceLost
from app.core.audio.source import AudioSource
from app.core.engine import SessionError, SpeechSession
from app.core.events import (Final, Gap, Reconnecting, Recovery, SessionEnded, SessionStarted,
                             StreamError)
from app.core.pipeline import CaptionPipeline

RATE = 16000
CHUNK_MS = 100
CHUNK = b"\x01\x00" * (RATE * CHUNK_MS // 1000)


class FakeSource(AudioSource):
    """``n`` chunks of 100 ms; ``lose_at``: chunk index raising DeviceLost; ``open_failures``."""

    label = "fake"

    def __init__(self, n=10, lose_at=None, reopen_failures=0, pace=0.002, fail_open=None):
        super().__init__(RATE, CHUNK_MS)
        self.n, self.lose_at, self.reopen_failures, self.pace = n, lose_at, reopen_failures, pace
        self.fail_open = fail_open
        self.i = 0
        self.opens = 0
        self.closes = 0
        self.is_open = False

    def open(self):
        self.opens += 1
        if self.fail_open:
            raise AudioSourceError(self.fail_open)
        if self.opens > 1 and self.reopen_failures:
            self.reopen_failures -= 1
            raise AudioSourceError("still gone")
        self.is_open = True

    def read(self):
        time.sleep(self.pace)
        if self.lose_at is not None and self.i == self.lose_at:
            self.lose_at = None
            self.is_open = False
            raise DeviceLost("The microphone was unplugged.")
        if self.i >= self.n:
            return b""
        self.i += 1
        return CHUNK

    def close(self):
        self.closes += 1
        self.is_open = False


class FakeSession(SpeechSession):
    """Emits a Final per received chunk (in session time). ``fail_after``: error after N chunks."""

    def __init__(self, listener, plan):
        super().__init__(listener)
        self.plan = plan
        self.chunks = 0
        self.started = False
        self.stopped = False
        self.controls = []
        self.ended = False
        self.lock = threading.Lock()
        self.reached_server = plan.get("reached", True)

    def _emit(self, event):
        with self.lock:
            if self.ended:
                return
            if isinstance(event, (SessionEnded, StreamError)):
                self.ended = True
        self._listener(event)

    def start(self, timeout=10.0):
        if isinstance(self.plan.get("start_error"), StreamError):
            raise SessionError(self.plan["start_error"])
        self.started = True
        self._emit(SessionStarted(f"s{id(self)}", "v3"))
        if self.plan.get("die_at_start"):       # dies before the pipeline even installed it
            self._emit(StreamError(None, "The connection to the server was lost; reconnecting.",
                                   Recovery.RECONNECT))

    def send_audio(self, pcm16, *, may_block=False):
        if self.ended:
            return
        k = self.chunks
        self.chunks += 1
        if not self.plan.get("silent"):
            self._emit(Final(f"chunk {k}", k * CHUNK_MS, (k + 1) * CHUNK_MS))
        if self.plan.get("fail_after") == self.chunks:
            err = self.plan.get("error", StreamError(None, "The connection to the server was lost; reconnecting.", Recovery.RECONNECT))
            threading.Thread(target=self._emit, args=(err,)).start()

    def force_end(self):
        self.controls.append(("force_end",))

    def set_silence_threshold(self, ms):
        self.controls.append(("silence", ms))

    def set_vocabulary(self, terms):
        self.controls.append(("vocab", tuple(terms)))

    def stop(self, timeout=5.0):
        self.stopped = True
        self._emit(SessionEnded(1.0))


class Factory:
    def __init__(self, *plans):
        self.plans = list(plans)
        self.sessions = []

    def __call__(self, listener):
        plan = self.plans.pop(0) if self.plans else {}
        s = FakeSession(listener, plan)
        self.sessions.append(s)
        return s


class FixedRng:
    def __init__(self, value=0.5):
        self.value = value

    def random(self):
        return self.value


class Events(list):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def __call__(self, e):
        with self.lock:
            self.append(e)

    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


def run_pipeline(source, factory, **kw):
    events = Events()
    kw.setdefault("rng", FixedRng())
    kw.setdefault("base_backoff_s", 0.01)
    p = CaptionPipeline(source, factory, events, **kw)
    t = threading.Thread(target=p.run)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive(), "run() did not return"
    return p, events


def test_happy_path_every_final_then_session_ended():
    source = FakeSource(n=5)
    p, events = run_pipeline(source, Factory({}))
    assert [f.text for f in events.of(Final)] == [f"chunk {i}" for i in range(5)]
    assert isinstance(events[-1], SessionEnded)
    assert p.fatal_error is None and p.stream_time_origin is not None
    assert source.closes >= 1


def test_reconnect_keeps_continuous_time_and_marks_the_gap():
    source = FakeSource(n=20, pace=0.02)
    factory = Factory({"fail_after": 4}, {})
    p, events = run_pipeline(source, factory, max_backoff_s=1.0, base_backoff_s=0.05)
    assert p.fatal_error is None
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("StreamError") < kinds.index("Reconnecting") < len(kinds) - 1
    rec = events.of(Reconnecting)[0]
    assert rec.attempt == 1 and rec.delay_s == pytest.approx(0.05 * 0.75, abs=1e-3)
    gap = events.of(Gap)[0]
    finals = events.of(Final)
    first, second = finals[:4], finals[4:]
    assert [f.audio_start for f in first] == [0, 100, 200, 300]
    # the new session's first final sits right after the gap, in stream time
    assert second[0].audio_start == gap.start_ms + gap.duration_ms
    assert gap.start_ms >= 400 and gap.duration_ms > 0 and gap.duration_ms % 100 == 0
    assert all(b.audio_start >= a.audio_end for a, b in zip(finals, finals[1:]))
    # nothing lost or duplicated beyond the gap: stream covered exactly
    covered = sum(f.audio_end - f.audio_start for f in finals) + gap.duration_ms
    assert covered == 20 * CHUNK_MS
    assert isinstance(events[-1], SessionEnded)


def test_backoff_is_exponential_capped_and_jittered():
    p = CaptionPipeline(FakeSource(), Factory(), lambda e: None, rng=FixedRng(1.0),
                        base_backoff_s=0.5, max_backoff_s=10.0)
    assert [p.backoff_s(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    p = CaptionPipeline(FakeSource(), Factory(), lambda e: None, rng=FixedRng(0.0),
                        base_backoff_s=0.5, max_backoff_s=10.0)
    assert [p.backoff_s(n) for n in (1, 2, 6)] == [0.25, 0.5, 5.0]
    import random
    p = CaptionPipeline(FakeSource(), Factory(), lambda e: None, rng=random.Random(7))
    delays = [p.backoff_s(3) for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in delays) and len(set(delays)) > 40


def test_failed_reconnect_attempts_back_off_exponentially():
    transient = StreamError(None, "Could not connect (connection refused); retrying.", Recovery.RECONNECT)
    factory = Factory({"fail_after": 2}, {"start_error": transient}, {"start_error": transient},
                      {"start_error": transient}, {})
    source = FakeSource(n=40, pace=0.01)
    p, events = run_pipeline(source, factory, rng=FixedRng(1.0), base_backoff_s=0.02, max_backoff_s=0.05)
    recs = events.of(Reconnecting)
    assert [r.attempt for r in recs] == [1, 2, 3, 4]
    assert [r.delay_s for r in recs] == [0.02, 0.04, 0.05, 0.05]
    assert recs[1].reason == transient.message
    assert p.fatal_error is None and len(events.of(SessionStarted)) == 2


def test_auth_failure_at_start_does_not_retry():
    auth = StreamError(401, "AssemblyAI did not accept the API key.", Recovery.STOP)
    factory = Factory({"start_error": auth})
    p, events = run_pipeline(FakeSource(), factory)
    assert p.fatal_error == auth
    assert len(factory.sessions) == 1
    assert not events.of(Reconnecting)


def test_auth_failure_mid_session_does_not_retry():
    auth = StreamError(4001, "Not authorized", Recovery.STOP)
    factory = Factory({"fail_after": 2, "error": auth}, {})
    p, events = run_pipeline(FakeSource(n=50, pace=0.01), factory)
    assert p.fatal_error == auth and len(factory.sessions) == 1
    assert not events.of(Reconnecting)


def test_initial_connection_gives_up_after_max_retries():
    down = StreamError(None, "Could not connect (connection refused); retrying.", Recovery.RECONNECT)
    factory = Factory(*[{"start_error": down}] * 10)
    p, events = run_pipeline(FakeSource(), factory, max_retries=3)
    assert p.fatal_error == down and p.fatal_error.retryable
    assert len(factory.sessions) == 4
    assert [r.attempt for r in events.of(Reconnecting)] == [1, 2, 3]


def test_repeated_protocol_faults_end_the_run():
    bug = StreamError(3007, "frame size (a bug)", Recovery.BUG)
    factory = Factory(*[{"fail_after": 1, "error": bug}] * 5)
    p, events = run_pipeline(FakeSource(n=200, pace=0.01), factory, max_bug_errors=3)
    assert p.fatal_error == bug and len(factory.sessions) == 3


def test_device_lost_ends_session_cleanly_and_retries_the_device():
    source = FakeSource(n=12, lose_at=5, reopen_failures=2, pace=0.005)
    factory = Factory({}, {})
    p, events = run_pipeline(source, factory, device_retry_s=0.05)
    first, second = factory.sessions
    assert first.stopped and first.chunks == 5
    kinds = [type(e).__name__ for e in events]
    # the first session ended cleanly (its finals kept), then the error, later a new session
    assert kinds.index("SessionEnded") < kinds.index("StreamError") < kinds.index("Reconnecting")
    err = events.of(StreamError)[0]
    assert err.recovery is Recovery.RECONNECT and "unplugged" in err.message
    assert source.opens == 4                    # initial + 2 failures + success
    gap = events.of(Gap)[0]
    assert gap.start_ms == 500 and gap.duration_ms >= 100    # ≥ 2 retry periods of wall time
    finals = events.of(Final)
    assert len(finals) == 12
    assert finals[5].audio_start >= gap.start_ms + gap.duration_ms
    assert p.fatal_error is None


def test_stop_from_another_thread_flushes_and_returns():
    source = FakeSource(n=10_000, pace=0.01)
    factory = Factory({})
    events = Events()
    p = CaptionPipeline(source, factory, events)
    t = threading.Thread(target=p.run)
    t.start()
    deadline = time.monotonic() + 10
    while not events.of(Final) and time.monotonic() < deadline:
        time.sleep(0.01)
    p.stop()
    t.join(timeout=10)
    assert not t.is_alive()
    assert factory.sessions[0].stopped and isinstance(events[-1], SessionEnded)
    assert p.fatal_error is None


def test_controls_forwarded_live_and_applied_to_new_sessions():
    source = FakeSource(n=60, pace=0.01)
    factory = Factory({"fail_after": 20}, {})
    events = Events()
    p = CaptionPipeline(source, factory, events, base_backoff_s=0.01, rng=FixedRng())
    t = threading.Thread(target=p.run)
    t.start()
    deadline = time.monotonic() + 10
    while not events.of(Final) and time.monotonic() < deadline:
        time.sleep(0.005)
    p.set_silence_threshold(1500)
    p.set_vocabulary(["Añejo"])
    p.force_end()
    t.join(timeout=20)
    first, second = factory.sessions
    assert first.controls == [("silence", 1500), ("vocab", ("Añejo",)), ("force_end",)]
    assert second.controls[:2] == [("silence", 1500), ("vocab", ("Añejo",))]


def test_audio_source_error_at_open_is_fatal_without_connecting():
    source = FakeSource(fail_open="Audio file not found: /nope.wav")
    factory = Factory({})
    p, events = run_pipeline(source, factory)
    assert isinstance(p.fatal_source_error, AudioSourceError)
    assert p.fatal_error.message == "Audio file not found: /nope.wav"
    assert factory.sessions == []


def test_outage_at_end_of_stream_is_reported_as_gap():
    down = StreamError(None, "refused", Recovery.RECONNECT)
    factory = Factory({"fail_after": 3}, *[{"start_error": down}] * 50)
    p, events = run_pipeline(FakeSource(n=15, pace=0.01), factory, base_backoff_s=0.05,
                             max_backoff_s=0.05)
    gap = events.of(Gap)[-1]
    assert gap.start_ms == 300 and gap.start_ms + gap.duration_ms == 1500


class FakeClock:
    """Advances a fixed step every time it is read: time flies while the test runs fast."""

    def __init__(self, step=0.0):
        self.now = 1000.0
        self.step = step

    def __call__(self):
        self.now += self.step
        return self.now


def test_outage_longer_than_the_budget_gives_up_after_a_session_ran():
    down = StreamError(None, "Could not connect (connection refused); retrying.", Recovery.RECONNECT)
    factory = Factory({"fail_after": 2}, *[{"start_error": down}] * 50)
    clock = FakeClock(step=1.0)               # every measurement is one "second" later
    p, events = run_pipeline(FakeSource(n=500, pace=0.005), factory, clock=clock,
                             max_retries=0, max_outage_s=5.0, base_backoff_s=0.001)
    assert p.fatal_error == down and p.connected_once
    assert 2 <= len(factory.sessions) <= 6     # gave up by outage time, not by the retry count


def test_backoff_restarts_after_a_stable_session_but_grows_for_flapping_ones():
    flap = {"fail_after": 1, "silent": True}     # dies before any caption
    rng = FixedRng(1.0)
    # flapping: every session dies at once → delays keep doubling
    p, events = run_pipeline(FakeSource(n=60, pace=0.005), Factory(flap, flap, flap, flap, {}),
                             rng=rng, base_backoff_s=0.01, max_backoff_s=1.0, clock=FakeClock(0.0))
    assert [r.delay_s for r in events.of(Reconnecting)] == [0.01, 0.02, 0.04, 0.08]
    # stable: each session lived past stable_after_s on the injected clock → back to the base delay
    p, events = run_pipeline(FakeSource(n=60, pace=0.005), Factory(flap, flap, flap, {}),
                             rng=rng, base_backoff_s=0.01, max_backoff_s=1.0, clock=FakeClock(20.0),
                             stable_after_s=10.0)
    assert [r.delay_s for r in events.of(Reconnecting)] == [0.01, 0.01, 0.01]


@pytest.mark.parametrize("which", ["first", "reconnected"])
def test_session_dying_right_after_start_is_replaced_not_kept(which):
    plans = [{"die_at_start": True}, {}] if which == "first" else [{"fail_after": 2},
                                                                   {"die_at_start": True}, {}]
    factory = Factory(*plans)
    p, events = run_pipeline(FakeSource(n=30, pace=0.01), factory, base_backoff_s=0.01)
    assert len(factory.sessions) == len(plans)
    assert factory.sessions[-1].chunks > 0          # the replacement got the audio
    assert p.fatal_error is None


@pytest.mark.parametrize("reached", [False, True])
def test_an_unreachable_server_is_retried_often_a_refusing_one_backs_off(reached):
    """Nothing is opened while the server cannot be reached, so retries stay frequent (captions
    resume soon after it is back); a server that answers and refuses gets the growing backoff."""
    down = StreamError(None, "connection refused; retrying.", Recovery.RECONNECT)
    if reached:
        down = StreamError(1013, "The server is busy; retrying.", Recovery.RECONNECT)
    factory = Factory({"fail_after": 2}, *[{"start_error": down, "reached": reached}] * 4, {})
    p, events = run_pipeline(FakeSource(n=300, pace=0.01), factory, rng=FixedRng(1.0),
                             base_backoff_s=0.05, max_backoff_s=10.0, unreachable_backoff_s=0.08)
    delays = [r.delay_s for r in events.of(Reconnecting)]
    if reached:
        assert delays == [0.05, 0.1, 0.2, 0.4, 0.8]
    else:
        assert delays == [0.05, 0.08, 0.08, 0.08, 0.08]
    assert p.fatal_error is None and isinstance(events[-1], SessionEnded)
