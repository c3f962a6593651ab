"""Engine resolution and which client/auth a configuration gets."""

from __future__ import annotations

import pytest

from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.session_config import SessionConfig
from app.core.run_plan import resolve_engine
from app.core.session_factory import create_session
from app.core.streaming.auth import BrokerAuth, KeyAuth, TokenAuth
from app.core.streaming.v2 import V2Session
from app.core.streaming.v3 import V3Session


@pytest.mark.parametrize("requested,key,broker,expected", [
    (None, True, None, "assemblyai"), ("auto", False, "https://b/t", "assemblyai"),
    (None, False, None, "local"), ("auto", False, "", "local"),
    ("local", True, None, "local"), ("assemblyai", False, None, "assemblyai"),
])
def test_resolve_engine(requested, key, broker, expected):
    assert resolve_engine(requested, key, broker) == expected


def test_resolve_engine_rejects_unknown():
    with pytest.raises(ValueError):
        resolve_engine("whisper-cloud", True, None)


def test_clients_and_auth_per_config():
    key = Secret("k")
    s = create_session(SessionConfig(), lambda e: None, api_key=key)
    assert isinstance(s, V3Session) and isinstance(s._auth, KeyAuth)
    s = create_session(SessionConfig(protocol="v2", auth_mode="token"), lambda e: None, api_key=key)
    assert isinstance(s, V2Session) and isinstance(s._auth, TokenAuth)
    s = create_session(SessionConfig(auth_mode="broker", token_url="https://b/t"), lambda e: None,
                       api_key=None)
    assert isinstance(s._auth, BrokerAuth)
    s = create_session(SessionConfig(auth_mode="broker"), lambda e: None, api_key=None,
                       token_url="https://b/t2")
    assert s._auth._url == "https://b/t2"


def test_client_options_pass_through():
    s = create_session(SessionConfig(), lambda e: None, api_key=Secret("k"), stall_timeout_s=3.0,
                       format_wait_s=0.5)
    assert s.stall_timeout_s == 3.0 and s.format_wait_s == 0.5
    s = create_session(SessionConfig(protocol="v2"), lambda e: None, api_key=Secret("k"),
                       format_wait_s=0.5)
    assert isinstance(s, V2Session)


def test_missing_key_fails_at_start_in_plain_words():
    s = create_session(SessionConfig(), lambda e: None, api_key=None)
    with pytest.raises(SessionError) as info:
        s.start(timeout=1)
    assert "API key" in info.value.error.message


def test_local_engine_is_the_offline_session():
    from app.core.engines.local import LocalSession
    s = create_session(SessionConfig(engine="local"), lambda e: None, api_key=None)
    assert isinstance(s, LocalSession)
