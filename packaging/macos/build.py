"""Build the macOS disk image: .app (build.spec's BUNDLE) → sign → notarise → staple → DMG.

    brew install portaudio python@3.11       # the PyAudio wheel does not contain PortAudio
    python3.11 -m venv .venv && .venv/bin/pip install -e ".[offline,package]"
    .venv/bin/python packaging/macos/build.py              # → dist/macos/CaptionOverlay-<ver>-macos-<arch>.dmg

Needs Xcode command-line tools (codesign, hdiutil, xcrun notarytool/stapler). Each step runs only
when its credentials are in the environment; without them the result is an unsigned DMG for
local testing (Gatekeeper will refuse it on other Macs):

    MACOS_SIGN_IDENTITY     "Developer ID Application: Name (TEAMID)" in the login keychain → sign
    and, to notarise, one of:
    MACOS_NOTARY_PROFILE    a `xcrun notarytool store-credentials` keychain profile name, or
    MACOS_NOTARY_KEY + MACOS_NOTARY_KEY_ID + MACOS_NOTARY_ISSUER   App Store Connect API key (.p8), or
    MACOS_NOTARY_APPLE_ID + MACOS_NOTARY_PASSWORD + MACOS_NOTARY_TEAM_ID   (app-specific password)

The Info.plist carries NSMicrophoneUsageDescription and NSAudioCaptureUsageDescription (build.spec),
and the signature the com.apple.security.device.audio-input entitlement (entitlements.plist):
without them a signed app records silence.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from build_steps import BuildError, failure_text  # noqa: E402,F401
from identity import read_identity  # noqa: E402

ENTITLEMENTS = HERE / "entitlements.plist"


def notary_arguments(env: dict[str, str] | None = None) -> list[str] | None:
    """``notarytool`` authentication arguments from the environment, or None when absent."""
    env = os.environ if env is None else env
    if env.get("MACOS_NOTARY_PROFILE"):
        return ["--keychain-profile", env["MACOS_NOTARY_PROFILE"]]
    key, key_id, issuer = env.get("MACOS_NOTARY_KEY"), env.get("MACOS_NOTARY_KEY_ID"), env.get("MACOS_NOTARY_ISSUER")
    if key and key_id and issuer:
        return ["--key", key, "--key-id", key_id, "--issuer", issuer]
    apple_id, password, team = (env.get("MACOS_NOTARY_APPLE_ID"), env.get("MACOS_NOTARY_PASSWORD"),
                                env.get("MACOS_NOTARY_TEAM_ID"))
    if apple_id and password and team:
        return ["--apple-id", apple_id, "--password", password, "--team-id", team]
    partial = [k for k in ("MACOS_NOTARY_KEY", "MACOS_NOTARY_KEY_ID", "MACOS_NOTARY_ISSUER",
                           "MACOS_NOTARY_APPLE_ID", "MACOS_NOTARY_PASSWORD", "MACOS_NOTARY_TEAM_ID")
               if env.get(k)]
    if partial:
        raise BuildError(f"incomplete notarisation credentials: only {', '.join(partial)} set")
    return None


def run(cmd: list, *, secret: bool = False) -> subprocess.CompletedProcess:
    print("+ " + (" ".join(str(c) for c in cmd[:3]) + " …" if secret else " ".join(str(c) for c in cmd)))
    return subprocess.run([str(c) for c in cmd], check=True)


def sign(path: Path, identity: str, entitlements: bool = True) -> None:
    cmd = ["codesign", "--force", "--timestamp", "--options", "runtime", "--sign", identity]
    if entitlements:
        cmd += ["--entitlements", ENTITLEMENTS]
    run([*cmd, path])


def notarise(path: Path, auth: list[str]) -> None:
    """Submit, wait for Apple's verdict, then staple the ticket so it verifies offline."""
    run(["xcrun", "notarytool", "submit", path, *auth, "--wait"], secret=True)
    run(["xcrun", "stapler", "staple", path])


def make_dmg(app: Path, volume: str, out: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / volume
        stage.mkdir()
        shutil.copytree(app, stage / app.name, symlinks=True)
        (stage / "Applications").symlink_to("/Applications")   # drag-to-install target
        out.unlink(missing_ok=True)
        run(["hdiutil", "create", "-volname", volume, "-srcfolder", stage, "-fs", "HFS+",
             "-format", "UDZO", "-ov", out])
    return out


def dmg_name(version: str, machine: str | None = None) -> str:
    """One DMG per architecture (arm64 and x86_64 are built on different runners)."""
    machine = machine or platform.machine()
    arch = {"arm64": "arm64", "aarch64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}.get(machine.lower(), machine)
    return f"CaptionOverlay-{version}-macos-{arch}.dmg"
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build, sign, notarise and package the macOS app.")
    parser.add_argument("--app", type=Path, help="use this .app instead of building one")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "macos")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "macos")
    args = parser.parse_args(argv)
    if sys.platform != "darwin":
        print("build.py makes the macOS app; run it on macOS", file=sys.stderr)
        return 2
    ident = read_identity()
    identity = os.environ.get("MACOS_SIGN_IDENTITY")
    try:
        auth = notary_arguments()
        if auth and not identity:
            raise BuildError("notarisation needs a signed app: set MACOS_SIGN_IDENTITY too")
        app = args.app
        if app is None:
            # build.spec signs every binary inside with MACOS_SIGN_IDENTITY and the entitlements.
            run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--distpath",
                 args.work / "dist", "--workpath", args.work / "pyinstaller", ROOT / "build.spec"])
            app = args.work / "dist" / f"{ident['APP_NAME']}.app"
        if not app.is_dir():
            raise BuildError(f"{app} was not built")
        if identity:
            sign(app, identity)                       # the bundle itself, over the signed insides
            run(["codesign", "--verify", "--deep", "--strict", "--verbose=2", app])
        else:
            print("signing skipped: MACOS_SIGN_IDENTITY is not set (unsigned build for this Mac only)")
        if auth:
            with tempfile.TemporaryDirectory() as tmp:   # the app itself first, so it is stapled too
                archive = Path(tmp) / f"{app.stem}.zip"
                run(["ditto", "-c", "-k", "--keepParent", app, archive])
                run(["xcrun", "notarytool", "submit", archive, *auth, "--wait"], secret=True)
            run(["xcrun", "stapler", "staple", app])
        else:
            print("notarisation skipped: no MACOS_NOTARY_* credentials in the environment")
        args.out.mkdir(parents=True, exist_ok=True)
        dmg = make_dmg(app, ident["APP_NAME"], args.out / dmg_name(ident["__version__"]))
        if identity:
            sign(dmg, identity, entitlements=False)
        if auth:
            notarise(dmg, auth)
    except (BuildError, subprocess.CalledProcessError, OSError) as exc:
        print(f"build failed: {failure_text(exc)}", file=sys.stderr)
        return 1
    print(f"{dmg}  {dmg.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
