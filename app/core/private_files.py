"""Folders and files that hold captions, settings or logs: readable by this user only.

Folders are created 0700 and files 0600 (POSIX modes; on Windows the user's profile folders
are already private and the modes are ignored). Files replaced as a whole go through a
``mkstemp`` file in the target folder: its name is unpredictable and it is created
exclusively, so a planted ``.NAME.part`` symlink cannot redirect the write.
"""

from __future__ import annotations

import logging.handlers
import os
import tempfile
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path | str, *, tighten: bool = False) -> Path:
    """Create ``path`` (and parents) if needed; a folder created here is 0700.

    ``tighten`` also narrows an existing folder to 0700: only for the app's own folders,
    never for one the user chose (it may be shared on purpose).
    """
    path = Path(path)
    existed = path.is_dir()
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if os.name == "posix" and (tighten or not existed):
        try:
            os.chmod(path, DIR_MODE)    # mkdir's mode is filtered by the umask
        except OSError:
            pass
    return path


def tighten_file(path: Path | str) -> None:
    """Narrow an existing file of ours to 0600 (best effort)."""
    if os.name == "posix":
        try:
            os.chmod(path, FILE_MODE)
        except OSError:
            pass


def write_private(path: Path | str, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically; the result is 0600 and never half-written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files (the current one and every rotation) are 0600."""

    def _open(self):
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.baseFilename, flags, FILE_MODE)
        if os.name == "posix":
            os.fchmod(fd, FILE_MODE)    # a log left 0644 by an older version
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)
