"""The page contract shared by every settings page (after MusicBrainz Picard's options pages).

- ``load()``: saved preferences → widgets.
- ``save()``: widgets → preferences; returns the keys whose value changed.
- ``restore_defaults()``: defaults → widgets (written only by OK / Apply, like any other edit).
- ``revert()``: Cancel — undo whatever the page previewed live (silence, appearance).
- ``committed()``: after a successful save — what is shown is now the saved state.
- ``problem()``: "" when the page can be saved, else the reason; ``validity_changed`` tells the
  dialog to enable or disable OK / Apply.

A page edits the preference keys listed in ``keys`` through ``values()`` / ``set_values()``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QWidget

from app.core.settings import PREF_BY_KEY, Settings, defaults


class SettingsPage(QWidget):
    title = ""
    keys: tuple[str, ...] = ()
    validity_changed = Signal(bool)   # also re-emitted when the reason's wording changes

    def __init__(self, settings: Settings, controller, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.controller = controller
        self.save_error = ""     # set by save() when it could not finish (dialog stays open)
        self._problem = ""

    # -- to implement --------------------------------------------------------------------------
    def values(self) -> dict[str, Any]:
        """Current (pending) values of ``keys`` from the widgets."""
        return {}

    def set_values(self, values: dict[str, Any]) -> None:
        """Show ``values`` (typed) in the widgets."""

    def problem(self) -> str:
        return ""

    # -- contract ------------------------------------------------------------------------------
    def load(self) -> None:
        self.set_values({k: self.settings.get(k) for k in self.keys})
        self.committed()
        self.refresh_validity()

    def save(self) -> set[str]:
        self.save_error = ""
        changed = set()
        for key, value in self.values().items():
            if PREF_BY_KEY[key].coerce(value) != self.settings.get(key):
                self.settings.set(key, value)
                changed.add(key)
        return changed

    def restore_defaults(self) -> None:
        self.set_values(defaults(self.keys))
        self.refresh_validity()

    def revert(self) -> None:
        """Cancel pressed: undo live previews. Widgets need no reset (the dialog is discarded)."""

    def committed(self) -> None:
        """The shown values are now the saved ones (after load or a successful save)."""

    # -- helpers -------------------------------------------------------------------------------
    def refresh_validity(self) -> None:
        """Emit ``validity_changed`` whenever the problem (or its wording) changed."""
        problem = self.problem()
        if problem != self._problem:
            self._problem = problem
            self.validity_changed.emit(not problem)

    def is_valid(self) -> bool:
        return not self.problem()


def explanation(text: str) -> QLabel:
    """A wrapped, selectable help paragraph."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(label.textInteractionFlags())
    return label
