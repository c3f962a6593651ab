"""Appearance page: every overlay style preference, previewed live on the overlay.

Each edit calls ``controller.preview_style(values)`` with the page's pending values; Cancel calls
``preview_style(None)`` so the overlay goes back to the saved style.
"""

from __future__ import annotations

import re

from PySide6.QtGui import QColor, QFontDatabase
from PySide6.QtWidgets import (QCheckBox, QColorDialog, QComboBox, QFormLayout, QHBoxLayout,
                               QLineEdit, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget)
from PySide6.QtCore import Qt

from app.core.settings import PAGE_KEYS, PREF_BY_KEY
from app.core.styles import PRESET_SETTINGS
from app.qt.settings_pages.base import SettingsPage

PRESET_LABELS = (("white_on_black", "White on black"), ("yellow_on_black", "Yellow on black"),
                 ("high_contrast", "High contrast"), ("custom", "Custom"))
EFFECTS = (("outline", "Outline"), ("shadow", "Shadow"), ("none", "None"))
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def preset_values(name: str) -> dict:
    """The preference values a preset sets ({} for custom); the presets live in ``app.core.styles``."""
    return dict(PRESET_SETTINGS.get(name, {}))


class ColorField(QWidget):
    """Hex entry + a swatch button that opens the colour picker."""

    def __init__(self, on_change, parent=None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setMaxLength(7)
        self.edit.setPlaceholderText("#rrggbb")
        self.button = QPushButton()
        self.button.setFixedWidth(40)
        self.button.setToolTip("Choose a colour")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(self.button)
        self.button.clicked.connect(self._pick)
        self.edit.textChanged.connect(self._on_text)
        self._on_change = on_change

    def value(self) -> str:
        return self.edit.text().strip().lower()

    def is_valid(self) -> bool:
        return bool(_HEX.match(self.value()))

    def set_value(self, text: str) -> None:
        self.edit.setText(text)

    def _on_text(self, text: str) -> None:
        if _HEX.match(text.strip()):
            self.button.setStyleSheet(f"background-color: {text.strip()};")
        self._on_change()

    def _pick(self) -> None:
        color = QColorDialog.getColor(QColor(self.value() if self.is_valid() else "#ffffff"), self)
        if color.isValid():
            self.set_value(color.name())


class AppearancePage(SettingsPage):
    title = "Appearance"
    keys = PAGE_KEYS["appearance"]

    def __init__(self, settings, controller, parent=None) -> None:
        super().__init__(settings, controller, parent)
        self._loading = False
        self._in_load = False
        self._previewed = False
        self.preset = QComboBox()
        for value, label in PRESET_LABELS:
            self.preset.addItem(label, value)
        self.font_family = QComboBox()
        self.font_family.addItem("System default", "")
        for family in QFontDatabase.families():
            self.font_family.addItem(family, family)
        pref = PREF_BY_KEY["appearance/font_size"]
        self.font_size = QSpinBox()
        self.font_size.setRange(pref.minimum, pref.maximum)
        self.font_size.setSuffix(" pt")
        self.text_color = ColorField(self._edited_colour)
        self.background_color = ColorField(self._edited_colour)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity_box = QSpinBox()
        self.opacity_box.setRange(0, 100)
        self.opacity_box.setSuffix(" %")
        self.effect = QComboBox()
        for value, label in EFFECTS:
            self.effect.addItem(label, value)
        self.lines = QSpinBox()
        self.lines.setRange(PREF_BY_KEY["captions/lines"].minimum, PREF_BY_KEY["captions/lines"].maximum)
        self.stable_only = QCheckBox("Show only finished lines (no live partial text)")
        self.clear_after = QSpinBox()
        self.clear_after.setRange(0, PREF_BY_KEY["captions/clear_after_s"].maximum)
        self.clear_after.setSuffix(" s")
        self.clear_after.setSpecialValueText("Never")
        self.source_labels = QCheckBox("Label captions with their source when listening to both")

        opacity_row = QHBoxLayout()
        opacity_row.addWidget(self.opacity, 1)
        opacity_row.addWidget(self.opacity_box)
        form = QFormLayout()
        form.addRow("Preset", self.preset)
        form.addRow("Font", self.font_family)
        form.addRow("Font size", self.font_size)
        form.addRow("Text colour", self.text_color)
        form.addRow("Background colour", self.background_color)
        form.addRow("Background opacity", opacity_row)
        form.addRow("Text effect", self.effect)
        form.addRow("Lines shown", self.lines)
        form.addRow("", self.stable_only)
        form.addRow("Clear after silence", self.clear_after)
        form.addRow("", self.source_labels)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addStretch(1)

        self.preset.currentIndexChanged.connect(self._on_preset)
        self.opacity.valueChanged.connect(self.opacity_box.setValue)
        self.opacity_box.valueChanged.connect(self.opacity.setValue)
        self.opacity_box.valueChanged.connect(self._edited_colour)
        for signal in (self.font_family.currentIndexChanged, self.font_size.valueChanged,
                       self.effect.currentIndexChanged, self.lines.valueChanged,
                       self.stable_only.toggled, self.clear_after.valueChanged,
                       self.source_labels.toggled):
            signal.connect(self._edited)

    # -- contract ------------------------------------------------------------------------------
    def values(self) -> dict:
        return {
            "appearance/preset": self.preset.currentData(),
            "appearance/font_family": self.font_family.currentData() or "",
            "appearance/font_size": self.font_size.value(),
            "appearance/text_color": self.text_color.value(),
            "appearance/background_color": self.background_color.value(),
            "appearance/background_opacity": self.opacity_box.value(),
            "appearance/text_effect": self.effect.currentData(),
            "captions/lines": self.lines.value(),
            "captions/stable_only": self.stable_only.isChecked(),
            "captions/clear_after_s": self.clear_after.value(),
            "captions/show_source_labels": self.source_labels.isChecked(),
        }

    def set_values(self, values: dict) -> None:
        self._loading = True
        try:
            self.preset.setCurrentIndex(max(0, self.preset.findData(values["appearance/preset"])))
            family = values["appearance/font_family"]
            index = self.font_family.findData(family)
            if index < 0:  # a font not installed here: keep it, the overlay falls back
                self.font_family.addItem(f"{family} (not installed)", family)
                index = self.font_family.count() - 1
            self.font_family.setCurrentIndex(index)
            self.font_size.setValue(values["appearance/font_size"])
            self.text_color.set_value(values["appearance/text_color"])
            self.background_color.set_value(values["appearance/background_color"])
            self.opacity_box.setValue(values["appearance/background_opacity"])
            self.effect.setCurrentIndex(max(0, self.effect.findData(values["appearance/text_effect"])))
            self.lines.setValue(values["captions/lines"])
            self.stable_only.setChecked(values["captions/stable_only"])
            self.clear_after.setValue(values["captions/clear_after_s"])
            self.source_labels.setChecked(values["captions/show_source_labels"])
        finally:
            self._loading = False
        self._edited()

    def load(self) -> None:
        self._in_load = True      # showing the saved style: nothing to preview or revert
        try:
            super().load()
        finally:
            self._in_load = False

    def problem(self) -> str:
        bad = [name for name, field in (("text", self.text_color), ("background", self.background_color))
               if not field.is_valid()]
        return (f"The {' and '.join(bad)} colour must be written as #rrggbb." if bad else "")

    def revert(self) -> None:
        if self._previewed:
            self.controller.preview_style(None)
            self._previewed = False

    def committed(self) -> None:
        self._previewed = False

    # -- behaviour -----------------------------------------------------------------------------
    def _on_preset(self) -> None:
        if self._loading:
            return
        values = preset_values(self.preset.currentData())
        if values:
            self._loading = True
            try:
                self.text_color.set_value(values.get("appearance/text_color", self.text_color.value()))
                self.background_color.set_value(
                    values.get("appearance/background_color", self.background_color.value()))
                if "appearance/background_opacity" in values:
                    self.opacity_box.setValue(values["appearance/background_opacity"])
                if "appearance/text_effect" in values:
                    self.effect.setCurrentIndex(max(0, self.effect.findData(values["appearance/text_effect"])))
            finally:
                self._loading = False
        self._edited()

    def _edited_colour(self) -> None:
        """A hand-made colour change turns the preset into "custom"."""
        if self._loading:
            return
        expected = preset_values(self.preset.currentData())
        current = self.values()
        if expected and any(current[k] != v for k, v in expected.items() if k in current):
            self._loading = True
            self.preset.setCurrentIndex(self.preset.findData("custom"))
            self._loading = False
        self._edited()

    def _edited(self) -> None:
        if self._loading:
            return
        self.refresh_validity()
        if self.is_valid() and not self._in_load:
            self.controller.preview_style(self.values())
            self._previewed = True
