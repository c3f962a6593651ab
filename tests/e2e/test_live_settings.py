"""The silence slider during a LIVE session against the loopback AssemblyAI server, both protocols.

Real parts: SettingsDialog → Controller → CaptionService → PipelineGroup → CaptionPipeline → the v2/v3 client →
WebSocket → LoopbackServer (energy-VAD endpointing). The only stand-in is the microphone: a source
the test feeds with espeak-ng speech and silence, paced at real time, so the test decides exactly
how long each pause is.

Each run shows:
1. with the saved 700 ms, a 1.5 s pause splits two phrases into two finals;
2. dragging the slider to 3000 ms sends only a few threshold messages (debounced), the last with
   3000 — v2 ``end_utterance_silence_threshold``, v3 ``UpdateConfiguration`` with
   ``min_turn_silence = 3000, max_turn_silence = 3000`` — and the controller's status shows 3000;
3. the server's endpointing follows: the same 1.5 s pause no longer splits (one final);
4. Cancel sends the saved 700 back to the running session.
"""

from __future__ import annotations

import math
import threading
import time
import wave
from collections import deque

import pytest

from app.core.audio.source import AudioSource
from app.core.credentials import Secret
from app.core.settings import DictStore, Settings
from app.core.silence_scale import position_for

pytestmark = pytest.mark.timeout(240)

RATE = 16000
GAP_MS = 1500
DRAG_TO = 3000


class ScriptedMic(AudioSource):
    """A microphone the test speaks into: queued PCM, else silence, paced at real time."""

    label = "mic"

    def __init__(self, sample_rate: int, chunk_ms: int) -> None:
        super().__init__(sample_rate, chunk_ms)
        self._queue: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._next = 0.0
        self.closed = threading.Event()
        self.opened = threading.Event()

    def feed(self, pcm: bytes) -> None:
        with self._lock:
            self._buffer.extend(pcm)

    def pending_ms(self) -> float:
        with self._lock:
            return len(self._buffer) / 2 * 1000 / self.sample_rate

    def open(self) -> None:
        self.closed.clear()
        self._next = time.monotonic()
        self.opened.set()

    def read(self) -> bytes:
        if self.closed.is_set():
            return b""
        self._next += self.chunk_ms / 1000
        delay = self._next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        size = self.chunk_samples * 2
        with self._lock:
            chunk = bytes(self._buffer[:size])
            del self._buffer[:size]
        chunk += b"\x00" * (size - len(chunk))
        self.level.update(chunk)
        return chunk

    def close(self) -> None:
        self.closed.set()


def pcm_of(path) -> bytes:
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return w.readframes(w.getnframes())


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (RATE * ms // 1000)


def threshold_messages(record, protocol: str) -> list[dict]:
    if protocol == "v2":
        return [m for m in record.control if "end_utterance_silence_threshold" in m]
    return [m for m in record.control
            if m.get("type") == "UpdateConfiguration" and "min_turn_silence" in m]


def threshold_value(message: dict, protocol: str) -> int:
    return message["end_utterance_silence_threshold" if protocol == "v2" else "min_turn_silence"]


@pytest.mark.parametrize("protocol", ["v2", "v3"])
def test_silence_slider_applies_live_and_endpointing_follows(protocol, qtbot, loopback_server,
                                                             speech_wav, tmp_path):
    from app.qt.controller import Controller
    from app.qt.settings_dialog import SettingsDialog
    from app.qt.settings_pages.silence import SEND_INTERVAL_MS

    server = loopback_server
    server.set_script([f"Phrase number {n}." for n in range(1, 30)])
    settings = Settings(DictStore({
        "engine/engine": "assemblyai", "connection/protocol": protocol,
        "connection/server_url": server.url, "connection/auth_mode": "key",
        "connection/sample_rate": RATE, "connection/chunk_ms": 100,
        "recognition/silence_ms": 700, "transcript/enabled": False, "audio/source": "mic"}))
    mics: list[ScriptedMic] = []

    def open_sources(spec, sample_rate, chunk_ms, **_kw):
        mic = ScriptedMic(sample_rate, chunk_ms)
        mics.append(mic)
        return [mic]

    controller = Controller(settings, open_sources=open_sources, transcript_dir=tmp_path,
                            key_loader=lambda: Secret(server.api_key))
    dialog = SettingsDialog(settings, controller)
    qtbot.addWidget(dialog)
    dialog.show()
    phrase_a = pcm_of(speech_wav("alpha bravo", lead_ms=0, tail_ms=0))
    phrase_b = pcm_of(speech_wav("charlie delta", lead_ms=0, tail_ms=0))
    two_phrases = silence(300) + phrase_a + silence(GAP_MS) + phrase_b

    def record():
        live = [s for s in server.sessions if s.protocol == protocol]
        return live[-1] if live else None

    def finals() -> int:
        rec = record()
        return len(rec.finals) if rec else 0

    controller.start()
    try:
        qtbot.waitUntil(lambda: mics and mics[0].opened.is_set() and record() is not None,
                        timeout=30000)
        mic = mics[0]
        # 1. The saved 700 ms: the 1.5 s pause ends the first phrase → two finals.
        mic.feed(two_phrases + silence(1500))
        qtbot.waitUntil(lambda: finals() >= 2, timeout=45000)
        qtbot.waitUntil(lambda: mic.pending_ms() == 0, timeout=30000)
        assert finals() == 2
        sent_before = len(threshold_messages(record(), protocol))

        # 2. Drag the slider to 3000 ms: a few messages, the last one carrying 3000.
        drag_start = time.monotonic()
        positions = range(position_for(750), position_for(DRAG_TO) + 1)   # the slider's own steps
        for position in positions:
            dialog.silence.slider.setValue(position)
            qtbot.wait(10)
        drag_s = time.monotonic() - drag_start
        qtbot.waitUntil(lambda: any(threshold_value(m, protocol) == DRAG_TO
                                    for m in threshold_messages(record(), protocol)),
                        timeout=15000)
        new = threshold_messages(record(), protocol)[sent_before:]
        assert threshold_value(new[-1], protocol) == DRAG_TO
        allowed = 2 + math.ceil(drag_s * 1000 / SEND_INTERVAL_MS)
        assert len(new) <= allowed, (len(new), drag_s, new)
        assert len(new) < len(positions) / 3     # far fewer than the positions
        if protocol == "v3":
            assert {k: v for k, v in new[-1].items() if not k.startswith("_")} == {
                "type": "UpdateConfiguration", "min_turn_silence": DRAG_TO,
                "max_turn_silence": DRAG_TO}
        else:
            assert {k: v for k, v in new[-1].items() if not k.startswith("_")} == {
                "end_utterance_silence_threshold": DRAG_TO}
        qtbot.waitUntil(lambda: controller.status.silence_ms == DRAG_TO, timeout=5000)
        qtbot.waitUntil(lambda: str(DRAG_TO) in dialog.status.text(), timeout=5000)

        # 3. The server's endpointing follows: the same 1.5 s pause no longer ends an utterance.
        mic.feed(two_phrases + silence(DRAG_TO + 1000))
        qtbot.waitUntil(lambda: finals() >= 3, timeout=45000)
        qtbot.waitUntil(lambda: mic.pending_ms() == 0, timeout=30000)
        qtbot.wait(500)
        assert finals() == 3, record().finals

        # 4. Cancel: the running session goes back to the saved 700 ms.
        dialog.reject()
        qtbot.waitUntil(lambda: threshold_value(threshold_messages(record(), protocol)[-1],
                                                protocol) == 700, timeout=15000)
        assert settings.get("recognition/silence_ms") == 700
        assert record().violations == []
    finally:
        controller.stop()
        qtbot.waitUntil(lambda: not controller.running, timeout=30000)


@pytest.mark.parametrize("protocol", ["v2", "v3"])
@pytest.mark.parametrize("auth_mode", ["key", "token"])
def test_test_connection_button_against_the_loopback_server(protocol, auth_mode, qtbot,
                                                            loopback_server, monkeypatch):
    """The API key page's Test connection: the real check (token + short session) on a worker."""
    pytest.importorskip("app.core.streaming.check")
    from app.core import credentials
    from app.qt.settings_dialog import SettingsDialog
    from tests.qt.test_settings_fakes import FakeController

    monkeypatch.setattr("app.qt.settings_pages.audio.list_device_names", lambda: ([], [], ""))
    server = loopback_server
    settings = Settings(DictStore({"connection/protocol": protocol, "connection/auth_mode": auth_mode,
                                   "connection/server_url": server.url}))
    dialog = SettingsDialog(settings, FakeController())
    qtbot.addWidget(dialog)
    page = dialog.api_key
    before = len(server.sessions)

    page.field.setText(server.api_key)                 # typed, not saved yet: tested as typed
    page.test_button.click()
    qtbot.waitUntil(lambda: page.test_button.isEnabled(), timeout=30000)
    assert page.test_result.text().startswith("Connected"), page.test_result.text()
    assert len(server.sessions) > before
    assert server.sessions[-1].protocol == protocol
    assert server.sessions[-1].auth == "token"           # the check mints a temporary token

    page.field.setText("wrong-key-0000")
    page.test_button.click()
    qtbot.waitUntil(lambda: page.test_button.isEnabled(), timeout=30000)
    text = page.test_result.text()
    assert text.startswith("AssemblyAI refused this key (HTTP 401)"), text
    assert "wrong-key-0000" not in text and page.field.text() == "wrong-key-0000"
    assert credentials.stored_api_key() is None         # testing never saves the key
