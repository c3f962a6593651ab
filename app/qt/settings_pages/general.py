"""General page: start-up, transcript autosave and retention, global hotkeys, new-version check."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QVBoxLayout

from app.core.settings import PAGE_KEYS, PREF_BY_KEY
from app.qt.settings_pages.base import SettingsPage, explanation

HOTKEYS = (("hotkeys/toggle_visible", "Show / hide captions"),
           ("hotkeys/toggle_click_through", "Lock / unlock click-through"),
           ("hotkeys/force_end", "End the current line now"))


def hotkey_problem(text: str) -> str:
    """"" when ``text`` is empty (no hotkey) or a usable combination, else why not."""
    if not text.strip():
        return ""
    from app.qt.hotkeys import HotkeyError, parse_hotkey
    try:
        parse_hotkey(text)
    except HotkeyError as exc:
        return str(exc)
    return ""


class GeneralPage(SettingsPage):
    title = "General"
    keys = PAGE_KEYS["general"]

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self.start_on_launch = QCheckBox("Start captioning when the app starts")
        self.transcript_enabled = QCheckBox("Save a transcript of every session automatically")
        self.finals_only = QCheckBox("Finished sentences only (braille-friendly)")
        self.finals_only.setToolTip("Off: finished sentences and connection changes (lost, back "
                                    "again) are announced. On: only finished sentences.")
        pref = PREF_BY_KEY["transcript/retention_days"]
        self.retention = QSpinBox()
        self.retention.setRange(pref.minimum, pref.maximum)
        self.retention.setSuffix(" days")
        self.retention.setSpecialValueText("Keep forever")
        self.update_check = QCheckBox("Tell me when a new version is out")
        self.update_check.setToolTip("Once a day, reads the latest release number from the project's "
                                     "release page. Nothing else is sent.")
        self.hotkeys = {key: QLineEdit() for key, _label in HOTKEYS}
        self.problem_label = QLabel()
        self.problem_label.setStyleSheet("color: #c62828;")
        self.problem_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("", self.start_on_launch)
        form.addRow("", self.transcript_enabled)
        form.addRow("Delete transcripts after", self.retention)
        form.addRow("", self.update_check)
        form.addRow("Screen readers", self.finals_only)
        for key, label in HOTKEYS:
            self.hotkeys[key].setPlaceholderText("none")
            form.addRow(label, self.hotkeys[key])
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(explanation(
            "Hotkeys work system-wide where the platform allows it (X11, Windows); write them like "
            "Ctrl+Alt+Shift+F9. Leave one empty for no hotkey."))
        layout.addWidget(self.problem_label)
        layout.addStretch(1)
        self.transcript_enabled.toggled.connect(self.retention.setEnabled)
        for edit in self.hotkeys.values():
            edit.textChanged.connect(self.refresh_validity)

    def values(self) -> dict:
        values = {"app/start_on_launch": self.start_on_launch.isChecked(),
                  "transcript/enabled": self.transcript_enabled.isChecked(),
                  "transcript/retention_days": self.retention.value(),
                  "updates/check": self.update_check.isChecked(),
                  "accessibility/finals_only": self.finals_only.isChecked()}
        values.update({key: edit.text().strip() for key, edit in self.hotkeys.items()})
        return values

    def set_values(self, values: dict) -> None:
        self.start_on_launch.setChecked(values["app/start_on_launch"])
        self.transcript_enabled.setChecked(values["transcript/enabled"])
        self.retention.setEnabled(values["transcript/enabled"])
        self.retention.setValue(values["transcript/retention_days"])
        self.update_check.setChecked(values["updates/check"])
        self.finals_only.setChecked(values["accessibility/finals_only"])
        for key, edit in self.hotkeys.items():
            edit.setText(values[key])
        self.refresh_validity()

    def problem(self) -> str:
        problems = []
        seen: dict[str, str] = {}
        for key, label in HOTKEYS:
            text = self.hotkeys[key].text().strip()
            reason = hotkey_problem(text)
            if reason:
                problems.append(f"{label}: {reason}")
            elif text:
                norm = text.replace(" ", "").lower()
                if norm in seen:
                    problems.append(f"{text} is used for both \u201c{seen[norm]}\u201d and \u201c{label}\u201d.")
                seen[norm] = label
        return " ".join(problems)

    def refresh_validity(self, *_args) -> None:
        self.problem_label.setText(self.problem())
        super().refresh_validity()
