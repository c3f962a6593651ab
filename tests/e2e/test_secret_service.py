"""The API key through a REAL Secret Service (gnome-keyring on a private D-Bus session)."""

import json
import shutil

import pytest

pytestmark = pytest.mark.secret_service

KEY = "ss-key-5e1f0c2b9a8d7e6f5a4b3c2d1e0f9a8b"

ROUND_TRIP = f"""
import json, logging, io
log = io.StringIO()
logging.basicConfig(stream=log, level=logging.DEBUG)
from app.core import credentials
from app.core.credentials import Secret
out = {{"backend": credentials.keyring_backend_name()}}
out["before"] = credentials.load_api_key() is None
credentials.save_api_key(Secret({KEY!r}))
out["loaded"] = credentials.load_api_key() == Secret({KEY!r})
out["log_has_key"] = {KEY!r} in log.getvalue()
print(json.dumps(out))
"""

DELETE = """
import json
from app.core import credentials
credentials.delete_api_key()
credentials.delete_api_key()
print(json.dumps({"after": credentials.load_api_key() is None}))
"""

DIALOG = f"""
import json
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QObject, Signal
app = QApplication([])
from app.core.settings import Settings
from app.qt.settings_store import QSettingsStore
from app.qt.settings_dialog import SettingsDialog
from app.core import credentials
class Ctl(QObject):
    status_changed = Signal(object)
    sharing = None              # no caption sharing in this test
    def __getattr__(self, name):
        return lambda *a: None
store = QSettingsStore()
dlg = SettingsDialog(Settings(store), Ctl())
dlg.api_key.field.setText({KEY!r})
dlg.silence.box.setValue(1234)
ok = dlg.apply()
store.sync()
print(json.dumps({{"ok": ok, "message": dlg.api_key.message.text(),
                  "stored": dlg.api_key.stored_label.text(),
                  "path": str(store.path),
                  "loaded": credentials.load_api_key().reveal() == {KEY!r}}}))
"""


def last_json(proc):
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_round_trip_through_secret_service(secret_service):
    result = last_json(secret_service.run_python(ROUND_TRIP))
    assert result == {"backend": "keyring.backends.SecretService.Keyring", "before": True,
                      "loaded": True, "log_has_key": False}
    if shutil.which("secret-tool"):   # cross-check with libsecret's own tool
        found = secret_service.secret_tool("lookup", "service", "caption-overlay",
                                           "username", "assemblyai-api-key")
        assert found.stdout == KEY
    assert last_json(secret_service.run_python(DELETE)) == {"after": True}
    if shutil.which("secret-tool"):
        gone = secret_service.secret_tool("lookup", "service", "caption-overlay",
                                          "username", "assemblyai-api-key")
        assert gone.stdout == ""


def test_settings_dialog_saves_into_secret_service_not_the_file(secret_service):
    result = last_json(secret_service.run_python(DIALOG))
    assert result["ok"] and result["loaded"], result
    assert "Saved in the system keyring" in result["message"]
    assert "SecretService" in result["stored"]
    ini = open(result["path"], "rb").read()
    assert b"1234" in ini and KEY.encode() not in ini
    # Nowhere in the fresh HOME is the key in plain text (the keyring file is encrypted).
    for path in secret_service.home.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


SHIM_PRELUDE = f"""
import importlib.abc, sys
class _NoCryptography(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "cryptography" or name.startswith("cryptography."):
            raise ImportError("not in the bundle")
sys.meta_path.insert(0, _NoCryptography())
sys.path.insert(0, {str(__import__("pathlib").Path(__file__).resolve().parents[2] / "packaging/linux/shims")!r})
exec(open(sys.path[0] + "/rthook_cryptography.py").read())
"""


def test_round_trip_with_the_linux_bundles_cipher_instead_of_cryptography(secret_service):
    """The frozen Linux app has no cryptography package: OpenSSL's EVP AES-CBC stands in."""
    code = SHIM_PRELUDE + ROUND_TRIP + "\nassert type(sys.modules['cryptography']).__name__ == 'module'\n"
    result = last_json(secret_service.run_python(code))
    assert result == {"backend": "keyring.backends.SecretService.Keyring", "before": True,
                      "loaded": True, "log_has_key": False}
    if shutil.which("secret-tool"):   # libsecret reads what the stand-in encrypted
        found = secret_service.secret_tool("lookup", "service", "caption-overlay",
                                           "username", "assemblyai-api-key")
        assert found.stdout == KEY
    assert last_json(secret_service.run_python(SHIM_PRELUDE + DELETE)) == {"after": True}


@pytest.mark.parametrize("dismiss", [False, True], ids=["unlocked", "dismissed"])
def test_settings_opens_while_a_locked_keyring_prompts(tmp_path, monkeypatch, dismiss):
    """gnome-keyring's unlock prompt is up for 2 s: Settings is open before it is answered, and
    learns that a key is stored once it is (it used to open only after the answer); a
    dismissed prompt is explained as a locked keyring, not a missing one."""
    from pathlib import Path

    from tests.fixtures.desktop import x_desktop
    from tests.fixtures.secret_service import SecretServiceEnv, open_settings_while_prompting
    if not shutil.which("/usr/libexec/gcr-prompter") or not shutil.which("xdotool"):
        pytest.fail("gcr (gcr-prompter) and xdotool are needed (bash packaging/dev.sh test)")
    (tmp_path / "home").mkdir(exist_ok=True)
    with x_desktop(tmp_path / "home", compositor=False) as (display, desktop_env):
        monkeypatch.setenv("DISPLAY", display)      # D-Bus activates the prompter with it
        service = SecretServiceEnv().start()
        try:
            data = open_settings_while_prompting(service, desktop_env,
                                                 Path(__file__).resolve().parents[2], 2.0,
                                                 dismiss=dismiss)
        finally:
            service.stop()
    assert data["prompt_after_ms"] is not None, data           # the keyring really prompted
    answered_ms = data["prompt_after_ms"] + 2000
    assert data["opened_ms"] < answered_ms, data                 # open did not wait for it
    assert data["known_ms"] >= answered_ms - 100, data           # the answer came afterwards
    if dismiss:
        assert "locked" in data["label"] and "dismissed" in data["label"], data
    else:
        assert "A key is stored in the keyring (SecretService)" in data["label"], data
