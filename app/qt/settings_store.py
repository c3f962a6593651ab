"""``SettingsStore`` over QSettings in INI format — the app's persistent preferences file.

The store only moves raw values; ``app.core.settings.Settings`` types and validates every read
(INI values come back as strings in a new process: ``'false'``, ``'160'``, a bare ``'A'`` for a
one-item list). A file QSettings cannot parse is copied aside (nothing is lost) and a warning is
logged; whatever could be read is still validated key by key, the rest falls back to defaults.
A read-only store (the headless CLI) never creates, repairs or writes the file.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import QSettings

from app import APP_ID
from app.core.private_files import FILE_MODE, private_dir, tighten_file

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.ini"


def default_settings_path() -> Path:
    """``<user config dir>/caption-overlay/settings.ini`` (honours XDG_CONFIG_HOME on Linux)."""
    return Path(platformdirs.user_config_dir(APP_ID, appauthor=False)) / SETTINGS_FILE


def _create_private(path: Path) -> None:
    """An empty 0600 file if none exists (QSettings keeps an existing file's mode on save)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten_file(path)
    except OSError as exc:
        log.warning("Could not create the settings file %s: %s", path, exc)


class QSettingsStore:
    def __init__(self, path: str | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path else default_settings_path()
        self.read_only = read_only
        if not read_only:
            # The file may hold a broker URL: folder 0700, file 0600 from its first byte on.
            private_dir(self.path.parent, tighten=not path)
            _create_private(self.path)
        self.warnings: list[str] = []
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)
        self._check_status(on_load=True)

    # -- SettingsStore protocol -------------------------------------------------------------
    def value(self, key: str) -> Any:
        raw = self._qs.value(key)
        return raw

    def set_value(self, key: str, value: Any) -> None:
        if self.read_only:
            raise PermissionError(f"The settings file {self.path} is open read-only here.")
        if isinstance(value, (list, tuple)):
            # An empty list would be written as @Invalid() (read back as "absent"); "" reads
            # back as an empty list through Pref.coerce.
            value = list(value) if value else ""
        self._qs.setValue(key, value)

    def remove(self, key: str) -> None:
        if self.read_only:
            raise PermissionError(f"The settings file {self.path} is open read-only here.")
        self._qs.remove(key)

    # -- persistence ----------------------------------------------------------------------------
    def sync(self) -> str | None:
        """Write pending changes to disk. Returns a plain-words error, or ``None`` on success."""
        if self.read_only:
            return None
        self._qs.sync()
        tighten_file(self.path)
        return self._check_status(on_load=False)

    def _check_status(self, *, on_load: bool) -> str | None:
        status = self._qs.status()
        if status == QSettings.Status.NoError:
            return None
        if status == QSettings.Status.FormatError:
            backup = None
            if on_load and not self.read_only:
                backup = self._back_up_corrupt_file()
                self._start_clean_file()
            message = (f"The settings file {self.path} is damaged; the parts that could not be read "
                       f"use their defaults." + (f" A copy was kept as {backup}." if backup else ""))
        else:  # AccessError
            verb = "read" if on_load else "written"
            message = f"The settings file {self.path} could not be {verb} (permission or disk problem)."
        log.warning(message)
        self.warnings.append(message)
        return message

    def _start_clean_file(self) -> None:
        """QSettings never writes over a file it could not parse: rewrite what it did read."""
        salvaged = {k: self._qs.value(k) for k in self._qs.allKeys() if k}
        del self._qs
        try:
            self.path.unlink()
        except OSError as exc:
            log.warning("Could not replace the damaged settings file: %s", exc)
        _create_private(self.path)
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)
        for key, value in salvaged.items():
            self._qs.setValue(key, value)
        self._qs.sync()

    def _back_up_corrupt_file(self) -> Path | None:
        backup = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            shutil.copy2(self.path, backup)
            tighten_file(backup)
        except OSError as exc:
            log.warning("Could not keep a copy of the damaged settings file: %s", exc)
            return None
        return backup
