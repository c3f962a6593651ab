"""A throw-away self-signed certificate for 127.0.0.1, so clients that insist on https/wss (the
v3 SDK's token call, the Node SDK) can talk to the loopback server. Trust it in a client with
SSL_CERT_FILE=<cert> (Python's ssl and httpx both honour it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def make_self_signed(directory: Path) -> tuple[Path, Path]:
    """Write cert.pem/key.pem for CN=127.0.0.1 (SAN IP:127.0.0.1, DNS:localhost), valid one day."""
    if not shutil.which("openssl"):
        raise RuntimeError("openssl is needed to make a test certificate")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE"],
                   check=True, capture_output=True, timeout=60)
    return cert, key
