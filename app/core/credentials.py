"""The API key: from ASSEMBLYAI_API_KEY for a run, else the OS keyring. Never anywhere else.

``Secret`` keeps the key out of reprs, logs and tracebacks; only ``reveal()`` gives the text,
and only code that puts it on the wire (an Authorization header) calls it.
"""

from __future__ import annotations

import os
import sys


from app import APP_ID

ENV_VAR = "ASSEMBLYAI_API_KEY"
KEYRING_SERVICE = APP_ID
KEYRING_USER = "assemblyai-api-key"
# Windows Credential Manager holds at most 2560 bytes (1280 UTF-16 characters); real keys are
# far shorter, so anything longer is a paste accident, refused before the keyring sees it.
MAX_KEY_LENGTH = 512


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class KeyringUnavailable(Exception):
    """No usable OS keyring (e.g. no Secret Service). The message says what to do."""


def _unavailable(exc: Exception) -> KeyringUnavailable:
    return KeyringUnavailable(
        "The system keyring is not available (" + type(exc).__name__ + "). The API key can be "
        "used for this session only, or set ASSEMBLYAI_API_KEY for one run; it is never saved "
        "in plain text.")


def _keyring():
    # Imported when first used: the module probes its backends (~50 ms), which would delay the
    # overlay's first frame and every headless start that has ASSEMBLYAI_API_KEY.
    import keyring
    import keyring.errors  # noqa: F401 (used as keyring.errors)
    return keyring


def _backend_errors() -> tuple[type[BaseException], ...]:
    """What keyring backends raise besides ``KeyringError``.

    keyring's Windows backend lets ``pywintypes.error`` through for everything but "not found"
    (a locked session, a blob too large, ERROR_NO_SUCH_LOGON_SESSION); it is only importable where
    that backend is loaded, so it is looked up at call time.
    """
    from keyring.errors import KeyringError
    errors: list[type[BaseException]] = [KeyringError]
    pywintypes = sys.modules.get("pywintypes")
    if pywintypes is not None and isinstance(getattr(pywintypes, "error", None), type):
        errors.append(pywintypes.error)
    return tuple(errors)
class InvalidStoredKey(KeyringUnavailable):
    """The environment or the keyring holds something that cannot be a key (line breaks,
    spaces, control characters). It is never used; the message says where it came from."""


def _validated(value: str, where: str) -> Secret:
    # The same rules as a typed key: a CR/LF would otherwise reach an HTTP header and from
    # there an exception text, stderr and the transcript.
    try:
        return parse_api_key(value)
    except ValueError as exc:
        raise InvalidStoredKey(f"The API key in {where} is not usable: {exc}") from None


def load_api_key() -> Secret | None:
    """The key from the environment, else the keyring; ``None`` when neither has one.

    Raises ``KeyringUnavailable`` when there is no environment key and the keyring fails, and
    ``InvalidStoredKey`` (a ``KeyringUnavailable``) when the key found is not a valid key.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _validated(env, ENV_VAR)
    try:
        stored = _keyring().get_password(KEYRING_SERVICE, KEYRING_USER)
    except _backend_errors() as exc:
        raise _unavailable(exc) from None
    return _validated(stored, "the system keyring") if stored else None


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child program, without the API key: helpers such as
    pactl have no use for it, and a child's crash dump or debug output must not hold it."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(extra)
    return env


def save_api_key(key: Secret) -> None:
    try:
        _keyring().set_password(KEYRING_SERVICE, KEYRING_USER, key.reveal())
    except _backend_errors() as exc:
        raise _unavailable(exc) from None


def delete_api_key() -> None:
    try:
        _keyring().delete_password(KEYRING_SERVICE, KEYRING_USER)
    except _keyring().errors.PasswordDeleteError:
        pass  # nothing stored: already deleted
    except _backend_errors() as exc:
        raise _unavailable(exc) from None


def keyring_backend_name() -> str:
    backend = _keyring().get_keyring()
    return f"{type(backend).__module__}.{type(backend).__name__}"


# --- Checking typed keys, and where the key comes from ---------------------------------------------

def parse_api_key(text: str) -> Secret:
    """A key typed or pasted by the user → ``Secret``. Surrounding whitespace is dropped.

    Raises ``ValueError`` with a message that never contains the key itself.
    """
    key = (text or "").strip()
    if not key:
        raise ValueError("The API key is empty.")
    if any(ch.isspace() for ch in key):
        raise ValueError("The API key contains spaces or line breaks; paste only the key.")
    if not key.isprintable() or not key.isascii():
        raise ValueError("The API key contains characters that cannot be part of a key.")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"The API key is longer than {MAX_KEY_LENGTH} characters; paste only the key.")
    return Secret(key)


def env_api_key_present() -> bool:
    """True when ASSEMBLYAI_API_KEY overrides the keyring for this run."""
    return bool(os.environ.get(ENV_VAR, "").strip())


def stored_api_key() -> Secret | None:
    """The key in the keyring only (ignores the environment). Raises ``KeyringUnavailable``."""
    try:
        stored = _keyring().get_password(KEYRING_SERVICE, KEYRING_USER)
    except _backend_errors() as exc:
        raise _unavailable(exc) from None
    return Secret(stored) if stored else None  # shown as "a key is stored", never sent
