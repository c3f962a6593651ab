"""The caption overlay: a frameless, translucent, always-on-top tool window that never takes focus.

It only renders. What the lines say comes from ``app.core.captions.CaptionModel``; colours from
``app.core.styles``; connection words from ``app.core.status``; drawing is ``caption_painter``'s,
where the window sits is ``overlay_placement``'s.

- The rounded background is painted with the user's alpha (``setWindowOpacity`` would fade the
  text too); text is opaque with an outline or a shadow.
- Click-through is a flag on the *native* window (``WindowTransparentForInput``); Qt's
  ``WA_TransparentForMouseEvents`` would not pass clicks on to other apps. Once locked the overlay
  cannot be clicked, so the tray and a global hotkey undo it.
- Unlocked, a press drags it (``startSystemMove``, which also works on Wayland) or, near an edge,
  resizes it (``startSystemResize``). The window never resizes itself to fit text.
"""

from __future__ import annotations

import logging
import math
import time

from PySide6.QtCore import QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import (QAccessible, QAccessibleAnnouncementEvent, QAccessibleEvent, QCursor,
                           QGuiApplication, QPainter)
from PySide6.QtWidgets import QInputDialog, QMenu, QToolTip, QWidget

from app.core.captions import CaptionConfig, CaptionModel, changed_rows
from app.core.placement import DOCKS, MIN_SIZE, clamp_rect, dock_position, format_geometry, parse_geometry
from app.core.settings import PREF_BY_KEY, Settings
from app.core.speakers import SpeakerNames
from app.core.status import State, Status
from app.core.styles import CaptionStyle, speaker_colorer, style_from_settings
from app.core.audio.meter import meter_step
from app.qt.caption_painter import CaptionPainter
from app.qt.overlay_placement import OverlayPlacement

log = logging.getLogger(__name__)

__all__ = ["CaptionOverlay", "DOCKS", "clamp_rect", "dock_position", "format_geometry", "parse_geometry"]

EDGE_GRAB = 10              # px from the edge where a press resizes instead of moves


def notify_accessibility(event) -> None:
    """Hand an event to the platform's accessibility bridge (a no-op when no assistive tech runs)."""
    QAccessible.updateAccessibility(event)


class CaptionOverlay(QWidget):
    click_through_changed = Signal(bool)
    visibility_changed = Signal(bool)
    dock_changed = Signal(str)
    speaker_renamed = Signal(str, str)       # (label, new name), chosen from the overlay menu
    geometry_changed = Signal()       # moved or resized (the app's dialogs step out of the way)
    first_frame = Signal()            # the window was painted for the first time

    def __init__(self, settings: Settings, parent=None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.setWindowFlags(Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
                            | Qt.WindowType.Tool | Qt.WindowType.WindowDoesNotAcceptFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_MacAlwaysShowToolWindow)
        # The overlay never becomes the active window; without this its tooltip would never show.
        self.setAttribute(Qt.WidgetAttribute.WA_AlwaysShowToolTips)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(*MIN_SIZE)
        self.setWindowTitle("Live captions")
        from app.qt import overlay_accessible
        overlay_accessible.install()
        self.setAccessibleName("Live captions")
        self.setAccessibleDescription("Captions appear here as people speak.")

        self._style = style_from_settings(settings)
        self._preview: dict | None = None
        self._source_labels: list[str] = []
        self.painter = CaptionPainter(self._style)
        self.names = SpeakerNames()
        self._translation_mode = ""       # how the running captions show translations
        self.model = CaptionModel(self._caption_config(), measure=self.painter.measure, width=400,
                                  names=self.names, speaker_color=speaker_colorer(self._style))
        self._status = Status()
        self._level_db: float | None = None
        self._level_step: int | None = None
        self._silence_hint = ""
        self._silence_detail = ""
        self._status_note = ""            # platform note (Wayland / no compositor)
        self._note_explanation = ""
        self._click_through = False
        self._context_menu: QMenu | None = None
        self._drag_offset = None          # fallback drag when the platform has no system move
        self._drag_edges = Qt.Edge(0)
        self._drag_start = None
        self._painted = False
        self._shown_lines: list | None = None   # runs of the caption lines on screen

        self.placement = OverlayPlacement(self, settings, self._height_for_lines, self._relayout)
        self.placement.dock_changed.connect(self.dock_changed)
        # Set for the next auto-clear or release only: an empty overlay has nothing to clear,
        # and captions coming in do not wake it up between their updates.
        self._tick_timer = QTimer(self, singleShot=True)
        self._tick_timer.timeout.connect(self._tick)

        self._relayout()
        self.winId()  # create the native window now: click-through is a flag on it
        self.placement.restore()
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
        self.placement.set_dock(dock)

    def set_status_note(self, note: str, explanation: str = "") -> None:
        """A short platform note for the status line; the full explanation goes in the tooltip."""
        self._status_note = note
        self._note_explanation = explanation
        self._update_tooltip()
        self.update()

    def full_status(self) -> str:
        """Everything the one-line status strip may cut short, in full."""
        parts = [self._status.summary(),
                 self._status.detail if self._status.state in (State.ERROR, State.RECONNECTING) else "",
                 self._silence_detail or self._silence_hint, self._note_explanation]
        seen: list[str] = []
        for part in parts:
            if part and part not in seen:
                seen.append(part)
        return "\n\n".join(seen)

    def _update_tooltip(self) -> None:
        # The status line is elided to one line: hovering (or clicking it) shows the whole message.
        self.setToolTip(self.full_status())
        self.setAccessibleDescription(self._describe())

    def apply_settings(self, keys=None) -> None:
        """Re-read appearance, caption and window settings after the user saved them."""
        keys = set(keys) if keys is not None else None
        self._restyle()
        if keys is None or "overlay/dock" in keys:
            self.placement.redock()
        if keys is None or "overlay/click_through" in keys:
            wanted = self.settings.get("overlay/click_through")
            if wanted != self._click_through:
                self.set_click_through(wanted, persist=False)
        self.update()

    def preview_style(self, values: dict | None) -> None:
        """Show unsaved appearance values live (the settings dialog); None = back to saved."""
        self._preview = dict(values) if values else None
        self._restyle()
        self.update()

    # ---- captions and status (slots for the controller's signals) ----------------------------
    def on_partial(self, label: str, partial) -> None:
        self.model.on_partial(label, partial.text, time.monotonic(), getattr(partial, "speaker", None))
        self._expect_ticks()
        self._captions_changed()

    def on_final(self, label: str, final) -> None:
        self.model.on_final(label, final.text, time.monotonic(), speaker=getattr(final, "speaker", None),
                            final_id=getattr(final, "id", None), language=getattr(final, "language", None))
        self._expect_ticks()
        self._announce()
        self._captions_changed()

    def on_translation(self, label: str, translation) -> None:
        if self.model.on_translation(translation.id, translation.text, time.monotonic()):
            self._expect_ticks()
            self._announce()
            self._captions_changed()

    def set_translation_mode(self, mode: str) -> None:
        """"" (the run does not translate), "both" or "translation" (translation only)."""
        mode = mode if mode in ("both", "translation") else ""
        if mode != self._translation_mode:
            self._translation_mode = mode
            self.model.configure(self._caption_config())
            self.update()

    def on_speakers_renamed(self, label: str, name: str) -> None:
        self.model.names_changed()
        self.setAccessibleDescription(self._describe())
        self.update()

    def on_revision(self, label: str, revision) -> None:
        if self.model.on_revision(revision.id, revision.speaker):
            self.setAccessibleDescription(self._describe())   # who said it, for screen readers too
            self._captions_changed()

    def set_status(self, status: Status) -> None:
        if status.state in (State.RECONNECTING, State.STOPPED, State.ERROR):
            self.model.drop_partials()  # no final will come for them
        previous, self._status = self._status, status
        self._announce_status(previous, status)
        self._update_tooltip()
        self.update()

    def set_levels(self, levels: dict) -> None:
        peaks = [lv.rms_dbfs for lv in levels.values()] if levels else []
        level = max(peaks) if peaks else None
        # Only a device that has delivered nothing at all since it opened gets a (gentle) word.
        hints = [h for lv in (levels or {}).values() if (h := getattr(lv, "short_hint", ""))]
        hint = "; ".join(hints)
        self._silence_detail = "\n".join(h for lv in (levels or {}).values() if (h := getattr(lv, "hint", None)))
        # Repaint only when the bar changes by a visible step (each repaint competes with the
        # captions for the GUI thread).
        step = None if level is None else meter_step(level)
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

    # ---- geometry (see overlay_placement) -----------------------------------------------------
    def restore_geometry(self) -> None:
        self.placement.restore()

    def flush_geometry(self) -> None:
        """Save a pending user move/resize now (at quit)."""
        self.placement.flush()

    def save_geometry(self, rect: tuple[int, int, int, int] | None = None) -> None:
        self.placement.save_geometry(rect)

    def keep_on_screen(self) -> None:
        self.placement.keep_on_screen()

    def _screens_changed(self, *_args) -> None:
        self.placement.screens_changed()

    def _height_for_lines(self) -> int:
        pad = self.painter.padding()
        return math.ceil(self.model.config.lines * self.painter.line_spacing() + 2 * pad
                         + self.painter.status_height()) + 1

    # ---- Qt events ----------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        from app.qt.platform import prepare_window
        prepare_window(self)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._relayout()
        self.placement.window_moved_or_resized()
        self.geometry_changed.emit()

    def moveEvent(self, event) -> None:
        super().moveEvent(event)
        self.placement.window_moved_or_resized()
        self.geometry_changed.emit()

    def mousePressEvent(self, event) -> None:
        if self._click_through:
            return
        if event.button() == Qt.MouseButton.RightButton:
            self._popup_menu(event.globalPosition().toPoint())
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self._status_rect().contains(event.position()) and self._edges_at(event.position()) == Qt.Edge(0):
            # A click on the status strip shows the whole message (the strip is one line).
            QToolTip.showText(event.globalPosition().toPoint(), self.full_status(), self)
            return
        handle = self.windowHandle()
        # Where the window really is, from the event (the X server's root coordinates). Right after
        # an X11 window manager reparents the overlay, Qt can briefly hold a stale position; a
        # system move started then would make the window jump by that error.
        actual = (event.globalPosition() - event.position()).toPoint()
        stale = (actual - handle.position()).manhattanLength() > 2
        if stale:
            self.placement.placing = True
            try:
                handle.setPosition(actual)  # re-sync Qt; the window does not move
            finally:
                self.placement.placing = False
        self.placement.user_pressed()
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
        self.placement.user_released()

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        unlocked = not self._click_through
        if self.model.lines() or unlocked:
            self.painter.paint_background(p, QRectF(self.rect()), unlocked=unlocked)
        else:
            # Nothing to read (before the first caption, after the auto-clear): no empty dark box
            # over the user's screen, only the status strip on its own small background.
            pad = self.painter.padding() / 2
            self.painter.paint_background(p, self._status_rect().adjusted(-pad, -pad / 2, pad, pad / 2),
                                          unlocked=False)
        if event.rect().intersects(self._text_rect().toAlignedRect()):
            # Skipped when only the status line (level meter) changed.
            shown = self.painter.paint_captions(p, self._text_rect(), self.model.lines(),
                                                self.devicePixelRatioF(), QRectF(event.rect()))
            self._shown_lines = [line.runs for line in shown]
        self.painter.paint_status(p, self._status_rect(), self._status.state, self._level_db,
                                  self._status_text())
        p.end()
        if not self._painted:
            self._painted = True
            self.first_frame.emit()

    # ---- layout -------------------------------------------------------------------------------
    def _text_rect(self) -> QRectF:
        pad = self.painter.padding()
        return QRectF(pad, pad, max(1.0, self.width() - 2 * pad),
                      max(1.0, self.height() - 2 * pad - self.painter.status_height()))

    def _status_rect(self) -> QRectF:
        pad = self.painter.padding()
        h = self.painter.status_height()
        return QRectF(pad, self.height() - pad / 2 - h, self.width() - 2 * pad, h)

    def _status_text(self) -> str:
        text = self._status.summary()
        if self._silence_hint:
            text = f"{text} · {self._silence_hint}"
        if self._status_note:
            text = f"{text} · {self._status_note}"
        if not self._click_through:
            text += " · unlocked: drag to move"
        return text

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
                             clear_after_s=values["captions/clear_after_s"], show_labels=show_labels,
                             translation=self._translation_mode)

    def _restyle(self) -> None:
        """Saved settings plus any preview → style, caption layout and, if the text size changed, height."""
        old_size = (self._style.font_size, self.model.config.lines)
        self._style = style_from_settings(self.settings, self._preview)
        self.model.configure(self._caption_config())
        self.painter.set_style(self._style)
        self.model.set_measure(self.painter.measure, self.painter.measure_translation)
        self.model.set_speaker_color(speaker_colorer(self._style))
        self._relayout()
        if (self._style.font_size, self.model.config.lines) != old_size:
            self.placement.fit_height()

    def _relayout(self) -> None:
        self.model.set_width(self._text_rect().width())
        self.update()

    def _captions_changed(self) -> None:
        """Repaint what changed: a partial growing on the last line repaints that line only
        (and the X server and compositor get a small damage rectangle); anything that moves
        lines, or shows or hides the caption box, repaints the whole overlay."""
        lines = self.painter.visible_lines(self._text_rect(), self.model.lines())
        rows = changed_rows(self._shown_lines, lines)
        if rows is None:
            self.update()
            return
        boxes = self.painter.line_boxes(self._text_rect(), len(lines))
        dirty = QRect()
        for row in rows:
            box = boxes[row]
            dirty = dirty.united(QRect(0, int(box.top()) - 1, self.width(), int(box.height()) + 3))
        if not dirty.isNull():
            self.update(dirty)

    def _expect_ticks(self) -> None:
        """The next auto-clear or late-translation release, as one timer (none while there is
        nothing to clear or release)."""
        wait = self.model.seconds_until_tick(time.monotonic())
        if wait is None:
            self._tick_timer.stop()
        else:
            self._tick_timer.start(int(wait * 1000) + 1)

    def _tick(self) -> None:
        if self.model.tick(time.monotonic()):
            self._announce()            # a held final shown without its late translation
            self._captions_changed()
            if not self.model.lines():
                self.setAccessibleDescription(self._describe())
        self._expect_ticks()

    def _keep_above(self) -> None:
        """Raise once when shown or toggled. Not on a timer: a periodic raise would cover other
        apps' open menus, and the window manager keeps an "above" window above anyway."""
        if self.isVisible() and QGuiApplication.platformName() not in ("offscreen", "minimal"):
            self.raise_()

    def _announce(self) -> None:
        """Expose the caption text to screen readers (description + a change event)."""
        self.setAccessibleDescription(self._describe())
        texts = self.model.take_announcements()     # what the screen now shows, speaker named
        if texts:
            notify_accessibility(QAccessibleEvent(self, QAccessible.Event.DescriptionChanged))
        for text in texts:
            # Screen readers (and braille displays) get each finished sentence, politely queued.
            announcement = QAccessibleAnnouncementEvent(self, text)
            announcement.setPoliteness(QAccessible.AnnouncementPoliteness.Polite)
            notify_accessibility(announcement)

    def _announce_status(self, previous: Status, status: Status) -> None:
        """Connection changes a blind reader would otherwise miss (captions just stop), unless the
        user asked for finished sentences only (braille displays: no status chatter)."""
        if status.state is previous.state or self.settings.get("accessibility/finals_only"):
            return
        if status.state is State.ERROR:
            message, politeness = f"Captions stopped: {status.detail or status.text}", \
                QAccessible.AnnouncementPoliteness.Assertive
        elif status.state is State.RECONNECTING:
            message, politeness = "Captions paused: reconnecting.", QAccessible.AnnouncementPoliteness.Polite
        elif status.state in (State.LIVE, State.OFFLINE) and previous.state is State.RECONNECTING:
            message, politeness = "Captions are back.", QAccessible.AnnouncementPoliteness.Polite
        else:
            return
        announcement = QAccessibleAnnouncementEvent(self, message)
        announcement.setPoliteness(politeness)
        notify_accessibility(announcement)

    def readable_text(self) -> str:
        """The captions on screen without the line breaks of wrapping (a screen reader reads
        sentences, not window-width lines)."""
        return " ".join(self.model.visible_text().split())

    def _describe(self) -> str:
        text = self.readable_text() or "No captions yet."
        lock = "Click-through is on." if self._click_through else "Unlocked: drag to move, edges resize."
        return f"{text}\n{lock}\nStatus: {self._status.summary()}"

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
