"""``caption-overlay --self-test``: prove an installed copy can capture audio, keep a key, draw
the overlay, run the offline engine and (with ``--server URL``) caption a short spoken clip.

One line per check (``PASS name: detail`` / ``FAIL name: why``), then a summary; exit code 0 only
when every check passed. Meant to be run on the frozen bundle right after building or installing
it, and by people reporting a problem. A windowed build on Windows has no stdout: there the lines
go to ``self-test.log`` in the app's log folder (or run ``caption-overlay-cli.exe --self-test``).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from typing import Callable

from app import APP_ID, __version__

EXIT_FAILED = 1
SELFTEST_WAV = "selftest-speech.wav"

# The keyring module that must be inside the bundle for each OS (the packaged app's own keyring).
NATIVE_KEYRING = {
    "linux": "keyring.backends.SecretService",
    "win32": "keyring.backends.Windows",
    "darwin": "keyring.backends.macOS",
}
# The Qt platform plugin each OS draws windows with.
NATIVE_QT_PLATFORM = {"linux": "qxcb", "win32": "qwindows", "darwin": "qcocoa"}


class CheckFailed(Exception):
    """A check's plain-words reason for failing."""


def resources_dir() -> Path:
    """resources/ inside a PyInstaller bundle, else at the top of the source tree."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def _platform_key() -> str:
    return "linux" if sys.platform.startswith("linux") else sys.platform


# --- checks: each returns a one-line detail or raises CheckFailed -----------------------------

def check_audio() -> str:
    try:
        import pyaudio
    except ImportError as exc:
        raise CheckFailed(f"PyAudio cannot be imported ({exc})") from None
    version = pyaudio.get_portaudio_version_text()
    with _quiet_native_stderr():
        pa = pyaudio.PyAudio()
    try:
        count = pa.get_device_count()
        inputs = 0
        for index in range(count):
            try:
                if pa.get_device_info_by_index(index).get("maxInputChannels", 0) > 0:
                    inputs += 1
            except (OSError, ValueError):
                continue  # a device that vanished while listing
    finally:
        pa.terminate()
    note = "" if inputs else " (no input device is connected right now)"
    return f"{version}; {count} devices, {inputs} with inputs{note}"


class _quiet_native_stderr:
    """ALSA/JACK print dozens of probe errors on fd 2 while PortAudio enumerates devices; they
    say nothing about whether capture works and would bury the self-test's own lines."""

    def __enter__(self):
        self._saved = None
        if sys.platform.startswith("linux"):
            try:
                sys.stderr and sys.stderr.flush()
                self._saved = os.dup(2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            except OSError:
                self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)


def check_keyring() -> str:
    from app.core.credentials import keyring_backend_name

    native = NATIVE_KEYRING.get(_platform_key())
    if native:
        try:
            importlib.import_module(native)
        except ImportError as exc:
            raise CheckFailed(f"the system keyring backend {native} is missing ({exc})") from None
    if _platform_key() == "linux":
        _check_secret_service_cipher()
    name = keyring_backend_name()
    if name.startswith("keyring.backends.fail") or (
            name.endswith("chainer.ChainerBackend") and not _chainer_has_backends()):
        return (f"{name}: no system keyring is running here, so an API key can be used for one "
                f"session only (the {native} backend is installed)")
    return name


def _check_secret_service_cipher() -> None:
    """SecretStorage and the AES-CBC it encrypts the key with on D-Bus (in the Linux bundle that
    cipher comes from OpenSSL through a stand-in for ``cryptography``): a broken one would make
    keyring fall back silently to "no keyring", so it is exercised here."""
    import os as _os
    try:
        import secretstorage  # noqa: F401
        from cryptography.hazmat.backends import default_backend
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError as exc:
        raise CheckFailed(f"the Secret Service client cannot be loaded ({exc})") from None
    key, iv, block = _os.urandom(16), _os.urandom(16), _os.urandom(32)
    enc = Cipher(algorithms.AES(key), modes.CBC(iv), default_backend()).encryptor()
    sealed = enc.update(block) + enc.finalize()
    dec = Cipher(algorithms.AES(key), modes.CBC(iv), default_backend()).decryptor()
    if sealed == block or dec.update(sealed) + dec.finalize() != block:
        raise CheckFailed("the Secret Service session cipher (AES-CBC) does not round-trip")


def _chainer_has_backends() -> bool:
    import keyring

    return bool(getattr(keyring.get_keyring(), "backends", []))


def check_qt_platform() -> str:
    """The bundle carries the native windowing plugin, not only the offscreen one used below."""
    from PySide6.QtCore import QLibraryInfo, qVersion

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    wanted = NATIVE_QT_PLATFORM.get(_platform_key())
    found = sorted(p.name for p in plugins.glob("*")) if plugins.is_dir() else []
    if wanted and not any(wanted in name for name in found):
        raise CheckFailed(f"Qt {qVersion()}: the {wanted} platform plugin is missing from {plugins}")
    return f"Qt {qVersion()}, platform plugins: {', '.join(found)}; {_check_text_services()}"


def _check_text_services() -> str:
    """Line breaking, collation and case mapping: the ICU data the Linux bundle keeps (trimmed)."""
    from PySide6.QtCore import QCollator, QLocale, QTextBoundaryFinder

    sample = "Añejo Straße 東京タワー ภาษาไทย"
    finder = QTextBoundaryFinder(QTextBoundaryFinder.BoundaryType.Line, sample)
    breaks = 0
    while finder.toNextBoundary() != -1:
        breaks += 1
    if breaks < 4:
        raise CheckFailed(f"line breaking found only {breaks} break opportunities in {sample!r}")
    collator = QCollator(QLocale(QLocale.Language.English, QLocale.Country.UnitedStates))
    if not collator.compare("apple", "Banana") < 0 < collator.compare("zebra", "Apple"):
        raise CheckFailed("text collation gives the wrong order")
    if QLocale(QLocale.Language.German).toUpper("straße") != "STRASSE":
        raise CheckFailed("case mapping is wrong")
    return f"text services ok ({breaks} line breaks)"


def check_overlay() -> str:
    """Build the real overlay offscreen, show a caption in it and render it to an image."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # the self-test never needs a display
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([APP_ID])
    from app.core.events import Final
    from app.core.settings import DictStore, Settings
    from app.qt.overlay import CaptionOverlay

    text = "Self-test caption"
    window = CaptionOverlay(Settings(DictStore()))
    try:
        window.show()
        window.on_final("mic", Final(text, 0, 1000))
        deadline = time.monotonic() + 5.0
        while not window.isVisible() and time.monotonic() < deadline:
            app.processEvents()
        app.processEvents()
        image = window.grab().toImage()
        if image.isNull() or image.width() == 0 or image.height() == 0:
            raise CheckFailed("the overlay window rendered nothing")
        if text not in window.caption_text():
            raise CheckFailed(f"the overlay did not take the caption (shows {window.caption_text()!r})")
        from app.qt.tray import app_icon

        if app_icon().isNull():
            raise CheckFailed(f"the app icon is missing from {resources_dir()}")
        return f"{type(window).__name__} {image.width()}x{image.height()} drawn offscreen with a caption, icon ok"
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()


def check_offline_engine() -> str:
    """The model is present and the bundled inference runtime really decodes speech with it."""
    from app.core.engines import offline_engine_available

    ok, label = offline_engine_available()
    if not ok:
        raise CheckFailed(f"not available: {label}")
    wav = resources_dir() / SELFTEST_WAV
    if not wav.is_file():
        raise CheckFailed(f"{label} is installed, but the test recording {wav} is missing")
    import wave

    from app.core.engines.transcriber import OfflineTranscriber

    with wave.open(str(wav), "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1:
            raise CheckFailed(f"{wav} is not 16-bit mono")
        pcm, rate = f.readframes(f.getnframes()), f.getframerate()
    started = time.monotonic()
    text = OfflineTranscriber()(pcm, rate).strip()
    if not text:
        raise CheckFailed(f"{label} loaded but transcribed the test recording as nothing")
    from app.core.engines import models

    model = models.get_recognizer()       # the instance just loaded: which weights it runs
    weights = getattr(model, "weights", None)
    used = f", {weights} weights (partials: {model.partial_weights})" if weights else ""
    return f"{label}: \"{text}\" ({time.monotonic() - started:.1f} s to load and decode{used})"


def check_session(args) -> str:
    """Caption the bundled spoken sentence through the server at ``args.server``, exactly as
    ``--headless`` would (same settings, retries and exit codes), and expect a caption back."""
    import io

    from app.cli import build_parser
    from app.headless import run_headless

    wav = resources_dir() / SELFTEST_WAV
    if not wav.is_file():
        raise CheckFailed(f"the test recording {wav} is missing")
    argv = ["--headless", "--engine", "assemblyai", "--server", args.server, "--source", f"file:{wav}"]
    for flag, name in (("--protocol", "protocol"), ("--auth", "auth_mode"), ("--token-url", "token_url"),
                       ("--region", "region")):
        value = getattr(args, name, None)
        if value:
            argv += [flag, value]
    out, err = io.StringIO(), io.StringIO()
    code = run_headless(build_parser().parse_args(argv), stdout=out, stderr=err)
    captions = [line.strip() for line in out.getvalue().splitlines() if line.strip()]
    notices = " ".join(line.strip() for line in err.getvalue().splitlines() if line.strip())
    if code != 0:
        raise CheckFailed(f"headless session exited with {code}: {notices or 'no message'}")
    if not captions:
        raise CheckFailed(f"the server returned no caption for the test recording {notices}".strip())
    protocol = getattr(args, "protocol", None)
    return f"{protocol + ' ' if protocol else ''}via {args.server}: \"{' '.join(captions)}\""


# --- runner ------------------------------------------------------------------------------------

class _Report:
    """Lines to stdout, or to a log file when a windowed build has no stdout."""

    def __init__(self) -> None:
        self.log_path: Path | None = None
        self._file = None
        if sys.stdout is None:
            from platformdirs import user_log_dir

            self.log_path = Path(user_log_dir(APP_ID, appauthor=False)) / "self-test.log"
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.log_path, "w", encoding="utf-8")

    def line(self, text: str) -> None:
        stream = self._file or sys.stdout
        stream.write(text + "\n")
        stream.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()


def _checks(args) -> list[tuple[str, Callable[[], str]]]:
    checks = [
        ("audio", check_audio),
        ("keyring", check_keyring),
        ("qt", check_qt_platform),
        ("overlay", check_overlay),
        ("offline engine", check_offline_engine),
    ]
    if getattr(args, "server", None):
        checks.append(("session", lambda: check_session(args)))
    return checks


def run_self_test(args) -> int:
    report = _Report()
    report.line(f"{APP_ID} {__version__} self-test ({sys.platform}, "
                f"{'frozen' if getattr(sys, 'frozen', False) else 'source'})")
    failed: list[str] = []
    checks = _checks(args)
    for name, check in checks:
        started = time.monotonic()
        try:
            detail = check()
        except CheckFailed as exc:
            failed.append(name)
            report.line(f"FAIL {name}: {exc}")
            continue
        except Exception as exc:  # a crash inside a check is that check's failure, not ours
            failed.append(name)
            report.line(f"FAIL {name}: {type(exc).__name__}: {exc}")
            continue
        report.line(f"PASS {name}: {detail} [{time.monotonic() - started:.1f} s]")
    if failed:
        report.line(f"self-test FAILED: {len(failed)} of {len(checks)} checks ({', '.join(failed)})")
    else:
        report.line(f"self-test passed: {len(checks)} of {len(checks)} checks")
    report.close()
    return EXIT_FAILED if failed else 0
