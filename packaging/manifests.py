"""winget and Homebrew manifests for a release, from app/__init__.py and the built installers.

    python packaging/manifests.py --dist dist --out dist/manifests --tag v0.1.0

Writes, with each installer's release URL and SHA-256:

    winget/<Publisher.Name>/<version>/*.yaml   the three-file winget manifest (submit to
                                               microsoft/winget-pkgs with `wingetcreate submit`)
    homebrew/Casks/<app id>.rb                 a cask for the project's tap (arm64 and Intel DMGs)

Nothing is downloaded: the hashes come from the files in --dist, which must be the ones uploaded.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from identity import read_identity  # noqa: E402

WINGET_MANIFEST_VERSION = "1.6.0"
SUMMARY = "Live captions of meetings and videos in an always-on-top overlay"
DESCRIPTION = ("Captions what your microphone hears or your computer plays, with AssemblyAI's "
               "streaming speech-to-text or an offline recognizer, in a transparent window that "
               "stays above other apps.")
LICENSE = "MIT"


class ManifestError(Exception):
    pass


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_url(ident: dict, tag: str, filename: str) -> str:
    return f"https://github.com/{ident['REPOSITORY']}/releases/download/{tag}/{filename}"


def find_installers(dist: Path, version: str) -> dict[str, Path]:
    """{"windows": setup.exe, "macos-arm64": dmg, "macos-x86_64": dmg}; missing ones are an error."""
    wanted = {
        "windows": f"CaptionOverlay-{version}-setup.exe",
        "macos-arm64": f"CaptionOverlay-{version}-macos-arm64.dmg",
        "macos-x86_64": f"CaptionOverlay-{version}-macos-x86_64.dmg",
    }
    found: dict[str, Path] = {}
    for key, name in wanted.items():
        matches = sorted(dist.rglob(name))
        if not matches:
            raise ManifestError(f"{name} is not under {dist}: build that installer first")
        found[key] = matches[0]
    return found


def _yaml_text(value: str) -> str:
    """A YAML scalar that stays a string whatever it contains (caption text never goes here)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def winget_manifests(ident: dict, tag: str, setup: Path) -> dict[str, str]:
    """File name → text of the winget version, installer and defaultLocale manifests."""
    version = ident["__version__"]
    package_id = winget_package_id(ident)
    header = f"# yaml-language-server: $schema=https://aka.ms/winget-manifest.{{kind}}.{WINGET_MANIFEST_VERSION}.schema.json\n"
    common = (f"PackageIdentifier: {package_id}\n"
              f"PackageVersion: {_yaml_text(version)}\n")
    homepage = f"https://{ident['ORG_DOMAIN']}"
    files = {
        f"{package_id}.yaml": header.format(kind="version") + common +
        "DefaultLocale: en-US\nManifestType: version\n"
        f"ManifestVersion: {WINGET_MANIFEST_VERSION}\n",
        f"{package_id}.installer.yaml": header.format(kind="installer") + common +
        "InstallerType: inno\n"
        "Scope: user\n"                      # PrivilegesRequired=lowest: a per-user install
        "InstallModes:\n  - interactive\n  - silent\n  - silentWithProgress\n"
        "UpgradeBehavior: install\n"
        "Installers:\n"
        "  - Architecture: x64\n"
        f"    InstallerUrl: {release_url(ident, tag, setup.name)}\n"
        f"    InstallerSha256: {sha256(setup).upper()}\n"
        "ManifestType: installer\n"
        f"ManifestVersion: {WINGET_MANIFEST_VERSION}\n",
        f"{package_id}.locale.en-US.yaml": header.format(kind="defaultLocale") + common +
        "PackageLocale: en-US\n"
        f"Publisher: {_yaml_text(ident['ORG_NAME'])}\n"
        f"PackageName: {_yaml_text(ident['APP_NAME'])}\n"
        f"PackageUrl: {homepage}\n"
        f"PublisherUrl: {homepage}\n"
        f"License: {LICENSE}\n"
        f"ShortDescription: {_yaml_text(SUMMARY)}\n"
        f"Description: {_yaml_text(DESCRIPTION)}\n"
        f"ReleaseNotesUrl: https://github.com/{ident['REPOSITORY']}/releases/tag/{tag}\n"
        "Tags:\n  - captions\n  - accessibility\n  - speech-to-text\n  - subtitles\n"
        "ManifestType: defaultLocale\n"
        f"ManifestVersion: {WINGET_MANIFEST_VERSION}\n",
    }
    return files


def winget_package_id(ident: dict) -> str:
    return f"{ident['ORG_NAME']}.{re.sub(r'[^A-Za-z0-9]', '', ident['APP_NAME'])}"


def homebrew_cask(ident: dict, tag: str, arm: Path, intel: Path, macos_minimum: str = "13.0") -> str:
    version = ident["__version__"]
    # Cask DSL names macOS releases; the bundle's LSMinimumSystemVersion decides which.
    names = {11: "big_sur", 12: "monterey", 13: "ventura", 14: "sonoma", 15: "sequoia"}
    major = int(macos_minimum.split(".")[0])
    url_name = arm.name.replace(version, "#{version}").replace("arm64", "#{arch}")
    if intel.name.replace(version, "#{version}").replace("x86_64", "#{arch}") != url_name:
        raise ManifestError("the arm64 and x86_64 DMGs are not named alike")
    url = release_url(ident, tag.replace(version, "#{version}"), url_name)
    lines = [
        f'cask "{ident["APP_ID"]}" do',
        '  arch arm: "arm64", intel: "x86_64"',
        "",
        f'  version "{version}"',
        f'  sha256 arm:   "{sha256(arm)}",',
        f'         intel: "{sha256(intel)}"',
        "",
        f'  url "{url}"',
        f'  name "{ident["APP_NAME"]}"',
        f'  desc "{SUMMARY}"',
        f'  homepage "https://{ident["ORG_DOMAIN"]}"',
        "",
        "  livecheck do",
        "    url :url",
        "    strategy :github_latest",
        "  end",
        "",
    ]
    if major in names:
        lines.append(f'  depends_on macos: ">= :{names[major]}"')
        lines.append("")
    lines += [
        f'  app "{ident["APP_NAME"]}.app"',
        "",
        "  zap trash: [",
        f'    "~/Library/Application Support/{ident["APP_ID"]}",',
        f'    "~/Library/Caches/{ident["APP_ID"]}",',
        f'    "~/Library/Logs/{ident["APP_ID"]}",',
        f'    "~/Library/Preferences/{ident["BUNDLE_ID"]}.plist",',
        "  ]",
        "end",
        "",
    ]
    return "\n".join(lines)


def write_manifests(dist: Path, out: Path, tag: str, macos_minimum: str = "13.0") -> list[Path]:
    ident = read_identity()
    version = ident["__version__"]
    if tag.lstrip("v") != version:
        raise ManifestError(f"tag {tag} does not match app/__init__.py's version {version}")
    found = find_installers(dist, version)
    written = []
    package_dir = out / "winget" / winget_package_id(ident) / version
    for name, text in winget_manifests(ident, tag, found["windows"]).items():
        path = package_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    cask = out / "homebrew" / "Casks" / f"{ident['APP_ID']}.rb"
    cask.parent.mkdir(parents=True, exist_ok=True)
    cask.write_text(homebrew_cask(ident, tag, found["macos-arm64"], found["macos-x86_64"], macos_minimum),
                    encoding="utf-8")
    written.append(cask)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="winget and Homebrew manifests for a release")
    parser.add_argument("--dist", type=Path, required=True, help="folder holding the built installers")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tag", required=True, help="the release tag, e.g. v0.1.0")
    parser.add_argument("--macos-minimum", default="13.0",
                        help="the DMG's LSMinimumSystemVersion (default 13.0)")
    args = parser.parse_args(argv)
    try:
        for path in write_manifests(args.dist, args.out, args.tag, args.macos_minimum):
            print(path)
    except (ManifestError, OSError) as exc:
        print(f"manifests failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
