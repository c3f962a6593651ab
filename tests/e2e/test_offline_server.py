"""The loopback AssemblyAI-compatible server transcribing with the offline engine (no script):
the app's own streaming client, fed a real-time WAV, gets real transcripts back."""

from __future__ import annotations

import threading

import pytest

from app.core.audio.source import WavFileSource
from app.core.credentials import Secret
from app.core.engines.transcriber import OfflineTranscriber
from app.core.events import Final, Partial, StreamError
from app.core.pipeline import CaptionPipeline
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session
from tests.core.engines.fakes import Recorder
from tests.core.engines.speech_refs import SENTENCES, wer

pytestmark = [pytest.mark.offline_engine, pytest.mark.timeout(120)]


@pytest.mark.parametrize("protocol", ["v3", "v2"])
def test_loopback_server_gives_real_transcripts(loopback_factory, speech_wav, protocol):
    texts = [SENTENCES[1]] if protocol == "v3" else [SENTENCES[2]]
    server = loopback_factory(transcriber=OfflineTranscriber())
    path = speech_wav(texts, tail_ms=1500)
    config = SessionConfig(engine="assemblyai", protocol=protocol, server_url=server.url,
                           silence_ms=500, format_turns=False)
    rec = Recorder()
    source = WavFileSource(path, config.sample_rate, config.chunk_ms)
    pipeline = CaptionPipeline(
        source, lambda l: create_session(config, l, api_key=Secret(server.api_key)), rec,
        label="file", max_retries=0)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    runner.join(90)
    assert not runner.is_alive()
    assert pipeline.fatal_error is None, pipeline.fatal_error
    assert not [e for e in rec.of(StreamError) if e.recovery.value != "ignore"]
    assert all(s.violations == [] for s in server.sessions), [s.violations for s in server.sessions]
    finals = [f.text for f in rec.of(Final) if f.text]
    assert len(finals) == len(texts), finals
    assert wer(" ".join(texts), " ".join(finals)) <= 0.25, finals
    # The server ran the engine for partials too (recognised text, growing, before the final).
    assert any(p.text for p in rec.of(Partial))
