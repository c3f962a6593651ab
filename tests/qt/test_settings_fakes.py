"""A controller double for the settings dialog tests (the dialog only needs this surface)."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, Signal


class FakeController(QObject):
    status_changed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple, float, str]] = []

    def _record(self, name, *args):
        self.calls.append((name, args, time.monotonic(), threading.current_thread().name))

    def set_silence_threshold(self, ms):
        self._record("set_silence_threshold", ms)

    def set_vocabulary(self, terms):
        self._record("set_vocabulary", list(terms))

    def apply_settings(self, changed_keys):
        self._record("apply_settings", set(changed_keys))

    def preview_style(self, values):
        self._record("preview_style", values)

    def set_session_api_key(self, key):
        self._record("set_session_api_key", key)

    refused = False              # the last run ended because AssemblyAI refused the key

    def key_refused(self):
        return self.refused

    def named(self, name):
        return [c[1] for c in self.calls if c[0] == name]

    def times(self, name):
        return [c[2] for c in self.calls if c[0] == name]


def test_fake_records_calls():
    fake = FakeController()
    fake.set_silence_threshold(5)
    assert fake.named("set_silence_threshold") == [(5,)]
