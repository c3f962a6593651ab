"""packaging/dev.sh installs the package only when something it depends on changed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_installs_once_then_only_when_pyproject_changes(tmp_path):
    script = (ROOT / "packaging" / "dev.sh").read_text()
    function = re.search(r"^venv\(\) \{.*?^\}", script, re.S | re.M).group(0)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "pip.log"
    fake_python = venv / "bin" / "python"
    fake_python.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\n")
    fake_python.chmod(0o755)
    (venv / "bin" / "caption-overlay").write_text("#!/bin/sh\n")
    (venv / "bin" / "caption-overlay").chmod(0o755)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    run = lambda: subprocess.run(["bash", "-c", f"set -euo pipefail\n{function}\nvenv {venv} offline"],  # noqa: E731
                                 cwd=tmp_path, check=True)
    run()
    installs = lambda: log.read_text().count("install -q -e") if log.exists() else 0  # noqa: E731
    assert installs() == 1
    run()
    assert installs() == 1                      # nothing changed: launch at once
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\ndependencies = ['y']\n")
    run()
    assert installs() == 2


def test_license_is_an_spdx_string():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', text, re.M)   # a TOML table makes setuptools warn on every build
