"""What the installer build scripts share: their error type and what a failed step prints."""

from __future__ import annotations

import subprocess


class BuildError(Exception):
    """A build step that cannot go on; its message is for the person running the build."""


def failure_text(exc: BaseException) -> str:
    """What to print when a step fails. A failed command's own text holds its whole command
    line (signing and notary passwords included), so only its return code is shown."""
    if isinstance(exc, subprocess.CalledProcessError):
        return f"a build step exited with return code {exc.returncode}"
    if isinstance(exc, OSError) and not isinstance(exc, BuildError):
        return f"a build step could not run ({type(exc).__name__})"
    return str(exc)
