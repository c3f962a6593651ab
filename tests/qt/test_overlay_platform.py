"""Platform facts the overlay depends on: Wayland detection and the XWayland offer, compositor check."""

import sys

from app.qt import platform as plat


def test_offscreen_has_no_notes(qapp):
    info = plat.detect()
    assert info.qpa == "offscreen"
    assert info.notes == () and info.keep_above_works and not info.can_offer_xwayland


def test_wayland_explained_and_xwayland_offered(qapp, monkeypatch):
    monkeypatch.setattr(plat, "qpa_name", lambda: "wayland")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    info = plat.detect()
    assert not info.keep_above_works
    assert info.can_offer_xwayland and info.wayland_session
    assert "XWayland" in info.notes[0] and "above" in info.notes[0]
    ok, reason = plat.hotkey_support()
    assert not ok and "Wayland" in reason
    # Without XWayland available there is nothing to offer.
    monkeypatch.delenv("DISPLAY")
    assert not plat.detect().can_offer_xwayland


def test_xwayland_restart_command_keeps_arguments(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["app", "--source", "mic"])
    argv, env = plat.xwayland_restart_command()
    assert env["QT_QPA_PLATFORM"] == "xcb"
    assert argv[-2:] == ["--source", "mic"] and argv[0] == sys.executable


def test_x11_without_compositor_says_so(qapp, monkeypatch):
    monkeypatch.setattr(plat, "qpa_name", lambda: "xcb")
    monkeypatch.setattr(plat, "x11_compositor_running", lambda display=None: False)
    info = plat.detect()
    assert info.translucency is False
    assert "compositor" in info.notes[0]
    monkeypatch.setattr(plat, "x11_compositor_running", lambda display=None: True)
    assert plat.detect().notes == ()


def test_compositor_check_on_an_unreachable_display():
    assert plat.x11_compositor_running(":9999") is None
