"""Audio page: device pickers (listed, or degraded to text), live level preview."""

import math
import threading

import numpy as np
import pytest

from app.core.settings import DictStore, Settings
from app.qt.settings_pages import audio as audio_page
from app.qt.settings_pages.audio import AudioPage, LevelPreview, levels_dbfs
from tests.qt.test_settings_fakes import FakeController


class ToneSource:
    """A fake AudioSource: a 440 Hz tone at a fixed amplitude, read until closed."""

    def __init__(self, label, amplitude):
        self.label = label
        self.amplitude = amplitude
        self.opened = self.closed = False
        self._event = threading.Event()

    def open(self):
        self.opened = True

    def read(self):
        self._event.wait(0.02)
        t = np.arange(800) / 16000
        return (np.sin(2 * math.pi * 440 * t) * self.amplitude * 32767).astype("<i2").tobytes()

    def close(self):
        self.closed = True


def test_levels_dbfs():
    assert levels_dbfs(b"") == (-60.0, -60.0)
    assert levels_dbfs(b"\x00\x00" * 100) == (-60.0, -60.0)
    full = (np.ones(100) * 32767).astype("<i2").tobytes()
    rms, peak = levels_dbfs(full)
    assert rms == pytest.approx(0, abs=0.01) and peak == pytest.approx(0, abs=0.01)


@pytest.fixture
def page(qtbot, monkeypatch):
    monkeypatch.setattr(audio_page, "list_device_names", lambda: (
        [("usb-mic", "USB Microphone")], [("speakers.monitor", "Monitor of Speakers")], ""))
    widget = AudioPage(Settings(DictStore()), FakeController())
    qtbot.addWidget(widget)
    widget.load()
    return widget


def test_device_pickers_list_devices_and_save_names(page):
    assert page.mic_device.findText("USB Microphone") > 0        # people read descriptions
    assert page.system_device.findText("Monitor of Speakers") > 0
    assert page.mic_device.itemText(0) == "System default microphone"   # no blank first row
    page.mic_device.setCurrentIndex(page.mic_device.findText("USB Microphone"))
    page.source.setCurrentIndex(page.source.findData("both"))
    assert page.values() == {"audio/source": "both", "audio/mic_device": "usb-mic",
                             "audio/system_device": ""}
    assert page.save() == {"audio/source", "audio/mic_device"}
    assert page.source_specs() == ["mic:usb-mic", "system"]


def test_listing_failure_degrades_to_a_text_field(qtbot, monkeypatch):
    def boom():
        raise RuntimeError("PortAudio not initialised")
    monkeypatch.setattr("app.core.audio.devices.list_devices", boom)
    widget = AudioPage(Settings(DictStore({"audio/mic_device": "My Mic"})), FakeController())
    qtbot.addWidget(widget)
    widget.load()
    assert "Could not list audio devices" in widget.device_note.text()
    assert widget.mic_device.isEditable() and widget.values()["audio/mic_device"] == "My Mic"
    widget.mic_device.setEditText("Other Mic")
    assert widget.values()["audio/mic_device"] == "Other Mic"


def test_level_preview_shows_each_source(page, qtbot, monkeypatch):
    opened = {}

    def fake_open_sources(spec, rate, chunk_ms):
        kind = spec.split(":")[0]
        src = ToneSource(kind, 0.5 if kind == "mic" else 0.05)
        opened[spec] = src
        return [src]

    monkeypatch.setattr("app.core.audio.devices.open_sources", fake_open_sources)
    page.source.setCurrentIndex(page.source.findData("both"))
    page.preview_button.setChecked(True)
    qtbot.waitUntil(lambda: set(page.meters) == {"mic", "system"}, timeout=5000)
    assert set(opened) == {"mic", "system"}
    # 0.5 amplitude sine: RMS ≈ -9 dBFS; 0.05: ≈ -29 dBFS
    qtbot.waitUntil(lambda: page.meters["mic"].value() == -9, timeout=5000)
    assert page.meters["system"].value() == -29
    page.preview_button.setChecked(False)
    assert page.preview is None and all(s.closed for s in opened.values())


def test_preview_of_a_missing_device_says_why(page, monkeypatch):
    def missing(spec, rate, chunk_ms):
        raise RuntimeError("No microphone named 'ghost'. Available: vmic")
    monkeypatch.setattr("app.core.audio.devices.open_sources", missing)
    page.preview_button.setChecked(True)
    assert "No microphone named 'ghost'" in page.preview_error.text()
    assert not page.preview_button.isChecked() and page.preview is None


def test_cancel_stops_the_preview(page, monkeypatch):
    monkeypatch.setattr("app.core.audio.devices.open_sources",
                        lambda spec, r, c: [ToneSource("mic", 0.1)])
    page.start_preview()
    preview = page.preview
    page.revert()
    assert page.preview is None and preview._stop.is_set()


@pytest.mark.pulse
def test_real_virtual_microphone_in_pickers_and_preview(qtbot, pulse_audio, speech_wav):
    widget = AudioPage(Settings(DictStore()), FakeController())
    qtbot.addWidget(widget)
    widget.load()
    index = widget.mic_device.findData(pulse_audio.mic)
    assert index > 0, widget.device_note.text()
    assert widget.mic_device.itemText(index) != pulse_audio.mic      # the description, not "vmic"
    widget.mic_device.setCurrentIndex(index)
    widget.start_preview()
    assert widget.preview is not None, widget.preview_error.text()
    player = pulse_audio.play(speech_wav("testing the level meter one two three"), wait=False)
    try:
        qtbot.waitUntil(lambda: "mic" in widget.meters and widget.meters["mic"].value() > -45,
                        timeout=15000)
    finally:
        player.wait(timeout=30)
        widget.stop_preview()


def test_default_device_named_and_a_saved_absent_device_kept(qtbot, monkeypatch):
    monkeypatch.setattr(audio_page, "list_device_names", lambda: (
        [("vmic", "Virtual microphone", True), ("usb", "USB Headset", False)],
        [("vsink.monitor", "Monitor of Virtual speakers", True)], ""))
    widget = AudioPage(Settings(DictStore({"audio/mic_device": "gone-mic"})), FakeController())
    qtbot.addWidget(widget)
    widget.load()
    assert widget.mic_device.itemText(0) == "System default (Virtual microphone)"
    assert widget.system_device.itemText(0) == "System default (Monitor of Virtual speakers)"
    assert widget.mic_device.currentText() == "gone-mic (not connected)"
    assert widget.values()["audio/mic_device"] == "gone-mic"    # nothing lost by opening Settings
    widget.mic_device.setCurrentIndex(widget.mic_device.findText("USB Headset"))
    assert widget.values()["audio/mic_device"] == "usb"
    widget.mic_device.setCurrentIndex(0)
    assert widget.values()["audio/mic_device"] == ""
