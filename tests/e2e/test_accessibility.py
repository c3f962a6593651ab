"""Checked the way a screen reader sees the app: over AT-SPI, from another process.

A private D-Bus session with the AT-SPI registry (at-spi2-core) joins the test X desktop; the app
runs with Qt's AT-SPI bridge; ``atspi_client.py`` (system Python + python3-pyatspi) walks the
accessible tree and listens for events, as Orca would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(240)]

CLIENT = Path(__file__).with_name("atspi_client.py")
SYSTEM_PYTHON = "/usr/bin/python3"
APP_NAME = "caption-overlay-a11y"
# Roles a person operates; each needs a name a screen reader can say.
INTERACTIVE = {"push button", "combo box", "check box", "spin button", "slider", "text", "list",
               "radio button", "toggle button", "menu item", "check menu item", "password text",
               "entry", "table", "tree"}

APP = f"""
from PySide6.QtCore import QPoint
app.setApplicationName({APP_NAME!r})
app.setQuitOnLastWindowClosed(False)   # as run_gui does: closing a dialog must not quit
from app.core.settings import DictStore, Settings
from app.core.events import Final, Partial
from app.qt.application import GuiApp
from app.qt.controller import Controller
settings = Settings(DictStore({{"app/start_on_launch": False, "overlay/click_through": False,
                               "captions/clear_after_s": 0}}))
gui = GuiApp(settings, None)
gui.start()
gui.overlay.set_overlay_visible(True, persist=False)
"""


def _has_pyatspi() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    return subprocess.run([SYSTEM_PYTHON, "-c", "import pyatspi"], capture_output=True).returncode == 0


@pytest.fixture
def a11y(desktop, tmp_path):
    if not (_has_pyatspi() and shutil.which("dbus-daemon") and os.path.exists("/usr/libexec/at-spi-bus-launcher")):
        pytest.fail("AT-SPI test stack missing: apt-get install at-spi2-core python3-pyatspi gir1.2-atspi-2.0 dbus")
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address=1"],
                           env=desktop.env, stdout=subprocess.PIPE, text=True)
    address = bus.stdout.readline().strip()
    # No Secret Service on this bus: the keyring is told so, rather than waiting for one to appear.
    env = {**desktop.env, "DBUS_SESSION_BUS_ADDRESS": address, "QT_LINUX_ACCESSIBILITY_ALWAYS_ON": "1",
           "NO_AT_BRIDGE": "0", "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    desktop.env.update(env)                 # Qt children get the same session bus
    # Start the registry (D-Bus activation) before the app, so the app registers with it at once.
    subprocess.run([SYSTEM_PYTHON, str(CLIENT), "tree", "none"], env=env, capture_output=True, timeout=60)

    class AT:
        def tree(self) -> list[dict]:
            out = subprocess.run([SYSTEM_PYTHON, str(CLIENT), "tree", APP_NAME], env=env,
                                 capture_output=True, text=True, timeout=60)
            apps = json.loads(out.stdout or "[]")
            return apps[0] if apps else []

        def listen(self, seconds: float) -> subprocess.Popen:
            proc = subprocess.Popen([SYSTEM_PYTHON, str(CLIENT), "listen", str(seconds)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert proc.stdout.readline().strip() == "ready"
            return proc

    try:
        yield AT()
    finally:
        bus.terminate()
        bus.wait(timeout=10)


def events_of(listener: subprocess.Popen) -> list[dict]:
    out, _ = listener.communicate(timeout=60)
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def nameless(nodes: list[dict]) -> list[dict]:
    return [n for n in nodes if n.get("role") in INTERACTIVE and "showing" in n.get("states", ())
            and not n.get("name", "").strip()]


def test_a_screen_reader_can_read_and_operate_the_app(desktop, a11y, artifacts_dir):
    app = desktop.spawn_qt(APP)
    app.wait_for("gui.overlay.isVisible() and gui.overlay.windowHandle().isExposed()")
    tree = desktop.wait_for(lambda: [n for n in a11y.tree() if n.get("name") == "Live captions"], timeout=30)
    assert tree, a11y.tree()
    [overlay] = [n for n in tree if n["depth"] == 1]
    assert overlay["role"] in ("static", "label"), overlay      # not a nameless "filler"

    # ---- finals are announced, politely queued; partials are not announced word by word -------
    listener = a11y.listen(6)
    app.call("""
for words in ("the budget", "the budget review", "the budget review starts"):
    gui.controller.partial.emit("mic", Partial(words, 0, 500))
gui.controller.final.emit("mic", Final("The budget review starts at nine.", 0, 900))
gui.controller.partial.emit("mic", Partial("please send", 1000, 1400))
gui.controller.final.emit("mic", Final("Please send the slides.", 1000, 1900))
""")
    events = events_of(listener)
    announced = [e["data"] for e in events if e["type"].startswith("object:announcement")]
    assert announced == ["The budget review starts at nine.", "Please send the slides."], events
    spoken = " ".join(str(e["data"]) for e in events)
    assert "the budget review starts" not in spoken.replace("The budget review starts at nine.", "")
    # ...and the finished text is there to read, from the overlay itself.
    overlay_now = next(n for n in a11y.tree() if n.get("name") == "Live captions")
    assert "Please send the slides." in overlay_now["description"]

    # ---- every settings control has a name, on every page -------------------------------------
    app.call("gui.open_settings()")
    app.wait_for("gui._settings_dialog is not None and gui._settings_dialog.windowHandle().isExposed()")
    pages = app.call("[p.title for p in gui._settings_dialog.pages]")
    missing = {}
    for row, title in enumerate(pages):
        app.call(f"gui._settings_dialog.nav.setCurrentRow({row})")
        time.sleep(0.3)
        nodes = a11y.tree()
        assert any(n.get("role") == "dialog" and "settings" in n.get("name", "").lower() for n in nodes), \
            [n for n in nodes if n.get("depth", 9) <= 1]
        if nameless(nodes):
            missing[title] = nameless(nodes)
    assert not missing, json.dumps(missing, indent=1)
    desktop.screenshot(artifacts_dir / "a11y-settings.png")
    app.call("gui._settings_dialog.reject()")

    # ---- the history window -------------------------------------------------------------------
    app.call("gui.open_history()")
    app.wait_for("gui._history.windowHandle().isExposed()")
    nodes = a11y.tree()
    names = {n.get("name") for n in nodes}
    assert {"Search captions", "Captions", "Copy", "Export…"} <= names, json.dumps(sorted(filter(None, names)))
    # Qt names a combo box after its current entry: the session picker reads "Live session".
    assert any(n.get("role") == "combo box" and n.get("name") == "Live session" for n in nodes)
    assert not nameless(nodes), nameless(nodes)
    app.call("gui._history.close()")

    # ---- the tray menu, by keyboard alone (the overlay's right-click menu here: no tray) ------
    # Popup menus are not children of the application object; a screen reader follows them by
    # their focus events, as does this listener.
    listener = a11y.listen(8)
    app.call("gui.tray.menu.popup(gui.overlay.mapToGlobal(QPoint(40, 20)))")
    app.wait_for("gui.tray.menu.isVisible()")
    time.sleep(0.5)
    texts = app.call("[a.text().split(chr(9))[0] for a in gui.tray.menu.actions() "
                     "if a.isVisible() and a.isEnabled() and not a.isSeparator()]")   # what arrow keys visit
    steps = texts.index("History…") + 1
    desktop.xdotool("key", "--delay", "120", *["Down"] * steps)
    time.sleep(0.3)
    desktop.screenshot(artifacts_dir / "a11y-tray-menu.png")
    desktop.xdotool("key", "Return")
    app.wait_for("gui._history is not None and gui._history.isVisible()")   # the keyboard worked
    events = events_of(listener)
    focused = [e for e in events if e["type"].startswith("object:state-changed:focused") and e["detail1"] == 1]
    items = [e for e in focused if e["role"] in ("menu item", "check menu item")]
    assert items and all(e["source"].strip() for e in items), focused
    assert "History…" in {e["source"] for e in items}, items
    frame = next(n for n in a11y.tree() if "caption history" in n.get("name", "").lower())
    assert frame["role"] == "frame", frame


def test_translation_only_mode_announces_what_the_screen_shows(desktop, a11y, artifacts_dir):
    """A screen reader hears the translation the overlay shows, not the original sentence; a
    translation that does not come in time leaves the original shown, and announced."""
    app = desktop.spawn_qt(APP + """
from app.core.events import Translation
gui.controller.translation_mode.emit("translation")
""")
    app.wait_for("gui.overlay.isVisible() and gui.overlay.windowHandle().isExposed()")
    desktop.wait_for(lambda: [n for n in a11y.tree() if n.get("name") == "Live captions"], timeout=30)
    listener = a11y.listen(7)
    app.call("""
gui.controller.final.emit("mic", Final("Good morning, everyone.", 0, 900, id=9001))
gui.controller.translation.emit("mic", Translation(9001, "es", "Buenos días a todos."))
gui.controller.final.emit("mic", Final("The translation of this one is late.", 1000, 1900, id=9002))
""")
    time.sleep(4.0)              # past the 2.5 s wait: the original of the second is shown
    shown = app.call("gui.overlay.readable_text()")
    desktop.screenshot(artifacts_dir / "a11y-translation-only.png")
    events = events_of(listener)
    announced = [e["data"] for e in events if e["type"].startswith("object:announcement")]
    assert announced == ["Buenos días a todos.", "The translation of this one is late."], events
    assert "Good morning" not in shown and "Buenos días a todos." in shown, shown
    assert "The translation of this one is late." in shown, shown
