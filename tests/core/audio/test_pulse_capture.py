"""Real capture through a private PulseAudio: the virtual mic, system audio, device loss.

Each test opens the capture stream and waits for its first chunk BEFORE playing, so nothing
played is lost to stream start-up.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import wave

import numpy as np
import pytest

from app.core.audio import devices
from app.core.audio.errors import AudioSourceError, DeviceLost

pytestmark = pytest.mark.pulse


def wav_samples(path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels()).mean(axis=1)
    return data.astype(np.float64)


def best_correlation(reference: np.ndarray, captured: np.ndarray) -> tuple[float, int]:
    """Normalised cross-correlation of ``reference`` with ``captured`` at the best lag.

    lag ≥ 0: the reference starts ``lag`` samples into the capture; lag < 0: the capture began
    ``-lag`` samples into the reference (only the overlap is compared).
    """
    n = len(captured) + len(reference)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(captured, size) * np.conj(np.fft.rfft(reference, size)), size)
    k = int(np.argmax(xc))
    lag = k if k < len(captured) else k - size
    if lag >= 0:
        seg = captured[lag:lag + len(reference)]
        ref = reference[:len(seg)]
    else:
        seg = captured[:len(reference) + lag]
        ref = reference[-lag:-lag + len(seg)]
    denom = np.sqrt(np.sum(seg ** 2) * np.sum(ref ** 2))
    return (float(np.sum(seg * ref) / denom) if denom else 0.0), lag


def fractional_shift(x: np.ndarray, d: float) -> np.ndarray:
    """Delay by ``d`` samples (band-limited, via the FFT)."""
    n = len(x) + 64
    f = np.fft.rfftfreq(n)
    return np.fft.irfft(np.fft.rfft(x, n) * np.exp(-2j * np.pi * f * d), n)[:len(x)]


def best_subsample_correlation(reference: np.ndarray, captured: np.ndarray) -> float:
    """A 48 kHz device lands on the 16 kHz grid at a 0, 1/3 or 2/3 sample offset: allow that."""
    return max(best_correlation(fractional_shift(reference, d), captured)[0] for d in (0, 1 / 3, 2 / 3))


class Capture:
    """Reads a source on a thread until stopped; keeps every chunk and the error, if any."""

    def __init__(self, source):
        self.source = source
        self.chunks: list[bytes] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, first_chunk_timeout: float = 15.0) -> "Capture":
        self.source.open()
        self._thread.start()
        deadline = time.monotonic() + first_chunk_timeout
        while not self.chunks and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.chunks, f"no audio from {self.source.label}: {self.error}"
        return self

    def _run(self):
        try:
            while not self._stop.is_set():
                self.chunks.append(self.source.read())
        except BaseException as exc:
            self.error = exc

    def stop(self) -> np.ndarray:
        self._stop.set()
        self._thread.join(15)
        self.source.close()
        return np.frombuffer(b"".join(self.chunks), dtype="<i2").astype(np.float64)

    def wait_seconds(self, seconds: float, timeout: float = 60.0) -> None:
        """Until ``seconds`` of audio more have been captured (capture runs at real time)."""
        target = len(self.chunks) + int(seconds * 1000 / self.source.chunk_ms)
        deadline = time.monotonic() + timeout
        while len(self.chunks) < target and self.error is None and time.monotonic() < deadline:
            time.sleep(0.02)


def wait_for_speech(cap: Capture, start_chunk: int, reference: np.ndarray, timeout: float = 20.0) -> float:
    """Correlation of ``reference`` with what was captured after ``start_chunk``, polled until it
    is all there (a freshly switched stream can deliver its first second in one late burst)."""
    deadline = time.monotonic() + timeout
    corr = 0.0
    while time.monotonic() < deadline and cap.error is None:
        got = np.frombuffer(b"".join(cap.chunks[start_chunk:]), dtype="<i2").astype(np.float64)
        if len(got) > len(reference):
            corr = best_correlation(reference, got)[0]
            if corr >= 0.99:
                break
        time.sleep(0.2)
    return corr


def _capture_while_playing(server, source, wav, device=None):
    cap = Capture(source).start()
    server.play(wav, device=device)
    cap.wait_seconds(0.5)
    return cap, cap.stop()


SHORT = dict(lead_ms=100, tail_ms=200)


def test_lists_devices_and_names_missing_ones(pulse_audio):
    found = {(d.kind, d.name): d for d in devices.list_devices()}
    assert found[("mic", "vmic")].is_default
    assert found[("system", "vsink.monitor")].is_default
    with pytest.raises(devices.DeviceNotFound) as info:
        devices.open_sources("mic:Studio Condenser", 16000, 100)
    assert "mic:vmic" in str(info.value)
    with pytest.raises(devices.DeviceNotFound) as info:
        devices.open_sources("system:nothing", 16000, 100)
    assert "system:vsink.monitor" in str(info.value)
    res = subprocess.run([sys.executable, "-m", "app", "--list-devices"], env=pulse_audio.env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "mic:vmic" in res.stdout and "system:vsink.monitor" in res.stdout


def test_speech_into_the_virtual_mic_is_captured_bit_exact(pulse_audio, speech_wav):
    wav = speech_wav("The quick brown fox.", rate=16000, **SHORT)
    [src] = devices.open_sources("mic", 16000, 100)
    cap, captured = _capture_while_playing(pulse_audio, src, wav)
    assert cap.error is None
    assert src.device_rate == 16000 and src.device_channels == 1
    ref = wav_samples(wav)
    corr, lag = best_correlation(ref, captured)
    assert corr >= 0.99
    assert lag >= 0                                   # all of it was captured
    seg = captured[lag:lag + len(ref)]
    assert np.array_equal(seg.astype(np.int16), ref[:len(seg)].astype(np.int16))   # bit-exact
    assert src.level.snapshot().overflows == 0


def test_system_audio_is_the_chosen_outputs_monitor(pulse_audio, speech_wav):
    wav = speech_wav("Our customers want captions.", rate=16000, **SHORT)
    ref = wav_samples(wav)
    pulse_audio.add_null_sink("othersink")
    # the default output's monitor hears what is played to it
    [src] = devices.open_sources("system", 16000, 100)
    cap, captured = _capture_while_playing(pulse_audio, src, wav)
    assert src.target.pulse_source == "vsink.monitor"
    assert best_correlation(ref, captured)[0] >= 0.99
    # another output's monitor, chosen by name, does not
    [other] = devices.open_sources("system:othersink", 16000, 100)
    cap, captured = _capture_while_playing(pulse_audio, other, wav)
    assert other.target.pulse_source == "othersink.monitor"
    assert np.max(np.abs(captured)) <= 2


def test_system_audio_follows_the_default_output(pulse_audio, speech_wav):
    wav = speech_wav("Following the default output.", rate=16000, **SHORT)
    pulse_audio.add_null_sink("othersink")
    [src] = devices.open_sources("system", 16000, 100)
    cap = Capture(src).start()
    try:
        pulse_audio.pactl("set-default-sink", "othersink")
        deadline = time.monotonic() + 20
        while src.target.pulse_source != "othersink.monitor" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert src.target.pulse_source == "othersink.monitor"
        cap.wait_seconds(0.3)
        start = len(cap.chunks)
        pulse_audio.play(wav, device="othersink")
        corr = wait_for_speech(cap, start, wav_samples(wav))
    finally:
        cap.stop()
    assert cap.error is None
    assert corr >= 0.99


@pytest.mark.parametrize("spec", ["mic", "system:vsink"])
def test_unloading_the_sink_mid_capture_raises_device_lost_then_resumes(pulse_audio, speech_wav, spec):
    [src] = devices.open_sources(spec, 16000, 100)
    cap = Capture(src).start()
    pulse_audio.unload_sink()
    deadline = time.monotonic() + 20
    while cap.error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    cap.stop()
    assert isinstance(cap.error, DeviceLost), cap.error
    assert "unplugged" in str(cap.error)
    with pytest.raises(AudioSourceError):          # still gone: the pipeline retries later
        src.open()
    src.close()
    pulse_audio.load_sink()                        # back
    wav = speech_wav("Back again.", rate=16000, **SHORT)
    cap, captured = _capture_while_playing(pulse_audio, src, wav)
    assert cap.error is None
    assert best_correlation(wav_samples(wav), captured)[0] >= 0.99


def test_mic_follows_the_default_microphone(pulse_audio, speech_wav):
    wav = speech_wav("Now the headset microphone.", rate=16000, **SHORT)
    pulse_audio.add_null_sink("othersink")
    pulse_audio.pactl("load-module", "module-remap-source", "source_name=othermic",
                      "master=othersink.monitor")
    [src] = devices.open_sources("mic", 16000, 100)
    cap = Capture(src).start()
    try:
        pulse_audio.pactl("set-default-source", "othermic")   # the sound server moves the stream
        cap.wait_seconds(0.5)
        start = len(cap.chunks)
        pulse_audio.play(wav, device="othersink")
        corr = wait_for_speech(cap, start, wav_samples(wav))
    finally:
        cap.stop()
    assert cap.error is None
    assert corr >= 0.99
