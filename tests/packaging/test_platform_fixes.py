"""Windows and macOS first-run problems, checked here with the platform calls faked.

The real calls run on the release pipeline's Windows and macOS runners (frozen --self-test).
"""

from __future__ import annotations

import shlex
import struct
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from tests.packaging.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]



win = load_script("windows_build", ROOT / "packaging/windows/build.py")
plist = load_script("macos_info_plist", ROOT / "packaging/macos/info_plist.py")
macho = load_script("macos_macho", ROOT / "packaging/macos/macho.py")
platform_modules = load_script("platform_modules", ROOT / "packaging/platform_modules.py")
identity = load_script("packaging_identity", ROOT / "packaging/identity.py")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

ENVIRONMENTS = {
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "platform_machine": "AMD64",
                "os_name": "nt"},
    "macos-arm64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                    "os_name": "posix"},
    "macos-x86_64": {"sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "x86_64",
                     "os_name": "posix"},
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
              "os_name": "posix"},
}


def requirements_on(system: str, group: str | None = None) -> dict[str, Requirement]:
    env = {**default_environment(), **ENVIRONMENTS[system], "extra": group or ""}
    texts = PYPROJECT["project"]["dependencies"] if group is None else \
        PYPROJECT["project"]["optional-dependencies"][group]
    reqs = [Requirement(t) for t in texts]
    return {r.name.lower(): r for r in reqs if r.marker is None or r.marker.evaluate(env)}


# --- declared dependencies -------------------------------------------------------------------

def test_windows_installs_pyaudiowpatch_for_system_audio():
    assert "pyaudiowpatch" in requirements_on("windows")
    for other in ("linux", "macos-arm64"):
        assert "pyaudiowpatch" not in requirements_on(other)


@pytest.mark.parametrize("system", ["macos-arm64", "macos-x86_64"])
def test_macos_installs_pyobjc_for_all_spaces(system):
    assert "pyobjc-framework-cocoa" in requirements_on(system)
    assert "pyobjc-framework-cocoa" not in requirements_on("windows")


@pytest.mark.parametrize("system", list(ENVIRONMENTS))
def test_certifi_is_declared_everywhere(system):
    assert "certifi" in requirements_on(system)


def test_onnxruntime_is_pinned_only_where_moonshine_runs_it():
    assert "onnxruntime" in requirements_on("linux", "offline")
    for system in ("macos-arm64", "macos-x86_64", "windows"):
        assert "onnxruntime" not in requirements_on(system, "offline"), system


def test_platform_modules_become_hidden_imports_or_a_clear_build_error():
    assert platform_modules.platform_hiddenimports("win32", find_spec=lambda n: object()) == ["pyaudiowpatch"]
    assert set(platform_modules.platform_hiddenimports("darwin", find_spec=lambda n: object())) >= {"objc", "AppKit"}
    assert platform_modules.platform_hiddenimports("linux") == []
    with pytest.raises(LookupError, match="pyaudiowpatch not installed"):
        platform_modules.platform_hiddenimports("win32", find_spec=lambda n: None)
    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    assert "platform_hiddenimports(sys.platform)" in spec


def test_macos_build_recipe_documents_portaudio():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "brew install portaudio" in readme
    assert "brew install portaudio" in (ROOT / "packaging/macos/build.py").read_text(encoding="utf-8")


# --- macOS Info.plist -------------------------------------------------------------------------

def test_menu_bar_app_has_no_dock_icon_and_takes_its_minimum_from_the_bundle():
    info = plist.info_plist(identity.read_identity(), "14.0")
    assert info["LSUIElement"] is True
    assert info["LSMinimumSystemVersion"] == "14.0"
    spec = (ROOT / "build.spec").read_text(encoding="utf-8")
    assert "info_plist(IDENT, minimum_system)" in spec and "bundle_minimum(" in spec


def _thin(minos: tuple[int, int] | None, *, old_style: bool = False, platform: int = 1) -> bytes:
    """A minimal 64-bit Mach-O: header + one version load command (+ an unrelated one)."""
    version = 0 if minos is None else (minos[0] << 16) | (minos[1] << 8)
    commands = struct.pack("<II", 0x19, 16) + b"\0" * 8             # LC_SEGMENT_64 stub
    if minos is not None:
        if old_style:
            commands += struct.pack("<IIII", 0x24, 16, version, version)
        else:
            commands += struct.pack("<IIIIII", 0x32, 24, platform, version, version, 0)
    ncmds = 2 if minos is not None else 1
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x0100000C, 0, 6, ncmds, len(commands), 0, 0)
    return header + commands


def _fat(*slices: bytes) -> bytes:
    header = struct.pack(">II", 0xCAFEBABE, len(slices))
    offset = 8 + 20 * len(slices)
    offset = (offset + 4095) // 4096 * 4096
    entries, body = b"", b""
    for s in slices:
        entries += struct.pack(">iiIII", 0x0100000C, 0, offset + len(body), len(s), 12)
        body += s + b"\0" * ((4096 - len(s) % 4096) % 4096)
    blob = header + entries
    return blob + b"\0" * (offset - len(blob)) + body


def test_minimum_macos_is_read_from_mach_o_load_commands(tmp_path):
    (tmp_path / "QtCore").write_bytes(_thin((13, 0)))
    (tmp_path / "python").write_bytes(_thin((10, 13), old_style=True))
    (tmp_path / "libav.dylib").write_bytes(_fat(_thin((11, 0)), _thin((14, 0))))
    (tmp_path / "ios.dylib").write_bytes(_thin((17, 0), platform=2))   # iOS slice: not macOS
    (tmp_path / "readme.txt").write_text("not a binary")
    (tmp_path / "Foo.class").write_bytes(struct.pack(">II", 0xCAFEBABE, 0x34) + b"\0" * 64)  # Java
    assert macho.minimum_of_file(tmp_path / "QtCore") == (13, 0)
    assert macho.minimum_of_file(tmp_path / "python") == (10, 13)
    assert macho.minimum_of_file(tmp_path / "libav.dylib") == (14, 0)
    assert macho.minimum_of_file(tmp_path / "ios.dylib") is None
    assert macho.minimum_of_file(tmp_path / "readme.txt") is None
    assert macho.minimum_of_file(tmp_path / "Foo.class") is None
    version, per_file = macho.bundle_minimum([tmp_path])
    assert version == "14.0" and len(per_file) == 3


def test_minimum_macos_falls_back_when_no_binary_says(tmp_path):
    (tmp_path / "plain").write_bytes(_thin(None))
    assert macho.bundle_minimum([tmp_path])[0] == "11.0"
    (tmp_path / "truncated").write_bytes(_thin((13, 0))[:40])       # damaged: ignored, no crash
    assert macho.bundle_minimum([tmp_path])[0] == "11.0"


# --- Windows signing --------------------------------------------------------------------------

def test_inno_sign_tool_keeps_paths_with_spaces_whole(monkeypatch, tmp_path):
    monkeypatch.setattr(win.sys, "executable", r"C:\Program Files\Python 3.11\python.exe")
    args = win.iscc_arguments(identity.read_identity(), tmp_path, tmp_path, ["signtool.exe", "sign"])
    value = next(a for a in args if a.startswith("/Ssigncmd="))[len("/Ssigncmd="):]
    assert '"' not in value                         # ISCC would strip or split on raw quotes
    assert value.endswith(" $f")
    expanded = value.replace("$q", '"').replace("$f", '"C:\\My Build\\setup.exe"')
    parts = shlex.split(expanded.replace("\\", "/"))
    assert parts[0] == "C:/Program Files/Python 3.11/python.exe"
    assert parts[1].endswith("packaging/windows/build.py") and parts[2] == "--sign-file"
    assert parts[3] == "C:/My Build/setup.exe"


def test_azure_trusted_signing_command(tmp_path):
    dlib = tmp_path / "Azure.CodeSigning.Dlib.dll"
    dlib.write_bytes(b"x")
    env = {"AZURE_SIGNING_ENDPOINT": "https://eus.codesigning.azure.net", "AZURE_SIGNING_ACCOUNT": "acct",
           "AZURE_SIGNING_PROFILE": "prof", "AZURE_SIGNING_DLIB": str(dlib), "SIGNTOOL": "signtool.exe"}
    cmd = win.signing_command(env, metadata_dir=tmp_path)
    assert cmd[cmd.index("/dlib") + 1] == str(dlib)
    metadata = Path(cmd[cmd.index("/dmdf") + 1])
    import json
    assert json.loads(metadata.read_text()) == {"Endpoint": "https://eus.codesigning.azure.net",
                                                "CodeSigningAccountName": "acct",
                                                "CertificateProfileName": "prof"}
    assert cmd[cmd.index("/tr") + 1] == win.AZURE_TIMESTAMP_URL and "/f" not in cmd


def test_incomplete_azure_settings_are_an_error_not_a_silent_unsigned_build():
    with pytest.raises(win.BuildError, match="AZURE_SIGNING_PROFILE"):
        win.signing_command({"AZURE_SIGNING_ENDPOINT": "https://x", "AZURE_SIGNING_ACCOUNT": "a",
                             "AZURE_SIGNING_DLIB": "d.dll", "SIGNTOOL": "signtool.exe"})
