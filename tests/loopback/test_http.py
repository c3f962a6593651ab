"""Token endpoints on the same port as the WebSockets; single-use, expiring tokens."""

import json
import urllib.error
import urllib.request

import pytest

from tests.loopback.conftest import RATE, terminate


def http(server, method, path, *, body=None, headers=None, key="default"):
    headers = dict(headers or {})
    if key == "default":
        key = server.api_key
    if key is not None:
        headers["Authorization"] = key
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), resp.headers.get("Content-Type")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}"), err.headers.get("Content-Type")


JSON = {"Content-Type": "application/json"}


def test_v2_token_minted_and_used_once(srv, connect):
    status, payload, ctype = http(srv, "POST", "/v2/realtime/token", body={"expires_in": 60}, headers=JSON)
    assert status == 200 and ctype == "application/json" and len(payload["token"]) == 64
    c = connect("v2", {"sample_rate": RATE}, key=None, token=payload["token"])
    assert c.wait(lambda c: c.messages) and c.messages[0]["message_type"] == "SessionBegins"
    terminate(c, "v2")
    again = connect("v2", {"sample_rate": RATE}, key=None, token=payload["token"])
    assert again.wait_closed(5) and again.close_code == 4001 and again.messages == [{"error": "Not Authorized"}]
    assert [s.auth for s in srv.sessions] == ["token", ""]
    assert srv.sessions[1].auth_error == "token already used"
    assert srv.http[0].body == {"expires_in": 60} and srv.http[0].headers["Authorization"] == "<redacted>"


def test_v2_token_expired_or_for_v3_is_refused(srv, connect):
    v3 = srv.mint_token("v3")
    c = connect("v2", {"sample_rate": RATE}, key=None, token=v3)
    assert c.wait_closed(5) and c.close_code == 4001
    old = srv.mint_token("v2", 60)
    srv.expire_tokens()
    c = connect("v2", {"sample_rate": RATE}, key=None, token=old)
    assert c.wait_closed(5) and c.close_code == 4001
    assert srv.sessions[1].auth_error == "token expired"


@pytest.mark.parametrize("body,headers,status", [
    ({"expires_in": 60}, {}, 400),                                  # no Content-Type
    ({"expires_in": 60}, {"Content-Type": "text/plain"}, 400),
    ({"expires_in": 59}, JSON, 400),
    ({"expires_in": 360001}, JSON, 400),
    ({"expires_in": "60"}, JSON, 400),
    ({}, JSON, 400),
    (b"{broken", JSON, 400),
    ({"expires_in": 360000}, {"Content-Type": "application/json; charset=utf-8"}, 200),
])
def test_v2_token_request_validation(srv, body, headers, status):
    got, payload, _ = http(srv, "POST", "/v2/realtime/token", body=body, headers=headers)
    assert got == status, payload
    assert ("token" in payload) == (status == 200)
    assert status == 200 or payload["error"]


@pytest.mark.parametrize("key", [None, "wrong"])
def test_token_endpoints_need_the_key(srv, key):
    assert http(srv, "POST", "/v2/realtime/token", body={"expires_in": 60}, headers=JSON, key=key)[0] == 401
    assert http(srv, "GET", "/v3/token?expires_in_seconds=60", key=key)[0] == 401


def test_v3_token(srv, connect):
    status, payload, _ = http(srv, "GET", "/v3/token?expires_in_seconds=600&max_session_duration_seconds=60")
    assert status == 200 and payload["expires_in_seconds"] == 600
    c = connect("v3", header_token=payload["token"])
    assert c.wait(lambda c: c.messages) and c.messages[0]["type"] == "Begin"
    terminate(c, "v3")
    assert srv.tokens.issued[0].max_session_s == 60


@pytest.mark.parametrize("query", ["", "?expires_in_seconds=0", "?expires_in_seconds=601", "?expires_in_seconds=x",
                                   "?expires_in_seconds=60&max_session_duration_seconds=59",
                                   "?expires_in_seconds=60&max_session_duration_seconds=10801"])
def test_v3_token_request_validation(srv, query):
    status, payload, _ = http(srv, "GET", "/v3/token" + query)
    assert status == 400 and payload["error"]


def test_wrong_methods_and_paths(srv):
    assert http(srv, "GET", "/v2/realtime/token")[0] == 405
    assert http(srv, "POST", "/v3/token", body={}, headers=JSON)[0] == 405
    assert http(srv, "GET", "/nothing/here")[0] == 404


def test_token_error_injection(srv):
    srv.inject(token_error=(503, "Service Unavailable"), repeat=2)
    assert http(srv, "GET", "/v3/token?expires_in_seconds=60")[0] == 503
    assert http(srv, "POST", "/v2/realtime/token", body={"expires_in": 60}, headers=JSON)[0] == 503
    assert http(srv, "GET", "/v3/token?expires_in_seconds=60")[0] == 200
