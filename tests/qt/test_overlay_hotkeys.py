"""Global hotkey texts → key combinations, and graceful refusal where grabbing is impossible.

The real X11 grab is exercised in tests/e2e/test_overlay_window.py (xdotool key presses).
"""

import pytest

from app.qt.hotkeys import GlobalHotkeys, HotkeyError, parse_hotkey, windows_virtual_key


@pytest.mark.parametrize("text, mods, key", [
    ("Ctrl+Alt+H", {"ctrl", "alt"}, "h"),
    ("ctrl+alt+l", {"ctrl", "alt"}, "l"),
    ("Meta+Shift+F9", {"super", "shift"}, "F9"),
    ("F12", set(), "F12"),
    ("Ctrl+Space", {"ctrl"}, "space"),
    ("Alt+PgUp", {"alt"}, "Prior"),
    ("Ctrl+Alt+Del", {"ctrl", "alt"}, "Delete"),
    ("Ctrl+Alt+1", {"ctrl", "alt"}, "1"),
    ("Control + Alt + E", {"ctrl", "alt"}, "e"),
    ("Ctrl+,", {"ctrl"}, "comma"),
])
def test_parse(text, mods, key):
    hk = parse_hotkey(text)
    assert hk.modifiers == frozenset(mods) and hk.key == key


@pytest.mark.parametrize("text, reason", [
    ("", "No hotkey"),
    ("H", "needs Ctrl"),
    ("Ctrl+Alt", "no key"),
    ("Hyper+H", "not a modifier"),
    ("Ctrl+Banana", "Unknown key"),
    ("Ctrl++H", "not a key combination"),
])
def test_bad_hotkeys_have_reasons(text, reason):
    with pytest.raises(HotkeyError, match=reason):
        parse_hotkey(text)


def test_display_form():
    assert str(parse_hotkey("alt+ctrl+h")) == "Ctrl+Alt+H"
    assert str(parse_hotkey("meta+F5")) == "Meta+F5"


def test_windows_virtual_keys():
    assert windows_virtual_key("h") == ord("H")
    assert windows_virtual_key("7") == ord("7")
    assert windows_virtual_key("F1") == 0x70 and windows_virtual_key("F24") == 0x87
    assert windows_virtual_key("F30") is None
    assert windows_virtual_key("Prior") == 0x21


def test_unsupported_platform_reports_every_binding_without_crashing(qapp):
    hk = GlobalHotkeys()  # offscreen: no global hotkeys
    assert not hk.supported
    failures = hk.register({"toggle_visible": "Ctrl+Alt+H", "force_end": "Nonsense+X", "toggle_click_through": ""})
    assert "not available" in failures["toggle_visible"]
    assert "not a modifier" in failures["force_end"]
    assert "toggle_click_through" not in failures  # empty = deliberately no hotkey
    assert hk.active == {}
    hk.close()


def test_default_hotkeys_type_no_character_on_any_layout():
    from app.core.settings import PREF_BY_KEY
    from app.qt.hotkeys import SETTING_KEYS, types_a_character_with_altgr
    defaults = [parse_hotkey(PREF_BY_KEY[key].default) for key in SETTING_KEYS.values()]
    assert len(set(defaults)) == len(defaults)
    for hotkey in defaults:
        assert not types_a_character_with_altgr(hotkey), hotkey
        assert hotkey.key.startswith("F")          # F-keys carry no character on any layout
        assert "shift" in hotkey.modifiers         # Ctrl+Alt+Fn alone switches Linux consoles


@pytest.mark.parametrize("text, risky", [
    ("Ctrl+Alt+E", True), ("Ctrl+Alt+L", True), ("Ctrl+Alt+Shift+L", True), ("Ctrl+Alt+7", True),
    ("Ctrl+Alt+[", True), ("Ctrl+Shift+E", False), ("Ctrl+Alt+Shift+F9", False), ("Ctrl+Alt+Home", False),
])
def test_altgr_collisions_are_recognised(text, risky):
    from app.qt.hotkeys import types_a_character_with_altgr
    assert types_a_character_with_altgr(parse_hotkey(text)) is risky


def test_a_saved_altgr_hotkey_is_still_registered_on_windows_with_a_warning(qapp, monkeypatch, caplog):
    import app.qt.hotkeys as hotkeys

    class FakeBackend:
        def __init__(self):
            self.grabbed = []

        def grab(self, name, hotkey):
            self.grabbed.append((name, str(hotkey)))

        def ungrab_all(self):
            pass

        def close(self):
            pass

    hk = GlobalHotkeys()
    hk.supported, hk._backend = True, FakeBackend()
    monkeypatch.setattr(hotkeys.sys, "platform", "win32")
    failures = hk.register({"force_end": "Ctrl+Alt+E", "toggle_visible": "Ctrl+Alt+Shift+F9"})
    assert failures == {}
    assert hk._backend.grabbed == [("force_end", "Ctrl+Alt+E"), ("toggle_visible", "Ctrl+Alt+Shift+F9")]
    warned = [r.getMessage() for r in caplog.records if "AltGr" in r.getMessage()]
    assert len(warned) == 1 and "Ctrl+Alt+E" in warned[0]
