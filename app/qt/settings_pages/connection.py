"""Connection page: engine, protocol, region, server, authentication, model, audio format."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QSpinBox,
                               QVBoxLayout)

from app.core.session_config import CHUNK_LIMITS_MS
from app.core.settings import PAGE_KEYS
from app.core.streaming.urls import check_url
from app.qt.settings_pages.base import SettingsPage, explanation

ENGINES = (("auto", "Automatic"), ("assemblyai", "AssemblyAI (cloud)"), ("local", "Offline (on this computer)"))
PROTOCOLS = (("v3", "Universal-Streaming (v3, recommended)"), ("v2", "Legacy real-time (v2)"))
REGIONS = (("us", "United States"), ("eu", "European Union"))
AUTH_MODES = (("key", "API key"), ("token", "Temporary tokens (minted from the API key)"),
              ("broker", "Token broker URL (no key on this computer)"))
ENCODINGS = (("pcm_s16le", "PCM 16-bit"), ("pcm_mulaw", "\u00b5-law 8-bit"))
from app.core.speech_models import MODEL_NAMES as V3_MODELS   # the list stays editable: "other"
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)

ENGINE_HELP = (
    "<b>Automatic</b> uses AssemblyAI when an API key (or a token broker) is configured, and the "
    "offline engine otherwise \u2014 so without a key, captions come from the offline engine. "
    "For higher accuracy switch to AssemblyAI: paste your key on the <i>API key</i> page, press "
    "Save, and keep Automatic (or choose AssemblyAI here).")


def _combo(items) -> QComboBox:
    combo = QComboBox()
    for value, label in items:
        combo.addItem(label, value)
    return combo


def _select(combo: QComboBox, value) -> None:
    index = combo.findData(value)
    if index < 0:  # a value not offered (e.g. a custom model): keep it selectable
        combo.addItem(str(value), value)
        index = combo.count() - 1
    combo.setCurrentIndex(index)


def url_problem(text: str, what: str, schemes=("http", "https", "ws", "wss"),
                allow_insecure: bool = False) -> str:
    text = text.strip()
    if not text:
        return ""
    try:
        check_url(text, what, allow_insecure=allow_insecure, schemes=tuple(schemes))
    except ValueError as exc:
        return str(exc)
    return ""


class ConnectionPage(SettingsPage):
    title = "Connection"
    keys = PAGE_KEYS["connection"]
    protocol_changed = Signal(str)
    engine_changed = Signal(str)      # "auto" | "assemblyai" | "local" (unsaved choice)

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.engine = _combo(ENGINES)
        self.engine_offline_note = QLabel()
        self.engine_offline_note.setWordWrap(True)
        self.protocol = _combo(PROTOCOLS)
        self.region = _combo(REGIONS)
        self.server_url = QLineEdit()
        self.server_url.setPlaceholderText("empty = AssemblyAI's servers for the region")
        self.auth_mode = _combo(AUTH_MODES)
        self.token_url = QLineEdit()
        self.token_url.setPlaceholderText("https://example.org/assemblyai-token")
        self.allow_insecure = QCheckBox("Allow unencrypted http:// and ws:// to other computers")
        self.allow_insecure.setToolTip("The API key or token and the captions then cross the "
                                       "network in clear. This computer (localhost) never needs it.")
        self.speech_model = QComboBox()
        self.speech_model.setEditable(True)
        for model in V3_MODELS:
            self.speech_model.addItem(model, model)
        self.encoding = _combo(ENCODINGS)
        self.sample_rate = QComboBox()
        for rate in SAMPLE_RATES:
            self.sample_rate.addItem(f"{rate} Hz", rate)
        self.chunk_ms = QSpinBox()
        self.chunk_ms.setSuffix(" ms")
        self.chunk_ms.setSingleStep(10)
        self.chunk_limits = QLabel()
        self.problem_label = QLabel()
        self.problem_label.setStyleSheet("color: #c62828;")
        self.problem_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Engine", self.engine)
        form.addRow("", explanation(ENGINE_HELP))
        form.addRow("", self.engine_offline_note)
        form.addRow("Protocol", self.protocol)
        form.addRow("Region", self.region)
        form.addRow("Server URL", self.server_url)
        form.addRow("Authentication", self.auth_mode)
        form.addRow("Token-broker URL", self.token_url)
        form.addRow("", self.allow_insecure)
        form.addRow("Speech model (v3)", self.speech_model)
        form.addRow("Encoding", self.encoding)
        form.addRow("Sample rate", self.sample_rate)
        form.addRow("Chunk size", self.chunk_ms)
        form.addRow("", self.chunk_limits)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.problem_label)
        layout.addStretch(1)

        self.protocol.currentIndexChanged.connect(self._on_protocol)
        self.engine.currentIndexChanged.connect(lambda *_: self.engine_changed.emit(self.current_engine()))
        self.auth_mode.currentIndexChanged.connect(self._update_enabled)
        for edit in (self.server_url, self.token_url):
            edit.textChanged.connect(self._on_edit)
        self.auth_mode.currentIndexChanged.connect(self._on_edit)
        self.allow_insecure.toggled.connect(self._on_edit)
        self.region.currentIndexChanged.connect(self._on_edit)
        self.speech_model.editTextChanged.connect(self._on_edit)
        self._apply_protocol_limits()
        self._update_enabled()
        self._show_offline_availability()

    # -- contract ------------------------------------------------------------------------------
    def values(self) -> dict:
        return {
            "engine/engine": self.engine.currentData(),
            "connection/protocol": self.protocol.currentData(),
            "connection/region": self.region.currentData(),
            "connection/server_url": self.server_url.text().strip(),
            "connection/auth_mode": self.auth_mode.currentData(),
            "connection/token_url": self.token_url.text().strip(),
            "connection/speech_model": self.speech_model.currentText().strip(),
            "connection/encoding": self.encoding.currentData(),
            "connection/sample_rate": int(self.sample_rate.currentData()),
            "connection/chunk_ms": self.chunk_ms.value(),
            "connection/allow_insecure": self.allow_insecure.isChecked(),
        }

    def set_values(self, values: dict) -> None:
        _select(self.engine, values["engine/engine"])
        _select(self.protocol, values["connection/protocol"])
        _select(self.region, values["connection/region"])
        self.server_url.setText(values["connection/server_url"])
        _select(self.auth_mode, values["connection/auth_mode"])
        self.token_url.setText(values["connection/token_url"])
        self.allow_insecure.setChecked(bool(values.get("connection/allow_insecure", False)))
        self.speech_model.setEditText(values["connection/speech_model"])
        _select(self.encoding, values["connection/encoding"])
        rate = int(values["connection/sample_rate"])
        index = self.sample_rate.findData(rate)
        if index < 0:
            self.sample_rate.addItem(f"{rate} Hz", rate)
            index = self.sample_rate.count() - 1
        self.sample_rate.setCurrentIndex(index)
        self._apply_protocol_limits()
        self.chunk_ms.setValue(int(values["connection/chunk_ms"]))  # clamped to the protocol's limits
        self._update_enabled()
        self.refresh_validity()

    def problem(self) -> str:
        insecure = self.allow_insecure.isChecked()
        problems = [url_problem(self.server_url.text(), "server URL", allow_insecure=insecure),
                    url_problem(self.token_url.text(), "token-broker URL", ("http", "https"),
                                insecure)]
        if self.auth_mode.currentData() == "broker" and not self.token_url.text().strip():
            problems.append("Token-broker authentication needs the broker's URL.")
        if (self.protocol.currentData() == "v2" and self.region.currentData() == "eu"
                and not self.server_url.text().strip()):
            problems.append("The legacy v2 protocol is only available in the US region; choose "
                            "Universal-Streaming (v3) for the EU region.")
        if self.protocol.currentData() == "v3" and not self.speech_model.currentText().strip():
            problems.append("Choose a speech model for Universal-Streaming.")
        return " ".join(p for p in problems if p)

    # -- behaviour -----------------------------------------------------------------------------
    def current_engine(self) -> str:
        return str(self.engine.currentData() or "auto")

    def current_protocol(self) -> str:
        return self.protocol.currentData()

    def _on_protocol(self) -> None:
        self._apply_protocol_limits()
        self._update_enabled()
        self.refresh_validity()
        self.protocol_changed.emit(self.current_protocol())

    def _apply_protocol_limits(self) -> None:
        protocol = self.current_protocol()
        lo, hi = CHUNK_LIMITS_MS[protocol]
        self.chunk_ms.setRange(lo, hi)
        self.chunk_limits.setText(f"{protocol} accepts {lo}\u2013{hi} ms of audio per message; "
                                  "100\u2013450 ms works best.")

    def _update_enabled(self) -> None:
        self.token_url.setEnabled(self.auth_mode.currentData() == "broker")
        self.speech_model.setEnabled(self.current_protocol() == "v3")
        custom_server = bool(self.server_url.text().strip())
        self.region.setEnabled(not custom_server)   # a custom server replaces the region's hosts
        self.region.setToolTip("Not used with a custom server URL" if custom_server else "")

    def _on_edit(self) -> None:
        self._update_enabled()
        self.problem_label.setText(self.problem())
        self.refresh_validity()

    def refresh_validity(self) -> None:
        self.problem_label.setText(self.problem())
        super().refresh_validity()

    def _show_offline_availability(self) -> None:
        from app.core.engines import offline_engine_available
        try:
            ok, label = offline_engine_available()
        except Exception as exc:  # a broken engine install must not break the dialog
            ok, label = False, str(exc)
        self.engine_offline_note.setText(
            f"Offline engine: {label}" if ok else f"Offline engine not available: {label}")
