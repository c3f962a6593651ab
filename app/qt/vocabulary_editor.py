"""Vocabulary editor: one term per line, comma-separated pastes split, a live counter.

All rules (cleaning, what is counted, limits) live in ``app.core.vocabulary``; this widget only
renders its verdict: the counter turns red with the reason when the list is over the active
protocol's limit, and ``validity_changed(False)`` lets the dialog disable OK / Apply.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QVBoxLayout, QWidget)

from app.core import vocabulary

_OK_STYLE = ""
_OVER_STYLE = "color: #c62828; font-weight: bold;"


class TermsEdit(QPlainTextEdit):
    """Plain text editor whose paste turns "a, b, c" into one term per line."""

    def insertFromMimeData(self, source: QMimeData) -> None:  # noqa: N802 (Qt override)
        if not source.hasText():
            super().insertFromMimeData(source)
            return
        text = source.text()
        pieces = [vocabulary.normalise_term(p) for p in vocabulary.split_terms(text)]
        pieces = [p for p in pieces if p]
        if not pieces:
            return
        cursor = self.textCursor()
        # Keep the pasted terms on their own lines, not glued to the text around the cursor.
        before = cursor.block().text()[:cursor.positionInBlock()]
        after = cursor.block().text()[cursor.positionInBlock():]
        joined = "\n".join(pieces)
        if before.strip():
            joined = "\n" + joined
        if after.strip():
            joined = joined + "\n"
        cursor.insertText(joined)
        self.setTextCursor(cursor)


class VocabularyEditor(QWidget):
    changed = Signal()
    validity_changed = Signal(bool)

    def __init__(self, protocol: str = "v3", parent=None) -> None:
        super().__init__(parent)
        self._protocol = protocol
        self._valid = True
        self.edit = TermsEdit()
        self.edit.setAccessibleName("Vocabulary terms, one per line")
        self.edit.setPlaceholderText("One term per line, e.g.\nAssemblyAI\nKubernetes\nDr. Nguyễn")
        self.edit.setTabChangesFocus(True)
        self.counter = QLabel()
        self.counter.setObjectName("vocabularyCounter")
        self.reason = QLabel()
        self.reason.setObjectName("vocabularyReason")
        self.reason.setWordWrap(True)
        self.note = QLabel()  # duplicates / blanks ignored
        self.note.setWordWrap(True)
        self.tidy_button = QPushButton("Tidy list")
        self.tidy_button.setToolTip("Rewrite the list one term per line without blanks or duplicates")
        self.tidy_button.clicked.connect(self.tidy)
        self.import_button = QPushButton("Import\u2026")
        self.import_button.setToolTip("Add terms from a text or CSV file (one per line or comma-separated)")
        self.import_button.clicked.connect(self._choose_file)

        row = QHBoxLayout()
        row.addWidget(self.counter, 1)
        row.addWidget(self.import_button)
        row.addWidget(self.tidy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addLayout(row)
        layout.addWidget(self.reason)
        layout.addWidget(self.note)
        self.edit.textChanged.connect(self._on_text_changed)
        self._refresh()

    # -- API -----------------------------------------------------------------------------------
    def terms(self) -> list[str]:
        return vocabulary.parse_text(self.edit.toPlainText())

    def set_terms(self, terms) -> None:
        self.edit.setPlainText(vocabulary.format_terms(vocabulary.clean_terms(terms)))

    def protocol(self) -> str:
        return self._protocol

    def set_protocol(self, protocol: str) -> None:
        if protocol != self._protocol:
            self._protocol = protocol
            self._refresh()

    def result(self) -> vocabulary.VocabularyCheck:
        return vocabulary.check(self.terms(), self._protocol)

    def is_valid(self) -> bool:
        return self.result().ok

    def tidy(self) -> None:
        self.set_terms(self.terms())

    def import_file(self, path: str | Path) -> int:
        """Append the terms of a text/CSV file; returns how many new terms were added.

        Raises ``ValueError`` with a plain-words reason (unreadable, not text); the list is
        left unchanged then.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"Could not read {path.name}: {exc.strerror or exc}.") from None
        if len(data) > 1_000_000:
            raise ValueError(f"{path.name} is too large for a vocabulary list (over 1 MB).")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError(f"{path.name} is not UTF-8 text.") from None
        before = self.terms()
        merged = vocabulary.clean_terms(before + vocabulary.parse_text(text))
        self.set_terms(merged)
        return len(merged) - len(before)

    def _choose_file(self) -> None:
        name, _filter = QFileDialog.getOpenFileName(self, "Import vocabulary", "",
                                                    "Text or CSV (*.txt *.csv);;All files (*)")
        if not name:
            return
        try:
            added = self.import_file(name)
        except ValueError as exc:
            self.note.setText(str(exc))
            self.note.setVisible(True)
            return
        self.note.setText(f"{added} new term{'s' if added != 1 else ''} imported.")
        self.note.setVisible(True)

    # -- internals -----------------------------------------------------------------------------
    def _on_text_changed(self) -> None:
        self._refresh()
        self.changed.emit()

    def _refresh(self) -> None:
        text = self.edit.toPlainText()
        raw = [p for p in vocabulary.split_terms(text) if vocabulary.normalise_term(p)]
        result = vocabulary.check(vocabulary.clean_terms(raw), self._protocol)
        self.counter.setText(result.counter)
        self.counter.setStyleSheet(_OK_STYLE if result.ok else _OVER_STYLE)
        self.reason.setText(result.reason)
        self.reason.setStyleSheet(_OK_STYLE if result.ok else _OVER_STYLE)
        self.reason.setVisible(bool(result.reason))
        ignored = len(raw) - len(result.terms)
        self.note.setText(f"{ignored} duplicate term{'s' if ignored != 1 else ''} will be ignored."
                          if ignored else "")
        self.note.setVisible(bool(ignored))
        if result.ok != self._valid:
            self._valid = result.ok
            self.validity_changed.emit(result.ok)
