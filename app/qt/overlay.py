"""The caption overlay: a frameless, translucent, always-on-top tool window that never takes focus.

It only renders. What the lines say comes from ``app.core.captions.CaptionModel``; colours from
``app.core.styles``; connection words from ``app.core.status``.

- The rounded background is painted here with the user's alpha (``setWindowOpacity`` would fade
  the text too); text is opaque with an outline or a shadow.
- Click-through is a flag on the *native* window (``WindowTransparentForInput``); Qt's
  ``WA_TransparentForMouseEvents`` would not pass clicks on to other apps. Once locked the overlay
  cannot be clicked, so the tray and a global hotkey undo it.
- Unlocked, a press drags it (``startSystemMove``, which also works on Wayland) or, near an edge,
  resizes it (``startSystemResize``). Geometry and screen are remembered and restored, clamped
  onto a screen that still exists. The window never resizes itself to fit text.
"""

from __future__ import annotations

import logging
import math
import time

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (QAccessible, QAccessibleAnnouncementEvent, QAccessibleEvent, QColor,
                           QCursor, QFont, QFontMetricsF, QGuiApplication, QImage, QPainter,
                           QPainterPath, QPen)
from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from app.core.captions import CaptionConfig, CaptionModel
from app.core.settings import PREF_BY_KEY, Settings
from app.core.speakers import SpeakerNames
from app.core.status import State, Status
from app.core.styles import CaptionStyle, speaker_colorer, style_from_settings

log = logging.getLogger(__name__)

DOCKS = ("bottom", "top", "floating")
DOCK_MARGIN = 48            # logical px between a docked overlay and the screen edge
EDGE_GRAB = 10              # px from the edge where a press resizes instead of moves
MIN_SIZE = (240, 60)
CORNER_RADIUS = 14
TICK_MS = 250               # auto-clear check
LINE_CACHE_SIZE = 48        # rendered caption lines kept (visible ones plus recent partials)
GLYPH_OUTLINE_MAX = 4.0     # px: up to this outline width, stamp glyphs; wider, stroke a path
METER_STEPS = 12            # the level bar repaints when it moves by 1/12 of its length

_STATE_COLORS = {State.LIVE: "#3ddc84", State.OFFLINE: "#4fa3ff", State.CONNECTING: "#ffc107",
                 State.RECONNECTING: "#ffc107", State.ERROR: "#ff5252", State.STOPPED: "#9e9e9e"}


# ---- geometry helpers (plain tuples: x, y, w, h) ----------------------------------------------
def parse_geometry(text: str) -> tuple[int, int, int, int] | None:
    """``"x,y,w,h"`` → tuple; None for anything unusable (the dock preset is used instead)."""
    try:
        x, y, w, h = (int(float(p)) for p in str(text).split(","))
    except (ValueError, TypeError):
        return None
    if w <= 0 or h <= 0:
        return None
    return x, y, w, h


def format_geometry(rect: tuple[int, int, int, int]) -> str:
    return ",".join(str(int(v)) for v in rect)


def clamp_rect(rect, area) -> tuple[int, int, int, int]:
    """Move/shrink ``rect`` so it lies fully inside ``area`` (a screen's available geometry)."""
    x, y, w, h = rect
    ax, ay, aw, ah = area
    w = max(min(w, aw), min(MIN_SIZE[0], aw))
    h = max(min(h, ah), min(MIN_SIZE[1], ah))
    x = min(max(x, ax), ax + aw - w)
    y = min(max(y, ay), ay + ah - h)
    return x, y, w, h


def dock_position(size, area, dock: str) -> tuple[int, int]:
    """Top-left for a docked overlay of ``size`` centred at the bottom/top of ``area``."""
    w, h = size
    ax, ay, aw, ah = area
    x = ax + (aw - w) // 2
    margin = min(DOCK_MARGIN, max(0, (ah - h) // 2))
    y = ay + ah - h - margin if dock == "bottom" else ay + margin
    return x, y


def _meter_fraction(dbfs: float) -> float:
    """-60…0 dBFS → 0…1 of the level bar."""
    return min(1.0, max(0.0, (dbfs + 60) / 60))


def notify_accessibility(event) -> None:
    """Hand an event to the platform's accessibility bridge (a no-op when no assistive tech runs)."""
    QAccessible.updateAccessibility(event)


def _rect_tuple(r: QRect) -> tuple[int, int, int, int]:
    return r.x(), r.y(), r.width(), r.height()


class CaptionOverlay(QWidget):
    click_through_changed = Signal(bool)
    visibility_changed = Signal(bool)
    dock_changed = Signal(str)
    speaker_renamed = Signal(str, str)       # (label, new name), chosen from the overlay menu

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowFlags(Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
                            | Qt.WindowType.Tool | Qt.WindowType.WindowDoesNotAcceptFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_MacAlwaysShowToolWindow)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(*MIN_SIZE)
        self.setWindowTitle("Live captions")
        self.setAccessibleName("Live captions")
        self.setAccessibleDescription("Captions appear here as people speak.")

        self._style = style_from_settings(settings)
        self._preview: dict | None = None
        self._source_labels: list[str] = []
        self._font = QFont()
        self._small_font = QFont()
        self._metrics = QFontMetricsF(self._font)
        self.names = SpeakerNames()
        self.model = CaptionModel(self._caption_config(), measure=self._measure, width=400,
                                  names=self.names, speaker_color=speaker_colorer(self._style))
        self._status = Status()
        self._level_db: float | None = None
        self._level_step: int | None = None
        self._silence_hint = ""
        self._status_note = ""            # platform note (Wayland / no compositor)
        self._note_explanation = ""
        self._click_through = False
        self._context_menu: QMenu | None = None
        self._press_geometry: QRect | None = None
        self._user_moved = False
        self._placing = False
        self._drag_offset = None          # fallback drag when the platform has no system move
        self._drag_edges = Qt.Edge(0)
        self._known_rect: tuple[int, int, int, int] | None = None
        self._drag_start = None
        self._line_cache: dict = {}
        self._last_spoken = 0             # finals already announced to screen readers

        self._save_timer = QTimer(self, singleShot=True, interval=400)
        self._save_timer.timeout.connect(self.save_geometry)
        self._tick_timer = QTimer(self, interval=TICK_MS)
        self._tick_timer.timeout.connect(self._tick)
        self._tick_timer.start()

        # Monitors come and go (docking stations, projectors): keep the overlay on one that exists.
        gui_app = QGuiApplication.instance()
        gui_app.screenRemoved.connect(self._screens_changed)
        gui_app.screenAdded.connect(self._screen_added)
        gui_app.primaryScreenChanged.connect(self._screens_changed)
        for screen in QGuiApplication.screens():
            screen.availableGeometryChanged.connect(self._screens_changed)

        self._apply_style()
        self.winId()  # create the native window now: click-through is a flag on it
        self.restore_geometry()
        self.set_click_through(settings.get("overlay/click_through"), persist=False)

    # ---- public API ---------------------------------------------------------------------------
    def caption_style(self) -> CaptionStyle:
        return self._style

    @property
    def click_through(self) -> bool:
        return self._click_through

    def set_click_through(self, on: bool, persist: bool = True) -> None:
        on = bool(on)
        handle = self.windowHandle()
        if handle is None:
            self.winId()
            handle = self.windowHandle()
        handle.setFlag(Qt.WindowType.WindowTransparentForInput, on)
        self._click_through = on
        self._keep_above()
        self.setCursor(Qt.CursorShape.ArrowCursor if on else Qt.CursorShape.SizeAllCursor)
        self.setAccessibleDescription(self._describe())
        if persist:
            self.settings.set("overlay/click_through", on)
        self.update()
        self.click_through_changed.emit(on)

    def toggle_click_through(self) -> None:
        self.set_click_through(not self._click_through)

    def set_overlay_visible(self, visible: bool, persist: bool = True) -> None:
        if visible:
            self.show()
            self._keep_above()
        else:
            self.hide()
        if persist:
            self.settings.set("overlay/visible", bool(visible))
        self.visibility_changed.emit(bool(visible))

    def toggle_visible(self) -> None:
        self.set_overlay_visible(not self.isVisible())

    def set_context_menu(self, menu: QMenu | None) -> None:
        """The menu shown on right-click while unlocked (the tray's menu, for desktops without a tray)."""
        self._context_menu = menu

    def set_speaker_names(self, names: SpeakerNames) -> None:
        """Share the run's speaker names (renames made in the history window show here too)."""
        self.names = names
        self.model.names = names
        self.model.names_changed()
        self.update()

    def _popup_menu(self, at) -> None:
        speakers = self.model.speakers_on_screen()
        if not speakers:
            if self._context_menu is not None:
                self._context_menu.popup(at)
            return
        menu = QMenu(self)
        for label, name in speakers:
            menu.addAction(f"Rename {name}…", lambda label=label, name=name: self.ask_rename(label, name))
        if self._context_menu is not None:
            menu.addSeparator()
            menu.addActions(self._context_menu.actions())
        menu.popup(at)

    def ask_rename(self, label: str, current: str) -> None:
        name, ok = QInputDialog.getText(self, "Rename speaker", f"Name for {current}:", text=current)
        if ok:
            self.rename_speaker(label, name)

    def rename_speaker(self, label: str, name: str) -> str | None:
        """Rename for this session; a bad name is refused in plain words (shown as a tooltip)."""
        try:
            clean = self.names.rename(label, name)
        except ValueError as exc:
            self.setToolTip(str(exc))
            return None
        self.model.names_changed()
        self.setAccessibleDescription(self._describe())
        self.speaker_renamed.emit(label, clean)
        self.update()
        return clean

    def set_dock(self, dock: str) -> None:
        if dock not in DOCKS:
            raise ValueError(f"Unknown dock position {dock!r}; choose bottom, top or floating.")
        self.settings.set("overlay/dock", dock)
        if dock != "floating":
            placed = self._place(self._target_screen(), (self.width(), self.height()), dock)
            self.save_geometry(placed)
        self.dock_changed.emit(dock)

    def set_status_note(self, note: str, explanation: str = "") -> None:
        """A short platform note for the status line; the full explanation goes in the tooltip."""
        self._status_note = note
        self._note_explanation = explanation
        self._update_tooltip()
        self.update()

    def _update_tooltip(self) -> None:
        # The status line is elided to one line: hovering shows the whole reason.
        parts = [self._status.detail if self._status.state in (State.ERROR, State.RECONNECTING) else "",
                 self._silence_hint, self._note_explanation]
        self.setToolTip("\n\n".join(p for p in parts if p))

    def apply_settings(self, keys=None) -> None:
        """Re-read appearance, caption and window settings after the user saved them."""
        keys = set(keys) if keys is not None else None
        old_size = (self._style.font_size, self.model.config.lines)
        self._style = style_from_settings(self.settings, self._preview)
        self.model.configure(self._caption_config())
        self._apply_style()
        if (self._style.font_size, self.model.config.lines) != old_size:
            self._fit_height()
        if keys is None or "overlay/dock" in keys:
            dock = self.settings.get("overlay/dock")
            if dock != "floating":
                self._place(self._target_screen(), (self.width(), self.height()), dock)
        if keys is None or "overlay/click_through" in keys:
            wanted = self.settings.get("overlay/click_through")
            if wanted != self._click_through:
                self.set_click_through(wanted, persist=False)
        self.update()

    def preview_style(self, values: dict | None) -> None:
        """Show unsaved appearance values live (the settings dialog); None = back to saved."""
        self._preview = dict(values) if values else None
        old_size = (self._style.font_size, self.model.config.lines)
        self._style = style_from_settings(self.settings, self._preview)
        self.model.configure(self._caption_config())
        self._apply_style()
        if (self._style.font_size, self.model.config.lines) != old_size:
            self._fit_height()
        self.update()

    # ---- captions and status (slots for the controller's signals) ----------------------------
    def on_partial(self, label: str, partial) -> None:
        self.model.on_partial(label, partial.text, time.monotonic(), getattr(partial, "speaker", None))
        self.update()

    def on_final(self, label: str, final) -> None:
        self.model.on_final(label, final.text, time.monotonic(), speaker=getattr(final, "speaker", None),
                            final_id=getattr(final, "id", None), language=getattr(final, "language", None))
        self._announce()
        self.update()

    def on_speakers_renamed(self, label: str, name: str) -> None:
        self.model.names_changed()
        self.setAccessibleDescription(self._describe())
        self.update()

    def on_revision(self, label: str, revision) -> None:
        if self.model.on_revision(revision.id, revision.speaker):
            self.setAccessibleDescription(self._describe())   # who said it, for screen readers too
            self.update()

    def set_status(self, status: Status) -> None:
        if status.state in (State.RECONNECTING, State.STOPPED, State.ERROR):
            self.model.drop_partials()  # no final will come for them
        self._status = status
        self._update_tooltip()
        self.update()

    def set_levels(self, levels: dict) -> None:
        peaks = [lv.rms_dbfs for lv in levels.values()] if levels else []
        level = max(peaks) if peaks else None
        # A device that delivers only digital silence is usually the wrong one, or muted.
        silent = [label for label, lv in (levels or {}).items() if getattr(lv, "silent", False)]
        hint = f"no sound from {', '.join(silent)}: check the device" if silent else ""
        # Repaint only when the bar changes by a visible step (the dB value differs on every poll,
        # and each repaint competes with the captions for the GUI thread).
        step = None if level is None else int(_meter_fraction(level) * METER_STEPS)
        self._level_db = level
        if step != self._level_step or hint != self._silence_hint:
            self._level_step = step
            self._silence_hint = hint
            self._update_tooltip()
            self.update(self._status_rect().toAlignedRect())

    def set_source_labels(self, labels) -> None:
        """The labels of the running sources ("mic", "system"): labels show only when several speak."""
        self._source_labels = list(labels or [])
        self.model.configure(self._caption_config())
        self.update()

    def clear_captions(self) -> None:
        self.model.clear()
        self.update()

    def caption_text(self) -> str:
        return self.model.visible_text()

    # ---- geometry -----------------------------------------------------------------------------
    def restore_geometry(self) -> None:
        saved = parse_geometry(self.settings.get("overlay/geometry"))
        screen = self._screen_named(self.settings.get("overlay/screen"), saved)
        dock = self.settings.get("overlay/dock")
        size = (saved[2], saved[3]) if saved else self._default_size(screen)
        if dock == "floating" and saved:
            self._set_geometry_clamped(saved, screen)
        else:
            self._place(screen, size, dock if dock != "floating" else "bottom")

    def flush_geometry(self) -> None:
        """Save a pending user move/resize now (at quit). Nothing else is saved: right after
        mapping, Qt can briefly hold a frame-relative position the window manager has not fixed."""
        if self._save_timer.isActive():
            self._save_timer.stop()
            self.save_geometry()

    def save_geometry(self, rect: tuple[int, int, int, int] | None = None) -> None:
        if self._placing:
            return
        if rect is not None:
            self.settings.set("overlay/geometry", format_geometry(rect))
            self._save_screen()
            return
        geo = self.geometry()
        if self._user_moved and self._press_geometry is not None and geo != self._press_geometry:
            if self.settings.get("overlay/dock") != "floating":
                self.settings.set("overlay/dock", "floating")
                self.dock_changed.emit("floating")
            self._user_moved = False
        self._known_rect = _rect_tuple(geo)
        self.settings.set("overlay/geometry", format_geometry(self._known_rect))
        self._save_screen()

    def _save_screen(self) -> None:
        screen = self.screen()
        if screen is not None:
            self.settings.set("overlay/screen", screen.name())

    def _screen_added(self, screen) -> None:
        screen.availableGeometryChanged.connect(self._screens_changed)
        self._screens_changed()

    def _screens_changed(self, *_args) -> None:
        QTimer.singleShot(0, self, self.keep_on_screen)  # after Qt has moved its windows

    def keep_on_screen(self) -> None:
        """Re-dock, or pull a floating overlay fully onto the screen it is (mostly) on."""
        dock = self.settings.get("overlay/dock")
        # Our own record of where the window is: Qt's can be stale right after the WM reparents it.
        geo = self._known_rect or _rect_tuple(self.geometry())
        screen = self._screen_named("", geo)
        if dock == "floating":
            self._set_geometry_clamped(geo, screen)
        else:
            self._place(screen, geo[2:], dock)

    def _default_size(self, screen) -> tuple[int, int]:
        area = screen.availableGeometry() if screen else QRect(0, 0, 1280, 800)
        return min(int(area.width() * 0.8), 1400), self._height_for_lines()

    def _height_for_lines(self) -> int:
        pad = self._padding()
        return math.ceil(self.model.config.lines * self._metrics.lineSpacing() + 2 * pad
                         + self._status_height()) + 1

    def _fit_height(self) -> None:
        self.resize(self.width(), max(MIN_SIZE[1], self._height_for_lines()))
        dock = self.settings.get("overlay/dock")
        if dock != "floating":
            self._place(self.screen() or self._target_screen(), (self.width(), self.height()), dock)

    def _screen_named(self, name: str, rect):
        screens = QGuiApplication.screens()
        for s in screens:
            if name and s.name() == name:
                return s
        if rect:
            centre = QRect(*rect).center()
            for s in screens:
                if s.geometry().contains(centre):
                    return s
        return QGuiApplication.primaryScreen()

    def _target_screen(self):
        return self.screen() or QGuiApplication.primaryScreen()

    def _place(self, screen, size, dock: str) -> tuple[int, int, int, int]:
        area = _rect_tuple(screen.availableGeometry()) if screen else (0, 0, 1280, 800)
        w, h = clamp_rect((0, 0, *size), area)[2:]
        x, y = dock_position((w, h), area, dock)
        return self._set_geometry_clamped((x, y, w, h), screen)

    def _set_geometry_clamped(self, rect, screen) -> tuple[int, int, int, int]:
        area = _rect_tuple(screen.availableGeometry()) if screen else rect
        x, y, w, h = clamp_rect(rect, area)
        self._placing = True
        try:
            self.setGeometry(x, y, w, h)
        finally:
            self._placing = False
        self._known_rect = (x, y, w, h)
        self._relayout()
        return x, y, w, h

    # ---- Qt events ----------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        from app.qt.platform import prepare_window
        prepare_window(self)

    # Only moves the user made are saved (debounced): the window manager's own configure events
    # right after mapping can briefly report frame-relative positions.
    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()
        if self._user_moved and not self._placing:
            self._save_timer.start()

    def moveEvent(self, event) -> None:
        super().moveEvent(event)
        if self._user_moved and not self._placing:
            self._save_timer.start()

    def mousePressEvent(self, event) -> None:
        if self._click_through:
            return
        if event.button() == Qt.MouseButton.RightButton:
            self._popup_menu(event.globalPosition().toPoint())
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        handle = self.windowHandle()
        # Where the window really is, from the event (the X server's root coordinates). Right after
        # an X11 window manager reparents the overlay, Qt can briefly hold a stale position; a
        # system move started then would make the window jump by that error.
        actual = (event.globalPosition() - event.position()).toPoint()
        stale = (actual - handle.position()).manhattanLength() > 2
        if stale:
            self._placing = True
            try:
                handle.setPosition(actual)  # re-sync Qt; the window does not move
            finally:
                self._placing = False
        self._press_geometry = self.geometry()
        self._user_moved = True
        edges = self._edges_at(event.position())
        started = False
        if not stale:
            started = handle.startSystemResize(edges) if edges else handle.startSystemMove()
        if not started:  # no system move here (or Qt was out of step): move/resize by hand
            self._drag_offset = event.globalPosition().toPoint() - actual
            self._drag_edges = edges
            self._drag_start = (event.globalPosition().toPoint(), QRect(actual, self.size()))

    def mouseMoveEvent(self, event) -> None:
        if self._drag_offset is not None and event.buttons() & Qt.MouseButton.LeftButton:
            if self._drag_edges:
                self.setGeometry(self._resized(event.globalPosition().toPoint()))
            else:
                self.move(event.globalPosition().toPoint() - self._drag_offset)
            return
        if not self._click_through:
            self.setCursor(self._cursor_for(self._edges_at(event.position())))

    def _resized(self, pointer) -> QRect:
        """The rectangle for a by-hand resize from the pressed edges to ``pointer``."""
        start, rect = self._drag_start
        d = pointer - start
        r = QRect(rect)
        min_w, min_h = self.minimumWidth(), self.minimumHeight()
        if self._drag_edges & Qt.Edge.LeftEdge:
            r.setLeft(min(rect.left() + d.x(), rect.right() - min_w + 1))
        if self._drag_edges & Qt.Edge.RightEdge:
            r.setRight(max(rect.right() + d.x(), rect.left() + min_w - 1))
        if self._drag_edges & Qt.Edge.TopEdge:
            r.setTop(min(rect.top() + d.y(), rect.bottom() - min_h + 1))
        if self._drag_edges & Qt.Edge.BottomEdge:
            r.setBottom(max(rect.bottom() + d.y(), rect.top() + min_h - 1))
        return r

    def mouseReleaseEvent(self, event) -> None:
        self._drag_offset = None
        if self._user_moved:
            self._save_timer.start()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        style = self._style
        rect = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        bg = QColor(style.background_color)
        bg.setAlpha(style.background_alpha)
        path = QPainterPath()
        path.addRoundedRect(rect, CORNER_RADIUS, CORNER_RADIUS)
        p.fillPath(path, bg)
        if not self._click_through:
            # Unlocked: a faint frame says "you can move and resize me".
            frame = QColor(style.text_color)
            frame.setAlpha(90)
            p.setPen(QPen(frame, 1.5, Qt.PenStyle.DashLine))
            p.drawPath(path)
        if event.rect().intersects(self._text_rect().toAlignedRect()):
            self._paint_captions(p)  # skipped when only the status line (level meter) changed
        self._paint_status(p)
        p.end()

    # ---- painting helpers ---------------------------------------------------------------------
    def _padding(self) -> float:
        return max(8.0, self._metrics.height() * 0.3)

    def _status_height(self) -> float:
        return QFontMetricsF(self._small_font).lineSpacing() + 6

    def _text_rect(self) -> QRectF:
        pad = self._padding()
        return QRectF(pad, pad, max(1.0, self.width() - 2 * pad),
                      max(1.0, self.height() - 2 * pad - self._status_height()))

    def _status_rect(self) -> QRectF:
        pad = self._padding()
        h = self._status_height()
        return QRectF(pad, self.height() - pad / 2 - h, self.width() - 2 * pad, h)

    def _paint_captions(self, p: QPainter) -> None:
        area = self._text_rect()
        lines = self.model.lines()
        line_h = self._metrics.lineSpacing()
        fit = max(1, int(area.height() // line_h))
        lines = lines[-fit:]
        # Bottom-aligned: the newest line stays where the eye expects it.
        top = area.bottom() - len(lines) * line_h
        margin = self._effect_margin()
        for line in lines:
            p.drawImage(QPointF(area.left() - margin, top - margin), self._line_image(line))
            top += line_h

    # Each visible line is rendered once into an image and then only blitted: finished lines never
    # change, so a new partial (or a level-meter tick) repaints for the cost of a few blits, not of
    # outlining every glyph again (that cost 20-50 ms per repaint at 48 pt).
    def _line_image(self, line) -> QImage:
        dpr = self.devicePixelRatioF()
        key = (line.runs, dpr)
        image = self._line_cache.get(key)
        if image is None:
            image = self._render_line(line, dpr)
            self._line_cache[key] = image
            while len(self._line_cache) > LINE_CACHE_SIZE:
                self._line_cache.pop(next(iter(self._line_cache)))
        return image

    def _render_line(self, line, dpr: float) -> QImage:
        margin = self._effect_margin()
        width = sum(self._metrics.horizontalAdvance(run.text) for run in line.runs) + 2 * margin
        height = self._metrics.lineSpacing() + 2 * margin
        image = QImage(max(1, math.ceil(width * dpr)), max(1, math.ceil(height * dpr)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        image.fill(Qt.GlobalColor.transparent)
        style = self._style
        colors = {"final": QColor(style.text_color), "partial": QColor(style.partial_color),
                  "label": QColor(style.label_color), "speaker": QColor(style.text_color),
                  "language": QColor(style.label_color)}
        effect = QColor(style.effect_color)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        x, baseline = margin, margin + self._metrics.ascent()
        for run in line.runs:
            color = QColor(run.color) if run.color else colors.get(run.kind, colors["final"])
            self._draw_text(painter, QPointF(x, baseline), run.text, color, effect)
            x += self._metrics.horizontalAdvance(run.text)
        painter.end()
        return image

    def _effect_margin(self) -> float:
        """Room around a line for the outline or shadow."""
        style = self._style
        if style.text_effect == "outline":
            return math.ceil(style.outline_width) + 1
        if style.text_effect == "shadow":
            return math.ceil(max(2.0, style.font_size / 16)) + 1
        return 1

    def _draw_text(self, p: QPainter, at: QPointF, text: str, color: QColor, effect: QColor) -> None:
        mode = self._style.text_effect
        p.setFont(self._font)
        if mode == "outline":
            width = self._style.outline_width
            if width <= GLYPH_OUTLINE_MAX:
                # Stamp the text in the outline colour around a small circle: glyph-cache fast
                # and indistinguishable from a stroked path at these widths.
                steps = max(8, math.ceil(2 * math.pi * width))
                p.setPen(effect)
                for i in range(steps):
                    a = 2 * math.pi * i / steps
                    p.drawText(QPointF(at.x() + width * math.cos(a), at.y() + width * math.sin(a)), text)
            else:
                # Very large text: a stroked path gives a clean wide outline (rendered once per line).
                path = QPainterPath()
                path.addText(at, self._font, text)
                pen = QPen(effect, width * 2)
                pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
                p.strokePath(path, pen)
                p.fillPath(path, color)
                return
        elif mode == "shadow":
            shadow = QColor(effect)
            shadow.setAlpha(200)
            off = max(2.0, self._style.font_size / 16)
            p.setPen(shadow)
            p.drawText(QPointF(at.x() + off, at.y() + off), text)
        p.setPen(color)
        p.drawText(at, text)

    def _paint_status(self, p: QPainter) -> None:
        r = self._status_rect()
        fm = QFontMetricsF(self._small_font)
        p.setFont(self._small_font)
        dot = fm.height() * 0.45
        cy = r.center().y()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(_STATE_COLORS[self._status.state]))
        p.drawEllipse(QPointF(r.left() + dot, cy), dot / 2, dot / 2)
        # Level meter: -60…0 dBFS as a short bar.
        meter_w = fm.horizontalAdvance("MMMMM")
        meter = QRectF(r.right() - meter_w, cy - dot / 3, meter_w, dot * 2 / 3)
        track = QColor(self._style.text_color)
        track.setAlpha(60)
        p.setBrush(track)
        p.drawRoundedRect(meter, 2, 2)
        if self._level_db is not None:
            frac = _meter_fraction(self._level_db)
            p.setBrush(QColor("#3ddc84") if frac < 0.9 else QColor("#ff5252"))
            p.drawRoundedRect(QRectF(meter.left(), meter.top(), meter.width() * frac, meter.height()), 2, 2)
        text = self._status.summary()
        if self._silence_hint:
            text = f"{text} · {self._silence_hint}"
        if self._status_note:
            text = f"{text} · {self._status_note}"
        if not self._click_through:
            text += " · unlocked: drag to move"
        pen = QColor(self._style.text_color)
        pen.setAlpha(200)
        p.setPen(pen)
        text_rect = QRectF(r.left() + dot * 2, r.top(), meter.left() - r.left() - dot * 3, r.height())
        elided = fm.elidedText(text, Qt.TextElideMode.ElideRight, text_rect.width())
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        if self._style.background_opacity < 60:
            # Little background to read against: a 1 px halo keeps the small text legible.
            p.setPen(QColor(self._style.effect_color))
            for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
                p.drawText(text_rect.translated(dx, dy), align, elided)
            p.setPen(pen)
        p.drawText(text_rect, align, elided)

    # ---- internals ----------------------------------------------------------------------------
    def _caption_config(self) -> CaptionConfig:
        s = self.settings
        values = {k: s.get(k) for k in ("captions/lines", "captions/stable_only",
                                        "captions/clear_after_s", "captions/show_source_labels")}
        for key, value in (self._preview or {}).items():  # unsaved values from the settings dialog
            if key in values:
                try:
                    values[key] = PREF_BY_KEY[key].coerce(value)
                except (ValueError, TypeError):
                    pass
        # Labels only help when two sources speak; a lone "Mic:" prefix is noise.
        several = len(self._source_labels) > 1 if self._source_labels else s.get("audio/source") == "both"
        show_labels = values["captions/show_source_labels"] and several
        return CaptionConfig(lines=values["captions/lines"], stable_only=values["captions/stable_only"],
                             clear_after_s=values["captions/clear_after_s"], show_labels=show_labels)

    def _apply_style(self) -> None:
        style = self._style
        font = QFont(style.font_family) if style.font_family else QFont()
        if not style.font_family:
            font.setStyleHint(QFont.StyleHint.SansSerif)
        font.setPointSizeF(style.font_size)
        font.setBold(style.bold)
        self._font = font
        self._metrics = QFontMetricsF(font)
        self._line_cache.clear()   # colours, font or effect may have changed
        small = QFont(font)
        small.setBold(False)
        small.setPointSizeF(min(14.0, max(9.0, style.font_size * 0.35)))
        self._small_font = small
        self.model.set_measure(self._measure)
        self.model.set_speaker_color(speaker_colorer(style))
        self._relayout()

    def _measure(self, text: str) -> float:
        return self._metrics.horizontalAdvance(text)

    def _relayout(self) -> None:
        self.model.set_width(self._text_rect().width())
        self.update()

    def _tick(self) -> None:
        if self.model.tick(time.monotonic()):
            self.update()

    def _keep_above(self) -> None:
        """Raise once when shown or toggled. Not on a timer: a periodic raise would cover other
        apps' open menus, and the window manager keeps an "above" window above anyway."""
        if self.isVisible() and QGuiApplication.platformName() not in ("offscreen", "minimal"):
            self.raise_()

    def _announce(self) -> None:
        """Expose the caption text to screen readers (description + a change event)."""
        self.setAccessibleDescription(self._describe())
        text = self.model.last_final
        who = self.model.speaker_of_last_final()
        if text and who:
            text = f"{who}: {text}"       # screen readers hear who speaks, as sighted readers see
        if text and self.model.finals_seen != self._last_spoken:
            self._last_spoken = self.model.finals_seen
            notify_accessibility(QAccessibleEvent(self, QAccessible.Event.DescriptionChanged))
            # Screen readers (and braille displays) get each finished sentence, politely queued.
            announcement = QAccessibleAnnouncementEvent(self, text)
            announcement.setPoliteness(QAccessible.AnnouncementPoliteness.Polite)
            notify_accessibility(announcement)

    def _describe(self) -> str:
        text = self.model.visible_text() or "No captions yet."
        lock = "Click-through is on." if self._click_through else "Unlocked: drag to move, edges resize."
        return f"{text}\n{lock}"

    def _edges_at(self, pos) -> Qt.Edge:
        x, y, w, h = pos.x(), pos.y(), self.width(), self.height()
        edges = Qt.Edge(0)
        if x <= EDGE_GRAB:
            edges |= Qt.Edge.LeftEdge
        elif x >= w - EDGE_GRAB:
            edges |= Qt.Edge.RightEdge
        if y <= EDGE_GRAB:
            edges |= Qt.Edge.TopEdge
        elif y >= h - EDGE_GRAB:
            edges |= Qt.Edge.BottomEdge
        return edges

    @staticmethod
    def _cursor_for(edges) -> QCursor:
        left_or_right = edges & (Qt.Edge.LeftEdge | Qt.Edge.RightEdge)
        top_or_bottom = edges & (Qt.Edge.TopEdge | Qt.Edge.BottomEdge)
        if left_or_right and top_or_bottom:
            diag = edges in (Qt.Edge.LeftEdge | Qt.Edge.TopEdge, Qt.Edge.RightEdge | Qt.Edge.BottomEdge)
            return QCursor(Qt.CursorShape.SizeFDiagCursor if diag else Qt.CursorShape.SizeBDiagCursor)
        if left_or_right:
            return QCursor(Qt.CursorShape.SizeHorCursor)
        if top_or_bottom:
            return QCursor(Qt.CursorShape.SizeVerCursor)
        return QCursor(Qt.CursorShape.SizeAllCursor)
