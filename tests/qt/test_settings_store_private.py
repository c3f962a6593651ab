"""settings.ini (which may hold a broker URL) is 0600 in a 0700 folder."""

from __future__ import annotations

import os
import stat

import pytest

from app.qt.settings_store import QSettingsStore, default_settings_path

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_default_settings_file_and_folder_are_private():
    old = os.umask(0o022)
    try:
        default_settings_path().parent.mkdir(parents=True)
        os.chmod(default_settings_path().parent, 0o755)
        store = QSettingsStore()
        store.set_value("connection/token_url", "https://broker.example.org/t?sig=abc")
        assert store.sync() is None
    finally:
        os.umask(old)
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700


def test_an_existing_loose_settings_file_is_tightened(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_text("[connection]\nprotocol=v2\n")
    os.chmod(path, 0o644)
    store = QSettingsStore(str(path))
    assert store.value("connection/protocol") == "v2"
    store.set_value("connection/protocol", "v3")
    store.sync()
    assert mode(path) == 0o600
