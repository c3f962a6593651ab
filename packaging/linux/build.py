"""Build the Linux installers from the PyInstaller bundle: a .deb and a portable .tar.gz.

    .venv/bin/python packaging/linux/build.py                 # → dist/linux/*.deb, *.tar.gz
    .venv/bin/python packaging/linux/build.py --bundle dist/caption-overlay   # reuse a bundle

Needs: the package's venv with pyinstaller (``pip install -e '.[offline,package]'``), dpkg-deb
(any Debian/Ubuntu), and for validation desktop-file-utils and appstream (optional: skipped with a
note when missing). An AppImage is made as well when ``appimagetool`` is on PATH; it is not
available from Debian's or Python's package registries, so by default only the .deb and .tar.gz
are produced.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent))
from bundle_size import measure  # noqa: E402
from identity import read_identity  # noqa: E402

ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "armhf"}
INSTALL_DIR = "opt"          # the bundle goes to /opt/<app id>/, the launcher to /usr/bin/<app id>


class BuildError(Exception):
    pass


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


# --- inputs ------------------------------------------------------------------------------------

def build_bundle(work: Path) -> Path:
    started = time.monotonic()
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", work / "dist", "--workpath", work / "pyinstaller", ROOT / "build.spec"])
    print(f"bundle built in {time.monotonic() - started:.0f} s")
    return work / "dist" / read_identity()["APP_ID"]


def metainfo_text(ident: dict, date: str | None = None) -> str:
    template = (HERE / f"{ident['BUNDLE_ID']}.metainfo.xml.in").read_text(encoding="utf-8")
    date = date or _dt.date.today().isoformat()
    return template.replace("@VERSION@", ident["__version__"]).replace("@DATE@", date)


def validate(desktop: Path, metainfo: Path) -> list[str]:
    """Run the freedesktop validators that are installed; raise on a real error."""
    done = []
    if shutil.which("desktop-file-validate"):
        result = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        errors = [line for line in (result.stdout + result.stderr).splitlines() if "error" in line.lower()]
        if result.returncode != 0 or errors:
            raise BuildError(f"desktop-file-validate: {result.stdout}{result.stderr}")
        done.append("desktop-file-validate")
    else:
        print("note: desktop-file-validate not installed (apt-get install desktop-file-utils); skipped")
    if shutil.which("appstreamcli"):
        result = subprocess.run(["appstreamcli", "validate", "--no-net", str(metainfo)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"appstreamcli validate: {result.stdout}{result.stderr}")
        done.append("appstreamcli validate")
    else:
        print("note: appstreamcli not installed (apt-get install appstream); skipped")
    return done


# --- shared-library dependencies of the bundle → Debian packages ------------------------------

def _needed(path: Path) -> list[str]:
    try:
        out = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True).stdout
    except OSError:
        return []
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def external_libraries(bundle: Path) -> set[str]:
    """Sonames the bundle's binaries link but the bundle does not contain (the system provides them)."""
    provided, needed = set(), set()
    for root, _dirs, files in os.walk(bundle):
        for name in files:
            provided.add(name)
            path = Path(root) / name
            if not path.is_symlink() and _is_elf(path):
                needed.update(_needed(path))
    return needed - provided


def debian_depends(sonames: set[str]) -> list[str]:
    """The Debian packages that ship ``sonames`` on this build machine (dpkg -S)."""
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    packages: set[str] = set()
    unresolved = []
    for soname in sorted(sonames):
        paths = re.findall(rf"^\s*{re.escape(soname)} \(([^)]*)\) => (\S+)$", cache, re.M)
        chosen = next((p for arch, p in paths if "x86-64" in arch or "64" in arch), None) \
            or (paths[0][1] if paths else None)
        if chosen is None:
            unresolved.append(soname)
            continue
        owner = None
        for candidate in (chosen, os.path.realpath(chosen),
                          chosen.replace("/usr/lib/", "/lib/"), chosen.replace("/lib/", "/usr/lib/", 1)):
            result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if result.returncode == 0:
                owner = result.stdout.split(":")[0].strip()
                break
        if owner:
            packages.add(owner)
        else:
            unresolved.append(soname)
    if unresolved:
        raise BuildError("no Debian package provides " + ", ".join(unresolved) + " on this machine")
    return sorted(packages)


# --- outputs -----------------------------------------------------------------------------------

def stage_share(root: Path, ident: dict, date: str | None = None) -> tuple[Path, Path]:
    """usr/share/{applications,metainfo,icons} under ``root``; returns (desktop, metainfo)."""
    app_id = ident["BUNDLE_ID"]
    share = root / "usr" / "share"
    desktop = share / "applications" / f"{app_id}.desktop"
    desktop.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / f"{app_id}.desktop", desktop)
    metainfo = share / "metainfo" / f"{app_id}.metainfo.xml"
    metainfo.parent.mkdir(parents=True, exist_ok=True)
    metainfo.write_text(metainfo_text(ident, date), encoding="utf-8")
    resources = ROOT / "resources"
    for size in ICON_SIZES:
        target = share / "icons" / "hicolor" / f"{size}x{size}" / "apps" / f"{app_id}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(resources / f"caption-overlay-{size}.png", target)
    scalable = share / "icons" / "hicolor" / "scalable" / "apps" / f"{app_id}.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(resources / "caption-overlay.svg", scalable)
    return desktop, metainfo


def _dir_size_kib(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            p = Path(root) / name
            if not p.is_symlink():
                total += p.stat().st_size
    return (total + 1023) // 1024


def build_deb(bundle: Path, ident: dict, work: Path, out: Path, compression: str = "xz",
              level: int | None = None) -> Path:
    app_id, version = ident["APP_ID"], ident["__version__"]
    arch = DEB_ARCH.get(platform.machine(), platform.machine())
    root = work / "deb-root"
    shutil.rmtree(root, ignore_errors=True)
    target = root / INSTALL_DIR / app_id
    shutil.copytree(bundle, target, symlinks=True)
    (root / "usr" / "bin").mkdir(parents=True)
    # Relative, so the package also works unpacked under another root (dpkg -x, tests).
    os.symlink(f"../../{INSTALL_DIR}/{app_id}/{app_id}", root / "usr" / "bin" / app_id)
    desktop, metainfo = stage_share(root, ident)
    checks = validate(desktop, metainfo)
    doc = root / "usr" / "share" / "doc" / app_id
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        f"Upstream-Name: {ident['APP_NAME']}\n\nFiles: *\nCopyright: {ident['ORG_NAME']}\n"
        "License: MIT\n\nFiles: opt/*/_internal/*\nComment: third-party libraries bundled by "
        "PyInstaller (Qt/PySide6: LGPL-3.0; PortAudio, numpy, onnxruntime, Moonshine: MIT/BSD);\n"
        " their licence files are inside the bundle next to each library.\n", encoding="utf-8")
    depends = debian_depends(external_libraries(target))
    control = root / "DEBIAN" / "control"
    control.parent.mkdir()
    control.write_text(
        f"Package: {app_id}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        f"Maintainer: {ident['ORG_NAME']} <packages@{ident['ORG_DOMAIN']}>\n"
        f"Installed-Size: {_dir_size_kib(root) - _dir_size_kib(root / 'DEBIAN')}\n"
        f"Depends: {', '.join(depends)}\n"
        # ALSA's PulseAudio/PipeWire plugin routes PortAudio's "default" device to the sound server.
        "Recommends: libasound2-plugins\n"
        "Suggests: gnome-keyring | kwalletmanager, pulseaudio | pipewire-pulse\n"
        "Section: sound\n"
        "Priority: optional\n"
        f"Homepage: https://{ident['ORG_DOMAIN']}\n"
        f"Description: {ident['APP_NAME']}: live captions in an always-on-top overlay\n"
        " Shows live captions of the microphone or of the sound the computer plays\n"
        " (meetings, videos) in a transparent window above all others. Uses\n"
        " AssemblyAI streaming speech recognition with your own API key, or an\n"
        " offline recognizer that keeps all audio on this computer.\n", encoding="utf-8")
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"{app_id}_{version}_{arch}.deb"
    run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", *([f"-z{level}"] if level is not None else []),
         "--build", root, deb], stdout=subprocess.DEVNULL)
    print(f"deb: validated with {', '.join(checks) or 'nothing (validators missing)'}; "
          f"Depends: {', '.join(depends)}")
    return deb


def build_tarball(bundle: Path, ident: dict, work: Path, out: Path, level: int = 6) -> Path:
    """Portable archive: unpack anywhere and run ./caption-overlay (install-desktop-entry.sh adds it
    to the application menu for the current user)."""
    app_id, version = ident["APP_ID"], ident["__version__"]
    top = f"{app_id}-{version}"
    stage = work / "tar-root" / top
    shutil.rmtree(stage.parent, ignore_errors=True)
    shutil.copytree(bundle, stage, symlinks=True)
    stage_share(stage, ident)
    shutil.move(str(stage / "usr" / "share"), str(stage / "share"))
    shutil.rmtree(stage / "usr")
    shutil.copy(HERE / "install-desktop-entry.sh", stage / "install-desktop-entry.sh")
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{top}-linux-{platform.machine()}.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=level) as tar:
        tar.add(stage, arcname=top)
    return archive


def build_appimage(bundle: Path, ident: dict, work: Path, out: Path) -> Path | None:
    tool = shutil.which("appimagetool")
    if tool is None:
        print("note: appimagetool is not on PATH (it is not in Debian's or PyPI's registries); "
              "no AppImage built: ship the .deb and the .tar.gz")
        return None
    app_id, app_dir = ident["BUNDLE_ID"], work / "AppDir"
    shutil.rmtree(app_dir, ignore_errors=True)
    shutil.copytree(bundle, app_dir / INSTALL_DIR / ident["APP_ID"], symlinks=True)
    stage_share(app_dir, ident)
    shutil.copy(app_dir / "usr/share/applications" / f"{app_id}.desktop", app_dir / f"{app_id}.desktop")
    shutil.copy(ROOT / "resources" / "caption-overlay-256.png", app_dir / f"{app_id}.png")
    apprun = app_dir / "AppRun"
    apprun.write_text('#!/bin/sh\nHERE="$(dirname "$(readlink -f "$0")")"\n'
                      f'exec "$HERE/{INSTALL_DIR}/{ident["APP_ID"]}/{ident["APP_ID"]}" "$@"\n')
    apprun.chmod(0o755)
    image = out / f"{ident['APP_NAME'].replace(' ', '_')}-{ident['__version__']}-{platform.machine()}.AppImage"
    run([tool, app_dir, image], env={**os.environ, "ARCH": platform.machine()})
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Linux .deb and .tar.gz (and AppImage).")
    parser.add_argument("--bundle", type=Path, help="use this PyInstaller bundle instead of building one")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "linux")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "linux")
    parser.add_argument("--deb-compression", default="xz", choices=("xz", "gzip", "zstd", "none"))
    parser.add_argument("--no-tar", action="store_true")
    parser.add_argument("--fast", action="store_true",
                        help="light compression (gzip -1) for test builds: bigger files, seconds not minutes")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("build.py makes Linux packages; run it on Linux", file=sys.stderr)
        return 2
    ident = read_identity()
    args.work.mkdir(parents=True, exist_ok=True)
    try:
        bundle = args.bundle or build_bundle(args.work)
        if not (bundle / ident["APP_ID"]).is_file():
            raise BuildError(f"{bundle} holds no {ident['APP_ID']} executable")
        print("\n".join(measure(bundle).lines()))
        compression = "gzip" if args.fast else args.deb_compression
        artifacts = [build_deb(bundle, ident, args.work, args.out, compression, level=1 if args.fast else None)]
        if not args.no_tar:
            artifacts.append(build_tarball(bundle, ident, args.work, args.out, level=1 if args.fast else 6))
        image = build_appimage(bundle, ident, args.work, args.out)
        if image:
            artifacts.append(image)
    except (BuildError, subprocess.CalledProcessError) as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    for artifact in artifacts:
        print(f"{artifact}  {artifact.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
