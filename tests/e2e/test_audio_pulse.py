"""Real microphone → app → loopback AssemblyAI server, through a private PulseAudio.

The capture stream is open and delivering (the server already receives audio) BEFORE the
speech is played, so nothing played is lost to stream start-up.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.core.audio import devices
from app.core.credentials import Secret
from app.core.events import Final, Recovery, SessionStarted, StreamError
from app.core.pipeline import CaptionPipeline
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session
from app.qt.session_worker import CaptionSession
from tests.core.audio.test_pulse_capture import best_correlation, best_subsample_correlation, wav_samples

pytestmark = [pytest.mark.pulse, pytest.mark.timeout(120)]

TEXT = "The quarterly budget review starts at nine."


def _factory(server, protocol="v3", encoding="pcm_s16le"):
    config = SessionConfig(protocol=protocol, server_url=server.url, encoding=encoding, silence_ms=500)
    return lambda listener: create_session(config, listener, api_key=Secret(server.api_key))


def _received(server) -> np.ndarray:
    return np.frombuffer(bytes(b"".join(bytes(s.audio) for s in server.sessions)),
                         dtype="<i2").astype(np.float64)


@pytest.mark.parametrize("protocol", ["v2"])   # v3 is the 48 kHz test below
def test_mic_speech_reaches_the_server_bit_exact_and_captions_come_back(
        qtbot, pulse_audio, loopback_server, speech_wav, protocol):
    server = loopback_server
    server.set_script([TEXT])
    wav = speech_wav(TEXT, rate=16000, lead_ms=200, tail_ms=1500)
    session = CaptionSession(devices.open_sources("mic", 16000, 100), _factory(server, protocol))
    events = []
    session.event.connect(lambda label, ev: events.append((label, ev)))
    session.start()
    try:
        assert server.wait_for(lambda: server.sessions and len(server.sessions[0].audio) >= 3200, 30)
        pulse_audio.play(wav)
        qtbot.waitUntil(lambda: any(isinstance(e, Final) and e.text for _, e in events), timeout=30000)
        qtbot.waitUntil(lambda: session.levels()["mic"].peak_dbfs > -20, timeout=5000)
    finally:
        session.stop()
    finals = [e for label, e in events if isinstance(e, Final) and e.text]
    assert [f.text for f in finals] == [TEXT] and all(label == "mic" for label, _ in events)
    assert session.fatal_error is None
    assert all(not s.violations for s in server.sessions), [s.violations for s in server.sessions]
    ref = wav_samples(wav)
    got = _received(server)
    corr, lag = best_correlation(ref, got)
    assert corr >= 0.99
    assert lag >= 0
    seg = got[lag:lag + len(ref)]
    assert np.array_equal(seg.astype(np.int16), ref[:len(seg)].astype(np.int16))   # bit-exact
    latency = session.latency_ms("mic", finals[0])
    assert latency is not None and latency > 0


def test_48k_device_reaches_the_server_at_16k(qtbot, pulse_audio_48k, loopback_server, speech_wav):
    server = loopback_server
    server.set_script([TEXT])
    played = speech_wav(TEXT, rate=48000, channels=2, lead_ms=200, tail_ms=1500)
    reference = wav_samples(speech_wav(TEXT, rate=16000, lead_ms=200, tail_ms=1500))
    [source] = devices.open_sources("mic", 16000, 100)
    session = CaptionSession([source], _factory(server))
    finals = []
    session.event.connect(lambda label, ev: isinstance(ev, Final) and ev.text and finals.append(ev))
    session.start()
    try:
        assert server.wait_for(lambda: server.sessions and len(server.sessions[0].audio) >= 3200, 30)
        assert source.device_rate == 48000
        pulse_audio_48k.play(played)
        qtbot.waitUntil(lambda: bool(finals), timeout=30000)
    finally:
        session.stop()
    assert [f.text for f in finals] == [TEXT]
    assert best_subsample_correlation(reference, _received(server)) >= 0.99


def test_unloading_the_device_mid_session_keeps_finals_and_resumes(pulse_audio, loopback_server, speech_wav):
    server = loopback_server
    first, second = "Before the headset was unplugged.", "After it came back."
    server.set_script([first, second])
    events = []
    lock = threading.Lock()

    def listener(ev):
        with lock:
            events.append(ev)

    [source] = devices.open_sources("mic:vmic", 16000, 100)
    pipeline = CaptionPipeline(source, _factory(server), listener, label="mic", device_retry_s=0.5)
    runner = threading.Thread(target=pipeline.run, daemon=True)
    runner.start()
    try:
        assert server.wait_for(lambda: server.sessions and len(server.sessions[0].audio) >= 3200, 30)
        pulse_audio.play(speech_wav(first, rate=16000, lead_ms=200, tail_ms=1200))
        assert server.wait_for(lambda: any(isinstance(e, Final) and e.text == first for e in list(events)), 30)
        pulse_audio.unload_sink()
        assert server.wait_for(lambda: any(isinstance(e, StreamError) for e in list(events)), 30)
        lost = next(e for e in events if isinstance(e, StreamError))
        assert lost.recovery is Recovery.RECONNECT and "Waiting for it to come back" in lost.message
        assert runner.is_alive()                                    # no crash, still waiting
        pulse_audio.load_sink()
        assert server.wait_for(lambda: len(server.sessions) >= 2 and len(server.sessions[1].audio) >= 3200, 30)
        pulse_audio.play(speech_wav(second, rate=16000, lead_ms=200, tail_ms=1200))
        assert server.wait_for(lambda: any(isinstance(e, Final) and e.text == second for e in list(events)), 30)
    finally:
        pipeline.stop()
        runner.join(30)
    assert not runner.is_alive()
    assert pipeline.fatal_error is None
    texts = [e.text for e in events if isinstance(e, Final) and e.text]
    assert texts == [first, second]                                 # the first final was kept
    assert sum(isinstance(e, SessionStarted) for e in events) >= 2
    assert all(not s.violations for s in server.sessions)
