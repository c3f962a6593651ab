"""WASAPI loopback capture never blocks: it polls what is available and fills silence by the clock.

PyAudioWPatch's loopback stream delivers nothing while no app plays sound; a blocking read
would hang Stop and Quit. The fake stream here fails the test if it is ever read for more
frames than it has.
"""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest

from app.core.audio import devices
from app.core.audio.errors import DeviceLost
from app.core.audio.pyaudio_source import PyAudioSource

PA_INT16 = 8


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class LoopbackStream:
    """Stereo 48 kHz loopback; ``playing`` frames become available as the fake clock runs."""

    def __init__(self, owner):
        self.owner = owner
        self.delivered = 0
        self.max_read = 0

    def _produced(self):
        start = self.owner.play_from
        if start is None:
            return 0
        return max(0, int((self.owner.clock.now - start) * 48000))

    def get_read_available(self):
        if self.owner.fail:
            raise OSError(-9999, "Unanticipated host error")
        return self._produced() - self.delivered

    def read(self, frames, exception_on_overflow=True):
        available = self.get_read_available()
        assert frames <= available, "a loopback read must never wait for data"
        self.max_read = max(self.max_read, frames)
        self.delivered += frames
        t = np.arange(frames) / 48000
        x = np.rint(8000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
        return np.repeat(x, 2).tobytes()

    def stop_stream(self):
        pass

    def close(self):
        pass


class FakeWPatch:
    clock: FakeClock
    play_from: float | None = None
    fail = False
    stream: LoopbackStream | None = None
    opened: list[dict] = []

    def get_loopback_device_info_generator(self):
        yield self.get_default_wasapi_loopback()

    def get_default_wasapi_loopback(self):
        return {"index": 7, "name": "Speakers (Realtek) [Loopback]", "maxInputChannels": 2,
                "defaultSampleRate": 48000.0}

    def open(self, **kw):
        FakeWPatch.opened.append(kw)
        FakeWPatch.stream = LoopbackStream(FakeWPatch)
        return FakeWPatch.stream

    def terminate(self):
        pass


@pytest.fixture
def wpatch(monkeypatch):
    monkeypatch.setitem(sys.modules, "fake_wpatch", types.SimpleNamespace(PyAudio=FakeWPatch, paInt16=PA_INT16))
    FakeWPatch.clock = FakeClock()
    FakeWPatch.play_from = None
    FakeWPatch.fail = False
    FakeWPatch.opened = []
    return FakeWPatch


def _loopback(wpatch, chunk_ms=100):
    return PyAudioSource("system", devices._wasapi_loopback_resolver(None), 16000, chunk_ms,
                         module_name="fake_wpatch", clock=wpatch.clock, sleep=wpatch.clock.sleep)


def test_loopback_target_is_polled_at_the_output_format(wpatch):
    src = _loopback(wpatch)
    src.open()
    try:
        assert src.target.poll
        assert (wpatch.opened[0]["rate"], wpatch.opened[0]["channels"]) == (48000, 2)
    finally:
        src.close()


def test_nothing_playing_gives_silence_at_real_time_pace(wpatch):
    src = _loopback(wpatch)
    src.open()
    try:
        start = wpatch.clock.now
        chunks = [src.read() for _ in range(20)]
    finally:
        src.close()
    assert all(len(c) == 1600 * 2 for c in chunks)
    assert all(not any(c) for c in chunks)
    elapsed = wpatch.clock.now - start
    # 20 chunks of 100 ms: about 2 s of clock (one chunk of grace), never a runaway.
    assert 1.9 <= elapsed <= 2.25, elapsed


def test_playing_audio_comes_through_and_reads_only_what_is_there(wpatch):
    wpatch.play_from = wpatch.clock.now
    src = _loopback(wpatch)
    src.open()
    try:
        chunks = [src.read() for _ in range(10)]
    finally:
        src.close()
    pcm = np.frombuffer(b"".join(chunks[2:]), dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    assert np.argmax(spectrum) * 16000 / len(pcm) == pytest.approx(1000, rel=0.01)
    assert wpatch.stream.max_read <= 4800                  # never more than one chunk per read


def test_sound_starting_after_silence_is_not_delayed_by_a_backlog(wpatch):
    src = _loopback(wpatch)
    src.open()
    try:
        for _ in range(30):                                # 3 s of nothing playing
            assert not any(src.read())
        wpatch.play_from = wpatch.clock.now
        later = [src.read() for _ in range(3)]
    finally:
        src.close()
    assert any(later[1]) and any(later[2])


def test_close_from_another_thread_ends_a_waiting_read_promptly(wpatch, monkeypatch):
    # Real clock, nothing ever playing, a long chunk: close() must not wait for the chunk.
    src = PyAudioSource("system", devices._wasapi_loopback_resolver(None), 16000, 2000,
                        module_name="fake_wpatch", clock=lambda: 0.0)   # the chunk is never due
    src.open()
    errors = []

    def reader():
        try:
            src.read()
        except Exception as exc:          # noqa: BLE001 - the test inspects it
            errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    closer = threading.Thread(target=src.close)
    closer.start()
    closer.join(timeout=2)
    assert not closer.is_alive(), "close() waited on a loopback read"
    t.join(timeout=2)
    assert not t.is_alive(), "read() did not notice the close"
    assert errors and "not open" in str(errors[0])


def test_a_failing_loopback_device_is_reported_as_lost(wpatch):
    src = _loopback(wpatch)
    src.open()
    wpatch.fail = True
    with pytest.raises(DeviceLost, match="stopped delivering audio"):
        src.read()
    src.close()


def test_a_device_clock_slower_than_the_systems_gets_no_silence_spliced_in(wpatch):
    """Audio arriving 1 % late for a long time stays whole: silence only when nothing arrives."""
    wpatch.play_from = wpatch.clock.now
    src = _loopback(wpatch)
    src.open()
    real_produced = LoopbackStream._produced

    def slow(self):                                        # 47 520 frames per clock second
        return int(real_produced(self) * 0.99)

    LoopbackStream._produced = slow
    try:
        chunks = [src.read() for _ in range(600)]          # a minute of audio
    finally:
        LoopbackStream._produced = real_produced
        src.close()
    pcm = np.frombuffer(b"".join(chunks[1:]), dtype="<i2")
    zero_runs = np.flatnonzero(np.diff(np.flatnonzero(pcm == 0)) == 1)
    assert len(zero_runs) < 50                             # only the sine's own zero crossings
