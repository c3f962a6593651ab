"""The overlay widget offscreen: caption layout, styles, status, click-through flag, geometry persistence."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QGuiApplication

from app.core.events import Final, Partial
from app.core.settings import DictStore, Settings
from app.core.status import State, Status
from app.core.styles import preset_values
from app.qt.overlay import CaptionOverlay, clamp_rect, dock_position, format_geometry, parse_geometry


@pytest.fixture
def settings():
    return Settings(DictStore())


@pytest.fixture
def make(qtbot, settings):
    def make_overlay(**values):
        for key, value in values.items():
            settings.set(key.replace("__", "/"), value)
        overlay = CaptionOverlay(settings)
        qtbot.addWidget(overlay)
        overlay.show()
        qtbot.waitExposed(overlay)
        return overlay
    return make_overlay


def pixel(overlay, x, y) -> QColor:
    return overlay.grab().toImage().pixelColor(x, y)


def colours_in(overlay, captions_only: bool = False) -> set[str]:
    """Colours of the fully opaque pixels (optionally only in the caption text area)."""
    img = overlay.grab().toImage()
    r = overlay._text_rect().toRect() if captions_only else img.rect()
    return {c.name() for x in range(r.left(), r.right(), 1) for y in range(r.top(), r.bottom(), 2)
            if (c := img.pixelColor(x, y)).alpha() == 255}


# ---- window shape ---------------------------------------------------------------------------
def test_window_flags_and_attributes(make):
    o = make()
    flags = o.windowFlags()
    for flag in (Qt.WindowType.FramelessWindowHint, Qt.WindowType.WindowStaysOnTopHint, Qt.WindowType.Tool,
                 Qt.WindowType.WindowDoesNotAcceptFocus):
        assert flags & flag
    assert o.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
    assert o.testAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
    assert o.focusPolicy() == Qt.FocusPolicy.NoFocus
    assert o.accessibleName() == "Live captions"


def test_click_through_is_a_native_window_flag_and_persists(make, settings):
    o = make()
    seen = []
    o.click_through_changed.connect(seen.append)
    o.set_click_through(True)
    assert o.windowHandle().flags() & Qt.WindowType.WindowTransparentForInput
    assert settings.get("overlay/click_through") is True
    o.toggle_click_through()
    assert not o.windowHandle().flags() & Qt.WindowType.WindowTransparentForInput
    assert seen == [True, False]
    assert o.isVisible()  # toggling never hides or recreates the window


def test_click_through_restored_at_start(make):
    o = make(overlay__click_through=True)
    assert o.click_through
    assert o.windowHandle().flags() & Qt.WindowType.WindowTransparentForInput


# ---- captions -------------------------------------------------------------------------------
def test_partial_replaced_in_place_by_final(make):
    o = make()
    o.on_partial("mic", Partial("the quarterly", 0, 500))
    assert o.caption_text() == "the quarterly"
    o.on_partial("mic", Partial("the quarterly budget", 0, 900))
    o.on_final("mic", Final("The quarterly budget.", 0, 1000))
    assert o.caption_text() == "The quarterly budget."
    assert "The quarterly budget." in o.accessibleDescription()


def test_finals_are_announced_to_screen_readers(make, monkeypatch):
    from PySide6.QtGui import QAccessibleAnnouncementEvent
    import app.qt.overlay as overlay_module
    events = []
    monkeypatch.setattr(overlay_module, "notify_accessibility", events.append)
    o = make()
    o.on_partial("mic", Partial("not yet", 0, 1))
    o.on_final("mic", Final("Now it is final.", 0, 1))
    o.on_final("mic", Final("", 0, 1))                  # an empty final says nothing
    o.on_final("mic", Final("Now it is final.", 0, 1))  # someone repeating themselves is news
    announced = [e.message() for e in events if isinstance(e, QAccessibleAnnouncementEvent)]
    assert announced == ["Now it is final.", "Now it is final."]


def test_partial_drawn_dimmer_than_final(make):
    o = make(appearance__text_effect="none", appearance__background_opacity=100)
    o.on_partial("mic", Partial("MMMM", 0, 1))
    partial_colours = colours_in(o, captions_only=True)
    o.on_final("mic", Final("MMMM", 0, 1))
    final_colours = colours_in(o, captions_only=True)
    assert "#ffffff" in final_colours and "#ffffff" not in partial_colours
    assert o.caption_style().partial_color in partial_colours


def test_line_limit_and_window_fits_the_lines(make):
    o = make(captions__lines=3)
    text = " ".join(f"word{i}" for i in range(200))
    o.on_final("mic", Final(text, 0, 1))
    lines = o.model.lines()
    assert len(lines) == 3
    assert lines[-1].text.endswith("word199")
    fm = QFontMetricsF(o.painter.font)
    assert all(fm.horizontalAdvance(line.text) <= o.width() for line in lines)
    assert o.height() >= 3 * fm.lineSpacing()


def test_changing_lines_or_font_resizes_height_once(make, settings):
    o = make()
    h2 = o.height()
    settings.set("captions/lines", 4)
    o.apply_settings({"captions/lines"})
    assert o.height() > h2
    # Text never resizes the window.
    before = o.size()
    o.on_final("mic", Final("x " * 500, 0, 1))
    assert o.size() == before


def test_resize_rewraps(make, qtbot):
    o = make(captions__lines=8)
    o.on_final("mic", Final("one two three four five six seven eight nine ten", 0, 1))
    wide = len(o.model.lines())
    o.resize(300, o.height())
    qtbot.waitUntil(lambda: len(o.model.lines()) > wide)


def test_auto_clear_after_silence(make, qtbot):
    o = make(captions__clear_after_s=1)
    o.on_final("mic", Final("Soon gone.", 0, 1))
    assert o.caption_text() == "Soon gone."
    qtbot.waitUntil(lambda: o.caption_text() == "", timeout=5000)


def test_no_ticks_while_nothing_is_on_screen(make, qtbot):
    """The auto-clear check runs only while there is something to clear (an idle app sleeps)."""
    o = make(captions__clear_after_s=1)
    assert not o._tick_timer.isActive()
    o.on_partial("mic", Partial("words", 0, 1))
    assert o._tick_timer.isActive()
    o.on_final("mic", Final("Soon gone.", 0, 1))
    qtbot.waitUntil(lambda: o.caption_text() == "", timeout=5000)
    qtbot.waitUntil(lambda: not o._tick_timer.isActive(), timeout=1000)
    o.on_final("mic", Final("Back again.", 2, 3))      # a new caption starts the check again
    assert o._tick_timer.isActive()
    qtbot.waitUntil(lambda: o.caption_text() == "", timeout=5000)


def test_the_clear_timer_fires_once_at_the_clear_time_not_periodically(make):
    o = make(captions__clear_after_s=6)
    o.on_final("mic", Final("Stays six seconds.", 0, 1))
    assert o._tick_timer.isSingleShot() and 5500 < o._tick_timer.remainingTime() <= 6400   # (coarse timer)


def test_the_stamped_background_is_the_painted_one_pixel_for_pixel(make):
    """The caption box is rendered once and stamped; the stamp must be what painting it draws,
    rounded corners and the unlocked frame included."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter
    o = make(appearance__background_opacity=70)
    for unlocked in (False, True):
        size = (o.width(), o.height())
        direct = QImage(*size, QImage.Format.Format_ARGB32_Premultiplied)
        stamped = QImage(*size, QImage.Format.Format_ARGB32_Premultiplied)
        for img in (direct, stamped):
            img.fill(Qt.GlobalColor.transparent)
        p = QPainter(direct)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        o.painter._draw_background(p, QRectF(0, 0, *size), unlocked)
        p.end()
        p = QPainter(stamped)
        o.painter.paint_background(p, QRectF(0, 0, *size), unlocked)
        p.end()
        assert stamped == direct


def test_stable_only_mode(make):
    o = make(captions__stable_only=True)
    o.on_partial("mic", Partial("flickering words", 0, 1))
    assert o.caption_text() == ""
    o.on_final("mic", Final("Stable words.", 0, 1))
    assert o.caption_text() == "Stable words."


def test_source_labels_when_two_sources_run(make):
    o = make()
    o.set_source_labels(["mic", "system"])
    o.on_final("mic", Final("Hi.", 0, 1))
    o.on_final("system", Final("News.", 0, 1))
    assert o.caption_text() == "Mic: Hi.\nSystem: News."
    o.set_source_labels(["mic"])
    assert o.caption_text() == "Hi.\nNews."  # still two sources' paragraphs, without labels


def test_reconnecting_drops_the_orphaned_partial(make):
    o = make()
    o.on_partial("mic", Partial("half a sen", 0, 1))
    o.set_status(Status(state=State.RECONNECTING, text="Reconnecting…"))
    assert o.caption_text() == ""


def test_finished_lines_are_rendered_once_then_reused(make, monkeypatch):
    o = make(captions__lines=2)
    rendered = []
    real = o.painter.render_line
    monkeypatch.setattr(o.painter, "render_line", lambda line, dpr: rendered.append(line.text) or real(line, dpr))
    o.on_final("mic", Final("First sentence.", 0, 1))
    o.grab()
    o.grab()
    assert rendered == ["First sentence."]
    o.on_partial("mic", Partial("and then", 0, 1))
    o.grab()
    assert rendered[-1] == "First sentence. and then"
    n = len(rendered)
    o.grab()
    assert len(rendered) == n  # a repaint without new text renders nothing
    o.preview_style({"appearance/text_color": "#ffff00"})
    o.grab()
    assert len(rendered) > n   # a new style re-renders


# ---- styles ---------------------------------------------------------------------------------
def test_background_alpha_is_the_users_opacity_and_text_is_opaque(make, settings):
    o = make(appearance__background_opacity=40, appearance__text_effect="none")
    o.set_click_through(True)  # no "unlocked" frame
    o.on_final("mic", Final("MMMMMMMM", 0, 1))
    inside = pixel(o, o.width() // 2, 4)
    assert inside.alpha() == round(40 * 255 / 100)
    img = o.grab().toImage()
    alphas = {img.pixelColor(x, y).alpha() for x in range(0, img.width(), 2) for y in range(0, img.height(), 2)}
    assert 255 in alphas  # the text itself is fully opaque


def test_preset_application_changes_colours(make, settings):
    o = make(appearance__text_effect="none")
    o.on_final("mic", Final("MMMMMMMM", 0, 1))
    assert "#ffffff" in colours_in(o)
    for key, value in preset_values("yellow_on_black").items():
        settings.set(key, value)
    o.apply_settings(set(preset_values("yellow_on_black")))
    assert "#ffff00" in colours_in(o)
    assert o.caption_style().text_color == "#ffff00"


def test_outline_draws_the_effect_colour(make):
    o = make(appearance__text_effect="outline", appearance__background_opacity=0)
    o.set_click_through(True)
    o.on_final("mic", Final("MMMM", 0, 1))
    assert "#000000" in colours_in(o, captions_only=True)  # black outline around white text


def test_preview_style_and_back(make):
    o = make()
    o.preview_style({"appearance/font_size": 60, "appearance/text_color": "#00ff00", "captions/lines": 3})
    assert o.caption_style().font_size == 60 and o.caption_style().text_color == "#00ff00"
    assert o.model.config.lines == 3
    o.preview_style(None)
    assert o.caption_style().font_size == 28 and o.model.config.lines == 2


def test_status_strip_and_levels_paint(make):
    from app.core.audio.level import Level
    o = make()
    o.set_status(Status(state=State.LIVE, text="Live (AssemblyAI)", latency_ms=420))
    o.set_levels({"mic": Level(rms_dbfs=-12.0)})
    o.set_status_note("no compositor: background opaque")
    assert "#3ddc84" in colours_in(o)  # the green "live" dot / meter


def test_full_error_and_platform_note_in_the_tooltip(make):
    o = make()
    o.set_status_note("Wayland: may be covered", "Wayland does not let apps keep a window above others.")
    o.set_status(Status(state=State.ERROR, text="Stopped: x", detail="Audio device 'mic:USB' was not "
                        "found. Available: Built-in Microphone, Headset."))
    tip = o.toolTip()
    assert "Available: Built-in Microphone, Headset." in tip and "keep a window above" in tip
    o.set_status(Status(state=State.LIVE, text="Live"))
    assert "Available" not in o.toolTip()


def test_level_meter_repaints_only_on_visible_steps(make, monkeypatch):
    from app.core.audio.level import Level
    o = make()
    updates = []
    monkeypatch.setattr(o, "update", lambda *a: updates.append(a))
    o.set_levels({"mic": Level(rms_dbfs=-32.5)})
    o.set_levels({"mic": Level(rms_dbfs=-33.0)})   # same 1/12 step of the bar: no repaint
    o.set_levels({"mic": Level(rms_dbfs=-31.0)})
    assert len(updates) == 1
    o.set_levels({"mic": Level(rms_dbfs=-10.0)})
    assert len(updates) == 2
    assert o._level_db == -10.0


def test_silent_input_hint(make):
    from app.core.audio.level import Level
    o = make()
    o.set_levels({"mic": Level(rms_dbfs=-120.0, silent_s=12.0, source="mic")})
    assert o._silence_hint == "no sound from the microphone yet: muted?"
    assert "since it opened" in o.toolTip()
    o.set_levels({"mic": Level(rms_dbfs=-20.0, source="mic", ever_sound=True)})
    assert o._silence_hint == ""
    # Quiet after speech (or an idle call) is not a device problem.
    o.set_levels({"mic": Level(rms_dbfs=-120.0, silent_s=30.0, source="mic", ever_sound=True),
                  "system": Level(rms_dbfs=-120.0, silent_s=12.0, source="system")})
    assert o._silence_hint == "" and "check" not in o.toolTip()


# ---- geometry -------------------------------------------------------------------------------
def test_geometry_helpers():
    assert parse_geometry("10,20,300,100") == (10, 20, 300, 100)
    assert parse_geometry("garbage") is None
    assert parse_geometry("1,2,0,5") is None
    assert parse_geometry("") is None
    assert format_geometry((1, 2, 3, 4)) == "1,2,3,4"
    area = (0, 0, 1920, 1080)
    assert clamp_rect((5000, 5000, 800, 150), area) == (1120, 930, 800, 150)
    assert clamp_rect((-300, -10, 800, 150), area) == (0, 0, 800, 150)
    assert clamp_rect((0, 0, 4000, 2000), area) == (0, 0, 1920, 1080)
    # A second screen to the right (negative and offset origins work too).
    assert clamp_rect((3000, 100, 800, 150), (1920, 0, 1280, 1024)) == (2400, 100, 800, 150)
    assert dock_position((800, 150), area, "bottom") == (560, 1080 - 150 - 48)
    assert dock_position((800, 150), area, "top") == (560, 48)


def test_floating_geometry_restored(make, settings):
    settings.set("overlay/dock", "floating")
    settings.set("overlay/geometry", "100,120,500,140")
    o = make()
    g = o.geometry()
    assert (g.x(), g.y(), g.width(), g.height()) == (100, 120, 500, 140)


def test_offscreen_geometry_is_clamped_onto_a_screen(make, settings):
    settings.set("overlay/dock", "floating")
    settings.set("overlay/geometry", "9000,9000,500,140")
    settings.set("overlay/screen", "a monitor that was unplugged")
    o = make()
    avail = QGuiApplication.primaryScreen().availableGeometry()
    assert avail.contains(o.geometry())


def test_dock_bottom_and_top(make, settings):
    o = make()
    avail = QGuiApplication.primaryScreen().availableGeometry()
    g = o.geometry()
    assert g.center().x() == pytest.approx(avail.center().x(), abs=2)
    assert g.bottom() < avail.bottom() and avail.bottom() - g.bottom() <= 60
    o.set_dock("top")
    assert o.geometry().top() - avail.top() <= 60
    assert settings.get("overlay/dock") == "top"
    assert parse_geometry(settings.get("overlay/geometry")) == (o.x(), o.y(), o.width(), o.height())
    with pytest.raises(ValueError):
        o.set_dock("left")


def test_user_drag_is_saved_switches_to_floating_and_is_restored(make, settings, qtbot):
    o = make()
    start = o.pos()
    # Offscreen has no window manager: the overlay falls back to moving itself with the mouse.
    qtbot.mousePress(o, Qt.MouseButton.LeftButton, pos=QPoint(o.width() // 2, o.height() // 2))
    qtbot.mouseMove(o, QPoint(o.width() // 2 + 30, o.height() // 2 - 80))
    qtbot.mouseRelease(o, Qt.MouseButton.LeftButton, pos=QPoint(o.width() // 2 + 30, o.height() // 2 - 80))
    qtbot.waitUntil(lambda: settings.get("overlay/dock") == "floating", timeout=3000)
    assert o.pos() != start
    saved = parse_geometry(settings.get("overlay/geometry"))
    assert saved == (o.x(), o.y(), o.width(), o.height())
    assert settings.get("overlay/screen") == o.screen().name()
    again = CaptionOverlay(settings)
    qtbot.addWidget(again)
    assert (again.x(), again.y(), again.width(), again.height()) == saved


def test_overlay_pulled_back_when_its_screen_changes(make, settings, qtbot):
    settings.set("overlay/dock", "floating")
    o = make()
    o.setGeometry(5000, 4000, 500, 120)   # where the user had put it, on a monitor now unplugged
    o.save_geometry()
    assert not QGuiApplication.primaryScreen().availableGeometry().contains(o.geometry())
    o.keep_on_screen()
    assert QGuiApplication.primaryScreen().availableGeometry().contains(o.geometry())
    settings.set("overlay/dock", "top")
    o.setGeometry(5000, 4000, 500, 120)
    o.save_geometry()
    o._screens_changed()                  # what a screen change triggers (queued)
    qtbot.waitUntil(lambda: o.geometry().top() <= 60)


def test_resize_by_hand_from_an_edge(make, settings, qtbot):
    """Offscreen has no window manager: resizing from the right edge is done by the overlay itself."""
    o = make()
    w, h, x = o.width(), o.height(), o.x()
    edge = QPoint(o.width() - 3, o.height() // 2)
    qtbot.mousePress(o, Qt.MouseButton.LeftButton, pos=edge)
    qtbot.mouseMove(o, QPoint(edge.x() - 200, edge.y()))
    qtbot.mouseRelease(o, Qt.MouseButton.LeftButton, pos=QPoint(edge.x() - 200, edge.y()))
    assert o.width() == w - 200 and o.height() == h and o.x() == x
    qtbot.waitUntil(lambda: (parse_geometry(settings.get("overlay/geometry")) or (0, 0, 0, 0))[2] == w - 200,
                    timeout=3000)
    # Never below the minimum size.
    edge = QPoint(o.width() - 3, o.height() // 2)
    qtbot.mousePress(o, Qt.MouseButton.LeftButton, pos=edge)
    qtbot.mouseMove(o, QPoint(edge.x() - 5000, edge.y()))
    qtbot.mouseRelease(o, Qt.MouseButton.LeftButton, pos=QPoint(edge.x() - 5000, edge.y()))
    assert o.width() == o.minimumWidth()


def test_unusable_saved_geometry_falls_back_to_the_dock(make, settings):
    settings.store.set_value("overlay/geometry", "not,a,rect")
    settings.set("overlay/dock", "floating")
    o = make()
    assert QGuiApplication.primaryScreen().availableGeometry().contains(o.geometry())


def test_hide_show_persists(make, settings):
    o = make()
    o.set_overlay_visible(False)
    assert not o.isVisible() and settings.get("overlay/visible") is False
    o.toggle_visible()
    assert o.isVisible() and settings.get("overlay/visible") is True


# ---- speakers ---------------------------------------------------------------------------------
def test_speakers_are_named_coloured_revised_and_renamed(make):
    from app.core.events import Revision
    from app.core.styles import SPEAKER_PALETTE
    o = make(captions__lines=3)
    first = Final("Good morning.", 0, 900, speaker="A", language="en")
    o.on_final("system", first)
    o.on_final("system", Final("Hola.", 1000, 1800, speaker="B", language="es"))
    assert o.caption_text() == "Speaker A: Good morning.\nSpeaker B: [ES] Hola."
    seen = colours_in(o, captions_only=True)
    assert SPEAKER_PALETTE[0] in seen and SPEAKER_PALETTE[1] in seen     # each speaker's own colour
    o.on_revision("system", Revision(first.id, "B"))
    assert " ".join(o.caption_text().split()) == "Speaker B: Good morning. [ES] Hola."
    assert "[ES]\n" not in o.caption_text()                # a tag stays with its word
    assert o.rename_speaker("B", "Dana") == "Dana"
    assert " ".join(o.caption_text().split()) == "Dana: Good morning. [ES] Hola."
    assert o.rename_speaker("B", "   ") is None and "empty" in o.toolTip()
    assert o.model.speakers_on_screen() == [("B", "Dana")]
    assert o.accessibleDescription().startswith("Dana: Good morning.")


def test_unknown_speaker_shows_no_name(make):
    o = make()
    o.on_final("system", Final("Mm.", 0, 300, speaker="UNKNOWN"))
    assert o.caption_text() == "Mm."
# ---- the status strip: readable, and the whole message reachable ------------------------------
def test_status_line_scales_with_the_captions_and_has_a_readable_minimum(make, settings):
    from app.qt.caption_painter import STATUS_MIN_PT
    o = make(appearance__font_size=16)
    assert o.painter.small_font.pointSizeF() == STATUS_MIN_PT
    assert QFontMetricsF(o.painter.small_font).height() >= 14   # px, was ~11
    o.preview_style({"appearance/font_size": 40})
    assert o.painter.small_font.pointSizeF() > STATUS_MIN_PT + 4


def test_status_text_contrast_measured_from_pixels(make):
    from app.core.styles import contrast_ratio
    o = make(appearance__background_opacity=75)
    o.set_click_through(True)
    o.set_status(Status(state=State.LIVE, text="Live (offline engine) MMMMMMMM"))
    img = o.grab().toImage()
    r = o._status_rect().toRect()
    colours = [img.pixelColor(x, y) for x in range(r.left() + 20, r.left() + 260) for y in range(r.top(), r.bottom())]
    # Composite over a white desktop (the worst case for a dark translucent background).
    def over_white(c):
        a = c.alphaF()
        return "#" + "".join(f"{round(v * a + 255 * (1 - a)):02x}" for v in (c.red(), c.green(), c.blue()))
    shades = sorted({over_white(c) for c in colours}, key=lambda h: int(h[1:3], 16))
    background, text = over_white(img.pixelColor(r.right() - 2, r.top() + 1)), shades[-1]
    assert contrast_ratio(text, background) >= 4.5, (text, background)


def test_tooltips_show_on_an_overlay_that_is_never_active(make):
    o = make()
    assert o.testAttribute(Qt.WidgetAttribute.WA_AlwaysShowToolTips)


def test_clicking_the_status_strip_shows_the_whole_message(make, qtbot):
    from PySide6.QtWidgets import QToolTip
    o = make()
    reason = "Could not connect to the server at 127.0.0.1:9 (connection refused) " * 3
    o.set_status(Status(state=State.RECONNECTING, text="Reconnecting: " + reason, detail=reason))
    start = o.pos()
    r = o._status_rect()
    QToolTip.hideText()
    qtbot.mouseClick(o, Qt.MouseButton.LeftButton, pos=r.center().toPoint())
    assert reason.strip() in QToolTip.text()      # (offscreen never maps the tip; the text is set)
    assert o.pos() == start                       # a click there reads, it does not drag
    assert reason.strip() in o.accessibleDescription()


# ---- readability of the defaults, measured from rendered pixels --------------------------------
def _over(c: QColor, backdrop: tuple[int, int, int]) -> str:
    a = c.alphaF()
    return "#" + "".join(f"{round(v * a + b * (1 - a)):02x}" for v, b in zip((c.red(), c.green(), c.blue()), backdrop))


def _glyph_core_and_background(o, backdrop=(255, 255, 255)):
    """The commonest fully opaque colour in the caption area other than the outline (the glyphs'
    inside), and the background there, both as seen over ``backdrop``."""
    from collections import Counter
    img = o.grab().toImage()
    r = o._text_rect().toRect()
    counts = Counter()
    for x in range(r.left(), r.right()):
        for y in range(r.top(), r.bottom()):
            c = img.pixelColor(x, y)
            if c.alpha() == 255 and c.name() != o.caption_style().effect_color:
                counts[c.name()] += 1
    core = counts.most_common(1)[0][0]
    background = _over(img.pixelColor(r.right() - 2, r.top() + 2), backdrop)
    return core, background


def test_default_final_and_live_words_contrast_from_pixels(make):
    from app.core.styles import contrast_ratio
    o = make()
    o.set_click_through(True)   # as in use: locked, no frame
    o.on_partial("mic", Partial("MMMM WWWW", 0, 1))
    partial, bg = _glyph_core_and_background(o)
    o.on_final("mic", Final("MMMM WWWW", 0, 1))
    final, bg_final = _glyph_core_and_background(o)
    assert contrast_ratio(final, bg_final) >= 7.0, (final, bg_final)        # over a white desktop
    assert contrast_ratio(partial, bg) >= 4.5, (partial, bg)
    assert contrast_ratio(partial, final) > 1.5                            # still visibly "live"


def test_default_background_masks_the_window_underneath(make):
    """Black text on a white page behind the overlay: what shows through must be near invisible."""
    from app.core.styles import contrast_ratio
    o = make()
    o.set_click_through(True)
    o.on_final("mic", Final(".", 0, 1))     # a caption on screen: the box is drawn
    img = o.grab().toImage()
    c = img.pixelColor(o.width() // 2, o.height() // 2)
    through_white, through_black = _over(c, (255, 255, 255)), _over(c, (0, 0, 0))
    assert contrast_ratio(through_white, through_black) < 1.5


def test_source_labels_are_styled_as_labels_not_as_live_words(make):
    o = make(appearance__text_effect="none")
    o.set_click_through(True)
    o.set_source_labels(["mic", "system"])
    o.on_final("mic", Final("Hi", 0, 1))
    style = o.caption_style()
    img = o.grab().toImage()
    r = o._text_rect().toRect()
    chip = [(x, y) for x in range(r.left(), r.right()) for y in range(r.top(), r.bottom())
            if img.pixelColor(x, y).name() == style.label_chip_color]
    assert chip                                        # the chip behind "Mic:"
    left, right = min(x for x, _ in chip), max(x for x, _ in chip)
    top, bottom = min(y for _, y in chip), max(y for _, y in chip)
    inside = {img.pixelColor(x, y).name() for x in range(left, right) for y in range(top, bottom)}
    assert style.text_color in inside                  # the label itself at full contrast, not dimmed
    assert right - left < o.painter.measure("Mic: Hi") * 0.7   # only the label wears the chip


def test_unlocked_overlay_at_zero_opacity_keeps_something_to_grab(make):
    from app.qt.caption_painter import UNLOCKED_MIN_ALPHA
    o = make(appearance__background_opacity=0)
    assert pixel(o, o.width() // 2, o.height() // 2).alpha() == UNLOCKED_MIN_ALPHA
    o.set_click_through(True)                          # locked: exactly the user's 0 %
    assert pixel(o, o.width() // 2, o.height() // 2).alpha() == 0


def test_no_empty_dark_box_when_there_is_nothing_to_read(make, qtbot):
    o = make(captions__clear_after_s=1)
    o.set_click_through(True)
    middle = (o.width() // 2, int(o._text_rect().center().y()))
    assert pixel(o, *middle).alpha() == 0                       # before the first caption
    assert pixel(o, o.width() // 2, int(o._status_rect().center().y())).alpha() > 0   # status stays
    o.on_final("mic", Final("Soon gone.", 0, 1))
    assert pixel(o, *middle).alpha() > 0                        # captions: the box is there
    qtbot.waitUntil(lambda: o.caption_text() == "", timeout=5000)
    assert pixel(o, *middle).alpha() == 0                       # after the auto-clear: gone again
    o.set_click_through(False)
    assert pixel(o, *middle).alpha() > 0                        # unlocked: the whole area to grab


# ---- assistive technology ---------------------------------------------------------------------
def test_overlay_is_named_static_text_holding_the_captions(make):
    from PySide6.QtGui import QAccessible
    o = make()
    o.on_final("mic", Final("Accessible words.", 0, 1))
    iface = QAccessible.queryAccessibleInterface(o)
    assert iface.role() == QAccessible.Role.StaticText
    assert iface.text(QAccessible.Text.Name) == "Live captions"
    assert iface.text(QAccessible.Text.Value) == "Accessible words."
    assert "Accessible words." in iface.text(QAccessible.Text.Description)


def _announcements(monkeypatch):
    from PySide6.QtGui import QAccessibleAnnouncementEvent
    import app.qt.overlay as overlay_module
    events = []
    monkeypatch.setattr(overlay_module, "notify_accessibility", events.append)
    return lambda: [(e.message(), e.politeness().name) for e in events
                    if isinstance(e, QAccessibleAnnouncementEvent)]


def test_connection_changes_are_announced_unless_finals_only(make, monkeypatch, settings):
    said = _announcements(monkeypatch)
    o = make()
    o.set_status(Status(state=State.LIVE, text="Live"))
    o.on_partial("mic", Partial("half a", 0, 1))
    o.on_partial("mic", Partial("half a sentence", 0, 1))
    o.set_status(Status(state=State.RECONNECTING, text="Reconnecting", detail="lost"))
    o.set_status(Status(state=State.RECONNECTING, text="Reconnecting", detail="lost again"))
    o.set_status(Status(state=State.LIVE, text="Live"))
    o.set_status(Status(state=State.ERROR, text="Stopped", detail="The API key was not accepted."))
    assert said() == [("Captions paused: reconnecting.", "Polite"), ("Captions are back.", "Polite"),
                      ("Captions stopped: The API key was not accepted.", "Assertive")]
    # Partials are never announced (word by word would drown the reader).
    assert not any("half" in m for m, _ in said())
    settings.set("accessibility/finals_only", True)
    before = len(said())
    o.set_status(Status(state=State.RECONNECTING, text="Reconnecting"))
    o.on_final("mic", Final("Only this.", 0, 1))
    assert said()[before:] == [("Only this.", "Polite")]


# ---- translation ------------------------------------------------------------------------------
def test_translation_is_drawn_under_its_caption_in_its_own_colour(make):
    from app.core.events import Translation
    from app.core.styles import style_from_settings
    o = make(captions__lines=3, appearance__text_effect="none")
    o.set_translation_mode("both")
    final = Final("Good morning", 0, 500)
    o.on_final("mic", final)
    o.on_translation("mic", Translation(final.id, "es", "Buenos días"))
    lines = o.model.lines()
    assert [line.text for line in lines] == ["Good morning", "Buenos días"]
    assert lines[1].runs[0].kind == "translation"
    tint = QColor(style_from_settings(o.settings).translation_color).name()
    assert tint in colours_in(o, captions_only=True)


def test_translation_only_mode_shows_the_original_after_the_wait(make, monkeypatch):
    import app.qt.overlay as overlay_module
    o = make(captions__lines=2)
    o.set_translation_mode("translation")
    now = [1000.0]
    monkeypatch.setattr(overlay_module.time, "monotonic", lambda: now[0])
    o.on_final("mic", Final("Hello there", 0, 500))
    assert o.model.visible_text() == ""
    now[0] += 3
    o._tick()
    assert o.model.visible_text() == "Hello there"
    o.set_translation_mode("")
    o.on_final("mic", Final("No waiting", 600, 900))
    assert "No waiting" in o.model.visible_text()
