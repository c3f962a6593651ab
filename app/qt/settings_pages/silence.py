"""Silence page: slider + number box (0-20000 ms), applied live to the running session.

The slider is non-linear (``app.core.silence_scale``): half its length is 0-1500 ms, where people
choose. The number box takes any value; one beyond 20000 ms is refused with a message (OK and
Apply wait), never silently cut. Wire parameters are mentioned only for AssemblyAI, under
"Details".

Moving the slider sends the value through ``controller.set_silence_threshold`` at most once per
``SEND_INTERVAL_MS`` (a throttle with a trailing send, so the final position always arrives and
a drag produces a few messages per second, not hundreds). Cancel sends the saved value back.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QVBoxLayout

from app.core import silence, silence_scale
from app.core.settings import PAGE_KEYS
from app.qt.settings_pages.base import SettingsPage, explanation

SEND_INTERVAL_MS = 250   # at most 4 messages per second while dragging

HELP = ("How long a pause ends a caption line. Shorter feels snappier but may split sentences; "
        "longer keeps sentences together; most people like 500-1000 ms. The change applies to "
        "the running captions at once.")
TYPED_LIMIT = 99_999_999   # the box accepts typing anything; out of range is explained, not cut


def _details(engine: str, protocol: str, ms: int) -> str:
    if engine == "local":
        return "The offline engine ends a line after this much silence."
    wire = ("Details: sent to AssemblyAI as " + silence.describe(protocol, min(ms, silence.MAX_MS)))
    if engine == "assemblyai":
        return wire
    return wire + ". The offline engine (used when there is no key) ends a line after this much silence."


class SilencePage(SettingsPage):
    title = "Silence"
    keys = PAGE_KEYS["silence"]

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self._protocol = settings.get("connection/protocol")
        self._engine = settings.get("engine/engine")
        self._saved = settings.get("recognition/silence_ms")
        self._last_sent: int | None = None
        self._pending: int | None = None

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, len(silence_scale.STOPS) - 1)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(5)
        self.slider.setAccessibleName("Silence that ends a line")
        self.box = QSpinBox()
        self.box.setRange(silence.MIN_MS, TYPED_LIMIT)
        self.box.setSingleStep(50)
        self.box.setSuffix(" ms")
        self.box.setAccessibleName("Silence that ends a line, in milliseconds")
        self.scale_note = QLabel("The slider's first half is 0–1.5 s in 50 ms steps; the second half goes up to 20 s.")
        self.scale_note.setWordWrap(True)
        self.scale_note.setObjectName("silenceScale")
        self.mapping = QLabel()
        self.mapping.setObjectName("silenceMapping")
        self.mapping.setWordWrap(True)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(SEND_INTERVAL_MS)
        self.timer.timeout.connect(self._flush)

        row = QHBoxLayout()
        row.addWidget(self.slider, 1)
        row.addWidget(self.box)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation(HELP))
        layout.addLayout(row)
        layout.addWidget(self.scale_note)
        layout.addWidget(self.mapping)
        layout.addStretch(1)
        self.slider.valueChanged.connect(self._on_slider)
        self.box.valueChanged.connect(self._on_box)
        self._show_mapping()

    # -- contract ------------------------------------------------------------------------------
    def values(self) -> dict:
        return {"recognition/silence_ms": self.box.value()}

    def set_values(self, values: dict) -> None:
        self._set_widgets(int(values["recognition/silence_ms"]))
        self._changed(self.box.value())

    def load(self) -> None:
        self._set_widgets(int(self.settings.get("recognition/silence_ms")))
        self._show_mapping()
        self.committed()

    def committed(self) -> None:
        self.flush()
        self._saved = self.box.value()

    def revert(self) -> None:
        """Cancel: the live session goes back to the saved threshold."""
        self.timer.stop()
        self._pending = None
        if self._last_sent is not None and self._last_sent != self._saved:
            self.controller.set_silence_threshold(self._saved)
            self._last_sent = self._saved

    def set_protocol(self, protocol: str) -> None:
        self._protocol = protocol
        self._show_mapping()

    def set_engine(self, engine: str) -> None:
        """"auto", "assemblyai" or "local": what the explanation talks about."""
        self._engine = engine
        self._show_mapping()

    def problem(self) -> str:
        ms = self.box.value()
        if ms > silence.MAX_MS:
            return (f"A pause can end a line after at most {silence.MAX_MS} ms (20 s); "
                    f"{ms} ms is longer than that.")
        return ""

    def flush(self) -> None:
        """Send a pending value now (OK / Apply)."""
        if self._pending is not None:
            self.timer.stop()
            self._flush()

    # -- internals -----------------------------------------------------------------------------
    def _set_widgets(self, ms: int) -> None:
        for widget, value in ((self.slider, silence_scale.position_for(ms)), (self.box, ms)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)

    def _on_slider(self, position: int) -> None:
        ms = silence_scale.ms_at(position)
        self.box.blockSignals(True)
        self.box.setValue(ms)
        self.box.blockSignals(False)
        self._changed(ms)

    def _on_box(self, ms: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(silence_scale.position_for(ms))
        self.slider.blockSignals(False)
        self._changed(ms)

    def _changed(self, ms: int) -> None:
        self._show_mapping()
        self.refresh_validity()
        if ms > silence.MAX_MS:
            return                 # explained on the page; nothing out of range reaches a session
        if ms == self._last_sent or (self._last_sent is None and ms == self._saved):
            self._pending = None   # back where the session already is: nothing to send
            return
        self._pending = ms
        if not self.timer.isActive():
            self._flush()          # leading edge: apply at once; the timer throttles what follows

    def _flush(self) -> None:
        if self._pending is None:
            return
        ms, self._pending = self._pending, None
        self._last_sent = ms
        self.controller.set_silence_threshold(ms)
        self.timer.start()  # keep the next send at least SEND_INTERVAL_MS away

    def _show_mapping(self) -> None:
        self.mapping.setText(_details(self._engine, self._protocol, self.box.value()))
