"""packaging/ci.py: the steps the GitHub workflows call, run here on Linux."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest
from tests.packaging.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]



ci = load_script("packaging_ci", ROOT / "packaging/ci.py")
identity = load_script("packaging_identity", ROOT / "packaging/identity.py")
VERSION = identity.read_identity()["__version__"]


def test_linux_runs_exactly_the_readme_test_command():
    cmd = ci.test_command("linux", ["-x", "-q"])
    assert cmd[0] == "bash" and cmd[1].endswith("packaging/dev.sh") and cmd[2:] == ["test", "-x", "-q"]
    assert "packaging/dev.sh test" in (ROOT / ".ci/run").read_text()


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_other_systems_deselect_the_linux_only_tests(platform):
    cmd = ci.test_command(platform, ["-q"])
    expression = cmd[cmd.index("-m", 2) + 1]
    for marker in ("desktop", "pulse", "secret_service", "sdk", "packaging"):
        assert f"not {marker}" in expression
    declared = (ROOT / "pyproject.toml").read_text()
    for marker in ci.LINUX_ONLY_MARKERS:
        assert f'"{marker}:' in declared, marker          # only markers that exist


@pytest.mark.parametrize("tag", [f"v{VERSION}", f"refs/tags/v{VERSION}"])
def test_the_version_tag_must_match_the_app(tag):
    assert ci.check_tag(tag) == VERSION


@pytest.mark.parametrize("tag, reason", [("v9.9.9", "does not match"), ("release-1", "not a version tag"),
                                         (VERSION, "not a version tag")])
def test_a_wrong_tag_is_refused_in_plain_words(tag, reason):
    with pytest.raises(ci.StepError, match=reason):
        ci.check_tag(tag)
    assert ci.main(["check-tag", tag]) == 1


def test_each_os_builds_with_its_own_script():
    assert ci.build_commands("linux")[0][1].endswith("packaging/linux/build.py")
    assert ci.build_commands("win32")[0][1].endswith("packaging/windows/build.py")
    assert ci.build_commands("darwin")[0][1].endswith("packaging/macos/build.py")
    for script in ("linux", "windows", "macos"):
        assert (ROOT / "packaging" / script / "build.py").is_file()


def test_frozen_executables_are_where_the_builds_leave_them(tmp_path):
    assert ci.frozen_executable("linux", tmp_path) == tmp_path / "build/linux/dist/caption-overlay/caption-overlay"
    assert ci.frozen_executable("win32", tmp_path).name == "caption-overlay-cli.exe"   # the console twin
    mac = ci.frozen_executable("darwin", tmp_path)
    assert mac.parts[-4:] == ("Caption Overlay.app", "Contents", "MacOS", "caption-overlay")


def test_checksums_cover_every_installer_in_sha256sum_format(tmp_path):
    (tmp_path / "windows").mkdir()
    (tmp_path / "linux").mkdir()
    (tmp_path / "windows" / "CaptionOverlay-1-setup.exe").write_bytes(b"exe")
    (tmp_path / "linux" / "caption-overlay_1_amd64.deb").write_bytes(b"deb")
    (tmp_path / "linux" / "caption-overlay-1-linux-x86_64.tar.gz").write_bytes(b"tar")
    (tmp_path / "linux" / "build.log").write_text("not an installer")
    out = ci.write_checksums(tmp_path)
    lines = out.read_text().splitlines()
    assert len(lines) == 3
    assert f"{hashlib.sha256(b'exe').hexdigest()}  CaptionOverlay-1-setup.exe" in lines
    assert not any("build.log" in line for line in lines)


def test_checksums_refuse_an_empty_folder_and_clashing_names(tmp_path):
    with pytest.raises(ci.StepError, match="no installers"):
        ci.write_checksums(tmp_path)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.dmg").write_bytes(sub.encode())
    with pytest.raises(ci.StepError, match="share a name"):
        ci.write_checksums(tmp_path)


CHANGELOG = textwrap.dedent("""\
    # Changelog

    ## [1.1.0] - 2027-01-02
    - Newer thing.

    ## [1.0.0] - 2026-12-01
    - First thing.
    - Second thing.

    ## 0.9.0
    """)


def test_changelog_section_is_the_release_notes():
    assert ci.changelog_section("1.0.0", CHANGELOG) == "- First thing.\n- Second thing.\n"
    assert ci.changelog_section("1.1.0", CHANGELOG) == "- Newer thing.\n"
    with pytest.raises(ci.StepError, match="no section for 2.0.0"):
        ci.changelog_section("2.0.0", CHANGELOG)
    with pytest.raises(ci.StepError, match="empty"):
        ci.changelog_section("0.9.0", CHANGELOG)


def test_the_repository_changelog_has_this_version(capsys):
    assert ci.main(["changelog", VERSION]) == 0
    assert capsys.readouterr().out.strip()


def test_publish_attaches_installers_sums_and_notes(tmp_path):
    (tmp_path / "macos").mkdir()
    (tmp_path / "macos" / "CaptionOverlay-1-macos-arm64.dmg").write_bytes(b"d")
    (tmp_path / "manifests" / "homebrew").mkdir(parents=True)
    (tmp_path / "manifests" / "homebrew" / "caption-overlay.rb").write_text("cask")
    (tmp_path / "SHA256SUMS").write_text("x")
    notes = tmp_path / "notes.md"
    cmd = ci.publish_command(f"v{VERSION}", tmp_path, notes)
    assert cmd[:4] == ["gh", "release", "create", f"v{VERSION}"]
    assert cmd[cmd.index("--notes-file") + 1] == str(notes)
    assert str(tmp_path / "SHA256SUMS") in cmd and any(c.endswith(".dmg") for c in cmd)
    assert any(c.endswith("caption-overlay.rb") for c in cmd)
    assert "--prerelease" not in cmd
    assert "--prerelease" in ci.publish_command("v1.0.0rc1", tmp_path, notes)


def test_dry_run_prints_and_runs_nothing(capsys):
    assert ci.main(["--dry-run", "build"]) == 0
    assert "packaging/linux/build.py" in capsys.readouterr().out


FAKE_APP = textwrap.dedent("""\
    import os, sys, urllib.request
    args = sys.argv[1:]
    assert args[0] == "--self-test", args
    assert os.environ["QT_QPA_PLATFORM"] == "offscreen"
    if "--server" in args:
        url = args[args.index("--server") + 1]
        assert os.environ["ASSEMBLYAI_API_KEY"] == "ci-selftest-key"
        try:
            urllib.request.urlopen(url + "/v2/realtime/token", timeout=10)
        except urllib.error.HTTPError as exc:      # the server answered: it is up
            print("PASS session: server answered", exc.code)
        else:
            print("PASS session: server answered")
    else:
        assert "ASSEMBLYAI_API_KEY" not in os.environ
        print("PASS offscreen")
    sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
    """)


@pytest.fixture
def fake_app(tmp_path):
    if sys.platform == "win32":
        pytest.skip("the stand-in app is a shell script")
    script = tmp_path / "fake_app.py"
    script.write_text(FAKE_APP)
    exe = tmp_path / "fake-app"
    exe.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    exe.chmod(0o755)
    return exe


def test_selftest_runs_offscreen_then_against_the_loopback_server(fake_app, capfd):
    assert ci.main(["selftest", "--exe", str(fake_app)]) == 0
    out = capfd.readouterr().out
    assert "PASS offscreen" in out and "PASS session: server answered" in out


def test_a_failing_selftest_fails_the_step(fake_app, monkeypatch):
    monkeypatch.setenv("FAKE_EXIT", "1")
    assert ci.main(["selftest", "--exe", str(fake_app)]) == 1


def test_selftest_without_a_build_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ci, "frozen_executable", lambda platform: tmp_path / "missing")
    assert ci.main(["selftest"]) == 1
    assert "run the build step first" in capsys.readouterr().err


def test_the_notary_key_secret_becomes_a_private_file(tmp_path):
    env = ci.notary_key_file({"MACOS_NOTARY_KEY": "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----",
                              "OTHER": "x"}, tmp_path)
    path = Path(env["MACOS_NOTARY_KEY"])
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----") and env["OTHER"] == "x"
    assert path.stat().st_mode & 0o777 == 0o600
    assert ci.notary_key_file({"MACOS_NOTARY_KEY": "/keys/AuthKey.p8"}, tmp_path) == {"MACOS_NOTARY_KEY": "/keys/AuthKey.p8"}


REPOSITORY = identity.read_identity()["REPOSITORY"]


@pytest.mark.parametrize("actual", [REPOSITORY, REPOSITORY.upper(), f" {REPOSITORY}\n"])
def test_a_release_runs_only_in_the_repository_the_app_names(actual):
    assert ci.check_repository(actual) == REPOSITORY


def test_a_fork_cannot_build_release_installers(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone-else/caption-overlay")
    assert ci.main(["check-repository"]) == 1
    err = capsys.readouterr().err
    assert "someone-else/caption-overlay" in err and REPOSITORY in err and "Set REPOSITORY" in err
    monkeypatch.setenv("GITHUB_REPOSITORY", REPOSITORY)
    assert ci.main(["check-repository"]) == 0


def test_the_repository_check_needs_to_know_where_it_runs(monkeypatch, capsys):
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    assert ci.main(["check-repository"]) == 1
    assert "GITHUB_REPOSITORY is not set" in capsys.readouterr().err
    with pytest.raises(ci.StepError, match="runs in 'a/b'"):
        ci.check_repository("a/b", "c/d")
