"""One overlay per user session: a second launch hands its command line to the running copy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.qt.single_instance import InstanceServer, decode_message, encode_message, server_name

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {"source", "engine", "vocabulary", "silence_ms"}


def second_launch(name: str, overrides: str = "{}") -> subprocess.Popen:
    code = ("import sys, json; from PySide6.QtCore import QCoreApplication; app = QCoreApplication([]); "
            "from app.qt.single_instance import hand_over; "
            f"sys.exit(0 if hand_over(json.loads({overrides!r}), {name!r}) else 1)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)


@pytest.fixture
def server(qapp, tmp_path):
    s = InstanceServer(ALLOWED, name=str(tmp_path / "instance.sock"))
    assert s.listen()
    yield s
    s.close()


def test_second_launch_hands_over_and_the_first_copy_is_told(server, qtbot):
    got = []
    server.activated.connect(got.append)
    proc = second_launch(server.name, '{"source": "mic", "vocabulary": ["Añejo", "K8s"], "evil": 1}')
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=10000)
    assert proc.returncode == 0                      # it found the running copy and may exit
    assert got == [{"source": "mic", "vocabulary": ("Añejo", "K8s")}]   # unknown options dropped


def test_no_running_copy_means_the_launch_goes_ahead(tmp_path, qapp, qtbot):
    proc = second_launch(str(tmp_path / "nobody.sock"))
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=10000)
    assert proc.returncode == 1


def test_a_second_server_cannot_take_over_a_live_one(server, qapp):
    other = InstanceServer(ALLOWED, name=server.name)
    assert not other.listen()


def test_a_crashed_copy_leaves_nothing_that_blocks_the_next(tmp_path, qapp):
    stale = tmp_path / "instance.sock"
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(stale))                 # a socket file nobody listens on any more
    s.close()
    # ...and a lock file of a process that is gone.
    (tmp_path / "instance.sock.lock").write_text("999999\ncaption-overlay\n" + socket.gethostname() + "\n")
    server = InstanceServer(ALLOWED, name=str(stale))
    assert server.listen()
    server.close()


def test_become_single_hands_over_from_another_process(server, qtbot, tmp_path):
    got = []
    server.activated.connect(got.append)
    code = ("import sys; from PySide6.QtCore import QCoreApplication; app = QCoreApplication([]); "
            "from app.qt.single_instance import become_single; "
            f"s = become_single({{'engine': 'local'}}, {{'engine'}}, report=print, name={server.name!r}); "
            "sys.exit(0 if s is None else 1)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=10000)
    assert proc.returncode == 0 and "already running" in proc.stdout.read()
    assert got == [{"engine": "local"}]


def test_malformed_messages_are_ignored():
    assert decode_message(b"not json", ALLOWED) is None
    assert decode_message(b'["a list"]', ALLOWED) is None
    assert decode_message(b'{"overrides": {"source": {"nested": 1}, "silence_ms": 700}}', ALLOWED) == {
        "silence_ms": 700}
    assert decode_message(b'{"overrides": {"vocabulary": [1, 2]}}', ALLOWED) == {}
    with pytest.raises(ValueError, match="too long"):
        encode_message({"vocabulary": ("x" * 70000,)})


def test_name_is_per_user_and_settings_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "a"))
    a = server_name()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "b"))
    assert server_name() != a and "caption-overlay" in a


def test_json_without_headless_is_a_usage_error(capsys):
    from app.main import main
    with pytest.raises(SystemExit) as exc:
        main(["--json"])
    assert exc.value.code == 2
    assert "--json only applies with --headless" in capsys.readouterr().err


def test_activation_shows_the_overlay_and_applies_the_options(qapp, qtbot, tmp_path):
    import argparse
    from app.qt.application import GuiApp
    from tests.qt.test_controller import Harness
    h = Harness(transcript_dir=tmp_path / "t")
    app = GuiApp(h.settings, argparse.Namespace(), controller=h.controller)
    qtbot.addWidget(app.overlay)
    try:
        app.overlay.set_overlay_visible(False)
        app.activate({})
        assert app.overlay.isVisible() and not h.controller.running   # just shown
        app.activate({"source": "mic"})
        assert h.controller.running and h.opened[-1][0] == "mic"
        app.activate({"source": "system"})                           # restarts with the new source
        h.pump()                                                     # once the old run has ended
        assert h.opened[-1][0] == "system"
    finally:
        h.controller.shutdown()
        app.hotkeys.close()
        app.tray.hide()


@pytest.mark.skipif(os.name == "nt", reason="the Unix socket transport")
def test_only_the_user_can_connect_and_closing_removes_the_socket(server):
    import stat
    mode = stat.S_IMODE(os.stat(server.name).st_mode)
    assert mode == 0o600
    server.close()
    assert not os.path.exists(server.name)


@pytest.mark.skipif(os.name == "nt", reason="the Unix socket transport")
def test_half_oversized_and_split_messages(server, qtbot):
    import socket
    got = []
    server.activated.connect(got.append)

    def client():
        s = socket.socket(socket.AF_UNIX)
        s.connect(server.name)
        s.setblocking(False)
        return s

    quiet = client()
    quiet.send(b'{"overrides": {"source": "mic"}')   # no newline, then gone: nothing happens
    quiet.close()
    big = client()
    try:
        big.send(b"x" * 70000)                       # more than a message may be: dropped
    except BlockingIOError:
        pass
    qtbot.wait(300)
    big.close()
    assert got == []
    split = client()
    split.send(b'{"overrides": {"sour')
    qtbot.wait(100)
    split.send(b'ce": "system"}}\n')
    qtbot.waitUntil(lambda: got == [{"source": "system"}], timeout=5000)
    split.setblocking(True)
    split.settimeout(5)
    assert split.recv(16) == b"ok\n"
    split.close()
    proc = second_launch(server.name, '{"engine": "local"}')    # still serving afterwards
    qtbot.waitUntil(lambda: proc.poll() is not None, timeout=10000)
    assert proc.returncode == 0 and got[-1] == {"engine": "local"}


def test_a_socket_of_another_user_gets_nothing(server, monkeypatch, qtbot):
    from app.qt import single_instance

    got = []
    server.activated.connect(got.append)
    other = os.stat(server.name).st_uid + 1
    monkeypatch.setattr(os, "getuid", lambda: other)     # this launch runs as another account
    handed = single_instance.hand_over({"source": "mic"}, server.name)
    monkeypatch.undo()
    assert handed is False
    qtbot.wait(300)                 # anything sent would be read now
    assert got == []


def test_a_copy_still_starting_up_gets_the_command_line(tmp_path):
    """The running copy made its socket early but answers only once its event loop runs, which on
    a busy computer can be seconds later: the second launch waits instead of opening a second overlay."""
    import socket
    import threading
    import time

    from app.qt import single_instance

    path = str(tmp_path / "slow.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    got = []

    def slow_copy():
        conn, _ = listener.accept()
        time.sleep(2.5)                 # longer than connecting may take
        got.append(conn.recv(65536))
        conn.sendall(single_instance.REPLY)
        conn.close()

    worker = threading.Thread(target=slow_copy, daemon=True)
    worker.start()
    try:
        assert single_instance.hand_over({"source": "mic"}, path) is True
    finally:
        worker.join(10)
        listener.close()
    assert b'"source": "mic"' in got[0]


def test_a_deep_runtime_folder_still_gets_a_socket_that_works(monkeypatch, tmp_path, qapp, qtbot):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    name = server_name()
    assert len(os.fsencode(name)) <= 100
    folder = Path(name).parent
    assert folder.stat().st_uid == os.getuid() and folder.stat().st_mode & 0o077 == 0
    s = InstanceServer(ALLOWED, name=name)
    try:
        assert s.listen()
        got = []
        s.activated.connect(got.append)
        proc = second_launch(name, '{"source": "mic"}')
        qtbot.waitUntil(lambda: proc.poll() is not None, timeout=15000)
        assert proc.returncode == 0 and got == [{"source": "mic"}]
    finally:
        s.close()


def test_a_temporary_folder_someone_else_made_is_not_used(monkeypatch, tmp_path):
    from app.qt import single_instance

    shared = tmp_path / "theirs"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)                 # as another account's folder would be open to us
    assert single_instance._private_folder(str(shared)) is None
    assert single_instance._private_folder(str(tmp_path / "mine")) == str(tmp_path / "mine")
