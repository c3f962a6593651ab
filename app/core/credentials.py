"""The API key: from ASSEMBLYAI_API_KEY for a run, else the OS keyring. Never anywhere else.

``Secret`` keeps the key out of reprs, logs and tracebacks; only ``reveal()`` gives the text,
and only code that puts it on the wire (an Authorization header) calls it.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable

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


LOCKED_MESSAGE = ("The system keyring is locked (its unlock prompt was dismissed), so the key "
                  "could not be read or saved. You will be asked again next time; the key can "
                  "also be used for this session only.")


def _unavailable(exc: Exception) -> KeyringUnavailable:
    if _is_locked(exc):
        return KeyringUnavailable(LOCKED_MESSAGE)
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


def _is_locked(exc: BaseException) -> bool:
    """The keyring is there but stayed locked (its unlock prompt was dismissed)."""
    return isinstance(exc, _keyring().errors.KeyringLocked)


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


class KeyringBusy(Exception):
    """Another keyring call is still waiting (typically for the user to answer the keyring's
    unlock prompt). Nothing was read or written; the message says what to do."""


BUSY_MESSAGE = ("The system keyring is still waiting to be unlocked (answer its password "
                "prompt), so nothing was saved or read yet. Try again once it is unlocked.")


@dataclass(frozen=True)
class KeyringState:
    """What the last keyring call in this process found: a key stored or not, or no usable
    keyring (``problem`` says why). It lets a window describe the key without asking the
    keyring again, which can mean an unlock prompt and a long wait."""
    available: bool
    stored: bool = False
    backend: str = ""                       # e.g. "SecretService"
    problem: str = ""
    locked: bool = False                    # there is a keyring; its unlock was dismissed
    _source: object = field(default=None, repr=False, compare=False)


# Keyring backends are not all safe to call from two threads at once (KWallet's goes through
# dbus-python's shared connection; two Secret Service unlocks show two prompts), so every call
# in this process is serialised; the lock's owner may be waiting on an unlock prompt.
_lock = threading.Lock()
_known: KeyringState | None = None
_check_waiters: list[Callable[[KeyringState], None]] | None = None   # a background check runs
_waiters_lock = threading.Lock()


def _short_backend_name(backend) -> str:
    return type(backend).__module__.rsplit(".", 1)[-1]


def _keyring_call(op: Callable[[], object], stored_after: Callable[[object], bool],
                  wait: float | None):
    """Run one keyring operation under the lock and remember what it showed.

    ``wait`` bounds how long to wait for a call already in progress (``None``: as long as it
    takes); past it ``KeyringBusy`` is raised."""
    global _known
    if not _lock.acquire(timeout=-1 if wait is None else max(0.0, wait)):
        raise KeyringBusy(BUSY_MESSAGE)
    try:
        backend = _keyring().get_keyring()
        try:
            result = op()
        except _backend_errors() as exc:
            unavailable = _unavailable(exc)
            _known = KeyringState(False, backend=_short_backend_name(backend),
                                  problem=str(unavailable), locked=_is_locked(exc),
                                  _source=backend)
            raise unavailable from None
        _known = KeyringState(True, stored_after(result), _short_backend_name(backend),
                              _source=backend)
        return result
    finally:
        _lock.release()


def known_keyring_state() -> KeyringState | None:
    """What this process last learnt from the keyring, without asking it; ``None`` if it was
    never asked, the backend was replaced since, or its unlock prompt was dismissed (asking
    again shows the prompt again, which is what the user then expects)."""
    state = _known
    if state is None or state.locked or state._source is not _keyring().get_keyring():
        return None                 # (get_keyring is set up by then: no D-Bus here)
    return state


def _read_stored(wait: float | None = None) -> str | None:
    return _keyring_call(lambda: _keyring().get_password(KEYRING_SERVICE, KEYRING_USER),
                         bool, wait)


def check_keyring_in_background(done: Callable[[KeyringState], None]) -> None:
    """Ask the keyring whether a key is stored on a worker thread; ``done(state)`` is called on
    that thread (the caller posts it to its own). Calls made while a check runs share it."""
    global _check_waiters
    with _waiters_lock:
        if _check_waiters is not None:
            _check_waiters.append(done)
            return
        _check_waiters = [done]

    def work() -> None:
        global _check_waiters
        try:
            _read_stored()
            state = _known
        except KeyringUnavailable as exc:
            state = _known if _known is not None else KeyringState(False, problem=str(exc))
        except Exception as exc:  # noqa: BLE001 - a backend bug must still answer the waiters
            state = KeyringState(False, problem=_unavailable(exc).args[0])
        with _waiters_lock:
            waiters, _check_waiters = _check_waiters or [], None
        for waiter in waiters:
            waiter(state)

    threading.Thread(target=work, name="keyring-check", daemon=True).start()


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


def load_api_key(wait: float | None = None) -> Secret | None:
    """The key from the environment, else the keyring; ``None`` when neither has one.

    Raises ``KeyringUnavailable`` when there is no environment key and the keyring fails,
    ``InvalidStoredKey`` (a ``KeyringUnavailable``) when the key found is not a valid key, and
    ``KeyringBusy`` when another keyring call has not finished within ``wait`` seconds.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _validated(env, ENV_VAR)
    stored = _read_stored(wait)
    return _validated(stored, "the system keyring") if stored else None


def child_environment(**extra: str) -> dict[str, str]:
    """This process's environment for a child program, without the API key: helpers such as
    pactl have no use for it, and a child's crash dump or debug output must not hold it."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(extra)
    return env


def save_api_key(key: Secret, wait: float | None = None) -> None:
    _keyring_call(lambda: _keyring().set_password(KEYRING_SERVICE, KEYRING_USER, key.reveal()),
                  lambda _r: True, wait)


def delete_api_key(wait: float | None = None) -> None:
    def delete() -> None:
        try:
            _keyring().delete_password(KEYRING_SERVICE, KEYRING_USER)
        except _keyring().errors.PasswordDeleteError:
            pass  # nothing stored: already deleted
    _keyring_call(delete, lambda _r: False, wait)


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
    stored = _read_stored()
    return Secret(stored) if stored else None  # shown as "a key is stored", never sent
