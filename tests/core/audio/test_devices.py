"""Device resolution, PyAudio capture faults and platform messages, with a fake PortAudio."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from app.core.audio import devices, pulse
from app.core.audio.errors import AudioSourceError, DeviceLost, DeviceNotFound
from app.core.audio.pyaudio_source import CaptureTarget, PyAudioSource
from app.core.audio.source import WavFileSource

PA_INT16 = 8


class FakeStream:
    def __init__(self, owner, kw):
        self.owner, self.kw = owner, kw
        self.phase = 0
        self.closed = False

    def read(self, frames, exception_on_overflow=True):
        assert exception_on_overflow
        if self.owner.script:
            action = self.owner.script.pop(0)
            if action == "overflow":
                raise OSError(-9981, "Input overflowed")
            if action == "lost":
                raise OSError(-9999, "Unanticipated host error")
        rate, ch = self.kw["rate"], self.kw["channels"]
        t = (self.phase + np.arange(frames)) / rate
        self.phase += frames
        x = np.rint(8000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2")
        return np.repeat(x, ch).tobytes()

    def stop_stream(self):
        pass

    def close(self):
        self.closed = True


class FakePyAudio:
    """PortAudio as a table: {name, maxInputChannels, defaultSampleRate, rates (accepted)}."""

    table: list[dict] = []
    default_index = 0
    script: list[str] = []
    opened: list[dict] = []
    live = 0

    def __init__(self):
        FakePyAudio.live += 1
        self.script = FakePyAudio.script

    def get_device_count(self):
        return len(self.table)

    def get_device_info_by_index(self, i):
        d = self.table[i]
        return {"index": i, "name": d["name"], "maxInputChannels": d["max"], "hostApi": 0,
                "defaultSampleRate": float(d["rate"])}

    def get_host_api_info_by_index(self, i):
        return {"index": 0, "name": "FakeAPI"}

    def get_default_host_api_info(self):
        return {"index": 0, "name": "FakeAPI"}

    def get_default_input_device_info(self):
        return self.get_device_info_by_index(self.default_index)

    def open(self, **kw):
        d = self.table[kw.get("input_device_index", self.default_index)]
        if d.get("gone"):
            raise OSError(-9996, "Invalid device")
        if kw["channels"] > d["max"]:
            raise OSError(-9998, "Invalid number of channels")
        if kw["rate"] not in d["rates"]:
            raise OSError(-9997, "Invalid sample rate")
        FakePyAudio.opened.append(kw)
        return FakeStream(self, kw)

    def terminate(self):
        FakePyAudio.live -= 1


@pytest.fixture
def fake_pa(monkeypatch):
    module = types.SimpleNamespace(PyAudio=FakePyAudio, paInt16=PA_INT16)
    monkeypatch.setitem(sys.modules, "fake_pyaudio", module)
    FakePyAudio.table = [
        {"name": "Built-in Microphone", "max": 2, "rate": 44100, "rates": {44100}},
        {"name": "USB Headset Mic", "max": 1, "rate": 48000, "rates": {16000, 48000}},
        {"name": "BlackHole 2ch", "max": 2, "rate": 48000, "rates": {48000}},
    ]
    FakePyAudio.default_index = 0
    FakePyAudio.script = []
    FakePyAudio.opened = []
    FakePyAudio.live = 0
    return FakePyAudio


def _source(resolver, **kw):
    return PyAudioSource("mic", resolver, 16000, 100, module_name="fake_pyaudio", **kw)


def _freq(pcm: bytes, rate=16000):
    y = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return np.argmax(spec) * rate / len(y)


def test_invalid_sample_rate_falls_back_to_native_rate_and_resamples(fake_pa):
    src = _source(devices._pa_mic_resolver(None, 16000))
    src.open()
    try:
        assert (src.device_rate, src.device_channels) == (44100, 1) or src.device_rate == 44100
        chunks = [src.read() for _ in range(10)]
        assert all(len(c) == 1600 * 2 for c in chunks)
        assert _freq(b"".join(chunks[2:])) == pytest.approx(1000, rel=0.01)
        lv = src.level.snapshot()
        assert lv.rms_dbfs > -20 and lv.overflows == 0
    finally:
        src.close()
    assert fake_pa.live == 0                              # PortAudio released
    rates_tried = [kw["rate"] for kw in fake_pa.opened]
    assert rates_tried == [44100]


def test_device_that_supports_the_session_rate_needs_no_conversion(fake_pa):
    src = _source(devices._pa_mic_resolver("usb headset", 16000))
    with src:
        assert src.device_rate == 16000 and src.device_channels == 1
        assert len(src.read()) == 3200


def test_overflow_is_counted_and_capture_goes_on(fake_pa):
    src = _source(devices._pa_mic_resolver(None, 16000))
    with src:
        fake_pa.script.extend(["overflow", "overflow"])
        assert len(src.read()) == 3200
        assert src.level.snapshot().overflows == 2


def test_device_vanishing_raises_device_lost_then_reopens(fake_pa):
    src = _source(devices._pa_mic_resolver("USB Headset Mic", 16000))
    src.open()
    src.read()
    fake_pa.script.append("lost")
    with pytest.raises(DeviceLost, match="USB Headset Mic"):
        src.read()
    assert fake_pa.live == 0                              # stream and PortAudio released
    fake_pa.table[1]["gone"] = True
    with pytest.raises(DeviceLost):                       # still away: the pipeline retries later
        src.open()
    fake_pa.table[1]["gone"] = False
    src.open()                                            # back: capture resumes
    assert len(src.read()) == 3200
    src.close()
    src.close()                                           # idempotent


def test_missing_device_at_start_lists_available(fake_pa):
    src = _source(devices._pa_mic_resolver("Studio Condenser", 16000))
    with pytest.raises(DeviceNotFound) as info:
        src.open()
    msg = str(info.value)
    assert "Studio Condenser" in msg and "mic:USB Headset Mic" in msg and "mic:Built-in Microphone" in msg
    assert fake_pa.live == 0


def test_read_before_open_is_a_clear_error(fake_pa):
    with pytest.raises(AudioSourceError, match="not open"):
        _source(devices._pa_mic_resolver(None, 16000)).read()


def test_follows_a_changed_default(fake_pa):
    current = {"id": "pa:Built-in Microphone"}

    def resolver(pa):
        name = current["id"].split(":", 1)[1]
        d = next(x for x in devices._pa_inputs(pa) if x.name == name)
        return devices._target_from_pa(d, 16000)

    src = _source(resolver, watch=lambda: current["id"], watch_interval_s=0.02)
    with src:
        src.read()
        assert src.target.description == "Built-in Microphone"
        current["id"] = "pa:USB Headset Mic"
        deadline = time.monotonic() + 10
        while src.target.description != "USB Headset Mic" and time.monotonic() < deadline:
            src.read()
        assert src.target.description == "USB Headset Mic"
        assert len(src.read()) == 3200


def test_mac_loopback_driver_is_found_or_explained(fake_pa):
    src = PyAudioSource("system", devices._mac_loopback_resolver(None, 16000), 16000, 100,
                        module_name="fake_pyaudio")
    with src:
        assert "BlackHole" in src.target.description and src.device_rate == 48000
    fake_pa.table.pop()                                   # no loopback driver installed
    with pytest.raises(AudioSourceError, match="BlackHole") as info:
        src.open()
    assert "Multi-Output Device" in str(info.value)


def test_mac_loopback_driver_is_captured_in_stereo_and_downmixed(fake_pa):
    src = PyAudioSource("system", devices._mac_loopback_resolver(None, 16000), 16000, 100,
                        module_name="fake_pyaudio")
    with src:
        assert src.device_channels == 2                   # both channels the Multi-Output feeds
        assert fake_pa.opened[-1]["channels"] == 2
        assert len(src.read()) == 1600 * 2                # mono at the session rate



def test_windows_without_pyaudiowpatch_explains(monkeypatch):
    monkeypatch.setattr(devices, "platform_name", lambda: "windows")
    monkeypatch.setitem(sys.modules, "pyaudiowpatch", None)      # import fails
    with pytest.raises(AudioSourceError, match="PyAudioWPatch"):
        devices.open_sources("system", 16000, 100)
    assert "PyAudioWPatch" in devices.system_audio_unavailable_reason()


def test_linux_without_sound_server_explains_system_audio(monkeypatch):
    monkeypatch.setattr(devices, "platform_name", lambda: "linux")

    def no_server(*a):
        raise pulse.PulseUnavailable("Connection refused")
    monkeypatch.setattr(pulse, "_run", no_server)
    with pytest.raises(AudioSourceError, match="PipeWire") as info:
        devices.open_sources("system", 16000, 100)
    assert "Connection refused" in str(info.value)


@pytest.mark.parametrize("spec,expected", [
    ("mic", ("mic", None)), ("MIC:USB Headset", ("mic", "USB Headset")),
    ("system:alsa_output.x.monitor", ("system", "alsa_output.x.monitor")),
    ("both", ("both", None)), ("file:/tmp/a:b.wav", ("file", "/tmp/a:b.wav")), ("mic:", ("mic", None)),
])
def test_parse_spec(spec, expected):
    assert devices.parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["speakers", "", "file:", "both:x"])
def test_bad_specs_are_clear_errors(spec):
    with pytest.raises(AudioSourceError):
        devices.parse_spec(spec)


def test_file_source(tmp_path, speech_wav):
    with pytest.raises(AudioSourceError, match="not found"):
        devices.open_sources(f"file:{tmp_path}/missing.wav", 16000, 100)
    [src] = devices.open_sources(f"file:{speech_wav('hello there', rate=44100, channels=2)}", 16000, 100)
    assert isinstance(src, WavFileSource) and src.label == "file"
    src.realtime = False
    with src:
        data = src.read()
    assert len(data) == 3200
    assert src.level.snapshot().rms_dbfs <= 0


def test_print_device_list(monkeypatch, capsys):
    monkeypatch.setattr(devices, "list_devices", lambda: [
        devices.DeviceInfo("mic", "alsa_input.usb-Yeti", "Yeti Stereo Microphone", True, "pulse"),
        devices.DeviceInfo("system", "alsa_output.pci.monitor", "Monitor of Built-in Audio", True, "pulse"),
    ])
    assert devices.print_device_list() == 0
    out = capsys.readouterr().out
    assert "* mic:alsa_input.usb-Yeti" in out and "Yeti Stereo Microphone" in out
    assert "* system:alsa_output.pci.monitor" in out
    assert "--source both" in out


def test_print_device_list_explains_missing_system_audio(monkeypatch, capsys):
    monkeypatch.setattr(devices, "list_devices", lambda: [devices.DeviceInfo("mic", "Mic", "Mic")])
    monkeypatch.setattr(devices, "system_audio_unavailable_reason", lambda: devices.MAC_LOOPBACK_HELP)
    assert devices.print_device_list() == 0
    assert "BlackHole" in capsys.readouterr().out


def test_print_device_list_failure_exit_code(monkeypatch, capsys):
    def broken():
        raise AudioSourceError("PortAudio exploded")
    monkeypatch.setattr(devices, "list_devices", broken)
    from app.cli import EXIT_AUDIO
    assert devices.print_device_list() == EXIT_AUDIO
    assert "PortAudio exploded" in capsys.readouterr().err


def test_capture_target_identity_defaults():
    t = CaptureTarget(None, "x")
    assert t.rates == [] and t.channels == 1


def test_pulse_without_alsa_plugin_falls_back_to_portaudio_default(fake_pa, monkeypatch):
    monkeypatch.setattr(pulse, "list_sources", lambda: [])
    src = _source(devices._pulse_mic_resolver(None, 16000))
    with src:                                  # the fake has no "pulse" device
        assert src.target.description == "default microphone (Built-in Microphone)"
    with pytest.raises(AudioSourceError, match="libasound2-plugins"):
        _source(devices._pulse_mic_resolver("Yeti", 16000)).open()
