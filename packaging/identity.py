"""The app's identity (name, version, ids) read from app/__init__.py without importing the app.

build.spec, the installer scripts and the version-resource generator all call this, so the
version is written in exactly one place. Parsing (instead of importing) keeps packaging tools
independent of the app's dependencies.

    python packaging/identity.py            # prints KEY=VALUE lines (shell-friendly)
    python packaging/identity.py version    # prints one value
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INIT = ROOT / "app" / "__init__.py"
FIELDS = ("APP_NAME", "APP_ID", "ORG_NAME", "ORG_DOMAIN", "BUNDLE_ID", "REPOSITORY", "__version__")


def read_identity(path: Path = INIT) -> dict[str, str]:
    """``{"APP_NAME": ..., "__version__": ..., "version_tuple": (1, 2, 3, 0)}``; raises ValueError."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in FIELDS:
                    found[target.id] = node.value.value
    missing = [f for f in FIELDS if f not in found]
    if missing:
        raise ValueError(f"{path} does not define {', '.join(missing)} as string constants")
    found["version_tuple"] = version_tuple(found["__version__"])
    return found


def version_tuple(version: str) -> tuple[int, int, int, int]:
    """"1.2.3", "1.2.3rc1", "1.2" → four integers, as Windows version resources need."""
    match = re.match(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:\.(\d+))?", version)
    if not match:
        raise ValueError(f"version {version!r} does not start with a number")
    parts = [int(p) if p is not None else 0 for p in match.groups()]
    if any(p > 65535 for p in parts):
        raise ValueError(f"version {version!r} has a part above 65535")
    return tuple(parts)  # type: ignore[return-value]


def main(argv: list[str]) -> int:
    ident = read_identity()
    if argv:
        key = {"version": "__version__", "name": "APP_NAME", "id": "APP_ID",
               "bundle_id": "BUNDLE_ID", "org": "ORG_NAME", "domain": "ORG_DOMAIN"}.get(argv[0], argv[0])
        if key not in ident:
            print(f"unknown field {argv[0]!r}", file=sys.stderr)
            return 2
        print(ident[key])
        return 0
    for key in FIELDS:
        print(f"{key.strip('_').upper()}={ident[key]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
