"""Vocabulary page: the editor plus when the list takes effect on each protocol."""

from __future__ import annotations

from PySide6.QtWidgets import QVBoxLayout

from app.core.settings import PAGE_KEYS
from app.qt.settings_pages.base import SettingsPage, explanation
from app.qt.vocabulary_editor import VocabularyEditor

HELP = {
    "v3": "Key terms help Universal-Streaming recognise names and jargon: at most 100 terms of at "
          "most 50 characters each. Changes apply to the running session immediately.",
    "v2": "Word boost helps the legacy real-time protocol recognise names and jargon: at most 2500 "
          "characters in total (the sum of the terms' lengths; separators are not counted). "
          "Changes apply when the next session starts.",
}


OFFLINE_HELP = ("The offline engine cannot be steered toward these terms, but it fixes their "
                "spelling when it hears them (\"kubernetes\" becomes \"Kubernetes\"). With AssemblyAI "
                "they also help it recognise the words.")


class VocabularyPage(SettingsPage):
    title = "Vocabulary"
    keys = PAGE_KEYS["vocabulary"]

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.editor = VocabularyEditor(settings.get("connection/protocol"))
        self._engine = settings.get("engine/engine")
        self.help = explanation("")
        layout = QVBoxLayout(self)
        layout.addWidget(self.help)
        layout.addWidget(self.editor, 1)
        layout.addWidget(explanation(
            "One term per line. Pasting comma-separated text splits it into terms; blank lines "
            "and duplicates (ignoring case) are left out."))
        self.editor.changed.connect(self.refresh_validity)
        self._show_help()

    def set_protocol(self, protocol: str) -> None:
        self.editor.set_protocol(protocol)
        self._show_help()
        self.refresh_validity()

    def set_engine(self, engine: str) -> None:
        self._engine = engine
        self._show_help()

    def _show_help(self) -> None:
        # Offline, the protocol's wording (Universal-Streaming, word boost) would be jargon.
        self.help.setText(OFFLINE_HELP if self._engine == "local" else HELP[self.editor.protocol()])

    def values(self) -> dict:
        return {"recognition/vocabulary": tuple(self.editor.terms())}

    def set_values(self, values: dict) -> None:
        self.editor.set_terms(values["recognition/vocabulary"])

    def problem(self) -> str:
        result = self.editor.result()
        return "" if result.ok else result.reason
