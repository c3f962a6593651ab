"""Test-wide guards: offscreen Qt, no network beyond loopback, no real secrets, private config dirs."""

from __future__ import annotations

import os
import socket

import pytest

# Before anything imports Qt. Desktop tests start their own Xvfb and use xcb explicitly.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.pop("ASSEMBLYAI_API_KEY", None)

pytest_plugins = [
    "tests.fixtures.speech",
    "tests.fixtures.loopback",
    "tests.fixtures.pulse",
    "tests.fixtures.desktop",
    "tests.fixtures.secret_service",
]

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _loopback_only(address) -> None:
    if isinstance(address, tuple):
        host = str(address[0])
        if not (host.startswith("127.") or host in ("localhost", "::1")):
            raise ConnectionRefusedError(f"tests may not reach {host}: only loopback is allowed")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """AssemblyAI's real hosts (or anything off-machine) are unreachable from tests."""

    def connect(sock, address):
        _loopback_only(address)
        return _real_connect(sock, address)

    def connect_ex(sock, address):
        _loopback_only(address)
        return _real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    """Settings, transcripts and caches go to a per-test folder, never the developer's own."""
    home = tmp_path / "home"
    for sub in ("config", "data", "cache", "state"):
        (home / sub).mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    yield home


@pytest.fixture(autouse=True)
def _memory_keyring():
    """An in-memory keyring for every test; the real Secret Service is opt-in (secret_service)."""
    import keyring
    from keyring.backend import KeyringBackend
    from keyring.errors import PasswordDeleteError

    class MemoryKeyring(KeyringBackend):
        priority = 1

        def __init__(self):
            super().__init__()
            self.store: dict[tuple[str, str], str] = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            if self.store.pop((service, username), None) is None:
                raise PasswordDeleteError("not found")

    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)
