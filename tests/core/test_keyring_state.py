"""What the app knows about the stored key without asking the keyring again; the background
check that never blocks its caller; keyring calls never overlapping; a busy keyring refused
in plain words instead of a frozen window."""

import threading
import time

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as FailKeyring

from app.core import credentials
from app.core.credentials import KeyringBusy, KeyringUnavailable, Secret

KEY = "0123456789abcdef0123456789abcdef"


class GatedKeyring(KeyringBackend):
    """Every call waits for ``gate`` (a keyring showing its unlock prompt) and counts how many
    calls run at the same time."""
    priority = 1

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.store: dict = {}
        self.calls = 0
        self.running = 0
        self.most_at_once = 0
        self._count = threading.Lock()

    def _enter(self):
        with self._count:
            self.calls += 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.gate.wait(10)
        with self._count:
            self.running -= 1

    def get_password(self, service, username):
        self._enter()
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self._enter()
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self._enter()
        self.store.pop((service, username), None)


@pytest.fixture
def gated():
    previous = keyring.get_keyring()
    backend = GatedKeyring()
    keyring.set_keyring(backend)
    yield backend
    backend.gate.set()
    keyring.set_keyring(previous)


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


def test_nothing_is_known_before_the_keyring_was_asked():
    assert credentials.known_keyring_state() is None


def test_every_call_updates_what_is_known(_memory_keyring):
    assert credentials.load_api_key() is None
    state = credentials.known_keyring_state()
    assert state.available and not state.stored and state.backend == "conftest"
    credentials.save_api_key(Secret(KEY))
    assert credentials.known_keyring_state().stored
    credentials.delete_api_key()
    assert not credentials.known_keyring_state().stored


def test_an_unusable_keyring_is_remembered_with_its_reason():
    keyring.set_keyring(FailKeyring())
    with pytest.raises(KeyringUnavailable):
        credentials.stored_api_key()
    state = credentials.known_keyring_state()
    assert not state.available and "not available" in state.problem


def test_a_replaced_backend_makes_the_knowledge_stale(_memory_keyring):
    credentials.save_api_key(Secret(KEY))
    keyring.set_keyring(FailKeyring())
    assert credentials.known_keyring_state() is None


def test_the_environment_key_does_not_touch_the_keyring(monkeypatch, gated):
    monkeypatch.setenv(credentials.ENV_VAR, KEY)
    assert credentials.load_api_key() == Secret(KEY)
    assert gated.calls == 0 and credentials.known_keyring_state() is None


def test_background_check_returns_at_once_and_answers_every_waiter_from_one_read(gated):
    gated.store[(credentials.KEYRING_SERVICE, credentials.KEYRING_USER)] = KEY
    answers = []
    started = time.monotonic()
    credentials.check_keyring_in_background(answers.append)
    credentials.check_keyring_in_background(answers.append)      # joins the running check
    assert time.monotonic() - started < 0.5                       # the keyring is still waiting
    assert wait_for(lambda: gated.calls == 1) and answers == []
    gated.gate.set()
    assert wait_for(lambda: len(answers) == 2)
    assert all(a.available and a.stored for a in answers)
    assert gated.calls == 1
    assert credentials.known_keyring_state().stored


def test_background_check_reports_an_unusable_keyring():
    keyring.set_keyring(FailKeyring())
    answers = []
    credentials.check_keyring_in_background(answers.append)
    assert wait_for(lambda: answers)
    assert not answers[0].available and "not available" in answers[0].problem


def test_a_save_while_the_keyring_prompts_is_refused_quickly_and_stores_nothing(gated):
    credentials.check_keyring_in_background(lambda state: None)
    assert wait_for(lambda: gated.calls == 1)
    started = time.monotonic()
    with pytest.raises(KeyringBusy) as caught:
        credentials.save_api_key(Secret(KEY), wait=0.1)
    assert time.monotonic() - started < 1.0
    assert "unlock" in str(caught.value) and KEY not in str(caught.value)
    with pytest.raises(KeyringBusy):
        credentials.delete_api_key(wait=0.1)
    assert gated.store == {}
    gated.gate.set()
    assert wait_for(lambda: credentials.known_keyring_state() is not None)
    credentials.save_api_key(Secret(KEY), wait=1.0)               # once unlocked it works
    assert gated.store[(credentials.KEYRING_SERVICE, credentials.KEYRING_USER)] == KEY


def test_keyring_calls_never_overlap(gated):
    credentials.check_keyring_in_background(lambda state: None)
    assert wait_for(lambda: gated.calls == 1)
    loaded = []
    reader = threading.Thread(target=lambda: loaded.append(credentials.load_api_key()))
    reader.start()                  # e.g. captions starting: waits for the check, no overlap
    time.sleep(0.1)
    assert gated.calls == 1
    gated.gate.set()
    reader.join(5)
    assert loaded == [None] and gated.calls == 2 and gated.most_at_once == 1


class DismissedKeyring(KeyringBackend):
    """The user dismissed the unlock prompt: keyring's Secret Service backend says KeyringLocked."""
    priority = 1
    calls = 0

    def get_password(self, service, username):
        DismissedKeyring.calls += 1
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service, username, password):
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service, username):
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


def test_a_dismissed_unlock_prompt_is_said_as_such_and_asked_again_next_time():
    keyring.set_keyring(DismissedKeyring())
    with pytest.raises(KeyringUnavailable) as caught:
        credentials.stored_api_key()
    assert "locked" in str(caught.value) and "dismissed" in str(caught.value)
    assert "not available" not in str(caught.value)
    assert credentials.known_keyring_state() is None          # the next opening asks again
    answers = []
    credentials.check_keyring_in_background(answers.append)
    assert wait_for(lambda: answers)
    assert answers[0].locked and not answers[0].available and "dismissed" in answers[0].problem
    with pytest.raises(KeyringUnavailable, match="locked"):
        credentials.save_api_key(Secret(KEY))
