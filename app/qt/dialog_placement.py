"""Keeping the app's own windows (Settings, History) out from under its always-on-top overlay.

A window opens where the user last left it, or centred; if the overlay covers it there, it moves
just clear of the overlay (``app.core.placement.place_clear_of``). When the overlay grows while
the window is open (a bigger font being previewed), the window steps aside again. Only when no
spot on the screen is clear does the window join the overlay's "above" layer, so its buttons are
never under captions. Where the user moved it is remembered in the settings store.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QEvent, Qt, QTimer
from PySide6.QtGui import QGuiApplication

from app.core.placement import format_geometry, intersects, parse_geometry, pick_screen, place_clear_of
from app.qt.overlay_placement import rect_tuple

TITLE_BAR_GUESS = 32   # px a window manager's title bar adds above the window, before it is known


class ClearOfOverlay(QObject):
    """Attach to ``window``; ``overlay`` may be None (nothing to avoid)."""

    def __init__(self, window, overlay, store, key: str, may_shrink: bool = False) -> None:
        super().__init__(window)
        self.may_shrink = may_shrink
        self.window = window
        self.overlay = overlay
        self.store = store            # a SettingsStore: value()/set_value() of raw strings
        self.key = key
        self.on_top = False
        self._moving = False
        window.installEventFilter(self)
        if overlay is not None and hasattr(overlay, "geometry_changed"):
            overlay.geometry_changed.connect(self._overlay_moved)

    # ---- placing ----------------------------------------------------------------------------
    def place(self) -> tuple[int, int, int, int]:
        """Position the window before it is shown (and whenever the overlay moves onto it)."""
        w = self.window
        if w.isVisible():   # stepping aside now: from where it is, not where it opened
            saved = rect_tuple(w.geometry())
        else:
            saved = parse_geometry(self.store.value(self.key) or "")
        size = (saved[2], saved[3]) if saved else (w.width(), w.height())
        if not saved:
            hint = w.sizeHint()
            size = (max(size[0], hint.width()), max(size[1], hint.height()))
        screen = self._screen(saved)
        area = rect_tuple(screen.availableGeometry())
        obstacle = self._obstacle()
        preferred = (saved[0], saved[1], *size) if saved else None
        # The client area goes below the title bar: keep the bar itself clear too.
        top = self._title_bar()
        inner_area = (area[0], area[1] + top, area[2], area[3] - top)
        if obstacle is not None:
            ox, oy, ow, oh = obstacle
            obstacle = (ox, oy, ow, oh + top)
        # A resizable window may get shorter rather than sit under the overlay (never a dialog
        # with buttons at the bottom: those must keep their full size).
        min_h = w.minimumSizeHint().height() if self.may_shrink else None
        rect = place_clear_of(size, obstacle, inner_area, preferred, min_height=min_h)
        self._set_on_top(obstacle is not None and intersects(rect, obstacle))
        self._moving = True
        try:
            w.setGeometry(*rect)
        finally:
            self._moving = False
        return rect

    def covered(self) -> bool:
        obstacle = self._obstacle()
        return obstacle is not None and intersects(rect_tuple(self.window.geometry()), obstacle)

    def remember(self) -> None:
        if self.window.isVisible() or self.window.width() > 0:
            self.store.set_value(self.key, format_geometry(rect_tuple(self.window.geometry())))

    # ---- internals --------------------------------------------------------------------------
    def _obstacle(self):
        o = self.overlay
        if o is None or not o.isVisible():
            return None
        return rect_tuple(o.geometry())

    def _screen(self, saved):
        screens = QGuiApplication.screens()
        rect = saved or (rect_tuple(self.overlay.geometry()) if self.overlay is not None else None)
        index = pick_screen("", rect, [(s.name(), rect_tuple(s.geometry())) for s in screens])
        return screens[index] if index is not None else QGuiApplication.primaryScreen()

    def _title_bar(self) -> int:
        w = self.window
        if w.isVisible():
            return max(0, w.geometry().top() - w.frameGeometry().top())
        return TITLE_BAR_GUESS if QGuiApplication.platformName() == "xcb" else 0

    def _set_on_top(self, on: bool) -> None:
        if on == self.on_top:
            return
        self.on_top = on
        visible = self.window.isVisible()
        self.window.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, on)
        if visible:  # changing a flag hides the window
            self.window.show()
            self.window.raise_()

    def _overlay_moved(self) -> None:
        if self.window.isVisible() and not self._moving and self.covered():
            QTimer.singleShot(0, self, self._replace_if_covered)

    def _replace_if_covered(self) -> None:
        if self.window.isVisible() and self.covered():
            self.place()

    def eventFilter(self, watched, event) -> bool:
        # getattr: the filter can still be called while the app tears windows down.
        if watched is getattr(self, "window", None) and event.type() in (QEvent.Type.Hide, QEvent.Type.Close):
            if not self._moving:
                self.remember()
        return False
