"""Caption history: the live session's finals (or a past session's), searchable, copyable, exportable.

Only rendering lives here; what is shown, searched, copied and exported is ``app.core.history``.
Connected to the controller's ``final`` and ``running_changed`` signals, which arrive on the GUI
thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Slot
from PySide6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QHBoxLayout,
                               QInputDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMenu, QPushButton, QVBoxLayout, QWidget)

from app import APP_NAME
from app.core.export import FORMATS
from app.core.history import HistoryModel, Row, matches, session_title

log = logging.getLogger(__name__)

_FILTERS = {"srt": "SubRip subtitles (*.srt)", "vtt": "WebVTT subtitles (*.vtt)", "txt": "Plain text (*.txt)"}
# Offered when the view holds translations: the plain filters above then write both languages.
_TRANSLATION_FILTERS = {"srt": "SubRip subtitles, translation only (*.srt)",
                        "vtt": "WebVTT subtitles, translation only (*.vtt)",
                        "txt": "Plain text, translation only (*.txt)"}
_BILINGUAL = {"srt": "SubRip subtitles, original + translation (*.srt)",
              "vtt": "WebVTT subtitles, original + translation (*.vtt)",
              "txt": "Plain text, original + translation (*.txt)"}
LIVE_TITLE = "Live session"


class HistoryWindow(QWidget):
    def __init__(self, controller, transcript_dir: Path, parent=None) -> None:
        super().__init__(parent)
        self.controller = controller
        from app.qt import overlay_accessible
        overlay_accessible.install()
        # The app's record of the running sitting, so opening History mid-meeting shows it all.
        self.model = HistoryModel(Path(transcript_dir), record=getattr(controller, "live_record", None))
        self._last_export_dir: Path | None = None
        self.setWindowTitle("Caption history")   # the platform appends the app's name
        self.setAccessibleName(f"{APP_NAME} caption history")
        self.resize(640, 480)

        self.session_box = QComboBox()
        self.session_box.setAccessibleName("Session")
        self.session_box.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.refresh_button = QPushButton("Refresh")
        self.open_button = QPushButton("Open file…")
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search captions")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search captions")
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.list.setWordWrap(True)
        self.list.setAccessibleName("Captions")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the selected captions (all shown captions when none is selected)")
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save this session as text, SRT or WebVTT subtitles")
        self.status = QLabel()
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)

        top = QHBoxLayout()
        top.addWidget(self.session_box, 1)
        top.addWidget(self.refresh_button)
        top.addWidget(self.open_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.status, 1)
        bottom.addWidget(self.copy_button)
        bottom.addWidget(self.export_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addLayout(bottom)

        self.session_box.activated.connect(self._on_session_chosen)
        self.refresh_button.clicked.connect(self.refresh_sessions)
        self.open_button.clicked.connect(self.open_file_dialog)
        self.search.textChanged.connect(self._rebuild)
        self.copy_button.clicked.connect(self.copy_selected)
        self.export_button.clicked.connect(self.export_dialog)
        self.list.installEventFilter(self)   # Ctrl+C copies our formatted rows, not one cell
        QShortcut(QKeySequence.Find, self, self.search.setFocus)
        controller.final.connect(self._on_final)
        if hasattr(controller, "gap"):   # optional relay of Gap events: outages shown live too
            controller.gap.connect(self._on_final)
        if hasattr(controller, "running_changed"):
            controller.running_changed.connect(self._on_running_changed)
        if hasattr(controller, "revision"):
            controller.revision.connect(self._on_revision)
        if hasattr(controller, "speakers_renamed"):
            controller.speakers_renamed.connect(self._on_renamed)
        if hasattr(controller, "translation"):
            controller.translation.connect(self._on_translation)
        self.list.setContextMenuPolicy(Qt.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._speaker_menu)

        from app.qt.accessible_names import name_controls
        name_controls(self)
        self.refresh_sessions()
        self._rebuild()

    def eventFilter(self, watched, event) -> bool:
        if watched is self.list and event.type() == QEvent.KeyPress and event.matches(QKeySequence.Copy):
            self.copy_selected()
            return True
        return super().eventFilter(watched, event)

    # -- live updates ------------------------------------------------------------------------

    @Slot(str, object)
    def _on_final(self, label: str, event) -> None:
        """A live Final (or Gap) from the controller."""
        row = self.model.add_live(event, label)
        if row is None or not self.model.is_live:
            return
        words = self.search.text().casefold().split()
        if words and not matches(self.model.live[row.index], words):
            self._show_summary()
            return
        bar = self.list.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self._add_item(row)
        if at_bottom:  # follow the live captions unless the user scrolled up to read
            self.list.scrollToBottom()
        self._show_summary()

    @Slot(str, object)
    def _on_revision(self, label: str, revision) -> None:
        """A revision moves a live line to its right speaker."""
        if self.model.revise_live(revision) is not None and self.model.is_live:
            self._rebuild()

    @Slot(str, object)
    def _on_translation(self, label: str, event) -> None:
        """A translation goes under its caption, wherever that line is."""
        if self.model.translate_live(event) is not None and self.model.is_live:
            self._rebuild_keeping_scroll()

    def _rebuild_keeping_scroll(self) -> None:
        bar = self.list.verticalScrollBar()
        at_bottom, value = bar.value() >= bar.maximum() - 2, bar.value()
        self._rebuild()
        if not at_bottom:
            bar.setValue(value)

    @Slot(str, str)
    def _on_renamed(self, label: str, name: str) -> None:
        try:
            self.model.rename(label, name)
        except ValueError:
            return
        if self.model.is_live:
            self._rebuild()

    def _speaker_menu(self, pos) -> None:
        if not self.model.is_live:
            return           # past sessions are read-only
        speakers = self.model.speakers()
        if not speakers:
            return
        menu = QMenu(self)
        for label, name in speakers:
            menu.addAction(f"Rename {name}…", lambda label=label, name=name: self.ask_rename(label, name))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def ask_rename(self, label: str, current: str) -> None:
        name, ok = QInputDialog.getText(self, "Rename speaker", f"Name for {current}:", text=current)
        if ok:
            self.rename_speaker(label, name)

    def rename_speaker(self, label: str, name: str) -> None:
        if hasattr(self.controller, "speaker_renamed"):
            self.controller.speaker_renamed(label, name)    # recorded; comes back as speakers_renamed
        else:
            self._on_renamed(label, name)

    @Slot(bool)
    def _on_running_changed(self, running: bool) -> None:
        if running:
            self.model.reset_live()   # a new sitting (a restart within one keeps the record)
            if self.model.is_live:
                self._rebuild()
        self.refresh_sessions()       # the running session is the live view, listed once

    # -- sessions ----------------------------------------------------------------------------

    @Slot()
    def refresh_sessions(self) -> None:
        current = self.model.viewing
        self.session_box.blockSignals(True)
        self.session_box.clear()
        self.session_box.addItem(LIVE_TITLE, None)
        for info in self.model.sessions():
            self.session_box.addItem(session_title(info), str(info.path))
            self.session_box.setItemData(self.session_box.count() - 1, str(info.path), Qt.ToolTipRole)
        index = self.session_box.findData(str(current)) if current is not None else 0
        self.session_box.setCurrentIndex(max(index, 0))
        self.session_box.blockSignals(False)

    @Slot(int)
    def _on_session_chosen(self, index: int) -> None:
        data = self.session_box.itemData(index)
        if data is None:
            self.show_live()
        else:
            self.open_session(Path(data))

    def show_live(self) -> None:
        self.model.show_live()
        self.session_box.setCurrentIndex(0)
        self._rebuild()

    def open_session(self, path: Path) -> bool:
        try:
            self.model.open_session(path)
        except OSError as exc:
            self.show_live()
            self._error(f"Could not open {path.name}: {exc.strerror or exc}")
            return False
        index = self.session_box.findData(str(path))
        if index < 0:  # a file from elsewhere
            self.session_box.addItem(path.name, str(path))
            index = self.session_box.count() - 1
        self.session_box.setCurrentIndex(index)
        self._rebuild()
        return True

    @Slot()
    def open_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a saved transcript", str(self.model.transcript_dir),
                                              "Transcripts (*.jsonl)")
        if path:
            self.open_session(Path(path))

    # -- copy and export ---------------------------------------------------------------------

    def _shown_rows(self, selected_only: bool) -> list[Row]:
        items = self.list.selectedItems() if selected_only else []
        if not items:
            items = [self.list.item(i) for i in range(self.list.count())]
        rows = [item.data(Qt.UserRole) for item in items]
        return sorted(rows, key=lambda r: r.index)

    @Slot()
    def copy_selected(self) -> str:
        text = self.model.copy_text(self._shown_rows(selected_only=True))
        QGuiApplication.clipboard().setText(text)
        return text

    @Slot()
    def export_dialog(self) -> None:
        start_dir = self._last_export_dir or Path.home()
        # (label, format, content) in the order the dialog lists them
        if self.model.has_translations():
            choices = [(_BILINGUAL[f], f, "both") for f in _FILTERS] + \
                      [(_TRANSLATION_FILTERS[f], f, "translation") for f in _FILTERS]
        else:
            choices = [(label, f, "both") for f, label in _FILTERS.items()]
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export transcript", str(start_dir / self.model.suggested_name("srt")),
            ";;".join(c[0] for c in choices), choices[0][0])
        if not path:
            return
        target = Path(path)
        picked = next((c for c in choices if c[0] == chosen), choices[0])
        content = picked[2]
        fmt = target.suffix.lstrip(".").lower()
        if fmt not in FORMATS:  # no or unknown extension: use the chosen filter's format
            fmt = picked[1]
            target = target.with_name(f"{target.name}.{fmt}")
        self.export_to(target, fmt, content=content)

    def export_to(self, path: Path, fmt: str | None = None, *, content: str = "both") -> bool:
        live_file = getattr(self.controller, "transcript_path", None)
        try:
            written = self.model.export(path, fmt, live_file=Path(live_file) if live_file else None,
                                        content=content)
        except (OSError, ValueError) as exc:
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._error(f"Export failed: {detail}. Nothing was lost; choose another place and try again.")
            return False
        self._last_export_dir = written.parent
        self.status.setStyleSheet("")
        self.status.setText(f"Exported to {written}")
        return True

    # -- rendering ---------------------------------------------------------------------------

    @Slot()
    def _rebuild(self) -> None:
        self.list.clear()
        for row in self.model.rows(self.search.text()):
            self._add_item(row)
        self.list.scrollToBottom()
        self._show_summary()

    def _add_item(self, row: Row) -> None:
        source = f"{row.source}  " if row.source else ""
        speaker = f"{row.speaker}: " if row.speaker else ""
        language = f"[{row.language}] " if row.language else ""
        text = f"{row.time_text}  {source}{speaker}{language}{row.text}"
        if row.translation:
            text += f"\n      {row.translation}"
        item = QListWidgetItem(text)
        item.setData(Qt.UserRole, row)
        seconds = row.stream_ms / 1000
        item.setToolTip(f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:06.3f} "
                        "into the session")
        if row.kind == "gap":
            font = item.font()
            font.setItalic(True)
            item.setFont(font)
            item.setForeground(self.palette().placeholderText())
        self.list.addItem(item)

    def _show_summary(self) -> None:
        where = "Live" if self.model.is_live else "Saved session"
        shown = self.list.count()
        summary = self.model.summary()
        if self.search.text().strip():
            summary = f"{shown} match{'es' * (shown != 1)} · {summary}"
        self.status.setStyleSheet("")
        self.status.setText(f"{where}: {summary}")

    def _error(self, message: str) -> None:
        log.warning(message)
        self.status.setStyleSheet("color: #c62828;")
        self.status.setText(message)
