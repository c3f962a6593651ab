"""Global hotkeys (show/hide, lock/unlock click-through, force end), where the platform allows.

- X11: ``XGrabKey`` on the root window through a private Xlib connection (ctypes). Its socket is
  watched by a ``QSocketNotifier`` on the GUI thread, so there is no extra thread at all. Grabs
  are repeated with Caps Lock / Num Lock so the keys work whatever those locks are.
- Windows: ``RegisterHotKey`` (thread hotkeys) and a native event filter for ``WM_HOTKEY``.
- macOS and Wayland: not available (Wayland lets no app grab keys; see ``platform.hotkey_support``).
  The tray menu has every action.

A hotkey another program already holds is reported (``failures``), never fatal.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from dataclasses import dataclass

from PySide6.QtCore import QAbstractNativeEventFilter, QCoreApplication, QObject, QSocketNotifier, Signal

from app.qt.platform import hotkey_support, qpa_name

log = logging.getLogger(__name__)

ACTIONS = ("toggle_visible", "toggle_click_through", "force_end")
SETTING_KEYS = {name: f"hotkeys/{name}" for name in ACTIONS}

_MODIFIERS = {"ctrl": "ctrl", "control": "ctrl", "alt": "alt", "shift": "shift", "meta": "super",
              "super": "super", "win": "super", "cmd": "super"}
_KEY_NAMES = {  # lower-case name people type → X keysym name
    "space": "space", "esc": "Escape", "escape": "Escape", "enter": "Return", "return": "Return",
    "tab": "Tab", "backspace": "BackSpace", "ins": "Insert", "insert": "Insert", "del": "Delete",
    "delete": "Delete", "home": "Home", "end": "End", "pgup": "Prior", "pageup": "Prior",
    "pgdown": "Next", "pagedown": "Next", "left": "Left", "right": "Right", "up": "Up", "down": "Down",
    "pause": "Pause", "print": "Print", "-": "minus", "=": "equal", ",": "comma", ".": "period",
    "/": "slash", ";": "semicolon", "'": "apostrophe", "[": "bracketleft", "]": "bracketright",
    "\\": "backslash", "`": "grave",
}


def types_a_character_with_altgr(hotkey: "Hotkey") -> bool:
    """True when Windows would read the combination as AltGr+key, which layouts use for characters.

    Windows treats Ctrl+Alt as AltGr, so Ctrl+Alt(+Shift)+E is € on German layouts and
    Ctrl+Alt+L is ł on Polish ones; a global grab of it stops that character in every app.
    Letters, digits and punctuation are at risk; F-keys and navigation keys type nothing.
    """
    if not {"ctrl", "alt"} <= hotkey.modifiers:
        return False
    return len(hotkey.key) == 1 or hotkey.key in _PUNCTUATION

_PUNCTUATION = {"minus", "equal", "comma", "period", "slash", "semicolon", "apostrophe",
                "bracketleft", "bracketright", "backslash", "grave", "space"}


class HotkeyError(ValueError):
    """A hotkey text that cannot be used, with the reason in plain words."""


@dataclass(frozen=True)
class Hotkey:
    modifiers: frozenset[str]   # subset of {"ctrl", "alt", "shift", "super"}
    key: str                    # X keysym name: "h", "F9", "space", "Prior"…

    def __str__(self) -> str:
        order = ["ctrl", "alt", "shift", "super"]
        mods = [m.capitalize() if m != "super" else "Meta" for m in order if m in self.modifiers]
        key = self.key.upper() if len(self.key) == 1 else self.key
        return "+".join(mods + [key])


def parse_hotkey(text: str) -> Hotkey:
    """``"Ctrl+Alt+H"`` → Hotkey. A modifier is required (except for F-keys) so typing stays safe."""
    raw = (text or "").strip()
    if not raw:
        raise HotkeyError("No hotkey given.")
    parts = [p.strip() for p in raw.replace(" ", "").split("+")]
    if raw.endswith("++"):          # "Ctrl++" means Ctrl and the plus key
        parts = parts[:-2] + ["+"]
    if any(not p for p in parts):
        raise HotkeyError(f"{raw!r} is not a key combination like Ctrl+Alt+H.")
    *mod_parts, key_part = parts
    mods = set()
    for m in mod_parts:
        name = _MODIFIERS.get(m.lower())
        if name is None:
            raise HotkeyError(f"{m!r} in {raw!r} is not a modifier (use Ctrl, Alt, Shift or Meta).")
        mods.add(name)
    low = key_part.lower()
    if low in _MODIFIERS:
        raise HotkeyError(f"{raw!r} has no key after the modifiers.")
    if len(key_part) == 1 and key_part.isalnum():
        key = low
    elif low.startswith("f") and low[1:].isdigit() and 1 <= int(low[1:]) <= 35:
        key = f"F{int(low[1:])}"
    elif low in _KEY_NAMES:
        key = _KEY_NAMES[low]
    else:
        raise HotkeyError(f"Unknown key {key_part!r} in {raw!r}.")
    if not mods and not key.startswith("F"):
        raise HotkeyError(f"{raw!r} needs Ctrl, Alt, Shift or Meta, or it would block normal typing.")
    return Hotkey(frozenset(mods), key)


class GlobalHotkeys(QObject):
    """``register({"force_end": "Ctrl+Alt+E", ...})``; ``activated(name)`` fires on the GUI thread."""

    activated = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.supported, self.reason = hotkey_support()
        self.failures: dict[str, str] = {}
        self.active: dict[str, Hotkey] = {}
        self._backend = None
        if self.supported:
            try:
                self._backend = _X11Backend(self._fire) if qpa_name() == "xcb" else \
                    _WindowsBackend(self._fire) if sys.platform == "win32" else None
            except OSError as exc:
                self.supported, self.reason = False, f"Global hotkeys are unavailable: {exc}"
            if self._backend is None and self.supported:
                self.supported = False

    def register(self, bindings: dict[str, str]) -> dict[str, str]:
        """Replace all grabs. Returns {action: reason} for the ones that could not be set."""
        self.unregister_all()
        self.failures = {}
        for name, text in bindings.items():
            if not text:
                continue  # empty = no hotkey for this action
            try:
                hotkey = parse_hotkey(text)
            except HotkeyError as exc:
                self.failures[name] = str(exc)
                continue
            if not self.supported or self._backend is None:
                self.failures[name] = self.reason
                continue
            if hotkey in self.active.values():
                self.failures[name] = f"{hotkey} is already used for another action."
                continue
            if sys.platform == "win32" and types_a_character_with_altgr(hotkey):
                # Kept (it is the user's saved choice) but said: it blocks an AltGr character.
                log.warning("Hotkey %s for %s may block typing a character that needs AltGr on "
                            "some keyboard layouts; Ctrl+Alt+Shift+F-keys avoid that.", hotkey, name)
            error = self._backend.grab(name, hotkey)
            if error:
                self.failures[name] = error
            else:
                self.active[name] = hotkey
        for name, reason in self.failures.items():
            (log.warning if self.supported else log.info)("Hotkey for %s not set: %s", name, reason)
        return dict(self.failures)

    def register_from_settings(self, settings) -> dict[str, str]:
        return self.register({name: settings.get(key) for name, key in SETTING_KEYS.items()})

    def unregister_all(self) -> None:
        if self._backend is not None:
            self._backend.ungrab_all()
        self.active = {}

    def close(self) -> None:
        self.unregister_all()
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def _fire(self, name: str) -> None:
        self.activated.emit(name)


# ---- X11 -------------------------------------------------------------------------------------
_ShiftMask, _LockMask, _ControlMask, _Mod1Mask, _Mod2Mask, _Mod4Mask = 1, 2, 4, 8, 16, 64
_X_MODS = {"shift": _ShiftMask, "ctrl": _ControlMask, "alt": _Mod1Mask, "super": _Mod4Mask}
_IGNORED = (0, _LockMask, _Mod2Mask, _LockMask | _Mod2Mask)   # Caps Lock, Num Lock
_KeyPress, _KeyRelease = 2, 3
_GrabModeAsync = 1
_BadAccess = 10


class _XKeyEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("root", ctypes.c_ulong),
                ("subwindow", ctypes.c_ulong), ("time", ctypes.c_ulong), ("x", ctypes.c_int),
                ("y", ctypes.c_int), ("x_root", ctypes.c_int), ("y_root", ctypes.c_int),
                ("state", ctypes.c_uint), ("keycode", ctypes.c_uint), ("same_screen", ctypes.c_int)]


class _XEvent(ctypes.Union):
    _fields_ = [("type", ctypes.c_int), ("xkey", _XKeyEvent), ("pad", ctypes.c_long * 24)]


class _XErrorEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("display", ctypes.c_void_p), ("resourceid", ctypes.c_ulong),
                ("serial", ctypes.c_ulong), ("error_code", ctypes.c_ubyte),
                ("request_code", ctypes.c_ubyte), ("minor_code", ctypes.c_ubyte)]


_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_XErrorEvent))


class _X11Backend:
    def __init__(self, fire) -> None:
        name = ctypes.util.find_library("X11")
        if not name:
            raise OSError("libX11 was not found")
        x = self._x = ctypes.cdll.LoadLibrary(name)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XStringToKeysym.restype = ctypes.c_ulong
        x.XStringToKeysym.argtypes = [ctypes.c_char_p]
        x.XKeysymToKeycode.restype = ctypes.c_ubyte
        x.XKeysymToKeycode.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
        x.XGrabKey.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_ulong, ctypes.c_int,
                               ctypes.c_int, ctypes.c_int]
        x.XUngrabKey.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_ulong]
        x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x.XPending.argtypes = [ctypes.c_void_p]
        x.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.POINTER(_XEvent)]
        x.XConnectionNumber.argtypes = [ctypes.c_void_p]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        x.XSetErrorHandler.restype = ctypes.c_void_p
        x.XSetErrorHandler.argtypes = [ctypes.c_void_p]
        self._dpy = x.XOpenDisplay(None)
        if not self._dpy:
            raise OSError("cannot open the X display")
        self._root = x.XDefaultRootWindow(self._dpy)
        # A held key then repeats as presses only (no fake releases): one press = one action.
        x.XkbSetDetectableAutoRepeat.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        x.XkbSetDetectableAutoRepeat(self._dpy, 1, None)
        self._down: set[int] = set()
        self._fire = fire
        self._grabs: dict[tuple[int, int], str] = {}   # (keycode, modifier mask) → action
        self._errors: list[int] = []
        self._handler = _ERROR_HANDLER(self._on_error)  # keep a reference: C holds the pointer
        self._notifier = QSocketNotifier(x.XConnectionNumber(self._dpy), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._drain)

    def _on_error(self, _dpy, event) -> int:
        self._errors.append(event.contents.error_code)
        return 0

    def grab(self, name: str, hotkey: Hotkey) -> str | None:
        x = self._x
        keysym = x.XStringToKeysym(hotkey.key.encode())
        keycode = x.XKeysymToKeycode(self._dpy, keysym) if keysym else 0
        if not keycode:
            return f"The key {hotkey.key!r} is not on this keyboard."
        mask = 0
        for m in hotkey.modifiers:
            mask |= _X_MODS[m]
        self._errors = []
        previous = x.XSetErrorHandler(ctypes.cast(self._handler, ctypes.c_void_p))
        try:
            for extra in _IGNORED:
                x.XGrabKey(self._dpy, keycode, mask | extra, self._root, 1, _GrabModeAsync, _GrabModeAsync)
            x.XSync(self._dpy, 0)
        finally:
            x.XSetErrorHandler(previous)
        if self._errors:
            for extra in _IGNORED:
                x.XUngrabKey(self._dpy, keycode, mask | extra, self._root)
            x.XSync(self._dpy, 0)
            if _BadAccess in self._errors:
                return f"{hotkey} is already taken by another program."
            return f"{hotkey} could not be grabbed (X error {self._errors[0]})."
        for extra in _IGNORED:
            self._grabs[(keycode, mask | extra)] = name
        self._drain()
        return None

    def ungrab_all(self) -> None:
        for keycode, mask in list(self._grabs):
            self._x.XUngrabKey(self._dpy, keycode, mask, self._root)
        self._grabs.clear()
        if self._dpy:
            self._x.XSync(self._dpy, 0)

    def _drain(self, *_args) -> None:
        event = _XEvent()
        while self._dpy and self._x.XPending(self._dpy):
            self._x.XNextEvent(self._dpy, ctypes.byref(event))
            if event.type == _KeyRelease:
                self._down.discard(event.xkey.keycode)
            elif event.type == _KeyPress:
                key = event.xkey
                if key.keycode in self._down:
                    continue  # auto-repeat of a held hotkey
                # Only the modifiers we grab with matter (ignore mouse buttons and the like).
                state = key.state & (_ShiftMask | _LockMask | _ControlMask | _Mod1Mask | _Mod2Mask | _Mod4Mask)
                name = self._grabs.get((key.keycode, state))
                if name:
                    self._down.add(key.keycode)
                    self._fire(name)

    def close(self) -> None:
        self._notifier.setEnabled(False)
        self.ungrab_all()
        self._x.XCloseDisplay(self._dpy)
        self._dpy = None


# ---- Windows ---------------------------------------------------------------------------------
_WM_HOTKEY = 0x0312
_MOD_WIN = {"alt": 0x1, "ctrl": 0x2, "shift": 0x4, "super": 0x8}
_MOD_NOREPEAT = 0x4000
_VK_NAMES = {"space": 0x20, "Escape": 0x1B, "Return": 0x0D, "Tab": 0x09, "BackSpace": 0x08,
             "Insert": 0x2D, "Delete": 0x2E, "Home": 0x24, "End": 0x23, "Prior": 0x21, "Next": 0x22,
             "Left": 0x25, "Up": 0x26, "Right": 0x27, "Down": 0x28, "Pause": 0x13, "Print": 0x2C,
             "minus": 0xBD, "equal": 0xBB, "comma": 0xBC, "period": 0xBE, "slash": 0xBF,
             "semicolon": 0xBA, "apostrophe": 0xDE, "bracketleft": 0xDB, "bracketright": 0xDD,
             "backslash": 0xDC, "grave": 0xC0}


def windows_virtual_key(key: str) -> int | None:
    if len(key) == 1 and key.isalnum():
        return ord(key.upper())
    if key.startswith("F") and key[1:].isdigit():
        n = int(key[1:])
        return 0x70 + n - 1 if 1 <= n <= 24 else None
    return _VK_NAMES.get(key)


class _WindowsBackend(QAbstractNativeEventFilter):
    """Thread hotkeys (no window handle): WM_HOTKEY arrives in the GUI thread's message queue."""

    def __init__(self, fire) -> None:
        super().__init__()
        from ctypes import wintypes  # noqa: F401 - Windows only
        self._user32 = ctypes.WinDLL("user32", use_last_error=True)
        self._fire = fire
        self._ids: dict[int, str] = {}
        self._next_id = 0xB000
        QCoreApplication.instance().installNativeEventFilter(self)

    def grab(self, name: str, hotkey: Hotkey) -> str | None:
        vk = windows_virtual_key(hotkey.key)
        if vk is None:
            return f"The key {hotkey.key!r} cannot be used as a Windows hotkey."
        mods = _MOD_NOREPEAT
        for m in hotkey.modifiers:
            mods |= _MOD_WIN[m]
        ident = self._next_id
        self._next_id += 1
        if not self._user32.RegisterHotKey(None, ident, mods, vk):
            return f"{hotkey} is already taken by another program."
        self._ids[ident] = name
        return None

    def ungrab_all(self) -> None:
        for ident in list(self._ids):
            self._user32.UnregisterHotKey(None, ident)
        self._ids.clear()

    def nativeEventFilter(self, event_type, message):
        if bytes(event_type) in (b"windows_generic_MSG", b"windows_dispatcher_MSG"):
            from ctypes import wintypes
            msg = wintypes.MSG.from_address(int(message))
            if msg.message == _WM_HOTKEY and msg.wParam in self._ids:
                self._fire(self._ids[msg.wParam])
                return True, 0
        return False, 0

    def close(self) -> None:
        self.ungrab_all()
        app = QCoreApplication.instance()
        if app is not None:
            app.removeNativeEventFilter(self)
