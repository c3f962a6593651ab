"""Token minting (v2 POST JSON, v3 GET) and the broker, against a tiny local HTTP server."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.events import Recovery
from app.core.session_config import SessionConfig
from app.core.streaming import tokens
from app.core.streaming.auth import BrokerAuth, KeyAuth, TokenAuth

KEY = "sk-very-SECRET-key-987654321"


class Http:
    """Answers from ``routes[(method, path)] = (status, body)``; records requests."""

    def __init__(self):
        self.routes = {}
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                outer.requests.append({"method": self.command, "path": self.path, "body": body,
                                       "headers": dict(self.headers)})
                status, payload = outer.routes.get((self.command, path), (404, {"error": "nope"}))
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http():
    h = Http()
    yield h
    h.close()


def test_v2_mint_is_a_json_post_with_content_type(http):
    http.routes[("POST", "/v2/realtime/token")] = (200, {"token": "abc123"})
    assert tokens.mint_v2_token(http.url, Secret(KEY)) == "abc123"
    req = http.requests[0]
    assert req["headers"]["Authorization"] == KEY
    assert req["headers"]["Content-Type"] == "application/json"
    assert json.loads(req["body"]) == {"expires_in": 60}


def test_v3_mint_is_a_get_with_expiry(http):
    http.routes[("GET", "/v3/token")] = (200, {"token": "v3tok", "expires_in_seconds": 60})
    assert tokens.mint_v3_token(http.url, Secret(KEY), expires_in=120) == "v3tok"
    req = http.requests[0]
    assert req["path"] == "/v3/token?expires_in_seconds=120" and req["headers"]["Authorization"] == KEY


def test_expiry_ranges_checked():
    with pytest.raises(ValueError):
        tokens.mint_v2_token("http://127.0.0.1:9", Secret(KEY), expires_in=59)
    with pytest.raises(ValueError):
        tokens.mint_v3_token("http://127.0.0.1:9", Secret(KEY), expires_in=601)


@pytest.mark.parametrize("status,recovery", [(401, Recovery.STOP), (403, Recovery.STOP),
                                             (400, Recovery.STOP), (429, Recovery.RECONNECT),
                                             (500, Recovery.RECONNECT)])
def test_mint_errors_are_mapped(http, status, recovery, caplog):
    caplog.set_level(logging.DEBUG)
    http.routes[("GET", "/v3/token")] = (status, {"error": "Invalid API key"})
    with pytest.raises(SessionError) as info:
        tokens.mint_v3_token(http.url, Secret(KEY))
    assert info.value.error.recovery is recovery and info.value.error.code == status
    assert KEY not in str(info.value) + repr(info.value.error) + caplog.text


def test_answer_without_token_is_a_configuration_error(http):
    http.routes[("GET", "/v3/token")] = (200, b"<html>login</html>")
    with pytest.raises(SessionError) as info:
        tokens.mint_v3_token(http.url, Secret(KEY))
    assert info.value.error.recovery is Recovery.STOP and "without a token" in info.value.error.message


def test_nothing_listening_is_transient():
    with pytest.raises(SessionError) as info:
        tokens.mint_v2_token("http://127.0.0.1:9", Secret(KEY), timeout=2)
    assert info.value.error.recovery is Recovery.RECONNECT
    assert "connection refused" in info.value.error.message


def test_broker_get_then_post_fallback(http):
    http.routes[("GET", "/broker")] = (200, {"token": "from-get"})
    assert tokens.fetch_broker_token(http.url + "/broker?team=7") == "from-get"
    http.routes[("GET", "/broker2")] = (405, {"error": "use POST"})
    http.routes[("POST", "/broker2")] = (200, {"token": "from-post"})
    assert tokens.fetch_broker_token(http.url + "/broker2") == "from-post"
    assert [r["method"] for r in http.requests] == ["GET", "GET", "POST"]
    assert all("Authorization" not in r["headers"] for r in http.requests)


def test_broker_error_hides_query_secrets(http):
    http.routes[("GET", "/b")] = (403, {"error": "denied"})
    with pytest.raises(SessionError) as info:
        tokens.fetch_broker_token(http.url + "/b?sig=TOPSECRET")
    assert info.value.error.recovery is Recovery.STOP and "TOPSECRET" not in info.value.error.message


def test_auth_providers(http):
    http.routes[("POST", "/v2/realtime/token")] = (200, {"token": "t2"})
    http.routes[("GET", "/v3/token")] = (200, {"token": "t3"})
    http.routes[("GET", "/broker")] = (200, {"token": "tb"})
    v2 = SessionConfig(protocol="v2", server_url=http.url)
    v3 = SessionConfig(server_url=http.url)
    assert KeyAuth(Secret(KEY)).credentials(v3, 5).headers == {"Authorization": KEY}
    assert TokenAuth(Secret(KEY)).credentials(v2, 5).token == "t2"
    creds = TokenAuth(Secret(KEY)).credentials(v3, 5)
    assert creds.token == "t3" and creds.headers == {}
    assert BrokerAuth(http.url + "/broker").credentials(v3, 5).token == "tb"
    for provider in (KeyAuth(Secret(KEY)), TokenAuth(Secret(KEY))):
        assert KEY not in repr(provider) and KEY not in repr(provider.credentials(v3, 5))
    with pytest.raises(SessionError) as info:
        KeyAuth(None).credentials(v3, 5)
    assert info.value.error.recovery is Recovery.STOP and "API key" in info.value.error.message


def test_only_http_urls_are_fetched(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"token": "read-from-disk"}')
    with pytest.raises(SessionError) as info:
        tokens.fetch_broker_token(secret.as_uri())
    assert info.value.error.recovery is Recovery.STOP and "http" in info.value.error.message
