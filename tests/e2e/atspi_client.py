"""An assistive-technology client for the tests, run with the SYSTEM Python (python3-pyatspi).

    atspi_client.py tree APP_NAME        → JSON: every accessible of that application
    atspi_client.py listen SECONDS       → prints "ready", then one JSON line per event

It sees the app exactly as a screen reader does: over the AT-SPI D-Bus, from another process.
"""

import json
import sys

import pyatspi
from gi.repository import GLib

STATES = ("focusable", "focused", "showing", "visible", "enabled", "checkable", "checked", "editable")


def node(acc, depth, path):
    try:
        states = acc.getState()
        state_names = [s for s in STATES if states.contains(getattr(pyatspi, "STATE_" + s.upper()))]
        entry = {"depth": depth, "path": path, "name": acc.name or "", "role": acc.getRoleName(),
                 "description": acc.description or "", "states": state_names}
        try:
            text = acc.queryText()
            entry["text"] = text.getText(0, -1)
        except NotImplementedError:
            pass
        return entry
    except Exception as exc:  # an object that vanished while walking
        return {"depth": depth, "path": path, "error": str(exc)}


def walk(acc, depth=0, path="", out=None):
    out = [] if out is None else out
    out.append(node(acc, depth, path))
    try:
        count = acc.childCount
    except Exception:
        return out
    for i in range(count):
        try:
            child = acc.getChildAtIndex(i)
        except Exception:
            continue
        if child is not None and depth < 40:
            walk(child, depth + 1, f"{path}/{i}", out)
    return out


def tree(app_name):
    desktop = pyatspi.Registry.getDesktop(0)
    apps = []
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        if app is not None and app.name == app_name:
            apps.append(walk(app))
    print(json.dumps(apps))


def listen(seconds):
    def on_event(event):
        try:
            source = event.source.name if event.source else ""
            role = event.source.getRoleName() if event.source else ""
        except Exception:
            source, role = "", ""
        detail = event.any_data
        print(json.dumps({"type": event.type, "source": source, "role": role,
                          "data": detail if isinstance(detail, (str, int, float)) else str(detail),
                          "detail1": event.detail1}), flush=True)

    for kind in ("object:announcement", "object:property-change:accessible-description",
                 "object:property-change:accessible-name", "object:text-changed",
                 "object:state-changed:focused", "window:activate"):
        pyatspi.Registry.registerEventListener(on_event, kind)
    GLib.timeout_add(int(float(seconds) * 1000), lambda: pyatspi.Registry.stop())
    GLib.timeout_add(300, lambda: (print("ready", flush=True), False)[1])
    pyatspi.Registry.start()


if __name__ == "__main__":
    {"tree": tree, "listen": listen}[sys.argv[1]](*sys.argv[2:])
