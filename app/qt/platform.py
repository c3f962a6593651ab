"""Per-OS and per-display-server facts the overlay depends on, in one place.

- Wayland gives clients no keep-above and no self-positioning: we detect it, say so in plain
  words, and offer to restart under XWayland (``QT_QPA_PLATFORM=xcb``), where both work.
- On X11, translucency needs a running compositor (``_NET_WM_CM_S<n>`` has an owner); without one
  the translucent background is drawn black, so we tell the user.
- macOS: keeping a tool window over full-screen Spaces needs NSWindow collection behaviour.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from dataclasses import dataclass

from PySide6.QtGui import QGuiApplication

log = logging.getLogger(__name__)

WAYLAND_KEEP_ABOVE = (
    "You are on Wayland, which does not let apps keep a window above others or place it "
    "themselves. The captions may be covered by other windows. Restarting with XWayland keeps "
    "the overlay on top.")
NO_COMPOSITOR = (
    "No compositor is running, so the overlay cannot be see-through: its background is drawn "
    "solid. Start your desktop's compositor (or e.g. picom/xcompmgr) for translucency.")


@dataclass(frozen=True)
class PlatformInfo:
    qpa: str                  # Qt platform plugin name: xcb, wayland, windows, cocoa, offscreen…
    wayland_session: bool     # the desktop session is Wayland (even if we run under XWayland)
    translucency: bool | None  # None = unknown
    notes: tuple[str, ...]    # sentences for the UI

    @property
    def keep_above_works(self) -> bool:
        return self.qpa != "wayland"

    @property
    def can_offer_xwayland(self) -> bool:
        return self.qpa == "wayland" and bool(os.environ.get("DISPLAY"))


def qpa_name() -> str:
    app = QGuiApplication.instance()
    return app.platformName() if app else os.environ.get("QT_QPA_PLATFORM", "")


def wayland_session() -> bool:
    return os.environ.get("XDG_SESSION_TYPE", "").lower() == "wayland" or bool(
        os.environ.get("WAYLAND_DISPLAY"))


def x11_compositor_running(display: str | None = None) -> bool | None:
    """True when a compositing manager owns ``_NET_WM_CM_S<screen>``; None if X11 is unreachable."""
    libname = ctypes.util.find_library("X11")
    if not libname:
        return None
    try:
        x11 = ctypes.cdll.LoadLibrary(libname)
    except OSError:
        return None
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XDefaultScreen.argtypes = [ctypes.c_void_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XGetSelectionOwner.restype = ctypes.c_ulong
    x11.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    name = (display or os.environ.get("DISPLAY") or "").encode() or None
    dpy = x11.XOpenDisplay(name)
    if not dpy:
        return None
    try:
        screen = x11.XDefaultScreen(dpy)
        atom = x11.XInternAtom(dpy, f"_NET_WM_CM_S{screen}".encode(), 0)
        return x11.XGetSelectionOwner(dpy, atom) != 0
    finally:
        x11.XCloseDisplay(dpy)


def detect() -> PlatformInfo:
    qpa = qpa_name()
    notes: list[str] = []
    translucency: bool | None = True
    if qpa == "wayland":
        notes.append(WAYLAND_KEEP_ABOVE)
    elif qpa == "xcb":
        translucency = x11_compositor_running()
        if translucency is False:
            notes.append(NO_COMPOSITOR)
    elif qpa in ("offscreen", "minimal"):
        translucency = None
    return PlatformInfo(qpa=qpa, wayland_session=wayland_session(), translucency=translucency,
                        notes=tuple(notes))


def xwayland_restart_command() -> tuple[list[str], dict[str, str]]:
    """argv and environment to restart this app under XWayland."""
    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    if getattr(sys, "frozen", False):
        argv = [sys.executable, *sys.argv[1:]]
    else:
        argv = [sys.executable, "-m", "app", *sys.argv[1:]]
    return argv, env


def restart_under_xwayland() -> None:
    """Replace this process with one using XWayland. Does not return on success."""
    argv, env = xwayland_restart_command()
    log.info("Restarting under XWayland")
    os.execve(argv[0], argv, env)


def prepare_window(widget) -> None:
    """Per-OS touches after the overlay's native window exists."""
    if sys.platform == "darwin":
        _mac_join_all_spaces(widget)


def _mac_join_all_spaces(widget) -> None:
    """Show the overlay on every Space, including over full-screen apps (needs PyObjC)."""
    try:
        import objc  # type: ignore
        from AppKit import (NSWindowCollectionBehaviorCanJoinAllSpaces,  # type: ignore
                            NSWindowCollectionBehaviorFullScreenAuxiliary)
    except ImportError:
        log.info("PyObjC not installed: the overlay stays on its own Space on macOS")
        return
    view = objc.objc_object(c_void_p=int(widget.winId()))
    window = view.window()
    window.setCollectionBehavior_(NSWindowCollectionBehaviorCanJoinAllSpaces
                                  | NSWindowCollectionBehaviorFullScreenAuxiliary)
    window.setHidesOnDeactivate_(False)


def hotkey_support() -> tuple[bool, str]:
    """Whether global hotkeys can work here, and why not."""
    qpa = qpa_name()
    if qpa == "xcb":
        return True, "X11"
    if sys.platform == "win32":
        return True, "Windows"
    if qpa == "wayland":
        return False, ("Wayland does not let apps grab global shortcuts; use the tray menu, or run "
                       "under XWayland (where the X11 hotkeys work while an X11 window has focus).")
    if sys.platform == "darwin":
        return False, "Global hotkeys are not available on macOS yet; use the menu-bar icon."
    return False, f"Global hotkeys are not available on the {qpa or 'current'} platform."
