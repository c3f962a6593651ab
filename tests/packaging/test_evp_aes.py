"""The Linux bundle's stand-in for ``cryptography`` (SecretStorage's AES-CBC through OpenSSL's EVP):
byte-identical to ``cryptography`` itself, the FIPS-197 vector, and SecretStorage working on it."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the stand-in is part of the Linux bundle only")

ROOT = Path(__file__).resolve().parents[2]
SHIMS = ROOT / "packaging" / "linux" / "shims"

spec = importlib.util.spec_from_file_location("evp_aes_under_test", SHIMS / "evp_aes.py")
evp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(evp)


def _encrypt(mod, key, iv, data):
    c = mod.Cipher(mod_alg(mod).AES(key), mod_modes(mod).CBC(iv), None).encryptor()
    return c.update(data) + c.finalize()


def mod_alg(mod):
    return mod if mod is evp else mod.algorithms


def mod_modes(mod):
    return mod if mod is evp else mod.modes


def test_fips_197_aes_128_vector():
    # FIPS-197 appendix C.1, one block: with a zero IV, CBC's first block is plain AES.
    key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    block = bytes.fromhex("00112233445566778899aabbccddeeff")
    assert _encrypt(evp, key, bytes(16), block).hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"


@pytest.mark.parametrize("key_len", [16, 24, 32])
def test_same_bytes_as_cryptography_both_ways(key_len):
    ciphers = pytest.importorskip("cryptography.hazmat.primitives.ciphers")
    for _ in range(20):
        key, iv = os.urandom(key_len), os.urandom(16)
        data = os.urandom(16 * (1 + os.urandom(1)[0] % 8))
        expected = _encrypt(ciphers, key, iv, data)
        assert _encrypt(evp, key, iv, data) == expected
        d = evp.Cipher(evp.AES(key), evp.CBC(iv)).decryptor()
        assert d.update(expected[:7]) + d.update(expected[7:]) + d.finalize() == data


def test_misuse_is_refused_in_plain_words():
    with pytest.raises(ValueError, match="16, 24 or 32"):
        evp.AES(b"short")
    with pytest.raises(ValueError, match="16 bytes"):
        evp.CBC(b"iv")
    c = evp.Cipher(evp.AES(bytes(16)), evp.CBC(bytes(16))).encryptor()
    c.update(b"not a block")
    with pytest.raises(ValueError, match="multiple of the block"):
        c.finalize()
    with pytest.raises(ValueError, match="already finalized"):
        c.update(b"x" * 16)


SECRETSTORAGE_ON_SHIM = textwrap.dedent("""\
    import importlib.abc, sys

    class NoCryptography(importlib.abc.MetaPathFinder):   # as in the bundle: the package is absent
        def find_spec(self, name, path=None, target=None):
            if name == "cryptography" or name.startswith("cryptography."):
                raise ImportError("cryptography is not in the bundle")

    sys.meta_path.insert(0, NoCryptography())
    sys.path.insert(0, sys.argv[1])
    exec(open(sys.argv[1] + "/rthook_cryptography.py").read())

    import os
    from secretstorage import dhcrypto, util
    from secretstorage.item import Item

    # The DH session as SecretStorage sets it up (server side simulated with its own Session).
    client, server = dhcrypto.Session(), dhcrypto.Session()
    client.set_server_public_key(server.my_public_key)
    client.object_path = "/org/freedesktop/secrets/session/1"
    path, iv, encrypted, content_type = util.format_secret(client, b"assemblyai-key-123", "text/plain")
    assert encrypted != b"assemblyai-key-123" and len(encrypted) % 16 == 0
    import evp_aes
    d = evp_aes.Cipher(evp_aes.AES(client.aes_key), evp_aes.CBC(iv)).decryptor()
    padded = d.update(encrypted) + d.finalize()
    assert padded[:-padded[-1]] == b"assemblyai-key-123"
    print("ok", type(sys.modules["cryptography"]).__name__)
    """)


def test_secretstorage_runs_on_the_shim_without_cryptography(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SECRETSTORAGE_ON_SHIM)
    result = subprocess.run([sys.executable, str(script), str(SHIMS)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok module"


def test_self_test_fails_when_the_secret_service_cipher_is_missing(monkeypatch):
    from app import selftest
    monkeypatch.setattr(selftest, "_platform_key", lambda: "linux")
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers", None)
    with pytest.raises(selftest.CheckFailed, match="Secret Service client cannot be loaded"):
        selftest.check_keyring()


def test_self_test_exercises_the_shim_cipher(monkeypatch):
    """What the frozen Linux self-test runs, here with the stand-in in place of cryptography."""
    import types

    from app import selftest
    monkeypatch.setattr(selftest, "_platform_key", lambda: "linux")
    fake = types.SimpleNamespace(Cipher=evp.Cipher, algorithms=types.SimpleNamespace(AES=evp.AES),
                                 modes=types.SimpleNamespace(CBC=evp.CBC))
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers", fake)
    monkeypatch.setitem(sys.modules, "cryptography.hazmat.backends",
                        types.SimpleNamespace(default_backend=evp.default_backend))
    selftest._check_secret_service_cipher()
