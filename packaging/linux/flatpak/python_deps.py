"""The Flatpak's Python dependencies as a flatpak-builder module, from a pip installation report.

Flathub builds offline, so every wheel is a listed source with its URL and SHA-256:

    pip install --dry-run --ignore-installed --only-binary=:all: --platform manylinux_2_28_x86_64 \\
        --python-version 3.12 --implementation cp --target /tmp/x --report report.json \\
        PySide6-Essentials websocket-client keyring numpy platformdirs certifi pyaudio
    python packaging/linux/flatpak/python_deps.py report.json > packaging/linux/flatpak/python-deps.json

(PyAudio has no manylinux wheel: drop ``--only-binary`` for it, its sdist builds against the
manifest's PortAudio module.) The runtime's Python is 3.12 (freedesktop 24.08).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit


class ReportError(Exception):
    pass


def module_from_report(report: dict) -> dict:
    sources, names = [], []
    for item in report.get("install", []):
        name = item["metadata"]["name"]
        info = item.get("download_info", {})
        url = info.get("url", "")
        digest = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if urlsplit(url).scheme != "https":
            raise ReportError(f"{name}: {url or 'no URL'} is not a public https download (use PyPI, not a local mirror)")
        if not digest:
            raise ReportError(f"{name}: the report has no sha256")
        sources.append({"type": "file", "url": url, "sha256": digest})
        names.append(name)
    if not sources:
        raise ReportError("the report lists nothing to install")
    return {
        "name": "python-deps",
        "buildsystem": "simple",
        "build-commands": [
            "pip3 install --no-index --find-links=\"file://${PWD}\" --prefix=${FLATPAK_DEST} "
            "--no-build-isolation " + " ".join(sorted(names))
        ],
        "sources": sources,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python_deps.py report.json > python-deps.json", file=sys.stderr)
        return 2
    try:
        report = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        print(json.dumps(module_from_report(report), indent=2))
    except (OSError, ValueError, KeyError, ReportError) as exc:
        print(f"python_deps: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
