"""The real overlay window on a real X server with a compositor and a window manager.

Each test runs the overlay in a Qt child process on a private Xvfb (see tests/fixtures/desktop.py)
and checks it from the outside with the X tools, the way a user's desktop sees it.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

pytestmark = pytest.mark.desktop

# A frameless window of one colour, below everything, so pixels under the overlay are known.
BACKDROP = """
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget, QPushButton

def make_backdrop(color, rect):
    w = QWidget()
    w.setWindowFlags(Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnBottomHint)
    w.setStyleSheet(f"background: {color};")
    w.setGeometry(*rect)
    w.show()
    return w
"""

OVERLAY = BACKDROP + """
from app.core.settings import DictStore, Settings
from app.qt.overlay import CaptionOverlay
from app.qt.controller import Controller
from app.qt.tray import Tray
from app.core.events import Final, Partial

settings = Settings(DictStore({
    "overlay/dock": "floating", "overlay/geometry": "240,520,800,160",
    "appearance/background_opacity": OPACITY, "appearance/font_size": 28,
}))
controller = Controller(settings)
overlay = CaptionOverlay(settings)
tray = Tray(controller, overlay)
overlay.show()
def wid():
    return int(overlay.winId())
def geo():
    g = overlay.geometry()
    return [g.x(), g.y(), g.width(), g.height()]
"""


def overlay_proc(desktop, opacity=75, extra=""):
    proc = desktop.spawn_qt(OVERLAY.replace("OPACITY", str(opacity)) + extra)
    proc.wait_for("overlay.isVisible() and overlay.windowHandle().isExposed()")
    return proc


def wait_mapped(desktop, wid):
    """Wait until the window is viewable at its final place; returns (x, y, w, h) from the X server."""
    assert desktop.wait_for(lambda: "IsViewable" in desktop.xwininfo(wid)), desktop.xwininfo(wid)
    assert desktop.wait_for(lambda: desktop.geometry(wid)[:2] != (0, 0))
    return desktop.geometry(wid)


def test_overlay_is_above_undecorated_32bit_and_never_takes_focus(desktop):
    proc = overlay_proc(desktop)
    wid = proc.call("wid()")
    wait_mapped(desktop, wid)
    state = desktop.wait_for(lambda: (s := desktop.xprop(wid, "_NET_WM_STATE")) and "ABOVE" in s and s)
    assert "_NET_WM_STATE_ABOVE" in state
    motif = desktop.xprop(wid, "_MOTIF_WM_HINTS")
    # flags, functions, decorations, …: decorations (3rd field) must be 0.
    fields = [int(v, 0) for v in re.findall(r"0x[0-9a-fA-F]+|\b\d+\b", motif.split("=", 1)[1])]
    assert fields[0] & 0x2 and fields[2] == 0, motif
    assert "Depth: 32" in desktop.xwininfo(wid)
    hints = desktop.xprop(wid, "WM_HINTS")
    assert "accepts input or input focus: False" in hints, hints
    active = desktop.root_prop("_NET_ACTIVE_WINDOW")
    assert hex(wid) not in active
    # The geometry the settings asked for, exactly (no frame, not moved by the WM).
    assert wait_mapped(desktop, wid) == (240, 520, 800, 160)


def test_click_through_reaches_the_window_below_and_the_tray_action_undoes_it(desktop):
    proc = overlay_proc(desktop, extra="""
clicks = []
button = QPushButton("under")
button.setWindowFlags(Qt.WindowType.FramelessWindowHint)
button.setGeometry(200, 480, 900, 260)
button.clicked.connect(lambda: clicks.append(1))
button.show()
button.lower()
overlay.raise_()
""")
    proc.wait_for("button.windowHandle().isExposed()")
    wid = proc.call("wid()")
    x, y, w, h = wait_mapped(desktop, wid)
    cx, cy = x + w // 2, y + h // 2

    proc.call("overlay.set_click_through(True)")
    assert proc.call("settings.get('overlay/click_through')") is True
    desktop.click(cx, cy)
    assert proc.wait_for("len(clicks) == 1"), "the click did not pass through the overlay"

    # The tray's "Click-through" item (checked) turns it off again.
    assert proc.call("tray.lock_action.isChecked()") is True
    proc.call("tray.lock_action.trigger()")
    assert proc.call("overlay.click_through") is False
    assert proc.call("tray.lock_action.isChecked()") is False
    desktop.click(cx, cy)
    # The overlay now takes the click itself: the button underneath gets nothing more.
    proc.call("import time; time.sleep(0.5)")
    assert proc.call("len(clicks)") == 1


def test_background_is_a_true_alpha_blend_and_text_stays_opaque(desktop, artifacts_dir):
    proc = overlay_proc(desktop, opacity=50, extra="""
# Not the whole screen: openbox would treat a screen-sized undecorated window as full-screen,
# and a focused full-screen window sits above "keep above" windows (EWMH).
backdrop = make_backdrop("#ff0000", (100, 400, 1080, 360))
backdrop.lower()
overlay.set_click_through(True)   # no "unlocked" frame
overlay.on_final("mic", Final("Readable captions", 0, 1000))
""")
    proc.wait_for("backdrop.windowHandle().isExposed()")
    x, y, w, h = wait_mapped(desktop, proc.call("wid()"))
    # Outside the overlay: the backdrop itself.
    assert desktop.wait_for(lambda: desktop.pixel(x - 20, y + h // 2) == (255, 0, 0))
    # Inside the top padding: 50 % black over red = (128, 0, 0) — the compositor's exact blend.
    blend = desktop.wait_for(lambda: (p := desktop.pixel(x + w // 2, y + 6)) != (255, 0, 0) and p)
    r, g, b = blend
    assert abs(r - 128) <= 3 and g <= 3 and b <= 3, blend
    shot = desktop.screenshot(artifacts_dir / "overlay-translucent.png")
    # Opaque text: some pixels of the caption are pure white (a faded window would have none).
    out = desktop.run("convert", str(shot), "-crop", f"{w}x{h}+{x}+{y}", "-fill", "black", "+opaque",
                      "white", "-format", "%[fx:mean*w*h]", "info:")
    assert float(out) > 50, "no fully opaque white text pixels found"


def test_overlay_stays_above_a_newly_activated_window(desktop):
    proc = overlay_proc(desktop, opacity=100, extra="""
other = QWidget()
other.setWindowTitle("other app")
other.setStyleSheet("background: #00ff00;")
""")
    wid = proc.call("wid()")
    x, y, w, h = wait_mapped(desktop, wid)
    proc.call(f"other.setGeometry({x - 50}, {y - 100}, {w + 100}, {h + 200}); other.show()")
    proc.wait_for("other.windowHandle().isExposed()")
    other = proc.call("int(other.winId())")
    # The window manager reparents "other" into a frame; activate by its client id.
    desktop.xdotool("windowactivate", "--sync", str(other))
    desktop.wait_for(lambda: hex(other) in desktop.root_prop("_NET_ACTIVE_WINDOW"))
    stack = desktop.stacking()
    assert stack.index(wid) > stack.index(other), stack
    # And on screen: the overlay's opaque black background, not the green window.
    assert desktop.wait_for(lambda: desktop.pixel(x + w // 2, y + 6) == (0, 0, 0)), \
        desktop.pixel(x + w // 2, y + 6)


def test_global_hotkeys_toggle_click_through_and_visibility(desktop):
    proc = overlay_proc(desktop, extra="""
from app.qt.hotkeys import GlobalHotkeys
hotkeys = GlobalHotkeys()
failures = hotkeys.register({"toggle_click_through": "Ctrl+Alt+L", "toggle_visible": "Ctrl+Alt+H",
                             "force_end": "Ctrl+Alt+E"})
fired = []
def on_hotkey(name):
    fired.append(name)
    if name == "toggle_click_through":
        overlay.toggle_click_through()
    elif name == "toggle_visible":
        overlay.toggle_visible()
hotkeys.activated.connect(on_hotkey)
""")
    assert proc.call("hotkeys.supported") is True
    assert proc.call("failures") == {}
    assert proc.call("overlay.click_through") is False
    desktop.xdotool("key", "ctrl+alt+l")
    proc.wait_for("overlay.click_through")
    desktop.xdotool("key", "ctrl+alt+l")
    proc.wait_for("not overlay.click_through")
    desktop.xdotool("key", "ctrl+alt+h")
    proc.wait_for("not overlay.isVisible()")
    desktop.xdotool("key", "ctrl+alt+h")
    proc.wait_for("overlay.isVisible()")
    # Caps Lock on must not break the grab.
    desktop.xdotool("key", "Caps_Lock")
    desktop.xdotool("key", "ctrl+alt+e")
    proc.wait_for("'force_end' in fired")
    # A second grab of the same keys (another program) is refused with a reason, not a crash.
    other = desktop.spawn_qt("""
from app.qt.hotkeys import GlobalHotkeys
hk = GlobalHotkeys()
failures = hk.register({"force_end": "Ctrl+Alt+E"})
""")
    failures = other.call("failures")
    assert "already taken" in failures["force_end"]


def test_caption_overlay_with_no_arguments_shows_the_overlay_and_quits_cleanly(desktop, tmp_path):
    """``caption-overlay`` (here ``python -m app``): overlay window up, captions attempted with the
    configured source (no microphone here → a plain-words error, not a crash), SIGTERM → exit 0."""
    import signal
    import subprocess
    import sys

    env = {**desktop.env, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "app"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        found = desktop.wait_for(
            lambda: desktop.run("xdotool", "search", "--onlyvisible", "--name", "^Live captions$",
                                check=False).split(), timeout=30)
        assert found, (tmp_path / "app.log").read_text()
        wid = int(found[0])
        assert "_NET_WM_STATE_ABOVE" in desktop.wait_for(
            lambda: (s := desktop.xprop(wid, "_NET_WM_STATE")) and "ABOVE" in s and s)
        # The app's own global hotkey hides and shows it again.
        viewable = lambda: "IsViewable" in desktop.xwininfo(wid)  # noqa: E731
        desktop.xdotool("key", "ctrl+alt+shift+F9")
        assert desktop.wait_for(lambda: not viewable()), "Ctrl+Alt+Shift+F9 did not hide the overlay"
        desktop.xdotool("key", "ctrl+alt+shift+F9")
        assert desktop.wait_for(viewable), "Ctrl+Alt+Shift+F9 did not show the overlay again"
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
            proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=10)
        assert code == 0, (tmp_path / "app.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    # The missing microphone was reported in plain words, not as a traceback.
    output = (tmp_path / "app.log").read_text()
    assert "Traceback" not in output


SENTENCES = ("The quarterly budget review starts at nine tomorrow morning.",
             "Please send the updated slides to everyone before the meeting.")

LIVE_APP = BACKDROP + """
import json
from app.cli import build_parser
from app.core.settings import Settings
from app.qt.settings_store import QSettingsStore
from app.qt.application import GuiApp

settings = Settings(QSettingsStore(SETTINGS_PATH))
settings.set("captions/lines", 4)
settings.set("captions/clear_after_s", 0)
settings.set("appearance/font_size", 30)
backdrop = make_backdrop("#3b6ea5", (0, 300, 1280, 500))
args = build_parser().parse_args(["--source", "file:" + WAV, "--server", SERVER, "--engine", "assemblyai",
                                  "--protocol", PROTOCOL, "--transcript-dir", TRANSCRIPTS])
gui = GuiApp(settings, args)
partials, finals, states = [], [], []
gui.controller.partial.connect(lambda label, p: partials.append(p.text))
gui.controller.final.connect(lambda label, f: finals.append(f.text))
gui.controller.status_changed.connect(lambda s: states.append(s.state.value))
gui.start()
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["v3", "v2"])
def test_captions_from_a_loopback_session_appear_on_screen(desktop, loopback_server, speech_wav,
                                                           tmp_path, artifacts_dir, protocol):
    loopback_server.set_script(SENTENCES)
    wav = speech_wav(list(SENTENCES))
    setup = (LIVE_APP.replace("SETTINGS_PATH", repr(str(tmp_path / "settings.ini")))
             .replace("WAV", repr(str(wav))).replace("SERVER", repr(loopback_server.url))
             .replace("PROTOCOL", repr(protocol)).replace("TRANSCRIPTS", repr(str(tmp_path / "t"))))
    proc = desktop.spawn_qt(setup, env={"ASSEMBLYAI_API_KEY": loopback_server.api_key})
    proc.wait_for("gui.overlay.isVisible() and gui.overlay.windowHandle().isExposed()")
    # The first sentence's final, on the overlay, while the session is still live.
    proc.wait_for("'nine tomorrow morning.' in gui.overlay.caption_text().replace(chr(10), ' ')", timeout=60)
    assert proc.call("'live' in states")
    # The latency of that final is on the overlay's status line.
    proc.wait_for("'latency' in gui.overlay._status.summary()")
    desktop.screenshot(artifacts_dir / f"overlay-loopback-{protocol}.png")
    # The file ends: every final delivered, nothing shown twice.
    proc.wait_for("len(finals) == 2 and not gui.controller.running", timeout=90)
    assert proc.call("finals") == list(SENTENCES)
    assert proc.call("len(partials)") > 0, "no partial was ever shown"
    assert proc.call("gui.overlay.caption_text().replace(chr(10), ' ')") == " ".join(SENTENCES)
    assert proc.call("gui.controller.status.state.value") == "stopped"
    desktop.screenshot(artifacts_dir / f"overlay-loopback-{protocol}-end.png")
    transcript = proc.call("str(gui.controller.transcript_dir)")
    assert any(SENTENCES[1] in p.read_text() for p in (tmp_path / "t").glob("*.jsonl")), transcript
    assert loopback_server.all_violations == []
    assert loopback_server.sessions[0].protocol == protocol


def test_hidpi_geometry_is_logical_and_scaled_by_the_device_pixel_ratio(desktop):
    """At 200 % the logical geometry maps to twice the device pixels, is clamped onto the (logical
    640x400) screen, and what is saved stays logical (no creeping growth across restarts)."""
    proc = desktop.spawn_qt(OVERLAY.replace("OPACITY", "75"), env={"QT_SCALE_FACTOR": "2"})
    proc.wait_for("overlay.windowHandle().isExposed()")
    assert proc.call("overlay.devicePixelRatioF()") == 2.0
    wid = proc.call("wid()")
    # Saved 240,520 800x160 does not fit 640x400 logical: clamped to 0,240 640x160 → device ×2.
    assert desktop.wait_for(lambda: desktop.geometry(wid) == (0, 480, 1280, 320)), desktop.geometry(wid)
    proc.call("overlay.set_dock('top')")
    assert proc.call("settings.get('overlay/geometry')") == "0,48,640,160"
    assert desktop.wait_for(lambda: desktop.geometry(wid) == (0, 96, 1280, 320)), desktop.geometry(wid)


def test_dragging_the_unlocked_overlay_moves_it_through_the_window_manager_and_is_saved(desktop):
    proc = overlay_proc(desktop)
    wid = proc.call("wid()")
    x, y, w, h = wait_mapped(desktop, wid)
    cx, cy = x + w // 2, y + h // 2
    desktop.xdotool("mousemove", str(cx), str(cy), "sleep", "0.2", "mousedown", "1", "sleep", "0.2")
    for step in range(1, 11):  # a hand moves in steps, not in one jump
        desktop.xdotool("mousemove", str(cx - 15 * step), str(cy - 20 * step), "sleep", "0.03")
    desktop.xdotool("sleep", "0.2", "mouseup", "1")
    moved = desktop.wait_for(lambda: (g := desktop.geometry(wid))[:2] != (x, y) and g)
    assert moved, "the overlay did not move"
    assert abs(moved[0] - (x - 150)) <= 20 and abs(moved[1] - (y - 200)) <= 20, moved
    # Saved (debounced) as the new floating position, exactly where the X server has it.
    proc.wait_for("settings.get('overlay/dock') == 'floating'", timeout=10)
    desktop.wait_for(lambda: proc.call("settings.get('overlay/geometry')") == ",".join(map(str, desktop.geometry(wid))))
    assert proc.call("settings.get('overlay/geometry')") == ",".join(map(str, desktop.geometry(wid)))


def test_dragging_an_edge_resizes_and_the_text_rewraps(desktop):
    proc = overlay_proc(desktop, extra="""
settings.set("captions/lines", 3)
overlay.apply_settings({"captions/lines"})
overlay.on_final("mic", Final("one two three four five six seven eight nine ten eleven twelve thirteen", 0, 1))
""")
    wid = proc.call("wid()")
    x, y, w, h = wait_mapped(desktop, wid)
    lines_before = proc.call("len(overlay.model.lines())")
    ex, ey = x + w - 3, y + h // 2          # on the right edge
    desktop.xdotool("mousemove", str(ex), str(ey), "sleep", "0.2", "mousedown", "1", "sleep", "0.2")
    for step in range(1, 11):
        desktop.xdotool("mousemove", str(ex - 40 * step), str(ey), "sleep", "0.03")
    desktop.xdotool("sleep", "0.2", "mouseup", "1")
    resized = desktop.wait_for(lambda: (g := desktop.geometry(wid))[2] < w - 200 and g)
    assert resized, desktop.geometry(wid)
    assert resized[0] == x  # the left edge stayed put
    assert lines_before < 3
    proc.wait_for(f"len(overlay.model.lines()) > {lines_before}")  # rewrapped to the new width
    proc.wait_for("settings.get('overlay/geometry').split(',')[2] == str(overlay.width())", timeout=10)


def test_without_a_compositor_the_user_is_told_why_the_background_is_solid(desktop_no_compositor, tmp_path):
    desk = desktop_no_compositor
    proc = desk.spawn_qt(f"""
import argparse
from app.core.settings import DictStore, Settings
from app.qt.application import GuiApp
settings = Settings(DictStore({{"app/start_on_launch": False}}))
gui = GuiApp(settings, argparse.Namespace())
gui.start()
""")
    proc.wait_for("gui.overlay.isVisible()")
    assert proc.call("gui.info.translucency") is False
    assert "no compositor" in proc.call("gui.overlay._status_note")
    assert "compositor" in proc.call("gui.overlay.toolTip()")


def test_partials_repaint_only_their_line_and_leave_the_same_picture_as_a_full_repaint(desktop, artifacts_dir):
    """A partial growing on the last line repaints that line's band only; what the compositor
    shows afterwards must be exactly what a repaint of the whole overlay draws."""
    proc = overlay_proc(desktop, opacity=60, extra="""
backdrop = make_backdrop("#3050a0", (100, 400, 1080, 360))
backdrop.lower()
overlay.set_click_through(True)
painted = []
_paint = overlay.paintEvent
def _record(event):
    r = event.rect()
    painted.append([r.x(), r.y(), r.width(), r.height()])
    _paint(event)
overlay.paintEvent = _record
overlay.on_final("mic", Final("The first sentence is already on the screen.", 0, 1000))
""")
    proc.wait_for("backdrop.windowHandle().isExposed() and painted")
    x, y, w, h = wait_mapped(desktop, proc.call("wid()"))
    words = "and the second one grows word by word while the speaker goes on talking".split()
    proc.call("painted.clear()")
    for n in range(1, len(words) + 1):
        proc.call(f"overlay.on_partial('mic', Partial({' '.join(words[:n])!r}, 1000, 2000))")
        proc.call("import time; time.sleep(0.03)")
    proc.call("from PySide6.QtCore import QCoreApplication; QCoreApplication.processEvents()")
    time.sleep(0.5)                                   # the compositor has shown the last damage
    bands = proc.call("painted")
    assert bands and any(r[3] < h // 2 for r in bands), bands      # line bands, not the whole window
    partial_shot = desktop.screenshot(artifacts_dir / "overlay-partials-region.png")
    proc.call("painted.clear(); overlay.repaint()")
    assert proc.call("painted") == [[0, 0, w, h]]
    time.sleep(0.5)
    full_shot = desktop.screenshot(artifacts_dir / "overlay-partials-full.png")
    crop = f"{w}x{h}+{x}+{y}"
    res = subprocess.run(["compare", "-metric", "AE", str(partial_shot) + f"[{crop}]",
                          str(full_shot) + f"[{crop}]", "null:"], env=desktop.env,
                         capture_output=True, text=True, timeout=30)
    assert res.stderr.strip().split()[0] == "0", res.stderr     # differing pixels
