"""What assistive technology sees of the overlay: a named static-text object holding the captions.

Without this the overlay is a nameless "filler" (the role Qt gives a plain QWidget), which screen
readers skip. The captions shown are its description; each finished sentence is also announced
(``QAccessibleAnnouncementEvent``, polite) by the overlay itself.
"""

from __future__ import annotations

from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QAccessibleWidget


class CaptionAccessible(QAccessibleWidget):
    def __init__(self, widget) -> None:
        super().__init__(widget, QAccessible.Role.StaticText, widget.accessibleName())
        self._overlay = widget

    def text(self, kind):
        if kind == QAccessible.Text.Value:
            return self._overlay.readable_text()
        return super().text(kind)


_installed = False


class WindowAccessible(QAccessibleWidget):
    """A top-level QWidget window (History) as a "frame", which screen readers announce by title."""

    def __init__(self, widget) -> None:
        super().__init__(widget, QAccessible.Role.Window, widget.accessibleName() or widget.windowTitle())


def _factory(key: str, obj):
    from app.qt.history_window import HistoryWindow
    from app.qt.overlay import CaptionOverlay
    if isinstance(obj, CaptionOverlay):
        interface = CaptionAccessible(obj)
    elif isinstance(obj, HistoryWindow):
        interface = WindowAccessible(obj)
    else:
        return None
    obj._accessible_interface = interface   # Python keeps it alive as long as the widget
    return interface


def install() -> None:
    """Once per process, before the first overlay is made accessible."""
    global _installed
    if not _installed:
        QAccessible.installFactory(_factory)
        _installed = True
