"""Translation page: translate captions into another language (AssemblyAI LLM Gateway).

Only widgets: which languages exist, the prompt, where translation works and why not come from
``app.core.translation`` (the rules the CLI and the run plan apply).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout

from app.core import translation
from app.core.settings import PAGE_KEYS
from app.qt.settings_pages.base import SettingsPage, explanation

HELP = ("Show each caption in another language too. AssemblyAI translates every finished caption "
        "with an LLM on the same connection (a Universal-3 Pro speech model is needed; each "
        "translated caption is billed as one LLM request). Captions never wait for a "
        "translation; if one fails, the original still shows.")
OFF = "Off"
SHOW = (("both", "The original with its translation under it"),
        ("translation", "The translation only (the original if none arrives)"))


class TranslationPage(SettingsPage):
    title = "Translation"
    keys = PAGE_KEYS["translation"]
    #: A target was chosen while the Connection page names a model without translation: the
    #: dialog switches that field to this model (saved with the rest by OK / Apply).
    speech_model_wanted = Signal(str)

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.values_provider = None          # the dialog's pending values (engine, region, model)
        self.target = QComboBox()
        self.target.setEditable(True)
        self.target.setAccessibleName("Translate captions into")
        self.target.addItem(OFF, "")
        for code, name in sorted(translation.LANGUAGES.items(), key=lambda kv: kv[1]):
            self.target.addItem(f"{name} ({code})", code)
        self.target.lineEdit().setPlaceholderText("A language, or a code such as pt-BR")
        self.show_mode = QComboBox()
        for value, label in SHOW:
            self.show_mode.addItem(label, value)
        self.show_mode.setAccessibleName("Show")
        self.model = QLineEdit()
        self.model.setPlaceholderText(translation.DEFAULT_MODEL)
        self.model.setAccessibleName("LLM model")
        self.context = QLineEdit()
        self.context.setPlaceholderText("Names, a glossary: \u201cDana, Añejo Corp; CI = continuous integration\u201d")
        self.context.setAccessibleName("Context for the translator")
        self.context.setMaxLength(translation.CONTEXT_MAX_CHARS)
        self.reason = QLabel()
        self.reason.setObjectName("translationUnavailable")
        self.reason.setWordWrap(True)
        self.note = QLabel()
        self.note.setObjectName("translationNote")
        self.note.setWordWrap(True)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #c62828;")

        form = QFormLayout()
        form.addRow("Translate captions into", self.target)
        form.addRow("Show", self.show_mode)
        form.addRow("LLM model", self.model)
        form.addRow("Context for the translator", self.context)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation(HELP))
        layout.addLayout(form)
        layout.addWidget(self.reason)
        layout.addWidget(self.note)
        layout.addWidget(self.problem_label)
        layout.addStretch(1)
        self.target.currentTextChanged.connect(self._on_target)
        self.model.textChanged.connect(self._update)
        self.context.textChanged.connect(self._update)
        self._loading = False

    # -- contract ------------------------------------------------------------------------------
    def values(self) -> dict:
        return {"translation/target": self.target_code(),
                "translation/show": self.show_mode.currentData(),
                "translation/model": self.model.text().strip(),
                "translation/context": " ".join(self.context.text().split())}

    def set_values(self, values: dict) -> None:
        self._loading = True
        try:
            self._show_target(values["translation/target"])
            self.show_mode.setCurrentIndex(max(0, self.show_mode.findData(values["translation/show"])))
            self.model.setText(values["translation/model"])
            self.context.setText(values["translation/context"])
        finally:
            self._loading = False
        self.refresh_context()

    def problem(self) -> str:
        text = self.target.currentText().strip()
        if text and text != OFF and not self.unavailable():
            try:
                translation.resolve_language(self._typed(text))
                translation.check_model(self.model.text())
                translation.clean_context(self.context.text())
            except ValueError as exc:
                return str(exc)
        return ""

    def showEvent(self, event) -> None:  # noqa: N802 - follow edits made on the Connection page
        self.refresh_context()
        super().showEvent(event)

    # -- behaviour -----------------------------------------------------------------------------
    def target_code(self) -> str:
        """The chosen language code, "" for off. A typed name or code is resolved when valid
        (an invalid one is kept as typed: ``problem`` says why and Save is refused)."""
        text = self.target.currentText().strip()
        if not text or text == OFF:
            return ""
        try:
            return translation.resolve_language(self._typed(text))
        except ValueError:
            return text

    def _typed(self, text: str) -> str:
        index = self.target.findText(text)
        if index >= 0:
            return self.target.itemData(index) or ""
        return text

    def _show_target(self, code: str) -> None:
        index = self.target.findData(code) if code else 0
        if index >= 0:
            self.target.setCurrentIndex(index)
        else:
            self.target.setEditText(code)

    def _pending(self) -> dict:
        return self.values_provider() if self.values_provider else self.settings.snapshot()

    def unavailable(self) -> str:
        values = self._pending()
        engine = values.get("engine/engine", "auto")
        return translation.unavailable_reason("local" if engine == "local" else "assemblyai",
                                              values.get("connection/protocol", "v3"),
                                              values.get("connection/region", "us")) or ""

    def refresh_context(self) -> None:
        """Engine, protocol, region and model as chosen (maybe unsaved) on the Connection page."""
        why = self.unavailable()
        for widget in (self.target, self.show_mode, self.model, self.context):
            widget.setEnabled(not why)
        self.reason.setText(why)
        self._update()

    def _on_target(self, _text: str) -> None:
        if not self._loading and self.target_code() and not self.unavailable():
            model = str(self._pending().get("connection/speech_model", "") or "")
            if not translation.model_can_translate(model):
                self.speech_model_wanted.emit(translation.TRANSLATING_SPEECH_MODEL)
        self._update()

    def _update(self) -> None:
        values = self._pending()
        notes = []
        if self.target_code() and not self.unavailable():
            if values.get("engine/engine", "auto") == "auto":
                notes.append("Without an API key the offline engine runs, and it cannot "
                             "translate: translation needs AssemblyAI.")
            model = str(values.get("connection/speech_model", "") or "")
            if not translation.model_can_translate(model):
                notes.append(f"The speech model will be {translation.TRANSLATING_SPEECH_MODEL} "
                             f"(translation needs a Universal-3 Pro model).")
        self.note.setText(" ".join(notes))
        self.problem_label.setText(self.problem())
        self.refresh_validity()
