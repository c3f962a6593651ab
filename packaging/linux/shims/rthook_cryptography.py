# PyInstaller runtime hook (Linux bundle): the ``cryptography`` modules SecretStorage imports,
# backed by evp_aes (OpenSSL's EVP AES-CBC). The real package is excluded from the bundle.
import sys
import types

import evp_aes


def _module(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    module.__path__ = []          # a package, so the submodules below resolve
    sys.modules.setdefault(name, module)
    return sys.modules[name]


if "cryptography" not in sys.modules:
    _module("cryptography")
    _module("cryptography.hazmat")
    _module("cryptography.hazmat.backends", default_backend=evp_aes.default_backend)
    _module("cryptography.hazmat.primitives")
    _module("cryptography.hazmat.primitives.ciphers", Cipher=evp_aes.Cipher,
            algorithms=types.SimpleNamespace(AES=evp_aes.AES), modes=types.SimpleNamespace(CBC=evp_aes.CBC))
