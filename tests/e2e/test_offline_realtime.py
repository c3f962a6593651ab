"""The offline engine at real time: a WAV file paced by WavFileSource → CaptionPipeline → LocalSession."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.audio.source import WavFileSource
from app.core.events import Final, Partial, SessionEnded, SessionStarted, StreamError
from app.core.pipeline import CaptionPipeline
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session, resolve_engine
from tests.core.engines.fakes import Recorder
from tests.core.engines.speech_refs import SENTENCES, wer

pytestmark = pytest.mark.offline_engine


def test_real_time_file_gives_partials_then_accurate_finals(speech_wav):
    path = speech_wav(list(SENTENCES[1:]), lead_ms=500, tail_ms=1500)
    assert resolve_engine(None, api_key_present=False, token_url=None) == "local"
    config = SessionConfig(engine="local", silence_ms=500)
    rec = Recorder()
    arrivals: list[tuple[float, object]] = []

    def listener(event):
        arrivals.append((time.monotonic(), event))
        rec(event)

    source = WavFileSource(path, config.sample_rate, config.chunk_ms)    # paced at real time
    pipeline = CaptionPipeline(source, lambda l: create_session(config, l, api_key=None), listener,
                               label="file")
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    runner.join(90)
    assert not runner.is_alive(), "the pipeline did not finish after the file ended"
    assert pipeline.fatal_error is None
    assert rec.of(SessionStarted)[0].protocol == "local"
    assert not rec.of(StreamError), rec.of(StreamError)
    finals = rec.of(Final)
    assert len(finals) == 2, [f.text for f in finals]
    assert wer(" ".join(SENTENCES[1:]), " ".join(f.text for f in finals)) <= 0.25
    # Each utterance showed live words before its final, and offsets are in stream order.
    for i, final in enumerate(finals):
        before = rec.events[:rec.events.index(final)]
        after_previous = before[rec.events.index(finals[i - 1]) + 1:] if i else before
        assert any(isinstance(e, Partial) for e in after_previous)
    assert finals[0].audio_start >= 400 and finals[0].audio_end < finals[1].audio_start
    assert isinstance(rec.events[-1], SessionEnded)
    # Latency (end of speech → final) is recorded by the benchmark, not asserted here.
    origin = pipeline.stream_time_origin
    latencies = [t - origin - e.audio_end / 1000 for t, e in arrivals if isinstance(e, Final)]
    print("final latency s:", [round(x, 2) for x in latencies])
