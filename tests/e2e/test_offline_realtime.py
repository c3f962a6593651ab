"""The offline engine at real time: a WAV file paced by WavFileSource → LocalSession (as capture would)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from app.core.audio.source import WavFileSource
from app.core.engines.local import LocalSession
from app.core.events import Final, Partial, Recovery, SessionEnded, SessionStarted, StreamError
from app.core.pipeline import CaptionPipeline
from app.core.session_config import SessionConfig
from app.core.run_plan import resolve_engine
from app.core.session_factory import create_session
from tests.core.engines.fakes import CountingRecognizer, EnergyVad, Recorder, pcm16, silence, tone
from tests.core.engines.speech_refs import SENTENCES, wer


@pytest.mark.offline_engine
def test_real_time_file_gives_partials_then_accurate_finals(speech_wav):
    path = speech_wav(list(SENTENCES[1:]), lead_ms=500, tail_ms=1500)
    assert resolve_engine(None, api_key_present=False, token_url=None) == "local"
    config = SessionConfig(engine="local", silence_ms=500)
    rec = Recorder()
    arrivals: list[tuple[float, object]] = []

    def listener(event):
        arrivals.append((time.monotonic(), event))
        rec(event)

    session = create_session(config, listener, api_key=None)
    assert isinstance(session, LocalSession)
    session.start(timeout=60)
    origin = None
    with WavFileSource(path, config.sample_rate, config.chunk_ms) as source:   # real-time pacing
        while chunk := source.read():
            if origin is None:
                origin = time.monotonic() - len(chunk) / 2 / config.sample_rate
            session.send_audio(chunk)
    session.stop(timeout=30)
    assert rec.of(SessionStarted)[0].protocol == "local"
    # A loaded machine may fall behind (an informational notice); nothing else may go wrong.
    assert all(e.recovery is Recovery.IGNORE for e in rec.of(StreamError)), rec.of(StreamError)
    finals = rec.of(Final)
    assert len(finals) == 2, [f.text for f in finals]
    assert wer(" ".join(SENTENCES[1:]), " ".join(f.text for f in finals)) <= 0.25
    # Each utterance showed live words before its final, and offsets are in stream order.
    for i, final in enumerate(finals):
        since = rec.events.index(finals[i - 1]) + 1 if i else 0
        assert any(isinstance(e, Partial) and e.audio_start == final.audio_start
                   for e in rec.events[since:rec.events.index(final)])
    assert finals[0].audio_start >= 400 and finals[0].audio_end < finals[1].audio_start
    assert isinstance(rec.events[-1], SessionEnded)
    # Latency (end of speech → final) is measured by the benchmark, not asserted here.
    latencies = [t - origin - e.audio_end / 1000 for t, e in arrivals if isinstance(e, Final)]
    print("final latency s:", [round(x, 2) for x in latencies])


def test_pipeline_keeps_a_session_that_reports_falling_behind(monkeypatch):
    from app.core.engines import local as local_mod
    monkeypatch.setattr(local_mod, "REPORT_BEHIND_EVENTS", True)
    gate = threading.Event()
    recognizer = CountingRecognizer(gate=gate)
    audio = np.concatenate([silence(0.3)] + [np.concatenate([tone(1.0), silence(0.5)])] * 4)
    rec = Recorder()

    def wait(predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.01)

    class Source:
        label = "file"
        sample_rate, chunk_ms = 16000, 100

        def __init__(self):
            self.pos = 0

        def open(self):
            pass

        def close(self):
            pass

        def read(self):
            if self.pos == 1600 * 30:
                wait(lambda: recognizer.calls)  # the decoder is now stuck: audio piles up
            if self.pos == 1600 * 50:
                time.sleep(local_mod.BEHIND_S + 0.1)   # ...for longer than BEHIND_S
                gate.set()                      # ...5 s of it; now it catches up
            chunk = audio[self.pos:self.pos + 1600]
            self.pos += 1600
            if not len(chunk):
                wait(lambda: len(rec.of(Final)) == 4)   # end of file only once caught up
                return b""
            return pcm16(chunk)

    config = SessionConfig(engine="local", silence_ms=200)
    pipeline = CaptionPipeline(
        Source(), lambda l: LocalSession(config, l, recognizer=recognizer, vad_factory=EnergyVad), rec)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    runner.join(30)
    gate.set()
    assert not runner.is_alive()
    assert any(e.recovery is Recovery.IGNORE for e in rec.of(StreamError))
    assert len(rec.of(Final)) == 4                       # captions went on after the notice
    assert pipeline.fatal_error is None and isinstance(rec.events[-1], SessionEnded)
