"""The caption server over real sockets: page, SSE resume, WebSocket, tokens, caps, slow clients."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from app.core.events import Final, SessionStarted
from app.core.sharing import CaptionShare, ShareConfig, ShareStartError, parse_serve
from app.core.sharing.config import ShareConfigError
from app.core.sharing.server import CSP
from tests.sharing.helpers import SSEReader, finals, local_url, partial, request, wait_for

PATHS = ("/", "/page.js", "/page.css", "/config.json", "/events", "/ws", "/nothing-here",
         "/../../etc/passwd")


@pytest.fixture
def share_factory():
    shares = []

    def make(**kw) -> CaptionShare:
        share = CaptionShare(ShareConfig(serve=True, port=0, **kw)).start()
        shares.append(share)
        return share

    yield make
    for share in shares:
        share.stop(timeout_s=3)


def test_page_is_served_with_csp_and_no_inline_script(share_factory):
    share = share_factory()
    status, headers, body = request(share.url)
    assert status == 200
    assert headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-content-type-options"] == "nosniff"
    page = body.decode()
    assert "<script src=\"page.js\"" in page and "<script>" not in page
    status, headers, js = request(share.url, "/page.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"innerHTML" not in js and b"insertAdjacentHTML" not in js and b"eval(" not in js


def test_config_serves_only_the_look(share_factory):
    style = {"font_size": 40, "text_color": "#ffff00"}
    share = share_factory(style=style)
    status, _, body = request(share.url, "/config.json")
    assert status == 200 and json.loads(body) == {"style": style}


def test_sse_data_lines_are_the_json_events(share_factory):
    share = share_factory()
    reader = SSEReader(share.url)
    assert reader.status == 200
    from app.core.event_json import event_json
    final = Final("hello", 0, 900)
    share.on_event("mic", SessionStarted("abc", "v3", None))
    partial(share, "mic", "hel")
    share.on_event("mic", final)
    got = reader.take(3)
    reader.close()
    assert got == [
        {**event_json(SessionStarted("abc", "v3", None)), "source": "mic"},
        {"event": "partial", "text": "hel", "audio_start": 0, "audio_end": 300, "source": "mic"},
        {**event_json(final), "source": "mic"},
    ]
    assert got[2]["text"] == "hello" and got[2]["id"] == final.id


def test_latency_reaches_the_feed_as_in_json(share_factory):
    share = share_factory()
    reader = SSEReader(share.url)
    final = Final("timed", 0, 900)
    share.on_event("mic", final, latency_ms=412.6)
    assert reader.take(1)[0] == {"event": "final", "text": "timed", "audio_start": 0,
                                 "audio_end": 900, "id": final.id, "speaker": None,
                                 "language": None, "source": "mic", "latency_ms": 413}
    reader.close()


def test_late_joiner_gets_history_finals_and_current_partial_only(share_factory):
    share = share_factory()
    finals(share, "mic", ["one", "two"])
    partial(share, "mic", "thr")
    partial(share, "mic", "three in prog")        # replaces the previous partial
    wait_for(lambda: share.feed is not None and len(share.feed.finals) == 2)
    time.sleep(0.1)
    reader = SSEReader(share.url)
    got = reader.take(3)
    reader.close()
    assert [(e["event"], e["text"]) for e in got] == [
        ("final", "one"), ("final", "two"), ("partial", "three in prog")]


def test_sse_resume_with_last_event_id_loses_and_doubles_nothing(share_factory):
    share = share_factory()
    reader = SSEReader(share.url)
    finals(share, "mic", [f"line {i}" for i in range(5)])
    first = reader.take(5)
    last_id = reader.last_id
    reader.close()                               # the connection drops …
    finals(share, "mic", [f"later {i}" for i in range(3)])   # … captions go on meanwhile
    time.sleep(0.1)
    again = SSEReader(share.url, last_id=last_id)
    resumed = again.take(3)
    finals(share, "mic", ["live again"])
    resumed += again.take(1)
    again.close()
    texts = [e["text"] for e in first + resumed]
    assert texts == [f"line {i}" for i in range(5)] + [f"later {i}" for i in range(3)] + ["live again"]


def test_id_from_an_earlier_run_gets_the_whole_history(share_factory):
    share = share_factory()
    finals(share, "mic", ["a", "b"])
    time.sleep(0.1)
    reader = SSEReader(share.url, last_id="deadbeef-99")
    assert [e["text"] for e in reader.take(2)] == ["a", "b"]
    reader.close()


def test_websocket_gets_history_and_live_events(share_factory):
    from websockets.sync.client import connect
    share = share_factory()
    finals(share, "mic", ["before"])
    time.sleep(0.1)
    with connect(share.url.replace("http://", "ws://") + "ws", open_timeout=5) as ws:
        first = json.loads(ws.recv(timeout=5))
        share.on_event("mic", Final("after", 0, 1))
        second = json.loads(ws.recv(timeout=5))
        ws.send("x" * 100)                       # anything a viewer sends is ignored
        share.on_event("mic", Final("still", 0, 1))
        third = json.loads(ws.recv(timeout=5))
    assert [first["text"], second["text"], third["text"]] == ["before", "after", "still"]
    assert first["event_id"] != second["event_id"]
    assert {k: v for k, v in first.items() if k not in ("event_id", "id")} == {
        "event": "final", "text": "before", "audio_start": 0, "audio_end": 900, "speaker": None,
        "language": None, "source": "mic"}


def test_websocket_resume_with_last_event_id(share_factory):
    from websockets.sync.client import connect
    share = share_factory()
    finals(share, "mic", ["a", "b", "c"])
    time.sleep(0.1)
    base = share.url.replace("http://", "ws://") + "ws"
    with connect(base, open_timeout=5) as ws:
        got = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
    with connect(f"{base}?last_event_id={got[-1]['event_id']}", open_timeout=5) as ws:
        rest = json.loads(ws.recv(timeout=5))
    assert rest["text"] == "c"


# --- LAN bind: the token on every path -----------------------------------------------------

def test_lan_bind_needs_the_token_on_every_path(share_factory):
    share = share_factory(host="0.0.0.0")
    token = share.server.token
    assert len(token) >= 22 and share.url.endswith(f"/?token={token}")   # ≥ 128 bits
    url = local_url(share)
    for path in PATHS:
        assert request(url, path)[0] == 401, path
        assert request(url, path, token="wrong" + token[5:])[0] == 403, path
        assert request(url, path, token="")[0] == 401, path
    for path in ("/", "/page.js", "/page.css", "/config.json"):
        status, headers, _ = request(url, path, token=token)
        assert status == 200, path
        assert headers["content-security-policy"] == CSP
    assert request(url, "/events", token=token)[0] == 200
    assert request(url, "/nothing-here", token=token)[0] == 404
    # The page asks for its script and style with the token, so they load.
    _, _, page = request(url, "/", token=token)
    assert f'src="page.js?token={token}"'.encode() in page


def test_lan_link_names_the_address_a_phone_can_reach(share_factory, monkeypatch):
    from app.core.sharing import config
    monkeypatch.setattr(config, "lan_address", lambda: "192.168.1.20")
    share = share_factory(host="0.0.0.0")
    assert share.server.url == f"http://192.168.1.20:{share.server.port}/?token={share.server.token}"
    monkeypatch.setattr(config, "lan_address", lambda: None)     # no network: say what we bound
    assert share.server.url.startswith("http://0.0.0.0:")


def test_each_start_has_a_new_token_and_regenerating_disconnects(share_factory):
    a = share_factory(host="0.0.0.0")
    b = share_factory(host="0.0.0.0")
    assert a.server.token != b.server.token
    url = local_url(a)
    old = a.server.token
    reader = SSEReader(url, token=old)
    wait_for(lambda: a.viewers == 1)
    new_url = a.regenerate_token()
    assert old not in new_url and a.server.token in new_url
    with pytest.raises((EOFError, OSError)):
        reader.take(1)
    assert request(url, "/", token=old)[0] == 403
    assert request(url, "/", token=a.server.token)[0] == 200


def test_rebinding_hosts_are_refused_on_loopback(share_factory):
    share = share_factory()
    assert request(share.url, "/", headers={"Host": "evil.example:80"})[0] == 403
    assert request(share.url, "/events", headers={"Host": "evil.example"})[0] == 403
    assert request(share.url, "/", headers={"Host": f"localhost:{share.server.port}"})[0] == 200


def test_only_get_and_no_bodies(share_factory):
    share = share_factory()
    assert request(share.url, "/", method="POST", body=b"x")[0] == 405
    assert request(share.url, "/events", method="PUT", body=b"")[0] == 405
    assert request(share.url, "/", method="GET", body=b"x" * 10,
                   headers={"Content-Length": "10"})[0] == 413


def test_oversized_request_line_is_refused(share_factory):
    share = share_factory()
    status, _, _ = request(share.url, "/?" + "a" * 10000)
    assert status in (400, 414)


def test_connection_cap(share_factory):
    share = share_factory(max_clients=3)
    readers = [SSEReader(share.url) for _ in range(3)]
    wait_for(lambda: share.viewers == 3)
    status, headers, body = request(share.url, "/events")
    assert status == 503 and b"Too many people" in body
    assert request(share.url, "/")[0] == 200       # the page itself still loads
    readers[0].close()
    wait_for(lambda: share.viewers == 2)
    assert SSEReader(share.url).status == 200
    for r in readers[1:]:
        r.close()


def test_a_slow_client_is_dropped_and_others_keep_up(share_factory):
    import threading
    share = share_factory(client_queue=200)
    # A client that never reads: its socket buffers fill, then its queue, then it is dropped.
    slow = socket.create_connection(("127.0.0.1", share.server.port))
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    fast = SSEReader(share.url, read_timeout=30)
    wait_for(lambda: share.viewers == 2)
    got = []

    def read_all():
        while True:
            text = fast.next()[1]["text"]
            if text == "end":
                return
            got.append(int(text.split()[0]))

    reading = threading.Thread(target=read_all)
    reading.start()
    text = "x" * 30000      # large events: the kernel buffers between us fill within seconds
    handed_over, sent = 0.0, 0
    while share.server.dropped_slow == 0 and sent < 3000:
        t0 = time.perf_counter()
        share.on_event("mic", Final(f"{sent} {text}", sent, sent + 1))
        handed_over = max(handed_over, time.perf_counter() - t0)
        sent += 1
        time.sleep(0.002)
    share.on_event("mic", Final("end", 0, 1))
    reading.join(60)
    assert share.server.dropped_slow == 1, "the stuck client was never dropped"
    assert got == list(range(sent))            # the reading client missed nothing
    wait_for(lambda: share.viewers == 1, timeout=10)
    # Never waited for the stuck client: a blocked hand-over would last the 5 s write timeout.
    assert handed_over < 1.0
    slow.close()
    fast.close()


def test_port_in_use_is_a_plain_error():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(ShareStartError, match="another program already uses that port"):
            CaptionShare(ShareConfig(serve=True, port=port)).start()
    finally:
        blocker.close()


def test_address_not_on_this_computer_is_a_plain_error():
    with pytest.raises(ShareStartError, match="not on this computer"):
        CaptionShare(ShareConfig(serve=True, host="192.0.2.77", port=0)).start()


def test_stop_is_bounded_with_clients_connected(share_factory):
    share = share_factory()
    readers = [SSEReader(share.url) for _ in range(5)]
    wait_for(lambda: share.viewers == 5)
    t0 = time.perf_counter()
    share.stop(timeout_s=3)
    assert time.perf_counter() - t0 < 3.5
    for r in readers:
        r.close()
    with pytest.raises(OSError):
        request(share.url)


def test_on_event_after_stop_is_ignored(share_factory):
    share = share_factory()
    share.stop()
    share.on_event("mic", Final("late", 0, 1))   # must not raise


@pytest.mark.parametrize("spec,expected", [
    ("8765", ("127.0.0.1", 8765)),
    ("0.0.0.0:9000", ("0.0.0.0", 9000)),
    ("[::1]:8080", ("::1", 8080)),
    ("localhost:8765", ("localhost", 8765)),
    (":8765", ("127.0.0.1", 8765)),
])
def test_parse_serve(spec, expected):
    assert parse_serve(spec) == expected


@pytest.mark.parametrize("spec,message", [
    ("", "needs a port"),
    ("http", "not a port number"),
    ("0.0.0.0:99999", "not a port number"),
    ("myhost.example:80", "not an IP address"),
    ("::1:80", "IPv6"),
    ("[::1", "IPv6"),
])
def test_parse_serve_errors(spec, message):
    with pytest.raises(ShareConfigError, match=message):
        parse_serve(spec)


def test_token_needed_exactly_beyond_loopback():
    assert not ShareConfig(serve=True, host="127.0.0.1").needs_token
    assert not ShareConfig(serve=True, host="::1").needs_token
    assert ShareConfig(serve=True, host="0.0.0.0").needs_token
    assert ShareConfig(serve=True, host="192.168.1.20").needs_token
    assert ShareConfig(serve=True, host="::").needs_token


def test_api_key_never_reaches_the_page(share_factory, monkeypatch):
    secret = "sk-this-is-the-api-key-0123456789"
    monkeypatch.setenv("ASSEMBLYAI_API_KEY", secret)
    share = share_factory()
    finals(share, "mic", ["hi"])
    time.sleep(0.1)
    for path in ("/", "/page.js", "/page.css", "/config.json"):
        assert secret.encode() not in request(share.url, path)[2]
    reader = SSEReader(share.url)
    assert secret not in json.dumps(reader.take(1))
    reader.close()


def test_feed_is_bounded(share_factory):
    share = share_factory(history=10)
    finals(share, "mic", [str(i) for i in range(50)])
    wait_for(lambda: share.feed._next == 51)
    reader = SSEReader(share.url)
    assert [e["text"] for e in reader.take(10)] == [str(i) for i in range(40, 50)]
    reader.close()


def test_asyncio_not_needed_by_callers():
    # The sink is plain threads for its callers: no running event loop is required.
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


def test_total_connections_are_capped_on_accept(share_factory):
    import http.client
    share = share_factory(max_clients=2)
    cap = share.server.max_connections
    idle = [socket.create_connection(("127.0.0.1", share.server.port)) for _ in range(cap)]
    wait_for(lambda: len(share.server._runner.server.connections) == cap)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        request(share.url)
    assert share.server.refused_connections >= 1
    for s in idle:
        s.close()
    wait_for(lambda: len(share.server._runner.server.connections) == 0)
    assert request(share.url)[0] == 200


def test_page_config_carries_finals_only_choice():
    from app.core.sharing.server import config_style
    style = config_style({"captions/stable_only": True, "appearance/font_size": 40})
    assert style["stable_only"] is True and style["font_size"] == 40
    assert set(style) == {"font_family", "font_size", "text_color", "background_color",
                          "background_opacity", "text_effect", "lines", "clear_after_s",
                          "show_source_labels", "stable_only"}
