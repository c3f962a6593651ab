import logging
import sys

import pytest

from app.logging_setup import log_file, setup_gui_logging


@pytest.fixture
def clean_root():
    root = logging.getLogger()
    before = list(root.handlers)
    yield root
    for h in root.handlers[:]:
        if h not in before:
            root.removeHandler(h)
            h.close()


def test_gui_log_goes_to_a_file_in_the_user_state_dir(clean_root, _private_dirs):
    path = setup_gui_logging()
    assert path == log_file() and str(path).startswith(str(_private_dirs))
    logging.getLogger("app.test").warning("caption check")
    for h in clean_root.handlers:
        h.flush()
    assert "caption check" in path.read_text()


def test_windowed_build_without_stderr_still_logs_to_the_file(clean_root, monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)
    path = setup_gui_logging()
    logging.getLogger("app.test").error("no console here")
    for h in clean_root.handlers:
        h.flush()
    assert "no console here" in path.read_text()
