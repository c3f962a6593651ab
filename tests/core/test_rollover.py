"""Session rollover before the server's session limit, and sessions the server ends unasked."""

from __future__ import annotations

import threading
import time

import numpy as np

from app.core.events import Final, Gap, Partial, SessionEnded, SessionStarted, StreamError
from app.core.pipeline import CaptionPipeline, is_quiet, rollover_margins
from tests.core.test_pipeline import (CHUNK, CHUNK_MS, RATE, Events, Factory, FakeSession,
                                      FakeSource, FixedRng)

LOUD = (np.full(RATE * CHUNK_MS // 1000, 9000, dtype="<i2")).tobytes()


class LimitedSession(FakeSession):
    """Announces a session limit ``expires_in`` s from now; ``speech`` = every chunk extends an
    open turn (a partial) instead of ending one, as continuous speech does."""

    def start(self, timeout=10.0):
        self.started = True
        self._emit(SessionStarted(f"s{id(self)}", "v3", time.time() + self.plan.get("expires_in", 2.0)))

    def send_audio(self, pcm16, *, may_block=False):
        if self.ended:
            return
        k = self.chunks
        self.chunks += 1
        if self.plan.get("speech"):
            self.pending = (k + 1) * CHUNK_MS
            self._emit(Partial(f"words {k}", 0, (k + 1) * CHUNK_MS))
        else:
            self._emit(Final(f"chunk {k}", k * CHUNK_MS, (k + 1) * CHUNK_MS))
        if self.plan.get("end_unasked_after") == self.chunks:
            threading.Thread(target=self._emit, args=(SessionEnded(1.0),)).start()

    def stop(self, timeout=5.0):
        # Terminate flushes the open turn as a final, like the server does.
        if self.plan.get("speech") and getattr(self, "pending", None) and not self.ended:
            self._emit(Final(f"flushed {self.chunks}", 0, self.pending))
        super().stop(timeout)


class LimitedFactory(Factory):
    def __call__(self, listener):
        plan = self.plans.pop(0) if len(self.plans) > 1 else dict(self.plans[0]) if self.plans else {}
        s = LimitedSession(listener, plan)
        self.sessions.append(s)
        return s


class LoudSource(FakeSource):
    def read(self):
        chunk = super().read()
        return LOUD if chunk else chunk


def run(source, factory, **kw):
    events = Events()
    p = CaptionPipeline(source, factory, events, rng=FixedRng(), base_backoff_s=0.01, **kw)
    t = threading.Thread(target=p.run)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive()
    return p, events


def test_margins_scale_with_the_session_length():
    assert rollover_margins(10800) == (60.0, 10.0)
    assert rollover_margins(60) == (18.0, 6.0)
    assert rollover_margins(3) == (1.5, 0.5)


def test_quiet_detection():
    assert is_quiet(CHUNK) and is_quiet(b"") and not is_quiet(LOUD)


def test_rollover_at_pauses_loses_and_doubles_nothing():
    source = FakeSource(n=80, pace=0.05)                    # 4 s of audio, sessions of 2 s
    factory = LimitedFactory({"expires_in": 2.0})
    p, events = run(source, factory)
    assert p.fatal_error is None and p.rollovers >= 2
    assert events.of(StreamError) == [] and events.of(Gap) == []
    finals = events.of(Final)
    spans = sorted((f.audio_start, f.audio_end) for f in finals)
    assert spans == [(k * CHUNK_MS, (k + 1) * CHUNK_MS) for k in range(80)]   # each chunk once
    # every session was stopped by us before its limit (never ended by the server)
    assert all(s.stopped for s in factory.sessions)
    assert len(factory.sessions) in (p.rollovers + 1, p.rollovers + 2)   # + one opened ahead


def test_rollover_without_a_pause_happens_before_the_limit():
    source = LoudSource(n=40, pace=0.05)
    factory = LimitedFactory({"expires_in": 1.6, "speech": True})
    started = time.monotonic()
    p, events = run(source, factory)
    assert p.rollovers >= 1
    first = factory.sessions[0]
    # the open turn was flushed by the first session's Terminate, before its limit
    flushed = [f for f in events.of(Final) if f.text.startswith("flushed")]
    assert flushed and first.stopped
    assert time.monotonic() - started < 30
    assert events.of(Gap) == []


def test_v2_expires_at_does_not_trigger_a_rollover():
    class V2Limited(LimitedSession):
        def start(self, timeout=10.0):
            self._emit(SessionStarted("x", "v2", time.time() + 0.5))

    class F(Factory):
        def __call__(self, listener):
            s = V2Limited(listener, {})
            self.sessions.append(s)
            return s

    source = FakeSource(n=20, pace=0.05)
    factory = F()
    p, _ = run(source, factory)
    assert p.rollovers == 0 and len(factory.sessions) == 1


def test_a_session_the_server_ends_unasked_is_replaced():
    source = FakeSource(n=30, pace=0.02)
    factory = LimitedFactory({"expires_in": 3600, "end_unasked_after": 5}, {"expires_in": 3600})
    p, events = run(source, factory)
    assert len(factory.sessions) == 2 and p.fatal_error is None
    assert events.of(SessionEnded)[0] is not events[-1]
    assert isinstance(events[-1], SessionEnded)
    assert len(events.of(Final)) + sum(g.duration_ms for g in events.of(Gap)) // CHUNK_MS == 30


def test_languages_set_on_the_pipeline_reach_later_sessions():
    class LanguageSession(LimitedSession):
        def set_languages(self, codes):
            self.controls.append(("languages", tuple(codes)))

    class F(Factory):
        def __call__(self, listener):
            s = LanguageSession(listener, {"expires_in": 1.6})
            self.sessions.append(s)
            return s

    factory = F()
    source = FakeSource(n=40, pace=0.05)
    events = Events()
    p = CaptionPipeline(source, factory, events, rng=FixedRng(), base_backoff_s=0.01)
    t = threading.Thread(target=p.run)
    t.start()
    deadline = time.monotonic() + 5
    while not factory.sessions and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    p.set_languages(["en", "es"])
    t.join(timeout=30)
    assert ("languages", ("en", "es")) in factory.sessions[0].controls
    assert len(factory.sessions) > 1
    assert all(("languages", ("en", "es")) in s.controls for s in factory.sessions[1:])


def test_settings_changed_while_the_next_session_connects_reach_it():
    # The session opened ahead of a rollover is still in its handshake when the user changes
    # languages, threshold and vocabulary: it must take over with the new values, not the old.
    connecting, release = threading.Event(), threading.Event()

    class SlowNext(LimitedSession):
        def set_languages(self, codes):
            self.controls.append(("languages", tuple(codes)))

        def set_silence_threshold(self, ms):
            self.controls.append(("silence", ms))

        def set_vocabulary(self, terms):
            self.controls.append(("vocabulary", tuple(terms)))

        def start(self, timeout=10.0):
            if self.plan.get("slow"):
                connecting.set()
                release.wait(10)
            super().start(timeout)

    class F(Factory):
        def __call__(self, listener):
            s = SlowNext(listener, {"expires_in": 1.6, "slow": bool(self.sessions)})
            self.sessions.append(s)
            return s

    factory = F()
    p = CaptionPipeline(FakeSource(n=50, pace=0.05), factory, Events(), rng=FixedRng(),
                        base_backoff_s=0.01)
    t = threading.Thread(target=p.run)
    t.start()
    try:
        assert connecting.wait(10)             # the second session is in its handshake
        p.set_languages(["en", "es"])
        p.set_silence_threshold(900)
        p.set_vocabulary(["Kubernetes"])
    finally:
        release.set()
        t.join(timeout=30)
    nxt = factory.sessions[1]
    assert ("languages", ("en", "es")) in nxt.controls
    assert ("silence", 900) in nxt.controls
    assert ("vocabulary", ("Kubernetes",)) in nxt.controls
    assert p.rollovers >= 1 and nxt.chunks > 0        # and it did take over


def test_a_limit_in_the_past_is_not_followed_into_a_session_storm():
    source = FakeSource(n=20, pace=0.02)
    factory = LimitedFactory({"expires_in": -30.0})     # the computer's clock is ahead
    p, events = run(source, factory)
    assert p.rollovers == 0 and len(factory.sessions) == 1
    assert len(events.of(Final)) == 20


def test_failed_early_opens_back_off_and_the_session_ends_at_its_limit_otherwise():
    from app.core.engine import SessionError
    from app.core.events import Recovery

    class Refusing(LimitedSession):
        def start(self, timeout=10.0):
            if self.plan.get("refuse"):
                raise SessionError(StreamError(429, "rate limited; retrying.", Recovery.RECONNECT))
            super().start(timeout)

    class F(Factory):
        def __call__(self, listener):
            s = Refusing(listener, {"expires_in": 3.0} if not self.sessions else {"refuse": True})
            self.sessions.append(s)
            return s

    factory = F()
    source = FakeSource(n=25, pace=0.05)                  # 1.25 s, inside the rollover window
    p, events = run(source, factory)
    assert p.rollovers == 0
    # opened ahead at most every 2 s, then 4 s …: not a retry per chunk
    assert len(factory.sessions) <= 3
    assert len(events.of(Final)) == 25 and events.of(StreamError) == []
