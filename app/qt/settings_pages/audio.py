"""Audio page: source (microphone / system audio / both), device pickers, live level preview.

Devices come from ``app.core.audio.devices``: if listing fails, the pickers stay editable text
fields and say why. The level preview opens the
chosen device(s) on a worker thread that only reads and computes levels; the page pulls the
latest numbers on a timer (the audio thread never touches Qt).
"""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QComboBox, QFormLayout, QLabel, QProgressBar, QPushButton,
                               QVBoxLayout)

from app.core import run_plan
from app.core.audio import devices as audio_devices
from app.core.settings import PAGE_KEYS
from app.qt.settings_pages.base import SettingsPage, explanation

log = logging.getLogger(__name__)

SOURCES = (("mic", "Microphone"), ("system", "System audio (what the speakers play)"),
           ("both", "Both (captions are labelled by source)"))
PREVIEW_RATE = 16000
PREVIEW_CHUNK_MS = 50
FLOOR_DBFS = -60.0


def list_device_names() -> tuple[list[tuple], list[tuple], str]:
    """(microphones, system sources, problem) as (name, description, is_default) entries;
    problem is "" when listing worked."""
    try:
        devices = audio_devices.list_devices()
    except Exception as exc:  # noqa: BLE001 — no audio stack must not break the dialog
        return [], [], f"Could not list audio devices ({exc}); type a device name."
    mics, systems = [], []
    for device in devices:
        entry = (device.name, device.description or device.name, bool(device.is_default))
        (systems if device.kind == "system" else mics).append(entry)
    return mics, systems, ""


def levels_dbfs(pcm16: bytes) -> tuple[float, float]:
    """(rms, peak) in dBFS of a PCM16 chunk; FLOOR_DBFS for silence."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64) / 32768.0
    if samples.size == 0:
        return FLOOR_DBFS, FLOOR_DBFS
    rms = math.sqrt(float(np.mean(samples * samples)))
    peak = float(np.max(np.abs(samples)))
    to_db = lambda v: max(FLOOR_DBFS, 20 * math.log10(v)) if v > 0 else FLOOR_DBFS  # noqa: E731
    return to_db(rms), to_db(peak)


class LevelPreview:
    """Reads the chosen sources on worker threads; ``snapshot()`` gives the latest levels."""

    def __init__(self, specs: list[str], open_sources=None) -> None:
        self.specs = specs
        self._open_sources = open_sources
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._levels: dict[str, tuple[float, float]] = {}
        self.error = ""
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        opener = self._open_sources
        if opener is None:
            from app.core.audio.devices import open_sources as opener
        sources = [s for spec in self.specs for s in opener(spec, PREVIEW_RATE, PREVIEW_CHUNK_MS)]
        for source in sources:
            t = threading.Thread(target=self._run, args=(source,), name=f"level-{source.label}",
                                 daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, source) -> None:
        try:
            source.open()
            while not self._stop.is_set():
                chunk = source.read()
                if not chunk:
                    break
                with self._lock:
                    self._levels[source.label] = levels_dbfs(chunk)
        except Exception as exc:  # noqa: BLE001 — shown on the page
            self.error = f"{source.label}: {exc}"
        finally:
            try:
                source.close()
            except Exception:  # noqa: BLE001
                pass

    def snapshot(self) -> dict[str, tuple[float, float]]:
        with self._lock:
            return dict(self._levels)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()


class AudioPage(SettingsPage):
    title = "Audio"
    keys = PAGE_KEYS["audio"]

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.preview: LevelPreview | None = None
        self.source = QComboBox()
        for value, label in SOURCES:
            self.source.addItem(label, value)
        self.mic_device = QComboBox()
        self.system_device = QComboBox()
        self._placeholders = {self.mic_device: "System default microphone",
                              self.system_device: "Monitor of the default output"}
        self.mic_device.setAccessibleName("Microphone")
        self.system_device.setAccessibleName("System audio device")
        self.device_note = QLabel()
        self.device_note.setWordWrap(True)
        self.billing_note = QLabel()
        self.billing_note.setObjectName("bothBilling")
        self.billing_note.setWordWrap(True)
        self._engine = settings.get("engine/engine")
        self.preview_button = QPushButton("Preview level")
        self.preview_button.setCheckable(True)
        self.meters: dict[str, QProgressBar] = {}
        self.meter_form = QFormLayout()
        self.preview_error = QLabel()
        self.preview_error.setWordWrap(True)
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self._pull_levels)

        form = QFormLayout()
        form.addRow("Listen to", self.source)
        form.addRow("Microphone", self.mic_device)
        form.addRow("System audio", self.system_device)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.billing_note)
        layout.addWidget(self.device_note)
        layout.addWidget(explanation(
            "Choose \u201cSystem default\u201d to follow the system's choice. System audio is captured from "
            "the output's monitor (Linux), WASAPI loopback (Windows) or a loopback driver (macOS)."))
        layout.addWidget(self.preview_button)
        layout.addLayout(self.meter_form)
        layout.addWidget(self.preview_error)
        layout.addStretch(1)
        self.preview_button.toggled.connect(self._toggle_preview)
        self.source.currentIndexChanged.connect(self._restart_preview_if_running)
        self.source.currentIndexChanged.connect(self._show_billing)
        self.refresh_devices()

    def refresh_devices(self) -> None:
        """People pick by description ("USB Headset"); the device's name is what is saved. When
        devices cannot be listed the pickers become text fields for a typed name."""
        mics, systems, problem = list_device_names()
        for combo, entries, kind in ((self.mic_device, mics, "microphone"),
                                     (self.system_device, systems, "output")):
            current = self._device_name(combo)
            combo.clear()
            combo.setEditable(bool(problem))
            if problem:
                combo.lineEdit().setPlaceholderText(self._placeholders[combo])
                combo.setEditText(current)
                continue
            entries = [tuple(e) + (False,) * (3 - len(e)) for e in entries]
            default = next((d for _n, d, is_default in entries if is_default), "")
            combo.addItem(f"System default ({default})" if default else f"System default {kind}", "")
            for name, description, _is_default in entries:
                combo.addItem(description or name, name)
                combo.setItemData(combo.count() - 1, f"{description}\nDevice name: {name}",
                                  Qt.ItemDataRole.ToolTipRole)
            self._select(combo, current)
        self.device_note.setText(problem)
        self.device_note.setVisible(bool(problem))

    def set_engine(self, engine: str) -> None:
        self._engine = engine
        self._show_billing()

    def _show_billing(self, *_args) -> None:
        # Each source is its own streaming session: with AssemblyAI, Both means two sessions billed.
        both = self.source.currentData() == "both"
        if both and self._engine != "local":
            when = "" if self._engine == "assemblyai" else " when captions come from AssemblyAI"
            self.billing_note.setText(f"Both runs two AssemblyAI sessions at once{when}, one per source, "
                                      "so streaming time is billed twice. The offline engine costs nothing.")
        elif both:
            self.billing_note.setText("Both runs the offline engine twice, one per source: about "
                                      "double the processor use.")
        self.billing_note.setVisible(both)

    @staticmethod
    def _select(combo: QComboBox, name: str) -> None:
        if combo.isEditable():
            combo.setEditText(name)
            return
        index = combo.findData(name)
        if index < 0:   # saved, but not connected now: keep it rather than lose the choice
            combo.addItem(f"{name} (not connected)", name)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    # -- contract ------------------------------------------------------------------------------
    def values(self) -> dict:
        return {"audio/source": self.source.currentData(),
                "audio/mic_device": self._device_name(self.mic_device),
                "audio/system_device": self._device_name(self.system_device)}

    @staticmethod
    def _device_name(combo: QComboBox) -> str:
        if combo.isEditable():
            return combo.currentText().strip()
        return str(combo.currentData() or "")

    def set_values(self, values: dict) -> None:
        self.source.setCurrentIndex(max(0, self.source.findData(values["audio/source"])))
        self._show_billing()
        self._select(self.mic_device, values["audio/mic_device"])
        self._select(self.system_device, values["audio/system_device"])

    def revert(self) -> None:
        self.stop_preview()

    def committed(self) -> None:
        pass

    # -- level preview -------------------------------------------------------------------------
    def source_specs(self) -> list[str]:
        """The ``--source`` spellings of the pending choice, for ``open_sources``."""
        return list(run_plan.source_specs(self.values().get))

    def _toggle_preview(self, on: bool) -> None:
        if on:
            self.start_preview()
        else:
            self.stop_preview()

    def start_preview(self) -> None:
        self._stop_running()
        self.preview_error.setText("")
        preview = LevelPreview(self.source_specs())
        try:
            preview.start()
        except Exception as exc:  # noqa: BLE001 — DeviceNotFound etc.: say it, don't crash
            self.preview_error.setText(f"Cannot open the device: {exc}")
            self.preview_button.blockSignals(True)
            self.preview_button.setChecked(False)
            self.preview_button.blockSignals(False)
            return
        self.preview = preview
        if not self.preview_button.isChecked():
            self.preview_button.blockSignals(True)
            self.preview_button.setChecked(True)
            self.preview_button.blockSignals(False)
        self.timer.start()

    def _stop_running(self) -> None:
        self.timer.stop()
        if self.preview is not None:
            self.preview.stop()
            self.preview = None

    def stop_preview(self) -> None:
        self._stop_running()
        if self.preview_button.isChecked():
            self.preview_button.blockSignals(True)
            self.preview_button.setChecked(False)
            self.preview_button.blockSignals(False)

    def _restart_preview_if_running(self) -> None:
        if self.preview is not None:
            self.start_preview()

    def _pull_levels(self) -> None:
        if self.preview is None:
            return
        for label, (rms, peak) in self.preview.snapshot().items():
            bar = self.meters.get(label)
            if bar is None:
                bar = QProgressBar()
                bar.setRange(int(FLOOR_DBFS), 0)
                bar.setFormat("%v dBFS")
                self.meters[label] = bar
                self.meter_form.addRow(label, bar)
            bar.setValue(int(round(rms)))
            bar.setToolTip(f"RMS {rms:.1f} dBFS, peak {peak:.1f} dBFS")
        if self.preview.error:
            self.preview_error.setText(f"Preview stopped: {self.preview.error}")

    def hideEvent(self, event) -> None:  # noqa: N802 — stop holding the device when not visible
        self.stop_preview()
        super().hideEvent(event)
