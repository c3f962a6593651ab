"""Modules the app imports by name at run time on one OS only, which PyInstaller cannot see.

build.spec adds them as hidden imports; a missing one is a build error on that OS, not a
silently absent feature (system audio on Windows, all-Spaces overlay on macOS).
"""

from __future__ import annotations

import importlib.util

# sys.platform → modules. pyaudiowpatch is loaded through load_pyaudio("pyaudiowpatch");
# objc/AppKit only inside app.qt.platform's macOS branch.
PLATFORM_MODULES: dict[str, tuple[str, ...]] = {
    "win32": ("pyaudiowpatch",),
    "darwin": ("objc", "AppKit", "Foundation"),
}


def platform_hiddenimports(platform: str, find_spec=importlib.util.find_spec) -> list[str]:
    """The hidden imports for ``platform``; raises ``LookupError`` naming any that is missing."""
    wanted = PLATFORM_MODULES.get(platform, ())
    missing = [name for name in wanted if find_spec(name) is None]
    if missing:
        raise LookupError(f"{', '.join(missing)} not installed: the {platform} build would lack "
                          "a feature (pip install -e . installs it on that OS)")
    return list(wanted)
