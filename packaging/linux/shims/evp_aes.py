"""AES-CBC through the OpenSSL libcrypto the bundle already carries (Python's ssl module links it),
in the shape of the small part of ``cryptography`` that SecretStorage calls.

SecretStorage (the Secret Service keyring backend on Linux) uses ``cryptography`` only for
AES-128-CBC of the secret inside its Diffie-Hellman session (its DH and HKDF are pure Python).
The ``cryptography`` wheel is ~12 MB of the bundle; this is OpenSSL's own EVP interface, so the
cipher is the same constant-time implementation, not a re-implementation.

Only what SecretStorage uses exists: ``algorithms.AES``, ``modes.CBC``,
``Cipher(...).encryptor()/decryptor()`` with ``update``/``finalize``, ``default_backend()``.
Padding is the caller's, as with ``cryptography``'s CBC mode.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_lib = None


def libcrypto():
    """The process's libcrypto: the one ``_ssl`` loaded (same soname), else the system's."""
    global _lib
    if _lib is not None:
        return _lib
    import _ssl  # noqa: F401 - loads the bundled libcrypto first, so the soname resolves to it
    names = ["libcrypto.so.3", "libcrypto.so.1.1", ctypes.util.find_library("crypto")]
    last: OSError | None = None
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as exc:
            last = exc
    else:
        raise ImportError(f"OpenSSL's libcrypto could not be loaded ({last})")
    lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
    lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
    for name in ("EVP_aes_128_cbc", "EVP_aes_192_cbc", "EVP_aes_256_cbc"):
        getattr(lib, name).restype = ctypes.c_void_p
    lib.EVP_CipherInit_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                      ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
    lib.EVP_CIPHER_CTX_set_padding.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.EVP_CipherUpdate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                     ctypes.c_char_p, ctypes.c_int]
    lib.EVP_CipherFinal_ex.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
    _lib = lib
    return lib


class AES:
    name = "AES"

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, (bytes, bytearray)) or len(key) not in (16, 24, 32):
            raise ValueError("AES keys are 16, 24 or 32 bytes")
        self.key = bytes(key)


class CBC:
    name = "CBC"

    def __init__(self, initialization_vector: bytes) -> None:
        if not isinstance(initialization_vector, (bytes, bytearray)) or len(initialization_vector) != 16:
            raise ValueError("the CBC initialisation vector is 16 bytes")
        self.initialization_vector = bytes(initialization_vector)


class _Context:
    def __init__(self, algorithm: AES, mode: CBC, encrypt: bool) -> None:
        lib = libcrypto()
        cipher = {16: lib.EVP_aes_128_cbc, 24: lib.EVP_aes_192_cbc, 32: lib.EVP_aes_256_cbc}[len(algorithm.key)]()
        self._lib = lib
        self._ctx = lib.EVP_CIPHER_CTX_new()
        if not self._ctx:
            raise MemoryError("EVP_CIPHER_CTX_new failed")
        ok = lib.EVP_CipherInit_ex(self._ctx, cipher, None, algorithm.key, mode.initialization_vector,
                                   1 if encrypt else 0)
        if ok != 1:
            self._free()
            raise ValueError("the cipher could not be set up")
        lib.EVP_CIPHER_CTX_set_padding(self._ctx, 0)
        self._pending = 0

    def update(self, data: bytes) -> bytes:
        if self._ctx is None:
            raise ValueError("the context is already finalized")
        data = bytes(data)
        out = ctypes.create_string_buffer(len(data) + 16)
        written = ctypes.c_int(0)
        if self._lib.EVP_CipherUpdate(self._ctx, out, ctypes.byref(written), data, len(data)) != 1:
            self._free()
            raise ValueError("the cipher failed")
        self._pending = (self._pending + len(data)) % 16
        return out.raw[:written.value]

    def finalize(self) -> bytes:
        if self._ctx is None:
            raise ValueError("the context is already finalized")
        try:
            if self._pending:
                raise ValueError("the data is not a multiple of the block length")
            out = ctypes.create_string_buffer(16)
            written = ctypes.c_int(0)
            if self._lib.EVP_CipherFinal_ex(self._ctx, out, ctypes.byref(written)) != 1:
                raise ValueError("the cipher failed")
            return out.raw[:written.value]
        finally:
            self._free()

    def _free(self) -> None:
        if self._ctx is not None:
            self._lib.EVP_CIPHER_CTX_free(self._ctx)
            self._ctx = None

    def __del__(self):
        self._free()


class Cipher:
    def __init__(self, algorithm: AES, mode: CBC, backend=None) -> None:
        if not isinstance(algorithm, AES) or not isinstance(mode, CBC):
            raise TypeError("only AES in CBC mode is available")
        self.algorithm, self.mode = algorithm, mode

    def encryptor(self) -> _Context:
        return _Context(self.algorithm, self.mode, encrypt=True)

    def decryptor(self) -> _Context:
        return _Context(self.algorithm, self.mode, encrypt=False)


def default_backend():
    return None
