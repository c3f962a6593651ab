"""The core must stay importable and testable without Qt."""

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "app" / "core"


def test_core_has_no_qt_imports():
    offenders = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in ("PySide6", "PyQt6", "shiboken6")]
    assert not offenders, offenders
