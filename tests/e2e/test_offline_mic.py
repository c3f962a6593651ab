"""Speech played into the PulseAudio virtual microphone → the app's mic source → offline engine."""

from __future__ import annotations

import threading

import pytest

from app.core.audio import devices
from app.core.engines.local import LocalSession
from app.core.events import Final, Partial, Recovery, SessionEnded, StreamError
from app.core.session_config import SessionConfig
from tests.core.engines.fakes import Recorder
from tests.core.engines.speech_refs import SENTENCES, wer

pytestmark = [pytest.mark.pulse, pytest.mark.offline_engine, pytest.mark.timeout(120)]


def test_virtual_mic_speech_becomes_accurate_offline_captions(pulse_audio, speech_wav):
    wav = speech_wav(SENTENCES[2], lead_ms=200, tail_ms=1500)
    config = SessionConfig(engine="local", silence_ms=500)
    [source] = devices.open_sources("mic", config.sample_rate, config.chunk_ms)
    rec = Recorder()
    session = LocalSession(config, rec)
    session.start(timeout=60)
    running = threading.Event()
    running.set()
    captured = []

    def capture():
        source.open()
        try:
            while running.is_set():
                chunk = source.read()
                captured.append(len(chunk))
                session.send_audio(chunk)
        finally:
            source.close()

    reader = threading.Thread(target=capture, daemon=True)
    reader.start()
    try:
        assert rec.wait_for(lambda: len(captured) >= 3, timeout=30), "the mic delivered no audio"
        pulse_audio.play(wav)
        assert rec.wait_for(lambda: bool(rec.of(Final)), timeout=30)
    finally:
        running.clear()
        reader.join(10)
        session.stop(timeout=30)
    finals = rec.of(Final)
    assert len(finals) == 1 and wer(SENTENCES[2], finals[0].text) <= 0.25, [f.text for f in finals]
    assert rec.events.index(rec.of(Partial)[0]) < rec.events.index(finals[0])
    assert all(e.recovery is Recovery.IGNORE for e in rec.of(StreamError))
    assert isinstance(rec.events[-1], SessionEnded)
