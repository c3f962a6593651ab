"""The streaming client, the token requests and the broker against misbehaving peers.

Every case checks three things: the key reaches no socket but the configured server's, memory
stays bounded, and the client ends (or recovers) within a stated time with a plain message.
"""

from __future__ import annotations

import threading
import time

import pytest

from app.core.credentials import Secret
from app.core.engine import SessionError
from app.core.events import Recovery, SessionStarted, StreamError
from app.core.session_config import SessionConfig
from app.core.streaming import tokens
from app.core.streaming.auth import KeyAuth
from app.core.streaming.deadline import Cancelled, Deadline
from app.core.streaming.transport import MAX_MESSAGE_BYTES
from app.core.streaming.v3 import V3Session
from tests.hostile.server import KEY, MemoryWatch, tunnel_then, ws_header

pytestmark = pytest.mark.timeout(30)

MEMORY_LIMIT_MB = 40     # a 4 MiB frame cap plus buffers; the unguarded client grew by gigabytes


def assert_plain(message: str) -> None:
    assert KEY not in message
    assert "Traceback" not in message and "Error(" not in message and "b'" not in message
    assert message.isprintable(), repr(message)
    assert 10 < len(message) < 400, message


def session(url: str, events: list, key: str = KEY) -> V3Session:
    return V3Session(SessionConfig(server_url=url), events.append, auth=KeyAuth(Secret(key)))


def start_fails(s: V3Session, timeout: float) -> tuple[StreamError, float]:
    t0 = time.monotonic()
    with pytest.raises(SessionError) as info:
        s.start(timeout)
    return info.value.error, time.monotonic() - t0


# ---- behaviours ---------------------------------------------------------------------------------
def redirect(location: str, status: int = 302):
    return lambda conn: conn.http(status, headers={"Location": location})


def token_ok(conn):
    conn.http(200, {"token": "tok-123"})


def begin_then(after=None, begin=None, hold: float = 3.0):
    def behave(conn):
        conn.accept_websocket()
        conn.ws_text(begin or {"type": "Begin", "id": "s1", "expires_at": 2000000000})
        if after:
            after(conn)
        conn.drain(hold)
    return behave


def stream_forever(conn, chunk: bytes = b"\0" * (1 << 20)):
    while not conn.expired() and conn.send(chunk):
        pass


def slow(prefix: bytes, interval: float = 0.3):
    def behave(conn):
        for i in range(10 ** 6):
            if conn.expired() or not conn.send(prefix[i % len(prefix):i % len(prefix) + 1]):
                return
            time.sleep(interval)
    return behave


def endless_headers(status: bytes):
    def behave(conn):
        conn.send(status + b"\r\n")
        line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        while not conn.expired() and conn.send(line):
            pass
    return behave


def wait_for(events, kind, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found = [e for e in events if isinstance(e, kind)]
        if found:
            return found[0]
        time.sleep(0.02)
    return None


# ---- 1: redirects never carry the key -----------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_websocket_redirect_to_another_host_is_refused(hostile, status):
    other = hostile(begin_then())
    configured = hostile(redirect(f"ws://127.0.0.1:{other.port}/v3/ws", status))
    events = []
    error, took = start_fails(session(configured.url, events), 5)
    assert took < 2.0
    assert error.recovery is Recovery.STOP and "redirect" in error.message
    assert_plain(error.message)
    assert configured.saw(KEY)                 # it went where the user pointed it …
    assert other.connections == 0 and not other.saw(KEY)    # … and nowhere else


def test_tls_server_redirecting_to_plain_text_gets_nothing_in_clear(hostile, trust):
    plain = hostile(begin_then())
    configured = hostile(redirect(f"ws://127.0.0.1:{plain.port}/v3/ws"), tls=trust)
    error, took = start_fails(session(configured.url, []), 5)
    assert took < 3.0 and "redirect" in error.message
    assert_plain(error.message)
    assert plain.connections == 0 and not plain.saw(KEY)


@pytest.mark.parametrize("mint,path", [(tokens.mint_v3_token, "/v3/token"),
                                       (tokens.mint_v2_token, "/v2/realtime/token")])
@pytest.mark.parametrize("status", [302, 307])
def test_token_request_redirect_is_refused(hostile, mint, path, status):
    other = hostile(token_ok)
    configured = hostile(redirect(other.url + path, status))
    t0 = time.monotonic()
    with pytest.raises(SessionError) as info:
        mint(configured.url, Secret(KEY), timeout=5)
    assert time.monotonic() - t0 < 2.0
    error = info.value.error
    assert error.recovery is Recovery.STOP and "redirect" in error.message
    assert_plain(error.message)
    assert configured.saw(KEY) and other.connections == 0


def test_token_request_over_tls_redirected_to_http_is_refused(hostile, trust):
    plain = hostile(token_ok)
    configured = hostile(redirect(plain.url + "/v3/token"), tls=trust)
    with pytest.raises(SessionError) as info:
        tokens.mint_v3_token(configured.url, Secret(KEY), timeout=5)
    assert "redirect" in info.value.error.message
    assert plain.connections == 0


def test_broker_does_not_follow_a_redirect_to_another_scheme(hostile):
    ftp = hostile(token_ok)
    broker = hostile(redirect(f"ftp://127.0.0.1:{ftp.port}/token"))
    with pytest.raises(SessionError) as info:
        tokens.fetch_broker_token(broker.url + "/token", timeout=5)
    error = info.value.error
    assert "ftp://" in error.message and error.recovery is Recovery.STOP
    assert_plain(error.message)
    assert ftp.connections == 0


def test_broker_does_not_follow_https_to_http(hostile, trust):
    plain = hostile(token_ok)
    broker = hostile(redirect(plain.url + "/token"), tls=trust)
    with pytest.raises(SessionError) as info:
        tokens.fetch_broker_token(broker.url + "/token", timeout=5)
    assert "http://" in info.value.error.message
    assert plain.connections == 0


def test_broker_follows_a_same_scheme_redirect(hostile):
    moved = hostile(token_ok)
    broker = hostile(redirect(moved.url + "/new-token"))
    assert tokens.fetch_broker_token(broker.url + "/token", timeout=5) == "tok-123"


def test_broker_redirect_to_userinfo_is_not_followed(hostile):
    moved = hostile(token_ok)
    broker = hostile(redirect(f"http://user:pw@127.0.0.1:{moved.port}/token"))
    with pytest.raises(SessionError) as info:
        tokens.fetch_broker_token(broker.url + "/token", timeout=5)
    assert "pw" not in info.value.error.message and moved.connections == 0


# ---- 2: frame and header caps -------------------------------------------------------------------
def test_a_4_gib_frame_after_begin_ends_the_session_with_bounded_memory(hostile):
    def huge(conn):
        conn.send(ws_header(4 << 30, opcode=2))
        stream_forever(conn)
    server = hostile(begin_then(huge))
    events = []
    s = session(server.url, events)
    with MemoryWatch() as memory:
        s.start(5)
        error = wait_for(events, StreamError, 5)
    s.stop(0.2)
    assert error is not None, "the client kept reading the frame"
    assert "4,096 MiB" in error.message and "limit" in error.message
    assert_plain(error.message)
    assert memory.growth_mb < MEMORY_LIMIT_MB


def test_endless_fragments_are_capped_at_the_message_limit(hostile):
    def fragments(conn):
        piece = b"a" * 65536
        conn.send(ws_header(len(piece), opcode=1, fin=False) + piece)
        while not conn.expired() and conn.send(ws_header(len(piece), opcode=0, fin=False) + piece):
            pass
    server = hostile(begin_then(fragments))
    events = []
    s = session(server.url, events)
    with MemoryWatch() as memory:
        s.start(5)
        error = wait_for(events, StreamError, 5)
    s.stop(0.2)
    assert error is not None and "limit" in error.message
    assert memory.growth_mb < MEMORY_LIMIT_MB


def test_fragmented_message_within_the_cap_still_works(hostile):
    def fragmented_turn(conn):
        text = '{"type": "Turn", "turn_order": 0, "transcript": "hello", "end_of_turn": false}'
        conn.send(ws_header(10, opcode=1, fin=False) + text[:10].encode())
        conn.send(ws_header(10, opcode=9) + b"are-you-up")   # a ping between fragments
        conn.send(ws_header(len(text) - 10, opcode=0, fin=True) + text[10:].encode())
    server = hostile(begin_then(fragmented_turn))
    events = []
    s = session(server.url, events)
    s.start(5)
    from app.core.events import Partial
    partial = wait_for(events, Partial, 3)
    s.stop(0.2)
    assert partial is not None and partial.text == "hello"


def test_endless_handshake_headers_are_a_server_fault(hostile):
    server = hostile(endless_headers(b"HTTP/1.1 101 Switching Protocols"))
    with MemoryWatch() as memory:
        error, took = start_fails(session(server.url, []), 10)
    assert took < 3.0 and "oversized handshake" in error.message
    assert_plain(error.message)
    assert memory.growth_mb < MEMORY_LIMIT_MB


def test_endless_token_headers_end_with_a_fixed_message(hostile):
    server = hostile(endless_headers(b"HTTP/1.1 200 OK"))
    t0 = time.monotonic()
    with MemoryWatch() as memory, pytest.raises(SessionError) as info:
        tokens.mint_v3_token(server.url, Secret(KEY), timeout=5)
    assert time.monotonic() - t0 < 3.0
    assert "not valid HTTP" in info.value.error.message
    assert_plain(info.value.error.message)
    assert memory.growth_mb < MEMORY_LIMIT_MB


def test_an_endless_token_body_is_read_only_up_to_the_cap(hostile):
    def endless_body(conn):
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n")
        stream_forever(conn, b"{" * 65536)
    server = hostile(endless_body)
    with MemoryWatch() as memory, pytest.raises(SessionError) as info:
        tokens.mint_v3_token(server.url, Secret(KEY), timeout=5)
    assert "without a token" in info.value.error.message
    assert memory.growth_mb < MEMORY_LIMIT_MB


# ---- 3: one deadline, and Stop always works -------------------------------------------------------
def test_slow_handshake_is_bounded_by_the_overall_deadline(hostile):
    server = hostile(slow(b"HTTP/1.1 101 Switching Protocols\r\n"))
    error, took = start_fails(session(server.url, []), 1.0)
    assert took < 2.0 and "timed out" in error.message
    assert error.recovery is Recovery.RECONNECT
    assert_plain(error.message)


def test_slow_token_service_is_bounded_by_the_overall_deadline(hostile):
    server = hostile(slow(b"HTTP/1.1 200 OK\r\nX-A: b\r\n"))
    t0 = time.monotonic()
    with pytest.raises(SessionError) as info:
        tokens.mint_v3_token(server.url, Secret(KEY), timeout=1.0)
    assert time.monotonic() - t0 < 2.0
    assert "timed out" in info.value.error.message


@pytest.mark.parametrize("what", ["handshake", "token"])
def test_cancel_ends_a_slow_start_within_a_second(hostile, what):
    server = hostile(slow(b"HTTP/1.1 101 Switching Protocols\r\n" if what == "handshake"
                          else b"HTTP/1.1 200 OK\r\n"))
    config = SessionConfig(server_url=server.url, auth_mode="token" if what == "token" else "key")
    from app.core.streaming.auth import TokenAuth
    auth = TokenAuth(Secret(KEY)) if what == "token" else KeyAuth(Secret(KEY))
    s = V3Session(config, [].append, auth=auth)
    outcome = {}

    def run():
        try:
            s.start(30)
        except SessionError as exc:
            outcome["error"] = exc.error
        outcome["at"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.8)
    cancelled_at = time.monotonic()
    s.stop(5)
    assert time.monotonic() - cancelled_at < 1.0       # stop() itself does not wait
    t.join(3)
    assert not t.is_alive()
    assert outcome["at"] - cancelled_at < 1.0
    assert outcome["error"].message.startswith("Stopped")


def test_deadline_cancel_interrupts_a_slow_broker(hostile):
    server = hostile(slow(b"HTTP/1.1 200 OK\r\n"))
    deadline = Deadline(30)
    threading.Timer(0.5, deadline.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        tokens.fetch_broker_token(server.url + "/token", timeout=30, deadline=deadline)
    assert time.monotonic() - t0 < 1.5


# ---- 4: keys with line breaks never reach the wire or the messages ------------------------------
@pytest.mark.parametrize("bad", ["abc\r\nX-Evil: 1", "abc\ndef", "abc def", "abc\x00def"])
@pytest.mark.parametrize("how", ["v3", "v2", "websocket"])
def test_a_key_with_control_characters_is_refused_before_sending(hostile, bad, how):
    server = hostile(begin_then() if how == "websocket" else token_ok)
    if how == "websocket":
        error, _ = start_fails(session(server.url, [], key=bad), 5)
    else:
        mint = tokens.mint_v3_token if how == "v3" else tokens.mint_v2_token
        with pytest.raises(SessionError) as info:
            mint(server.url, Secret(bad), timeout=5)
        error = info.value.error
    assert error.recovery is Recovery.STOP
    assert bad not in error.message and "abc" not in error.message
    assert error.message.isprintable()
    assert server.connections == 0


# ---- 7: numbers and nesting after parsing ---------------------------------------------------------
@pytest.mark.parametrize("expires", ["1" + "0" * 400, "1e400", "-5", "99999999999999999"])
def test_begin_with_an_absurd_expiry_still_starts_the_session(hostile, expires):
    server = hostile(begin_then(begin='{"type": "Begin", "id": "s1", "expires_at": %s}' % expires))
    events = []
    s = session(server.url, events)
    t0 = time.monotonic()
    s.start(5)
    assert time.monotonic() - t0 < 2.0
    started = [e for e in events if isinstance(e, SessionStarted)]
    assert started and started[0].expires_at is None
    s.stop(0.2)


def test_deeply_nested_broker_answer_is_a_plain_error(hostile):
    server = hostile(lambda conn: conn.http(200, "[" * 60000 + "]" * 60000))
    with pytest.raises(SessionError) as info:
        tokens.fetch_broker_token(server.url + "/token", timeout=5)
    assert "without a token" in info.value.error.message


def test_deeply_nested_server_message_is_ignored(hostile):
    def deep(conn):
        conn.ws_text('{"type": "Turn", "transcript": ' + "[" * 100000 + "]" * 100000 + "}")
        conn.ws_text({"type": "Turn", "turn_order": 0, "transcript": "still here",
                      "end_of_turn": False})
    server = hostile(begin_then(deep))
    events = []
    s = session(server.url, events)
    s.start(5)
    from app.core.events import Partial
    partial = wait_for(events, Partial, 3)
    s.stop(0.2)
    assert partial is not None and partial.text == "still here"


def test_message_cap_constant_is_a_few_mib():
    assert 1 << 20 <= MAX_MESSAGE_BYTES <= 16 << 20


def test_a_dribbling_tls_handshake_is_bounded_too(hostile, tls_cert, trust):
    # The TCP connection opens, then the "server" sends TLS bytes one at a time: each read is
    # quick, only the overall deadline ends it.
    server = hostile(slow(b"\x16\x03\x01\x00\xff" + b"\x00" * 300, interval=0.2))
    error, took = start_fails(session(server.url.replace("http://", "https://"), []), 1.0)
    assert took < 2.0 and "timed out" in error.message


def test_connection_check_is_bounded_by_one_deadline(hostile):
    from app.core.streaming.check import check_connection
    server = hostile(slow(b"HTTP/1.1 200 OK\r\nX-A: b\r\n"))
    t0 = time.monotonic()
    error = check_connection(SessionConfig(server_url=server.url), Secret(KEY), timeout=1.0)
    assert time.monotonic() - t0 < 2.0
    assert error is not None and "timed out" in error.message
    assert_plain(error.message)


@pytest.mark.parametrize("phase", ["first connect", "reconnect"])
def test_pipeline_stop_is_prompt_while_a_slow_server_holds_the_connect(hostile, phase):
    """Stop / Ctrl+C reach a connection attempt in progress: nothing waits out the server."""
    from app.core.pipeline import CaptionPipeline
    from tests.core.test_pipeline import FakeSource

    state = {"n": 0}

    def behave(conn):
        state["n"] += 1
        if phase == "reconnect" and state["n"] == 1:   # one good session that then drops
            begin_then(hold=0.3)(conn)
            return
        slow(b"HTTP/1.1 101 Switching Protocols\r\n")(conn)

    server = hostile(behave)
    outputs = []
    pipeline = CaptionPipeline(
        FakeSource(n=10 ** 6, pace=0.01),
        lambda listener: V3Session(SessionConfig(server_url=server.url), listener,
                                   auth=KeyAuth(Secret(KEY))),
        outputs.append, connect_timeout_s=30)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    want = 2 if phase == "reconnect" else 1
    end = time.monotonic() + 10
    while server.connections < want and time.monotonic() < end:
        time.sleep(0.02)
    assert server.connections >= want
    time.sleep(0.5)                      # blocked on the dribbling handshake now
    t0 = time.monotonic()
    pipeline.stop()
    runner.join(5)
    assert not runner.is_alive() and time.monotonic() - t0 < 1.5
    assert pipeline.fatal_error is None
    assert not any(isinstance(e, StreamError) and "Stopped" in e.message for e in outputs)


# ---- an HTTP proxy from the environment (as the token requests already honour) ----------------
def _inside_tunnel(conn):
    conn.accept_websocket()
    conn.ws_text({"type": "Begin", "id": "via-proxy"})
    conn.drain(2.0)


connect_proxy = tunnel_then(_inside_tunnel)


def test_websocket_goes_through_the_environment_proxy(hostile, monkeypatch):
    proxy = hostile(connect_proxy)
    monkeypatch.setenv("http_proxy", f"http://bob:pr0xy-pw@127.0.0.1:{proxy.port}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    events = []
    s = V3Session(SessionConfig(server_url="http://stt.example.invalid:8080", allow_insecure=True),
                  events.append, auth=KeyAuth(Secret(KEY)))
    s.start(5)
    s.stop(0.2)
    assert proxy.tunnels == ["CONNECT stt.example.invalid:8080 HTTP/1.1"]
    assert b"Proxy-Authorization: Basic Ym9iOnByMHh5LXB3" in proxy.received
    assert [e.session_id for e in events if isinstance(e, SessionStarted)] == ["via-proxy"]


def test_a_refusing_proxy_is_a_plain_error_without_its_password(hostile, monkeypatch):
    proxy = hostile(lambda conn: conn.http(407, "no"))
    monkeypatch.setenv("https_proxy", f"http://bob:pr0xy-pw@127.0.0.1:{proxy.port}")
    error, took = start_fails(V3Session(SessionConfig(server_url="https://stt.example.invalid"),
                                        [].append, auth=KeyAuth(Secret(KEY))), 5)
    assert took < 2.0 and "proxy" in error.message and "407" in error.message
    assert "pr0xy-pw" not in error.message and "bob" not in error.message
    assert_plain(error.message)
    assert not proxy.saw(KEY)                   # the key only ever travels inside the tunnel


def test_loopback_servers_never_go_through_a_proxy(hostile, monkeypatch):
    proxy = hostile(connect_proxy)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
    server = hostile(begin_then())
    s = session(server.url, [])
    s.start(5)
    s.stop(0.2)
    assert proxy.connections == 0


# ---- a resolver that never answers --------------------------------------------------------------
@pytest.fixture
def hanging_dns(monkeypatch):
    import socket as _socket
    real = _socket.getaddrinfo
    release = threading.Event()

    def getaddrinfo(host, *args, **kwargs):
        if host == "stt.example.invalid":
            release.wait(10)                 # a resolver that does not answer
            raise _socket.gaierror("no answer")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(_socket, "getaddrinfo", getaddrinfo)
    yield
    release.set()


@pytest.mark.parametrize("auth", ["key", "token"])
def test_a_hanging_name_lookup_is_bounded_by_the_deadline(hanging_dns, auth):
    from app.core.streaming.auth import TokenAuth
    config = SessionConfig(server_url="https://stt.example.invalid", auth_mode=auth)
    provider = TokenAuth(Secret(KEY)) if auth == "token" else KeyAuth(Secret(KEY))
    error, took = start_fails(V3Session(config, [].append, auth=provider), 1.0)
    assert took < 1.6 and "timed out" in error.message
    assert_plain(error.message)


@pytest.mark.parametrize("auth", ["key", "token"])
def test_stop_during_a_hanging_name_lookup_is_prompt(hanging_dns, auth):
    from app.core.streaming.auth import TokenAuth
    config = SessionConfig(server_url="https://stt.example.invalid", auth_mode=auth)
    provider = TokenAuth(Secret(KEY)) if auth == "token" else KeyAuth(Secret(KEY))
    s = V3Session(config, [].append, auth=provider)
    outcome = {}

    def run():
        try:
            s.start(30)
        except SessionError as exc:
            outcome["error"] = exc.error
        outcome["at"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.4)
    stopped = time.monotonic()
    s.stop(5)
    t.join(3)
    assert not t.is_alive() and outcome["at"] - stopped < 0.5
    assert outcome["error"].message.startswith("Stopped")


# ---- the legacy v2 client shares the same transport and rules --------------------------------------
def v2_session(url: str, events: list):
    from app.core.streaming.v2 import V2Session
    return V2Session(SessionConfig(protocol="v2", server_url=url), events.append,
                     auth=KeyAuth(Secret(KEY)))


def test_v2_redirect_is_refused_and_the_key_stays_put(hostile):
    other = hostile(begin_then(begin={"message_type": "SessionBegins", "session_id": "x"}))
    configured = hostile(redirect(f"ws://127.0.0.1:{other.port}/v2/realtime/ws", 307))
    with pytest.raises(SessionError) as info:
        v2_session(configured.url, []).start(5)
    assert "redirect" in info.value.error.message and other.connections == 0


def test_v2_huge_frame_and_absurd_expiry(hostile):
    def huge(conn):
        conn.send(ws_header(1 << 40, opcode=1))
        stream_forever(conn)
    server = hostile(begin_then(huge, begin={"message_type": "SessionBegins", "session_id": "x",
                                             "expires_at": "99999-01-01T00:00:00"}))
    events = []
    s = v2_session(server.url, events)
    s.start(5)
    error = wait_for(events, StreamError, 5)
    s.stop(0.2)
    assert [e.expires_at for e in events if isinstance(e, SessionStarted)] == [None]
    assert error is not None and "limit" in error.message
