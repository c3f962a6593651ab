"""Drawing the overlay: its rounded background, the caption lines and the status strip.

Each visible caption line is rendered once into an image and then only blitted: finished lines
never change, so a new partial (or a level-meter tick) repaints for the cost of a few blits, not
of outlining every glyph again (that cost 20-50 ms per repaint at 48 pt).
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen

from app.core.audio.meter import meter_fraction
from app.core.status import State
from app.core.styles import CaptionStyle

CORNER_RADIUS = 14
LINE_CACHE_SIZE = 48        # rendered caption lines kept (visible ones plus recent partials)
GLYPH_OUTLINE_MAX = 4.0     # px: up to this outline width, stamp glyphs; wider, stroke a path
UNLOCKED_MIN_ALPHA = 51     # 20 %: an unlocked overlay stays visible and grabbable at 0 % opacity

STATE_COLORS = {State.LIVE: "#3ddc84", State.OFFLINE: "#4fa3ff", State.CONNECTING: "#ffc107",
                State.RECONNECTING: "#ffc107", State.ERROR: "#ff5252", State.STOPPED: "#9e9e9e"}


STATUS_MIN_PT = 11.0        # readable from a desk away; the caption text itself is 16 pt or more
STATUS_MAX_PT = 20.0
STATUS_SCALE = 0.42         # the status line follows the caption size


def status_point_size(caption_pt: float) -> float:
    return min(STATUS_MAX_PT, max(STATUS_MIN_PT, caption_pt * STATUS_SCALE))


class CaptionPainter:
    """Fonts, metrics and the line-image cache for one ``CaptionStyle``."""

    def __init__(self, style: CaptionStyle) -> None:
        self.style = style
        self.font = QFont()
        self.small_font = QFont()
        self.metrics = QFontMetricsF(self.font)
        self._cache: dict = {}
        self.set_style(style)

    def set_style(self, style: CaptionStyle) -> None:
        self.style = style
        font = QFont(style.font_family) if style.font_family else QFont()
        if not style.font_family:
            font.setStyleHint(QFont.StyleHint.SansSerif)
        font.setPointSizeF(style.font_size)
        font.setBold(style.bold)
        self.font = font
        self.metrics = QFontMetricsF(font)
        # Translations: the same size in italics (and their own colour), so the line height and
        # the caption box stay the same while the two languages read apart.
        self.translation_font = QFont(font)
        self.translation_font.setItalic(True)
        self.translation_metrics = QFontMetricsF(self.translation_font)
        self._cache.clear()   # colours, font or effect may have changed
        self._status_cached = None
        self._backgrounds: dict = {}
        small = QFont(font)
        small.setBold(False)
        small.setPointSizeF(status_point_size(style.font_size))
        self.small_font = small

    # ---- sizes ----------------------------------------------------------------------------
    def measure(self, text: str) -> float:
        return self.metrics.horizontalAdvance(text)

    def measure_translation(self, text: str) -> float:
        return self.translation_metrics.horizontalAdvance(text)

    def line_spacing(self) -> float:
        return self.metrics.lineSpacing()

    def padding(self) -> float:
        return max(8.0, self.metrics.height() * 0.3)

    def status_height(self) -> float:
        return QFontMetricsF(self.small_font).lineSpacing() + 6

    def effect_margin(self) -> float:
        """Room around a line for the outline or shadow."""
        style = self.style
        if style.text_effect == "outline":
            return math.ceil(style.outline_width) + 1
        if style.text_effect == "shadow":
            return math.ceil(max(2.0, style.font_size / 16)) + 1
        return 1

    # ---- background -----------------------------------------------------------------------
    def paint_background(self, p: QPainter, rect: QRectF, unlocked: bool) -> None:
        """The rounded caption box. Rendered once per size and stamped: an antialiased fill of
        the whole box cost more than everything else in a repaint. A translucent window's
        backing store is cleared before each paint, so the stamp replaces (no blending)."""
        dpr = p.device().devicePixelRatioF() if hasattr(p.device(), "devicePixelRatioF") else 1.0
        key = (round(rect.width()), round(rect.height()), unlocked, dpr)
        image = self._backgrounds.get(key)
        if image is None:
            image = QImage(max(1, math.ceil(key[0] * dpr)), max(1, math.ceil(key[1] * dpr)),
                           QImage.Format.Format_ARGB32_Premultiplied)
            image.setDevicePixelRatio(dpr)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            self._draw_background(painter, QRectF(0, 0, key[0], key[1]), unlocked)
            painter.end()
            if len(self._backgrounds) >= 4:      # the caption box and the status-only strip
                self._backgrounds.pop(next(iter(self._backgrounds)))
            self._backgrounds[key] = image
        mode = p.compositionMode()
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.drawImage(QPointF(rect.left(), rect.top()), image)
        p.setCompositionMode(mode)

    def _draw_background(self, p: QPainter, rect: QRectF, unlocked: bool) -> None:
        style = self.style
        rect = rect.adjusted(0.5, 0.5, -0.5, -0.5)
        bg = QColor(style.background_color)
        # Fully transparent pixels take no clicks on some platforms (and show nothing to grab):
        # while unlocked, keep a faint background whatever the opacity setting.
        bg.setAlpha(max(style.background_alpha, UNLOCKED_MIN_ALPHA) if unlocked else style.background_alpha)
        path = QPainterPath()
        path.addRoundedRect(rect, CORNER_RADIUS, CORNER_RADIUS)
        p.fillPath(path, bg)
        if unlocked:
            # Unlocked: a faint frame says "you can move and resize me".
            frame = QColor(style.text_color)
            frame.setAlpha(90)
            p.setPen(QPen(frame, 1.5, Qt.PenStyle.DashLine))
            p.drawPath(path)

    # ---- captions -------------------------------------------------------------------------
    def visible_lines(self, area: QRectF, lines) -> list:
        """The newest lines that fit in ``area``."""
        fit = max(1, int(area.height() // self.metrics.lineSpacing()))
        return list(lines[-fit:])

    def line_boxes(self, area: QRectF, count: int) -> list[QRectF]:
        """Where each of ``count`` visible lines is drawn, its outline or shadow included.
        Bottom-aligned: the newest line stays where the eye expects it."""
        line_h = self.metrics.lineSpacing()
        margin = self.effect_margin()
        top = area.bottom() - count * line_h
        return [QRectF(area.left() - margin, top + i * line_h - margin, area.width() + 2 * margin,
                       line_h + 2 * margin) for i in range(count)]

    def paint_captions(self, p: QPainter, area: QRectF, lines, dpr: float,
                       dirty: QRectF | None = None) -> list:
        """Draws the lines that fit (those meeting ``dirty``, when only part is repainted);
        returns them all (what the screen now shows)."""
        lines = self.visible_lines(area, lines)
        for line, box in zip(lines, self.line_boxes(area, len(lines))):
            if dirty is None or dirty.intersects(box):
                p.drawImage(box.topLeft(), self.line_image(line, dpr))
        return lines

    def line_image(self, line, dpr: float) -> QImage:
        key = (line.runs, dpr)
        image = self._cache.get(key)
        if image is None:
            image = self.render_line(line, dpr)
            self._cache[key] = image
            while len(self._cache) > LINE_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
        return image

    def render_line(self, line, dpr: float) -> QImage:
        margin = self.effect_margin()
        width = sum(self._metrics_of(run).horizontalAdvance(run.text) for run in line.runs) + 2 * margin
        height = self.metrics.lineSpacing() + 2 * margin
        image = QImage(max(1, math.ceil(width * dpr)), max(1, math.ceil(height * dpr)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        image.fill(Qt.GlobalColor.transparent)
        style = self.style
        colors = {"final": QColor(style.text_color), "partial": QColor(style.partial_color),
                  "label": QColor(style.label_color), "speaker": QColor(style.text_color),
                  "language": QColor(style.label_color),
                  "translation": QColor(style.translation_color)}
        effect = QColor(style.effect_color)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        x, baseline = margin, margin + self.metrics.ascent()
        for run in line.runs:
            advance = self._metrics_of(run).horizontalAdvance(run.text)
            if run.kind == "label":
                self._draw_chip(painter, QRectF(x, margin, advance, self.metrics.lineSpacing()), run.text)
            # A speaker's name and words may carry that speaker's own colour.
            color = QColor(run.color) if getattr(run, "color", None) else colors.get(run.kind, colors["final"])
            font = self.translation_font if run.kind == "translation" else self.font
            self._draw_text(painter, QPointF(x, baseline), run.text, color, effect, font)
            x += advance
        painter.end()
        return image

    def _metrics_of(self, run) -> QFontMetricsF:
        return self.translation_metrics if run.kind == "translation" else self.metrics

    def _draw_chip(self, p: QPainter, box: QRectF, text: str) -> None:
        """A rounded chip behind a source label ("Mic:"), inside the label's own width (the
        trailing space stays outside), so labels read as labels and the layout is unchanged."""
        word = text.rstrip()
        width = self.metrics.horizontalAdvance(word)
        pad = self.metrics.height() * 0.08
        chip = QRectF(box.left() - pad, box.top() + pad, width + 2 * pad, box.height() - 2 * pad)
        p.save()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(self.style.label_chip_color))
        p.drawRoundedRect(chip, chip.height() * 0.25, chip.height() * 0.25)
        p.restore()

    def _draw_text(self, p: QPainter, at: QPointF, text: str, color: QColor, effect: QColor,
                   font: QFont | None = None) -> None:
        mode = self.style.text_effect
        font = font or self.font
        p.setFont(font)
        if mode == "outline":
            width = self.style.outline_width
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
                path.addText(at, font, text)
                pen = QPen(effect, width * 2)
                pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
                p.strokePath(path, pen)
                p.fillPath(path, color)
                return
        elif mode == "shadow":
            shadow = QColor(effect)
            shadow.setAlpha(200)
            off = max(2.0, self.style.font_size / 16)
            p.setPen(shadow)
            p.drawText(QPointF(at.x() + off, at.y() + off), text)
        p.setPen(color)
        p.drawText(at, text)

    # ---- status strip ---------------------------------------------------------------------
    def meter_width(self) -> float:
        return QFontMetricsF(self.small_font).horizontalAdvance("MMMMM")

    def paint_status(self, p: QPainter, r: QRectF, state: State, level_db: float | None, text: str) -> bool:
        """Draws the strip; True when the text had to be cut short."""
        fm = QFontMetricsF(self.small_font)
        p.setFont(self.small_font)
        dot = fm.height() * 0.45
        cy = r.center().y()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(STATE_COLORS[state]))
        p.drawEllipse(QPointF(r.left() + dot, cy), dot / 2, dot / 2)
        # Level meter: -60…0 dBFS as a short bar.
        meter_w = self.meter_width()
        meter = QRectF(r.right() - meter_w, cy - dot / 3, meter_w, dot * 2 / 3)
        track = QColor(self.style.text_color)
        track.setAlpha(60)
        p.setBrush(track)
        p.drawRoundedRect(meter, 2, 2)
        if level_db is not None:
            frac = meter_fraction(level_db)
            p.setBrush(QColor("#3ddc84") if frac < 0.9 else QColor("#ff5252"))
            p.drawRoundedRect(QRectF(meter.left(), meter.top(), meter.width() * frac, meter.height()), 2, 2)
        text_rect = QRectF(r.left() + dot * 2, r.top(), meter.left() - r.left() - dot * 3, r.height())
        elided = fm.elidedText(text, Qt.TextElideMode.ElideRight, text_rect.width())
        p.drawImage(text_rect.topLeft() - QPointF(1, 1), self._status_image(elided, text_rect, p.device()))
        return elided != text

    def _status_image(self, text: str, rect: QRectF, device) -> QImage:
        """The status text with its halo, rendered once per text (the level meter next to it
        repaints several times a second; the words change rarely)."""
        dpr = device.devicePixelRatioF() if hasattr(device, "devicePixelRatioF") else 1.0
        key = (text, round(rect.width()), round(rect.height()), dpr)
        cached = getattr(self, "_status_cached", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        image = QImage(max(1, math.ceil((rect.width() + 2) * dpr)), max(1, math.ceil((rect.height() + 2) * dpr)),
                       QImage.Format.Format_ARGB32_Premultiplied)
        image.setDevicePixelRatio(dpr)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.setFont(self.small_font)
        local = QRectF(1, 1, rect.width(), rect.height())
        align = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
        # Opaque text colour with a 1 px halo in the effect colour: at least the caption text's
        # contrast, whatever shows through the background.
        painter.setPen(QColor(self.style.effect_color))
        for dx, dy in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
            painter.drawText(local.translated(dx, dy), align, text)
        painter.setPen(QColor(self.style.text_color))
        painter.drawText(local, align, text)
        painter.end()
        self._status_cached = (key, image)
        return image
