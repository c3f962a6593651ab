"""``--self-test`` from source: the runner's verdicts and each check against real parts.

The frozen binary runs the same code in test_linux_packages.py (marker ``packaging``).
"""

from __future__ import annotations

import io
import re
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from app import selftest
from app.cli import build_parser


def _args(*argv: str) -> Namespace:
    return build_parser().parse_args(["--self-test", *argv])


def _fake_checks(monkeypatch, checks):
    monkeypatch.setattr(selftest, "_checks", lambda args: checks)


def test_all_checks_passing_exits_zero_with_one_line_each(monkeypatch, capsys):
    _fake_checks(monkeypatch, [("audio", lambda: "PortAudio X"), ("keyring", lambda: "Backend Y")])
    assert selftest.run_self_test(_args()) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("PASS audio: PortAudio X")
    assert lines[2].startswith("PASS keyring: Backend Y")
    assert lines[-1] == "self-test passed: 2 of 2 checks"


def test_one_failure_fails_the_run_but_every_check_still_runs(monkeypatch, capsys):
    ran = []

    def bad():
        ran.append("bad")
        raise selftest.CheckFailed("the overlay rendered nothing")

    def crash():
        ran.append("crash")
        raise RuntimeError("boom")

    _fake_checks(monkeypatch, [("overlay", bad), ("engine", crash), ("audio", lambda: ran.append("ok") or "fine")])
    assert selftest.run_self_test(_args()) == selftest.EXIT_FAILED
    out = capsys.readouterr().out
    assert "FAIL overlay: the overlay rendered nothing" in out
    assert "FAIL engine: RuntimeError: boom" in out
    assert "PASS audio: fine" in out
    assert "self-test FAILED: 2 of 3 checks (overlay, engine)" in out
    assert ran == ["bad", "crash", "ok"]


def test_windowed_build_without_stdout_writes_a_log_file(monkeypatch, _private_dirs):
    _fake_checks(monkeypatch, [("audio", lambda: "ok")])
    monkeypatch.setattr(sys, "stdout", None)
    assert selftest.run_self_test(_args()) == 0
    logs = list(_private_dirs.rglob("self-test.log"))
    assert len(logs) == 1 and "PASS audio: ok" in logs[0].read_text()


def test_session_check_runs_only_with_a_server():
    names = [name for name, _ in selftest._checks(_args())]
    assert "session" not in names and {"audio", "keyring", "qt", "overlay", "offline engine"} <= set(names)
    assert "session" in [name for name, _ in selftest._checks(_args("--server", "http://127.0.0.1:9"))]


def test_audio_check_reports_portaudio():
    assert "PortAudio" in selftest.check_audio()


def test_keyring_check_names_the_backend(_memory_keyring):
    assert "MemoryKeyring" in selftest.check_keyring()


def test_keyring_check_fails_when_the_native_backend_is_missing(monkeypatch):
    monkeypatch.setitem(selftest.NATIVE_KEYRING, "linux", "keyring.backends.NoSuchBackend")
    with pytest.raises(selftest.CheckFailed, match="NoSuchBackend"):
        selftest.check_keyring()


def test_qt_check_finds_the_native_platform_plugin_and_text_services():
    detail = selftest.check_qt_platform()
    assert "qxcb" in detail and "text services ok" in detail


def test_qt_check_fails_without_the_native_platform_plugin(monkeypatch):
    monkeypatch.setitem(selftest.NATIVE_QT_PLATFORM, "linux", "qnosuchplatform")
    with pytest.raises(selftest.CheckFailed, match="qnosuchplatform"):
        selftest.check_qt_platform()


def test_overlay_check_draws_a_caption(qapp):
    assert "drawn offscreen with a caption" in selftest.check_overlay()


@pytest.mark.parametrize("protocol", ["v3", "v2"])
def test_session_check_captions_the_bundled_sentence(loopback_server, monkeypatch, protocol):
    loopback_server.set_script(["Captions are working on this computer."])
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", loopback_server.api_key)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    detail = selftest.check_session(_args("--server", loopback_server.url, "--protocol", protocol))
    assert "Captions are working on this computer." in detail
    assert loopback_server.sessions and loopback_server.sessions[0].protocol == protocol
    assert loopback_server.sessions[0].violations == []


def test_session_check_fails_with_a_rejected_key(loopback_server, monkeypatch):
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", "not-the-key")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(selftest.CheckFailed, match="exited with 3") as info:
        selftest.check_session(_args("--server", loopback_server.url))
    assert "not-the-key" not in str(info.value)


def test_session_check_fails_when_nothing_listens(monkeypatch):
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", "some-key")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(selftest.CheckFailed, match="exited with 4"):
        selftest.check_session(_args("--server", "http://127.0.0.1:9"))


def test_session_check_fails_without_the_recording(monkeypatch, tmp_path):
    monkeypatch.setattr(selftest, "resources_dir", lambda: tmp_path)
    with pytest.raises(selftest.CheckFailed, match="missing"):
        selftest.check_session(_args("--server", "http://127.0.0.1:9"))


def test_resources_are_found_in_a_frozen_bundle(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert selftest.resources_dir() == Path(tmp_path) / "resources"


@pytest.mark.offline_engine
def test_offline_check_decodes_the_bundled_sentence():
    detail = selftest.check_offline_engine()
    assert "working" in detail.lower()
    from app.core.engines import models

    if models.choose() == "moonshine":      # it names the weights it ran
        assert re.search(r", (float|int8|shipped) weights \(partials: (float|int8|shipped)\)\)$", detail), detail
