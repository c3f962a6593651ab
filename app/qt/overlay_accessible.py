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
            return self._overlay.caption_text()
        return super().text(kind)


_installed = False


def _factory(key: str, obj):
    from app.qt.overlay import CaptionOverlay
    if isinstance(obj, CaptionOverlay):
        interface = CaptionAccessible(obj)
        obj._accessible_interface = interface   # Python keeps it alive as long as the overlay
        return interface
    return None


def install() -> None:
    """Once per process, before the first overlay is made accessible."""
    global _installed
    if not _installed:
        QAccessible.installFactory(_factory)
        _installed = True
