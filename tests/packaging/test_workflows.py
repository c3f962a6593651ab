"""The GitHub workflows: schema-valid, actionlint-clean, thin (every step a packaging/ script),
actions pinned by version, secrets only in step environments."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))       # YAML 1.1 reads the key `on` as True
    return data


def _steps(workflow: dict):
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path):
    tool = _tool("check-jsonschema")
    assert tool, "check-jsonschema is missing: pip install -e '.[test]'"
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(path):
    tool = _tool("actionlint")
    if tool is None and not sys.platform.startswith("linux"):
        pytest.skip("the workflows are linted by the Linux job (the test extra installs actionlint there)")
    assert tool, "actionlint is missing: pip install -e '.[test]'"
    result = subprocess.run([tool, "-no-color", str(path)], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_step_is_a_packaging_script_or_a_pinned_action(path):
    for job, step in _steps(_load(path)):
        if "uses" in step:
            assert PINNED.match(step["uses"]), f"{job}: {step['uses']} is not pinned to a version"
            continue
        command = step["run"].strip()
        assert "\n" not in command, f"{job}: multi-line run step; move it into packaging/"
        match = re.match(r"^python (packaging/[\w/]+\.py)\b", command)
        assert match, f"{job}: {command!r} does not call a packaging/ script"
        assert (ROOT / match.group(1)).is_file(), match.group(1)
        assert "${{" not in command, f"{job}: expressions in run lines can inject; pass them via env"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_appear_only_in_step_environments(path):
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        if "secrets." in line:
            assert re.match(r"^\s+[A-Z0-9_]+: \$\{\{ secrets\.[A-Z0-9_]+ \}\}$", line), f"line {number}: {line}"
    workflow = _load(path)
    assert workflow["permissions"] == {"contents": "read"}      # write only where a job needs it


def test_ci_runs_linux_fully_and_windows_and_macos_unit_tests():
    workflow = _load(ROOT / ".github/workflows/ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    oses = {item["os"] for item in workflow["jobs"]["other-os"]["strategy"]["matrix"]["include"]}
    assert {"windows-latest", "macos-latest"} <= oses
    assert workflow["jobs"]["linux"]["runs-on"].startswith("ubuntu")


def test_release_builds_tests_and_publishes_on_every_os():
    workflow = _load(ROOT / ".github/workflows/release.yml")
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    build = workflow["jobs"]["build"]
    oses = {item["os"] for item in build["strategy"]["matrix"]["include"]}
    assert {"windows-latest", "macos-latest", "macos-15-intel"} <= oses and any(o.startswith("ubuntu") for o in oses)
    runs = [step.get("run", "") for step in build["steps"]]
    order = [next(i for i, r in enumerate(runs) if f"ci.py {name}" in r)
             for name in ("check-repository", "check-tag", "build-tools", "build", "selftest")]
    assert order == sorted(order)
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build" and publish["permissions"] == {"contents": "write"}
    publish_runs = " ".join(step.get("run", "") for step in publish["steps"])
    assert publish_runs.index("ci.py check-repository") < publish_runs.index("ci.py publish")
    assert "packaging/manifests.py" in publish_runs and "ci.py publish" in publish_runs
