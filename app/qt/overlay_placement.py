"""Where the overlay sits: dock presets, the user's own place, and staying on a screen that exists.

The arithmetic is in ``app.core.placement``; this module reads the screens, moves the window and
persists ``overlay/geometry``, ``overlay/screen`` and ``overlay/dock``. Only moves the user made
are saved (debounced): right after mapping, an X11 window manager's configure events can briefly
report frame-relative positions.
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QObject, QRect, QTimer, Signal
from PySide6.QtGui import QGuiApplication

from app.core.placement import DOCKS, MIN_SIZE, clamp_rect, dock_rect, format_geometry, parse_geometry, pick_screen
from app.core.settings import Settings

FALLBACK_AREA = (0, 0, 1280, 800)   # no screen at all (headless platforms)


def rect_tuple(r: QRect) -> tuple[int, int, int, int]:
    return r.x(), r.y(), r.width(), r.height()


class OverlayPlacement(QObject):
    """Owns the overlay window's geometry. ``height_for_lines`` is the height its captions need."""

    dock_changed = Signal(str)

    def __init__(self, window, settings: Settings, height_for_lines: Callable[[], int],
                 on_placed: Callable[[], None]) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings
        self._height_for_lines = height_for_lines
        self._on_placed = on_placed
        self.placing = False               # our own setGeometry: not a user move
        self.user_moved = False
        self.press_geometry: QRect | None = None
        self.known_rect: tuple[int, int, int, int] | None = None
        self.save_timer = QTimer(self, singleShot=True, interval=400)
        self.save_timer.timeout.connect(self.save_geometry)

        # Monitors come and go (docking stations, projectors): keep the overlay on one that exists.
        gui_app = QGuiApplication.instance()
        gui_app.screenRemoved.connect(self.screens_changed)
        gui_app.screenAdded.connect(self._screen_added)
        gui_app.primaryScreenChanged.connect(self.screens_changed)
        for screen in QGuiApplication.screens():
            screen.availableGeometryChanged.connect(self.screens_changed)

    # ---- user moves ---------------------------------------------------------------------------
    def user_pressed(self) -> None:
        self.press_geometry = self.window.geometry()
        self.user_moved = True

    def user_released(self) -> None:
        if self.user_moved:
            self.save_timer.start()

    def window_moved_or_resized(self) -> None:
        if self.user_moved and not self.placing:
            self.save_timer.start()

    # ---- persistence --------------------------------------------------------------------------
    def restore(self) -> None:
        saved = parse_geometry(self.settings.get("overlay/geometry"))
        screen = self.screen_named(self.settings.get("overlay/screen"), saved)
        dock = self.settings.get("overlay/dock")
        size = (saved[2], saved[3]) if saved else self.default_size(screen)
        if dock == "floating" and saved:
            self.set_geometry_clamped(saved, screen)
        else:
            self.place(screen, size, dock if dock != "floating" else "bottom")

    def flush(self) -> None:
        """Save a pending user move/resize now (at quit). Nothing else is saved."""
        if self.save_timer.isActive():
            self.save_timer.stop()
            self.save_geometry()

    def save_geometry(self, rect: tuple[int, int, int, int] | None = None) -> None:
        if self.placing:
            return
        if rect is not None:
            self.settings.set("overlay/geometry", format_geometry(rect))
            self._save_screen()
            return
        geo = self.window.geometry()
        if self.user_moved and self.press_geometry is not None and geo != self.press_geometry:
            if self.settings.get("overlay/dock") != "floating":
                self.settings.set("overlay/dock", "floating")
                self.dock_changed.emit("floating")
            self.user_moved = False
        self.known_rect = rect_tuple(geo)
        self.settings.set("overlay/geometry", format_geometry(self.known_rect))
        self._save_screen()

    def _save_screen(self) -> None:
        screen = self.window.screen()
        if screen is not None:
            self.settings.set("overlay/screen", screen.name())

    # ---- docking and screens ------------------------------------------------------------------
    def set_dock(self, dock: str) -> None:
        if dock not in DOCKS:
            raise ValueError(f"Unknown dock position {dock!r}; choose bottom, top or floating.")
        self.settings.set("overlay/dock", dock)
        if dock != "floating":
            placed = self.place(self.target_screen(), self.size(), dock)
            self.save_geometry(placed)
        self.dock_changed.emit(dock)

    def redock(self) -> None:
        dock = self.settings.get("overlay/dock")
        if dock != "floating":
            self.place(self.target_screen(), self.size(), dock)

    def fit_height(self) -> None:
        """The caption font or line count changed: the window takes the height they need."""
        self.window.resize(self.window.width(), max(MIN_SIZE[1], self._height_for_lines()))
        dock = self.settings.get("overlay/dock")
        if dock != "floating":
            self.place(self.window.screen() or self.target_screen(), self.size(), dock)

    def _screen_added(self, screen) -> None:
        screen.availableGeometryChanged.connect(self.screens_changed)
        self.screens_changed()

    def screens_changed(self, *_args) -> None:
        QTimer.singleShot(0, self, self.keep_on_screen)  # after Qt has moved its windows

    def keep_on_screen(self) -> None:
        """Re-dock, or pull a floating overlay fully onto the screen it is (mostly) on."""
        dock = self.settings.get("overlay/dock")
        # Our own record of where the window is: Qt's can be stale right after the WM reparents it.
        geo = self.known_rect or rect_tuple(self.window.geometry())
        screen = self.screen_named("", geo)
        if dock == "floating":
            self.set_geometry_clamped(geo, screen)
        else:
            self.place(screen, geo[2:], dock)

    def default_size(self, screen) -> tuple[int, int]:
        area = screen.availableGeometry() if screen else QRect(*FALLBACK_AREA)
        return min(int(area.width() * 0.8), 1400), self._height_for_lines()

    def size(self) -> tuple[int, int]:
        return self.window.width(), self.window.height()

    @staticmethod
    def screen_named(name: str, rect):
        screens = QGuiApplication.screens()
        index = pick_screen(name, rect, [(s.name(), rect_tuple(s.geometry())) for s in screens])
        return screens[index] if index is not None else QGuiApplication.primaryScreen()

    def target_screen(self):
        return self.window.screen() or QGuiApplication.primaryScreen()

    def place(self, screen, size, dock: str) -> tuple[int, int, int, int]:
        area = rect_tuple(screen.availableGeometry()) if screen else FALLBACK_AREA
        return self.set_geometry_clamped(dock_rect(size, area, dock), screen)

    def set_geometry_clamped(self, rect, screen) -> tuple[int, int, int, int]:
        area = rect_tuple(screen.availableGeometry()) if screen else rect
        x, y, w, h = clamp_rect(rect, area)
        self.placing = True
        try:
            self.window.setGeometry(x, y, w, h)
        finally:
            self.placing = False
        self.known_rect = (x, y, w, h)
        self._on_placed()
        return x, y, w, h
