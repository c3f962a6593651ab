"""winget and Homebrew manifests: generated from app/__init__.py with the release's URLs and hashes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from tests.packaging.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]



manifests = load_script("packaging_manifests", ROOT / "packaging/manifests.py")
identity = load_script("packaging_identity", ROOT / "packaging/identity.py")
IDENT = identity.read_identity()
VERSION = IDENT["__version__"]
TAG = f"v{VERSION}"


@pytest.fixture
def dist(tmp_path):
    files = {
        "windows": f"CaptionOverlay-{VERSION}-setup.exe",
        "macos": f"CaptionOverlay-{VERSION}-macos-arm64.dmg",
        "macos2": f"CaptionOverlay-{VERSION}-macos-x86_64.dmg",
    }
    for folder, name in files.items():
        (tmp_path / "dist" / folder.rstrip("2")).mkdir(parents=True, exist_ok=True)
        (tmp_path / "dist" / folder.rstrip("2") / name).write_bytes(name.encode())
    return tmp_path / "dist"


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def test_winget_manifest_has_the_release_url_hash_and_identity(dist, tmp_path):
    written = manifests.write_manifests(dist, tmp_path / "out", TAG)
    folder = tmp_path / "out" / "winget" / "CaptionOverlay.CaptionOverlay" / VERSION
    docs = {p.name: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}
    assert set(docs) == {"CaptionOverlay.CaptionOverlay.yaml", "CaptionOverlay.CaptionOverlay.installer.yaml",
                         "CaptionOverlay.CaptionOverlay.locale.en-US.yaml"}
    assert {d["ManifestType"] for d in docs.values()} == {"version", "installer", "defaultLocale"}
    assert all(d["PackageVersion"] == VERSION and d["ManifestVersion"] == "1.6.0" for d in docs.values())
    installer = docs["CaptionOverlay.CaptionOverlay.installer.yaml"]
    assert installer["InstallerType"] == "inno" and installer["Scope"] == "user"
    (entry,) = installer["Installers"]
    setup = f"CaptionOverlay-{VERSION}-setup.exe"
    assert entry["InstallerUrl"] == f"https://github.com/{IDENT['REPOSITORY']}/releases/download/{TAG}/{setup}"
    assert entry["InstallerSha256"] == _digest(setup).upper() and entry["Architecture"] == "x64"
    locale = docs["CaptionOverlay.CaptionOverlay.locale.en-US.yaml"]
    assert locale["PackageName"] == IDENT["APP_NAME"] and locale["Publisher"] == IDENT["ORG_NAME"]
    assert len(written) == 4


def test_homebrew_cask_has_both_architectures(dist, tmp_path):
    manifests.write_manifests(dist, tmp_path / "out", TAG, macos_minimum="14.0")
    cask = (tmp_path / "out" / "homebrew" / "Casks" / f"{IDENT['APP_ID']}.rb").read_text()
    assert cask.startswith(f'cask "{IDENT["APP_ID"]}" do') and cask.rstrip().endswith("end")
    assert f'version "{VERSION}"' in cask
    assert f'arm:   "{_digest(f"CaptionOverlay-{VERSION}-macos-arm64.dmg")}"' in cask
    assert f'intel: "{_digest(f"CaptionOverlay-{VERSION}-macos-x86_64.dmg")}"' in cask
    url = re.search(r'url "([^"]+)"', cask).group(1)
    expanded = url.replace("#{version}", VERSION).replace("#{arch}", "arm64")
    assert expanded == (f"https://github.com/{IDENT['REPOSITORY']}/releases/download/{TAG}/"
                        f"CaptionOverlay-{VERSION}-macos-arm64.dmg")
    assert 'depends_on macos: ">= :sonoma"' in cask
    assert f'app "{IDENT["APP_NAME"]}.app"' in cask
    assert cask.count(" do") == cask.count("\nend") + cask.count("  end")   # blocks are closed


def test_missing_installer_or_wrong_tag_is_a_clear_error(dist, tmp_path, capsys):
    with pytest.raises(manifests.ManifestError, match="does not match"):
        manifests.write_manifests(dist, tmp_path / "out", "v99.0.0")
    next(dist.rglob("*x86_64.dmg")).unlink()
    assert manifests.main(["--dist", str(dist), "--out", str(tmp_path / "out"), "--tag", TAG]) == 1
    assert "macos-x86_64.dmg is not under" in capsys.readouterr().err
