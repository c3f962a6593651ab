"""The API key: keyring round trip (in-memory backend), KeyringError path, typed-key checks."""

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from app.core import credentials
from app.core.credentials import KeyringUnavailable, Secret

KEY = "0123456789abcdef0123456789abcdef"


def test_round_trip_in_memory_backend(_memory_keyring):
    assert credentials.load_api_key() is None
    credentials.save_api_key(Secret(KEY))
    assert _memory_keyring.store[(credentials.KEYRING_SERVICE, credentials.KEYRING_USER)] == KEY
    assert credentials.load_api_key() == Secret(KEY)
    assert credentials.stored_api_key() == Secret(KEY)
    credentials.delete_api_key()
    assert credentials.load_api_key() is None
    credentials.delete_api_key()   # deleting twice is fine


def test_environment_overrides_keyring(monkeypatch):
    credentials.save_api_key(Secret(KEY))
    monkeypatch.setenv(credentials.ENV_VAR, "envkey")
    assert credentials.env_api_key_present()
    assert credentials.load_api_key() == Secret("envkey")
    assert credentials.stored_api_key() == Secret(KEY)


@pytest.fixture
def failing_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    yield
    keyring.set_keyring(previous)


def test_keyring_error_becomes_clear_unavailable(failing_keyring):
    for call in (lambda: credentials.save_api_key(Secret(KEY)), credentials.load_api_key,
                 credentials.delete_api_key, credentials.stored_api_key):
        with pytest.raises(KeyringUnavailable) as info:
            call()
        text = str(info.value)
        assert "not available" in text and "session only" in text
        assert KEY not in text and KEY not in repr(info.value)
        assert info.value.__cause__ is None   # the backend's exception text is not chained in


def test_secret_is_redacted():
    secret = Secret(KEY)
    assert KEY not in repr(secret) and KEY not in str(secret) and KEY not in f"{secret}"
    assert secret.reveal() == KEY


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("   ", "empty"), ("abc def", "spaces"), ("abc\ndef", "spaces"),
    ("abc\x00def", "characters"), ("clé", "characters")])
def test_parse_api_key_rejects_bad_input_without_echoing_it(text, message):
    with pytest.raises(ValueError, match=message) as info:
        credentials.parse_api_key(text)
    if text.strip():
        assert text.strip() not in str(info.value)


def test_parse_api_key_strips_surrounding_whitespace():
    assert credentials.parse_api_key(f"  {KEY}\n") == Secret(KEY)


@pytest.fixture
def windows_vault_failing(monkeypatch):
    """keyring's Windows backend as it behaves on a locked or remote session: pywintypes.error."""
    import sys
    import types

    from keyring.backend import KeyringBackend

    pywintypes = types.ModuleType("pywintypes")

    class error(Exception):                      # noqa: N801 - the real class is lower-case
        pass

    pywintypes.error = error
    monkeypatch.setitem(sys.modules, "pywintypes", pywintypes)

    class WinVault(KeyringBackend):
        priority = 1

        def _fail(self, *args):
            raise error(1312, "CredRead", f"A specified logon session does not exist. {KEY}")

        get_password = set_password = delete_password = _fail

    previous = keyring.get_keyring()
    keyring.set_keyring(WinVault())
    yield
    keyring.set_keyring(previous)


def test_credential_manager_errors_become_clear_unavailable(windows_vault_failing):
    for call in (lambda: credentials.save_api_key(Secret(KEY)), credentials.load_api_key,
                 credentials.delete_api_key, credentials.stored_api_key):
        with pytest.raises(KeyringUnavailable) as info:
            call()
        assert "not available" in str(info.value) and "error" in str(info.value)
        assert KEY not in str(info.value) and info.value.__cause__ is None


def test_a_key_too_long_for_credential_manager_is_refused_before_the_keyring():
    with pytest.raises(ValueError, match="longer than 512") as info:
        credentials.parse_api_key("a" * 3000)
    assert "aaaa" not in str(info.value)
    assert credentials.parse_api_key("a" * 512).reveal() == "a" * 512
@pytest.mark.parametrize("bad", ["abc\ndef", "abc\r\nX-Injected: 1", "abc def", "abc\tdef",
                                 "abc\x1b[2Jdef", "clé-non-ascii"])
def test_environment_key_is_validated_like_a_typed_one(monkeypatch, bad):
    monkeypatch.setenv(credentials.ENV_VAR, bad)
    with pytest.raises(credentials.InvalidStoredKey) as info:
        credentials.load_api_key()
    text = str(info.value)
    assert credentials.ENV_VAR in text and "not usable" in text
    assert bad not in text and "abc" not in text and info.value.__cause__ is None
    assert isinstance(info.value, KeyringUnavailable)   # callers treat it as "no usable key"


def test_keyring_key_is_validated_like_a_typed_one(_memory_keyring):
    _memory_keyring.store[(credentials.KEYRING_SERVICE, credentials.KEYRING_USER)] = "abc\ndef"
    with pytest.raises(credentials.InvalidStoredKey) as info:
        credentials.load_api_key()
    assert "keyring" in str(info.value) and "abc" not in str(info.value)


def test_surrounding_whitespace_of_an_environment_key_is_still_fine(monkeypatch):
    monkeypatch.setenv(credentials.ENV_VAR, "  envkey\n")
    assert credentials.load_api_key() == Secret("envkey")
