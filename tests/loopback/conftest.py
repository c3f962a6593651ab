"""Shared bits for the loopback server's own tests: a server tuned for speed (clients may
stream faster than real time unless a test turns the rate check on)."""

import pytest

from tests.loopback.wsclient import RawClient, tone_speech

RATE = 16000
# Two "utterances" of a 300 Hz buzz separated by 1.2 s of silence.
TWO_UTTERANCES = [("silence", 0.3), ("speech", 1.0), ("silence", 1.2), ("speech", 0.8), ("silence", 1.2)]


@pytest.fixture
def srv(loopback_factory):
    return loopback_factory(rate_grace_s=1000.0, idle_timeout_s=30.0)


@pytest.fixture
def connect(srv):
    clients = []

    def make(protocol="v3", params=None, **kwargs):
        if params is None:
            params = {"sample_rate": RATE}
        client = RawClient(srv, protocol, params=params, **kwargs)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def audio(segments=TWO_UTTERANCES, rate=RATE):
    return tone_speech(segments, rate)


def terminate(client, protocol):
    client.send_json({"terminate_session": True} if protocol == "v2" else {"type": "Terminate"})
    assert client.wait_closed(10), "server did not close after terminate"
