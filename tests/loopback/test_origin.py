"""A web page cannot drive the loopback server: foreign Origin or Host headers are refused."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import websocket

ROOT = Path(__file__).resolve().parents[2]


def token_request(server, headers):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.putrequest("GET", "/v3/token?expires_in_seconds=60", skip_host=True)
        for name, value in {"Host": f"127.0.0.1:{server.port}", "Authorization": server.api_key,
                            **headers}.items():
            if value is not None:
                conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_programs_on_this_computer_are_served(loopback_server):
    status, body = token_request(loopback_server, {})
    assert status == 200 and body["token"]
    own = {"Origin": f"http://127.0.0.1:{loopback_server.port}"}
    assert token_request(loopback_server, own)[0] == 200


@pytest.mark.parametrize("headers,word", [
    ({"Origin": "https://evil.example"}, "Origin"),
    ({"Origin": "null"}, "Origin"),
    ({"Origin": "http://127.0.0.1:1"}, "Origin"),          # another local port is another site
    ({"Host": "evil.example"}, "Host"),                     # DNS rebinding
    ({"Host": None}, "Host"),
])
def test_foreign_pages_are_refused(loopback_server, headers, word):
    status, body = token_request(loopback_server, headers)
    assert status == 403 and word in body["error"]


def test_websocket_from_a_web_page_is_refused(loopback_server):
    url = loopback_server.ws_url("v3") + "?sample_rate=16000"
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, header=[f"Authorization: {loopback_server.api_key}"],
                                    origin="https://evil.example", timeout=5)
    assert info.value.status_code == 403
    assert not loopback_server.sessions


def test_extra_origins_can_be_allowed(loopback_factory):
    server = loopback_factory(allowed_origins=["http://demo.localhost:8080"])
    assert token_request(server, {"Origin": "http://demo.localhost:8080"})[0] == 200


def test_runnable_server_has_no_well_known_default_key():
    proc = subprocess.Popen([sys.executable, "-m", "tests.loopback", "--port", "0", "--quiet"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        hint = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
    key = hint.split("ASSEMBLYAI_API_KEY=", 1)[1].split()[0]
    assert key.startswith("loopback-") and len(key) > 20 and key != "test-key"
