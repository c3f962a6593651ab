"""Where the GUI's log goes: a small rotating file (so users can send it with a bug report) and
stderr when there is one — windowed Windows/macOS builds have ``sys.stderr = None``."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

import platformdirs

from app import APP_ID
from app.core.private_files import PrivateRotatingFileHandler, private_dir

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_file() -> Path:
    return Path(platformdirs.user_log_dir(APP_ID, appauthor=False)) / f"{APP_ID}.log"


def setup_gui_logging(level: int = logging.INFO) -> Path | None:
    """Configure the root logger once; returns the log file, or None if it cannot be written."""
    root = logging.getLogger()
    root.setLevel(level)
    formatter = logging.Formatter(FORMAT)
    if sys.stderr is not None:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(formatter)
        root.addHandler(stream)
    path = log_file()
    try:
        private_dir(path.parent, tighten=True)
        handler = PrivateRotatingFileHandler(path, maxBytes=1_000_000, backupCount=2,
                                             encoding="utf-8")
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", path, exc)
        return None
    handler.setFormatter(formatter)
    root.addHandler(handler)
    return path
