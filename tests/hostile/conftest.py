"""Fixtures for the hostile-peer tests: servers that are closed after each test, a TLS cert."""

from __future__ import annotations

import pytest

from tests.hostile.server import HostileServer, MemoryWatch

RSS_LIMIT_MB = 64      # per test, on top of whatever this process already held


@pytest.fixture(autouse=True)
def _bounded_memory():
    """Every hostile case, whatever it checks itself, keeps this process's memory bounded."""
    with MemoryWatch() as memory:
        yield
    assert memory.growth_mb < RSS_LIMIT_MB, f"RSS grew by {memory.growth_mb:.0f} MB"


@pytest.fixture
def hostile():
    """``hostile(behaviour, tls=None)`` → a started ``HostileServer``; all closed at the end."""
    servers: list[HostileServer] = []

    def make(behaviour, tls=None) -> HostileServer:
        server = HostileServer(behaviour, tls=tls)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    from tests.loopback.tls import make_self_signed
    return make_self_signed(tmp_path_factory.mktemp("hostile-tls"))


@pytest.fixture
def trust(monkeypatch, tls_cert):
    """Make the app trust the throw-away certificate (verification itself stays on)."""
    from app.core.streaming import transport
    monkeypatch.setattr(transport, "ca_bundle", lambda: str(tls_cert[0]))
    return tls_cert
