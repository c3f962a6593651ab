"""pactl children never inherit the API key."""

from __future__ import annotations

import os

from app.core.audio import pulse
from app.core.credentials import ENV_VAR, child_environment


def test_pactl_runs_without_the_api_key(tmp_path, monkeypatch):
    fake = tmp_path / "pactl"
    fake.write_text("#!/bin/sh\nenv\n")
    fake.chmod(0o700)
    monkeypatch.setattr(pulse.shutil, "which", lambda name: str(fake))
    monkeypatch.setenv(ENV_VAR, "child-must-not-see-this-key")
    monkeypatch.setenv("KEEP_ME", "yes")
    printed = pulse._run("info")
    assert "child-must-not-see-this-key" not in printed and ENV_VAR not in printed
    assert "KEEP_ME=yes" in printed and "LC_ALL=C" in printed


def test_child_environment_only_drops_the_key(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "k")
    env = child_environment(EXTRA="1")
    assert ENV_VAR not in env and env["EXTRA"] == "1"
    assert env.get("PATH") == os.environ.get("PATH")
    assert os.environ[ENV_VAR] == "k"   # this process keeps it
