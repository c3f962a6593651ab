"""Recognition page: speech model capabilities, speakers, languages, Pro-model options.

Only widgets: which options the chosen engine, protocol and model have comes from
``app.core.speech_models`` (the same rules the CLI and the session apply). An option the choice
lacks is disabled and says why, instead of being silently ignored.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QSpinBox, QVBoxLayout)

from app.core import speech_models
from app.core.settings import PAGE_KEYS
from app.qt.settings_pages.base import SettingsPage, explanation

HELP = ("Who is speaking, which language, and options of the Universal-3 Pro models. Names of "
        "speakers (\u201cSpeaker A is Dana\u201d) are set while captions run, from the overlay's "
        "menu or the history window.")
MODES = (("", "Model default"), ("min_latency", "Fastest captions"), ("balanced", "Balanced"),
         ("max_accuracy", "Most accurate"))
FOCUS = (("", "Model default"), ("near-field", "Headset or close microphone"),
         ("far-field", "Room microphone"))
PROFANITY_HELP = ("Off by default: readers of captions are entitled to the same words as "
                  "everyone who hears them.")


def _combo(items) -> QComboBox:
    combo = QComboBox()
    for value, label in items:
        combo.addItem(label, value)
    return combo


def parse_codes(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.strip() for c in text.replace(";", ",").split(",") if c.strip()))


class RecognitionPage(SettingsPage):
    title = "Recognition"
    keys = PAGE_KEYS["recognition"]

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.values_provider = None          # the dialog's pending values (engine, protocol, model)
        self.model_info = QLabel()
        self.model_info.setObjectName("modelInfo")
        self.model_info.setWordWrap(True)
        self.speaker_labels = QCheckBox("Label who is speaking (Speaker A, B, \u2026)")
        self.max_speakers = QSpinBox()
        self.max_speakers.setRange(0, speech_models.MAX_SPEAKERS_RANGE[1])
        self.max_speakers.setSpecialValueText("No limit")
        self.languages = QLineEdit()
        self.languages.setPlaceholderText("e.g. en, es (empty: the model's default)")
        self.languages.setAccessibleName("Languages")
        self.detect = QCheckBox("Detect the language of each caption")
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("What the meeting is about, names of people and products")
        self.prompt.setAccessibleName("Meeting context")
        self.prompt.setMaximumHeight(90)
        self.mode = _combo(MODES)
        self.voice_focus = _combo(FOCUS)
        self.profanity = QCheckBox("Filter profanity")
        self.profanity.setToolTip(PROFANITY_HELP)
        self.inactivity = QSpinBox()
        self.inactivity.setRange(0, speech_models.INACTIVITY_RANGE_S[1])
        self.inactivity.setSpecialValueText("Never")
        self.inactivity.setSuffix(" s")
        self.heartbeat = QCheckBox("Tell me when the service falls behind")
        self.reasons = QLabel()
        self.reasons.setObjectName("unavailableReasons")
        self.reasons.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #c62828;")

        form = QFormLayout()
        form.addRow(self.speaker_labels)
        form.addRow("Max speakers", self.max_speakers)
        form.addRow("Languages", self.languages)
        form.addRow(self.detect)
        form.addRow("Meeting context", self.prompt)
        form.addRow("Speed or accuracy", self.mode)
        form.addRow("Microphone", self.voice_focus)
        form.addRow(self.profanity)
        form.addRow("End an idle session after", self.inactivity)
        form.addRow(self.heartbeat)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation(HELP))
        layout.addWidget(self.model_info)
        layout.addLayout(form)
        layout.addWidget(self.reasons)
        layout.addWidget(self.problem_label)
        layout.addStretch(1)
        self._controls = {"speaker_labels": [self.speaker_labels, self.max_speakers],
                          "languages": [self.languages], "language_detection": [self.detect],
                          "prompt": [self.prompt], "mode": [self.mode],
                          "voice_focus": [self.voice_focus], "filter_profanity": [self.profanity]}
        self.speaker_labels.toggled.connect(self._update)
        self.languages.textChanged.connect(self._update)
        self.prompt.textChanged.connect(self._update)
        self._context = ("assemblyai", "v3", speech_models.lookup(""))

    # -- contract ------------------------------------------------------------------------------
    def values(self) -> dict:
        return {
            "recognition/speaker_labels": self.speaker_labels.isChecked(),
            "recognition/max_speakers": self.max_speakers.value(),
            "recognition/languages": parse_codes(self.languages.text()),
            "recognition/language_detection": self.detect.isChecked(),
            "recognition/prompt": self.prompt.toPlainText().strip(),
            "recognition/mode": self.mode.currentData(),
            "recognition/voice_focus": self.voice_focus.currentData(),
            "recognition/filter_profanity": self.profanity.isChecked(),
            "recognition/inactivity_timeout_s": self._inactivity_value(),
            "recognition/heartbeat": self.heartbeat.isChecked(),
        }

    def set_values(self, values: dict) -> None:
        self.speaker_labels.setChecked(bool(values["recognition/speaker_labels"]))
        self.max_speakers.setValue(int(values["recognition/max_speakers"]))
        self.languages.setText(", ".join(values["recognition/languages"]))
        self.detect.setChecked(bool(values["recognition/language_detection"]))
        self.prompt.setPlainText(values["recognition/prompt"])
        self.mode.setCurrentIndex(max(0, self.mode.findData(values["recognition/mode"])))
        self.voice_focus.setCurrentIndex(max(0, self.voice_focus.findData(values["recognition/voice_focus"])))
        self.profanity.setChecked(bool(values["recognition/filter_profanity"]))
        self.inactivity.setValue(int(values["recognition/inactivity_timeout_s"]))
        self.heartbeat.setChecked(bool(values["recognition/heartbeat"]))
        self.refresh_context()

    def problem(self) -> str:
        for code in parse_codes(self.languages.text()):
            try:
                speech_models.check_language_code(code)
            except ValueError as exc:
                return str(exc)
        if len(self.prompt.toPlainText()) > 4000:
            return "Keep the meeting context under 4000 characters."
        return ""

    def showEvent(self, event) -> None:  # noqa: N802 - follow edits made on the Connection page
        self.refresh_context()
        super().showEvent(event)

    # -- behaviour -----------------------------------------------------------------------------
    def _inactivity_value(self) -> int:
        value = self.inactivity.value()
        return max(speech_models.INACTIVITY_RANGE_S[0], value) if value else 0

    def refresh_context(self) -> None:
        """Engine, protocol and model as chosen (maybe unsaved) on the Connection page."""
        values = self.values_provider() if self.values_provider else self.settings.snapshot()
        engine = values.get("engine/engine", "auto")
        protocol = values.get("connection/protocol", "v3")
        model = speech_models.lookup(values.get("connection/speech_model", ""))
        self._context = ("local" if engine == "local" else "assemblyai", protocol, model)
        lines = []
        if protocol == "v3" and engine != "local":
            what = [name for name, ok in (("speaker labels", model.speaker_labels),
                                          ("language detection", model.language_detection),
                                          ("meeting context, speed/accuracy and microphone",
                                           model.pro_options)) if ok]
            lines.append(f"<b>{model.label}</b>: {model.languages_text}"
                         + (f"; accepts {', '.join(what)}." if what else "."))
            if not model.known:
                lines.append("A model this version does not know: every option is offered; the "
                             "server decides what it accepts.")
        if engine == "auto":
            lines.append("Without an API key the offline engine is used: it has no speaker labels "
                         "and recognises English only.")
        self.model_info.setText("<br>".join(lines))
        self._update()

    def unavailable(self) -> dict[str, str]:
        engine, protocol, model = self._context
        return speech_models.engine_reasons(engine, protocol, model)

    def _update(self) -> None:
        reasons = self.unavailable()
        for name, widgets in self._controls.items():
            why = reasons.get(name, "")
            for widget in widgets:
                widget.setEnabled(not why)
                widget.setToolTip(why or (PROFANITY_HELP if widget is self.profanity else ""))
        if not reasons.get("speaker_labels"):
            self.max_speakers.setEnabled(self.speaker_labels.isChecked())
        v3_only = self._context[1] == "v3" and self._context[0] != "local"
        self.inactivity.setEnabled(v3_only)
        self.heartbeat.setEnabled(v3_only)
        shown = sorted(set(reasons.values()))
        self.reasons.setText("\n".join(shown))
        self.problem_label.setText(self.problem())
        self.refresh_validity()
