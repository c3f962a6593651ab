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
from app.core.pipeline_group import PipelineGroup
from app.core.session_config import SessionConfig
from app.core.session_factory import create_session
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
    events = []
    session = PipelineGroup(devices.open_sources("mic", 16000, 100), _factory(server, protocol),
                            lambda label, ev: events.append((label, ev)), lambda: None)
    session.start()
    try:
        assert server.wait_for(lambda: server.sessions and len(server.sessions[0].audio) >= 3200, 30)
        pulse_audio.play(wav)
        qtbot.waitUntil(lambda: any(isinstance(e, Final) and e.text for _, e in events), timeout=30000)
        assert session.levels()["mic"].ever_sound          # the meter heard the speech
    finally:
        session.stop()
        assert session.join(15)
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
    finals = []
    session = PipelineGroup([source], _factory(server),
                            lambda label, ev: isinstance(ev, Final) and ev.text and finals.append(ev),
                            lambda: None)
    session.start()
    try:
        assert server.wait_for(lambda: server.sessions and len(server.sessions[0].audio) >= 3200, 30)
        assert source.device_rate == 48000
        pulse_audio_48k.play(played)
        qtbot.waitUntil(lambda: bool(finals), timeout=30000)
    finally:
        session.stop()
        assert session.join(15)
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
        assert lost.recovery is Recovery.RECONNECT and lost.message.startswith(
            "The audio device was lost; waiting for it to come back.")
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


def test_headless_cli_captions_mic_and_system_audio_labelled(pulse_audio, loopback_server, speech_wav,
                                                             tmp_path):
    """`caption-overlay --headless --source both`: two sessions, each final labelled by source."""
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    server = loopback_server
    server.set_script([TEXT, TEXT])
    root = Path(__file__).resolve().parents[2]
    env = {**pulse_audio.env, "ASSEMBLYAI_API_KEY": server.api_key, "PYTHONUNBUFFERED": "1"}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[var] = os.environ[var]                       # the per-test private dirs
    proc = subprocess.Popen([sys.executable, "-m", "app", "--headless", "--source", "both",
                             "--server", server.url, "--json", "--silence-ms", "500"],
                            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # both capture streams are delivering before anything is played
        assert server.wait_for(lambda: len(server.sessions) >= 2 and
                               all(len(s.audio) >= 3200 for s in list(server.sessions)[:2]), 40), \
            proc.stderr.read() if proc.poll() is not None else "no audio"
        pulse_audio.play(speech_wav(TEXT, rate=16000, lead_ms=200, tail_ms=1500))
        assert server.wait_for(lambda: sum(len(s.finals) for s in list(server.sessions)) >= 2, 40)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    finals = [(d.get("source") or d.get("label"), d.get("text")) for d in lines
              if d.get("type", d.get("event", "")).lower() == "final"]
    # the virtual mic is the sink's monitor remapped: both sources heard the same speech
    assert sorted(finals) == [("mic", TEXT), ("system", TEXT)], out
