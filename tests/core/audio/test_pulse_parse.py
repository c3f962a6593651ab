"""pactl output parsing (captured from PulseAudio 16 and PipeWire's pactl)."""

from __future__ import annotations

import pytest

from app.core.audio import pulse

PACTL_SOURCES = """Source #0
\tState: RUNNING
\tName: alsa_output.pci-0000_00_1f.3.analog-stereo.monitor
\tDescription: Monitor of Built-in Audio Analog Stereo
\tDriver: module-alsa-card.c
\tSample Specification: s16le 2ch 48000Hz
\tChannel Map: front-left,front-right
\tMonitor of Sink: alsa_output.pci-0000_00_1f.3.analog-stereo
\tProperties:
\t\tdevice.description = "Monitor of Built-in Audio Analog Stereo"
\t\tdevice.class = "monitor"

Source #1
\tState: SUSPENDED
\tName: alsa_input.usb-Blue_Yeti-00.analog-stereo
\tDescription: Yeti Stereo Microphone Analog Stereo
\tDriver: PipeWire
\tSample Specification: s24le 2ch 44100Hz
\tMonitor of Sink: n/a
\tProperties:
\t\tName: not-a-field
"""

PACTL_INFO = """Server String: /run/user/1000/pulse/native
Server Name: PulseAudio (on PipeWire 0.3.65)
Default Sink: alsa_output.pci-0000_00_1f.3.analog-stereo
Default Source: alsa_input.usb-Blue_Yeti-00.analog-stereo
"""


def test_parse_sources_splits_monitors_and_microphones():
    mon, mic = pulse.parse_sources(PACTL_SOURCES)
    assert mon.name.endswith(".monitor") and mon.is_monitor
    assert mon.monitor_of == "alsa_output.pci-0000_00_1f.3.analog-stereo"
    assert (mon.rate, mon.channels) == (48000, 2)
    assert mic.name == "alsa_input.usb-Blue_Yeti-00.analog-stereo"
    assert mic.description == "Yeti Stereo Microphone Analog Stereo"
    assert not mic.is_monitor and (mic.rate, mic.channels) == (44100, 2)


def test_parse_empty_output():
    assert pulse.parse_sources("") == []


def test_info(monkeypatch):
    monkeypatch.setattr(pulse, "_run", lambda *a: PACTL_INFO)
    info = pulse.info()
    assert info.default_sink == "alsa_output.pci-0000_00_1f.3.analog-stereo"
    assert info.default_source.startswith("alsa_input.usb-Blue_Yeti")
    assert "PipeWire" in info.server_name
    assert pulse.available()


def test_missing_pactl_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(pulse.shutil, "which", lambda name: None)
    with pytest.raises(pulse.PulseUnavailable, match="pactl was not found"):
        pulse.info()
    assert not pulse.available()


def test_no_server_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    with pytest.raises(pulse.PulseUnavailable):
        pulse.list_sources()
