"""Names for controls a screen reader would otherwise announce as just "edit" or "slider".

Qt names a control after its form label only when the label's buddy is that very control; in a
row holding a field plus a button, or for the line edit inside an editable combo box, nobody is
named. ``name_controls`` gives every unnamed control the words a sighted user reads next to it:
its form row's label, else its tooltip or placeholder.
"""

from __future__ import annotations

import re

from PySide6.QtWidgets import (QAbstractButton, QAbstractItemView, QAbstractSlider, QAbstractSpinBox,
                               QComboBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QTextEdit,
                               QWidget)

CONTROLS = (QLineEdit, QComboBox, QAbstractSpinBox, QAbstractSlider, QPlainTextEdit, QTextEdit,
            QAbstractButton, QAbstractItemView)


def _clean(text: str) -> str:
    text = re.sub(r"<[^>]+>", "", text or "")            # rich-text labels
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&").strip().rstrip(":").strip()


def _widgets_in(item) -> list[QWidget]:
    """Every widget a layout item holds: the widget and its children, or a layout's, recursively."""
    if item is None:
        return []
    if item.widget() is not None:
        return [item.widget(), *item.widget().findChildren(QWidget)]
    layout = item.layout()
    if layout is None:
        return []
    return [w for i in range(layout.count()) for w in _widgets_in(layout.itemAt(i))]


def _form_labels(root: QWidget) -> dict[QWidget, str]:
    """Widget → the label text of the form row it sits in (alone or with others in that row)."""
    labels: dict[QWidget, str] = {}
    for form in root.findChildren(QFormLayout):
        for row in range(form.rowCount()):
            label = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            text = _clean(label.widget().text()) if label is not None and isinstance(label.widget(), QLabel) else ""
            if text:
                for widget in _widgets_in(form.itemAt(row, QFormLayout.ItemRole.FieldRole)):
                    labels.setdefault(widget, text)
    return labels


def name_controls(root: QWidget) -> list[QWidget]:
    """Name every unnamed control under ``root``; returns the ones it named."""
    named = []
    labels = _form_labels(root)
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, CONTROLS) or widget.accessibleName():
            continue
        if isinstance(widget, QAbstractButton) and _clean(widget.text()):
            continue                                      # Qt names buttons by their text
        parent = widget.parentWidget()
        if isinstance(widget, QLineEdit) and isinstance(parent, (QComboBox, QAbstractSpinBox)):
            name = parent.accessibleName() or labels.get(parent, "")   # the edit inside a combo/spin box
        else:
            name = labels.get(widget, "")
        name = name or _clean(widget.toolTip()) or _clean(getattr(widget, "placeholderText", lambda: "")())
        if name:
            widget.setAccessibleName(name)
            named.append(widget)
    return named
