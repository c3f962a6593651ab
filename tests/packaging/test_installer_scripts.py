"""Windows and macOS installer scripts: what can be checked on Linux (no ISCC, codesign here).

Signing and notarisation must run only when their credentials are present, must not leak a
password into a logged command line, and the Inno script must get every value it uses.
"""

from __future__ import annotations

import importlib.util
import plistlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


win = _load("windows_build", ROOT / "packaging/windows/build.py")
mac = _load("macos_build", ROOT / "packaging/macos/build.py")
plist = _load("macos_info_plist", ROOT / "packaging/macos/info_plist.py")
identity = _load("packaging_identity", ROOT / "packaging/identity.py")
ISS = (ROOT / "packaging/windows/caption-overlay.iss").read_text(encoding="utf-8")


# --- Windows ---------------------------------------------------------------------------------

def test_no_signing_without_credentials():
    assert win.signing_command({}) is None


def test_pfx_signing_command(tmp_path):
    pfx = tmp_path / "cert.pfx"
    pfx.write_bytes(b"x")
    cmd = win.signing_command({"WINDOWS_SIGN_PFX": str(pfx), "WINDOWS_SIGN_PFX_PASSWORD": "s3cret",
                               "SIGNTOOL": "signtool.exe"})
    assert cmd[:2] == ["signtool.exe", "sign"]
    assert cmd[cmd.index("/f") + 1] == str(pfx) and cmd[cmd.index("/p") + 1] == "s3cret"
    assert "/tr" in cmd and cmd[cmd.index("/fd") + 1] == "sha256"
    assert "s3cret" not in win._redacted(cmd)


def test_thumbprint_signing_command():
    cmd = win.signing_command({"WINDOWS_SIGN_THUMBPRINT": "ABC123", "SIGNTOOL": "signtool.exe",
                               "WINDOWS_SIGN_TIMESTAMP_URL": "http://ts.example"})
    assert cmd[cmd.index("/sha1") + 1] == "ABC123" and cmd[cmd.index("/tr") + 1] == "http://ts.example"
    assert "/f" not in cmd


def test_signing_fails_loudly_when_the_certificate_file_is_missing(tmp_path):
    with pytest.raises(win.BuildError, match="does not exist"):
        win.signing_command({"WINDOWS_SIGN_PFX": str(tmp_path / "nope.pfx"), "SIGNTOOL": "signtool.exe"})


def test_signing_fails_loudly_without_signtool(monkeypatch):
    monkeypatch.setattr(win.shutil, "which", lambda name: None)
    monkeypatch.setattr(win, "_sdk_signtool", lambda: None)
    with pytest.raises(win.BuildError, match="signtool"):
        win.signing_command({"WINDOWS_SIGN_THUMBPRINT": "ABC"})


def test_skipped_signing_runs_nothing(monkeypatch, capsys):
    monkeypatch.setattr(win.subprocess, "run", lambda *a, **k: pytest.fail("signtool must not run"))
    win.sign([Path("x.exe")], None)
    assert "signing skipped" in capsys.readouterr().out


def test_iss_gets_every_define_it_uses(tmp_path):
    ident = identity.read_identity()
    args = win.iscc_arguments(ident, tmp_path / "bundle", tmp_path / "out", None)
    defined = {a[2:].split("=", 1)[0] for a in args if a.startswith("/D")}
    used = set(re.findall(r"\{#(\w+)\}", ISS)) | set(re.findall(r"#ifn?def (\w+)", ISS))
    assert used - {"SignTool"} <= defined, used - defined
    values = dict(a[2:].split("=", 1) for a in args if a.startswith("/D"))
    assert values["AppVersion"] == ident["__version__"] and values["AppExe"] == ident["APP_ID"] + ".exe"
    assert values["AppDataDir"] == ident["APP_ID"]         # = platformdirs folder of settings/transcripts


def test_inno_signs_the_uninstaller_through_a_callback_without_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("WINDOWS_SIGN_PFX_PASSWORD", "s3cret")
    cmd = ["signtool.exe", "sign", "/f", "c.pfx", "/p", "s3cret"]
    args = win.iscc_arguments(identity.read_identity(), tmp_path, tmp_path, cmd)
    sign_tool = next(a for a in args if a.startswith("/Ssigncmd="))
    assert "--sign-file" in sign_tool and sign_tool.endswith(" $f") and "s3cret" not in sign_tool
    assert "/DSignTool=1" in args


def test_iss_is_a_per_user_install_with_a_fixed_id_start_menu_and_login_option():
    assert re.search(r"^AppId=\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}$", ISS, re.M)
    assert re.search(r"^PrivilegesRequired=lowest$", ISS, re.M)
    assert re.search(r'^Name: "\{autoprograms\}\\\{#AppName\}"', ISS, re.M)
    assert re.search(r'^Name: "startatlogin".*Flags: unchecked', ISS, re.M)
    run_key = next(line for line in ISS.splitlines() if "CurrentVersion\\Run" in line)
    assert "Root: HKCU" in run_key and "Tasks: startatlogin" in run_key and "uninsdeletevalue" in run_key
    # uninstall asks (default No) before removing settings, and never in a silent uninstall
    assert "usPostUninstall" in ISS and "not UninstallSilent()" in ISS and "MB_DEFBUTTON2" in ISS
    assert "{localappdata}\\{#AppDataDir}" in ISS and "cmdkey.exe" in ISS


def test_windows_script_refuses_other_platforms(monkeypatch):
    monkeypatch.setattr(win.sys, "platform", "linux")
    assert win.main([]) == 2


# --- macOS -----------------------------------------------------------------------------------

def test_no_notarisation_without_credentials():
    assert mac.notary_arguments({}) is None


@pytest.mark.parametrize("env, expected", [
    ({"MACOS_NOTARY_PROFILE": "ci"}, ["--keychain-profile", "ci"]),
    ({"MACOS_NOTARY_KEY": "k.p8", "MACOS_NOTARY_KEY_ID": "KID", "MACOS_NOTARY_ISSUER": "ISS"},
     ["--key", "k.p8", "--key-id", "KID", "--issuer", "ISS"]),
    ({"MACOS_NOTARY_APPLE_ID": "a@b.c", "MACOS_NOTARY_PASSWORD": "pw", "MACOS_NOTARY_TEAM_ID": "T"},
     ["--apple-id", "a@b.c", "--password", "pw", "--team-id", "T"]),
])
def test_notarisation_credentials(env, expected):
    assert mac.notary_arguments(env) == expected


def test_incomplete_notarisation_credentials_are_an_error_not_a_silent_skip():
    with pytest.raises(mac.BuildError, match="MACOS_NOTARY_KEY_ID"):
        mac.notary_arguments({"MACOS_NOTARY_KEY_ID": "KID"})


def test_notary_commands_are_not_echoed_with_their_password(monkeypatch, capsys):
    monkeypatch.setattr(mac.subprocess, "run", lambda *a, **k: None)
    mac.run(["xcrun", "notarytool", "submit", "x.dmg", "--password", "pw"], secret=True)
    assert "pw" not in capsys.readouterr().out


def test_entitlements_allow_the_microphone():
    with open(ROOT / "packaging/macos/entitlements.plist", "rb") as f:
        entitlements = plistlib.load(f)
    assert entitlements["com.apple.security.device.audio-input"] is True


def test_info_plist_explains_microphone_and_audio_capture():
    ident = identity.read_identity()
    info = plist.info_plist(ident, "13.0")
    assert info["CFBundleIdentifier"] == ident["BUNDLE_ID"]
    assert info["CFBundleShortVersionString"] == ident["__version__"]
    assert "microphone" in info["NSMicrophoneUsageDescription"]
    assert info["NSAudioCaptureUsageDescription"]
    plistlib.dumps(info)                                      # serialisable as a real Info.plist


def test_macos_script_refuses_other_platforms(monkeypatch):
    monkeypatch.setattr(mac.sys, "platform", "linux")
    assert mac.main([]) == 2


# --- failures never print a command line (it can hold a password) ---------------------------

def test_failed_windows_signing_prints_only_the_return_code(tmp_path, monkeypatch, capsys):
    pfx = tmp_path / "cert.pfx"
    pfx.write_bytes(b"x")
    tool = tmp_path / "signtool"
    tool.write_text("#!/bin/sh\nexit 3\n")
    tool.chmod(0o700)
    for name, value in {"WINDOWS_SIGN_PFX": str(pfx), "WINDOWS_SIGN_PFX_PASSWORD": "pfx-S3CRET",
                        "SIGNTOOL": str(tool)}.items():
        monkeypatch.setenv(name, value)
    assert win.main(["--sign-file", str(tmp_path / "app.exe")]) == 1
    captured = capsys.readouterr()
    assert "pfx-S3CRET" not in captured.out + captured.err
    assert "return code 3" in captured.err


def test_failed_macos_step_prints_only_the_return_code(tmp_path, monkeypatch, capsys):
    import subprocess

    def failing(cmd, **kw):
        if "notarytool" in cmd:            # the step whose command line holds the password
            raise subprocess.CalledProcessError(69, cmd)
    monkeypatch.setattr(mac.subprocess, "run", failing)
    monkeypatch.setattr(mac.sys, "platform", "darwin")
    for name, value in {"MACOS_SIGN_IDENTITY": "Developer ID", "MACOS_NOTARY_APPLE_ID": "a@b.c",
                        "MACOS_NOTARY_PASSWORD": "notary-S3CRET", "MACOS_NOTARY_TEAM_ID": "T"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "App.app").mkdir()
    monkeypatch.setattr(mac, "sign", lambda *a, **k: None)   # straight to the notary step
    assert mac.main(["--app", str(tmp_path / "App.app")]) == 1
    captured = capsys.readouterr()
    assert "notary-S3CRET" not in captured.out + captured.err
    assert "return code 69" in captured.err


@pytest.mark.parametrize("module", [win, mac])
def test_failure_text_never_contains_the_command(module):
    import subprocess
    text = module.failure_text(subprocess.CalledProcessError(2, ["tool", "/p", "pw-123"]))
    assert "pw-123" not in text and "2" in text
