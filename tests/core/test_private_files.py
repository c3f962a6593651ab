"""Captions, settings and logs are private: folders 0700, files 0600, no predictable temp names."""

from __future__ import annotations

import logging
import os
import stat

import pytest

from app.core import export as ex
from app.core.private_files import PrivateRotatingFileHandler, private_dir, write_private
from app.core.transcript import Entry, TranscriptWriter, default_transcript_dir

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture(autouse=True)
def _loose_umask():
    old = os.umask(0o022)       # what most desktops use: files 0644 unless we say otherwise
    yield
    os.umask(old)


def entry(text="hello"):
    return Entry(kind="final", text=text, audio_start=0, audio_end=1000)


def test_export_is_0600_even_over_an_existing_0644_file(tmp_path):
    target = tmp_path / "out.srt"
    target.write_text("old")
    os.chmod(target, 0o644)
    ex.export([entry()], target)
    assert mode(target) == 0o600 and "hello" in target.read_text()


def test_export_does_not_follow_a_planted_part_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "exports"
    out.mkdir()
    (out / ".notes.txt.part").symlink_to(victim)   # the name the old exporter used
    ex.export([entry("captions")], out / "notes.txt")
    assert victim.read_text() == "precious"
    assert "captions" in (out / "notes.txt").read_text()
    assert sorted(p.name for p in out.iterdir()) == [".notes.txt.part", "notes.txt"]


def test_write_private_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    from app.core import private_files

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(private_files.os, "replace", boom)
    folder = private_dir(tmp_path / "out")
    with pytest.raises(OSError):
        write_private(folder / "x.txt", b"data")
    assert list(folder.iterdir()) == []


def test_transcript_folder_and_file_are_private(tmp_path):
    writer = TranscriptWriter(tmp_path / "new" / "transcripts", protocol="v3")
    writer.close()
    assert mode(tmp_path / "new" / "transcripts") == 0o700
    assert mode(writer.path) == 0o600


def test_default_transcript_folder_is_tightened_but_a_chosen_one_is_not(tmp_path):
    default = default_transcript_dir()
    default.mkdir(parents=True)
    os.chmod(default, 0o755)
    TranscriptWriter(default, protocol="v3").close()
    assert mode(default) == 0o700
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    TranscriptWriter(shared, protocol="v3").close()
    assert mode(shared) == 0o755          # the user's own folder keeps its mode


def test_private_dir_creates_0700(tmp_path):
    assert mode(private_dir(tmp_path / "a" / "b")) == 0o700


def test_log_files_are_0600_including_rotations(tmp_path):
    path = private_dir(tmp_path / "logs") / "app.log"
    handler = PrivateRotatingFileHandler(path, maxBytes=200, backupCount=2, encoding="utf-8")
    logger = logging.getLogger("private-files-test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(20):
            logger.warning("line %d %s", i, "x" * 50)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(path.parent.iterdir())
    assert len(files) == 3
    assert all(mode(f) == 0o600 for f in files)


def test_existing_loose_log_is_tightened_and_symlinks_are_refused(tmp_path):
    path = tmp_path / "app.log"
    path.write_text("")
    os.chmod(path, 0o644)
    PrivateRotatingFileHandler(path, encoding="utf-8").close()
    assert mode(path) == 0o600
    link = tmp_path / "link.log"
    link.symlink_to(tmp_path / "elsewhere.log")
    with pytest.raises(OSError):
        PrivateRotatingFileHandler(link, encoding="utf-8")
    assert not (tmp_path / "elsewhere.log").exists()


def test_gui_log_setup_makes_a_private_log():
    from app import logging_setup
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        path = logging_setup.setup_gui_logging()
        logging.getLogger("x").warning("hello")
        assert path is not None and mode(path) == 0o600 and mode(path.parent) == 0o700
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
                h.close()
