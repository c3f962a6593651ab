"""The Flatpak manifest: the permissions the app needs and no more, the AppStream files it
installs, and flatpak-builder accepting it (the runtime itself is not fetched here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.packaging.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
FLATPAK = ROOT / "packaging" / "linux" / "flatpak"
MANIFEST = FLATPAK / "app.captionoverlay.CaptionOverlay.json"



identity = load_script("packaging_identity", ROOT / "packaging/identity.py")
python_deps = load_script("flatpak_python_deps", FLATPAK / "python_deps.py")
IDENT = identity.read_identity()
REPORT = {"install": [
    {"metadata": {"name": "numpy", "version": "2.1.0"},
     "download_info": {"url": "https://files.pythonhosted.org/packages/aa/numpy-2.1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
                       "archive_info": {"hashes": {"sha256": "ab" * 32}}}},
    {"metadata": {"name": "keyring", "version": "25.5.0"},
     "download_info": {"url": "https://files.pythonhosted.org/packages/bb/keyring-25.5.0-py3-none-any.whl",
                       "archive_info": {"hashes": {"sha256": "cd" * 32}}}},
]}


def manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def test_identity_and_files_come_from_the_app():
    m = manifest()
    assert m["id"] == IDENT["BUNDLE_ID"] and m["command"] == IDENT["APP_ID"]
    commands = " ".join(m["modules"][-1]["build-commands"])
    for name in (f"{IDENT['BUNDLE_ID']}.desktop", f"{IDENT['BUNDLE_ID']}.metainfo.xml.in"):
        assert f"packaging/linux/{name}" in commands and (ROOT / "packaging/linux" / name).is_file()
    assert f"share/icons/hicolor/scalable/apps/{IDENT['BUNDLE_ID']}.svg" in commands
    for resource in ("resources/caption-overlay.svg", "resources/caption-overlay-256.png"):
        assert resource in commands and (ROOT / resource).is_file()


def test_permissions_are_what_the_app_needs_and_no_more():
    args = set(manifest()["finish-args"])
    assert args == {
        "--share=ipc", "--socket=x11",              # the overlay: X11 keeps it above other windows
        "--env=QT_QPA_PLATFORM=xcb",                # also on Wayland sessions (through XWayland)
        "--socket=pulseaudio",                      # microphone and monitor capture (PipeWire too)
        "--share=network",                          # the streaming service
        "--talk-name=org.freedesktop.secrets",      # the API key in the Secret Service keyring
        "--talk-name=org.kde.StatusNotifierWatcher",  # the tray icon
        "--talk-name=org.freedesktop.Notifications",  # tray notifications
    }
    assert not any(a.startswith(("--filesystem", "--device", "--socket=session-bus", "--socket=system-bus"))
                   for a in args)


def test_python_dependencies_module_lists_every_wheel_with_its_hash():
    module = python_deps.module_from_report(REPORT)
    assert [s["sha256"] for s in module["sources"]] == ["ab" * 32, "cd" * 32]
    assert all(s["url"].startswith("https://") for s in module["sources"])
    assert "--no-index" in module["build-commands"][0] and "keyring numpy" in module["build-commands"][0]


@pytest.mark.parametrize("change, reason", [
    (lambda r: r["install"][0]["download_info"].update(url="file:///opt/pypi/numpy.whl"), "not a public https"),
    (lambda r: r["install"][1]["download_info"]["archive_info"].update(hashes={}), "no sha256"),
    (lambda r: r.update(install=[]), "nothing to install"),
])
def test_a_report_that_cannot_build_offline_is_refused(change, reason):
    report = json.loads(json.dumps(REPORT))
    change(report)
    with pytest.raises(python_deps.ReportError, match=reason):
        python_deps.module_from_report(report)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="flatpak-builder is Linux-only")
def test_flatpak_builder_accepts_the_manifest(tmp_path):
    tool = shutil.which("flatpak-builder")
    assert tool, "flatpak-builder is missing (apt-get install flatpak-builder; packaging/dev.sh does it)"
    shutil.copy(MANIFEST, tmp_path / MANIFEST.name)
    (tmp_path / "python-deps.json").write_text(json.dumps(python_deps.module_from_report(REPORT)))
    result = subprocess.run([tool, "--show-manifest", str(tmp_path / MANIFEST.name)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)  # its state dir
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "Unknown property" not in result.stderr, result.stderr
    shown = json.loads(result.stdout)
    assert shown["id"] == IDENT["BUNDLE_ID"]
    assert [m["name"] for m in shown["modules"]] == ["portaudio", "python-deps", "caption-overlay"]
