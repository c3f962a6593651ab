"""Fault injection: drops, closes with a code, malformed/unknown messages, stalls, auth rejection."""

import time

import pytest

from tests.loopback.conftest import RATE, audio, terminate


def test_drop_after_ms_aborts_the_tcp_connection(srv, connect):
    srv.inject(drop_after_ms=200)
    c = connect("v2")
    assert c.wait_closed(5)
    assert c.close_code == 1006                       # no close frame: the socket just went away
    assert srv.wait_for(lambda: srv.sessions[0].ended)
    assert srv.sessions[0].closed_by == "drop"
    nxt = connect("v2")                               # one session only (repeat defaults to 1)
    assert nxt.wait(lambda c: c.messages)
    terminate(nxt, "v2")
    assert nxt.close_code == 1000


@pytest.mark.parametrize("protocol,code,reason,error", [
    ("v2", 1013, "Try again later", None),
    ("v2", 4002, "Insufficient Funds", {"error": "Insufficient Funds"}),
    ("v3", 3005, "Session Cancelled: An error occurred",
     {"type": "Error", "error_code": 3005, "error": "Session Cancelled: An error occurred"}),
])
def test_close_after_ms_with_a_code(srv, connect, protocol, code, reason, error):
    srv.inject(close_after_ms=(150, code, reason))
    c = connect(protocol)
    assert c.wait_closed(5)
    assert (c.close_code, c.close_reason) == (code, reason)
    if error:
        assert c.messages[-1] == error
    else:
        assert "error" not in c.messages[-1]
    assert srv.wait_for(lambda: srv.sessions[0].ended)
    assert srv.sessions[0].close_code == code and srv.sessions[0].violations == []


@pytest.mark.parametrize("protocol", ["v2", "v3"])
def test_malformed_and_unknown_messages_then_carry_on(srv, connect, protocol):
    srv.inject(malformed_after_ms=50, unknown_message_after_ms=100)
    srv.set_script(["Still working."])
    c = connect(protocol, {"sample_rate": RATE, "format_turns": "true"} if protocol == "v3" else None)
    assert c.wait(lambda c: len(c.messages) >= 3)
    c.stream(audio([("speech", 0.5), ("silence", 1.0)]), RATE)
    terminate(c, protocol)
    assert any("_raw" in m for m in c.messages)
    kind = "message_type" if protocol == "v2" else "type"
    assert any(m.get(kind) == "LoopbackNovelty" for m in c.messages)
    assert c.finals() == ["Still working."] and c.close_code == 1000


@pytest.mark.parametrize("protocol", ["v2", "v3"])
def test_stall_keeps_the_socket_open_and_silent(loopback_factory, protocol):
    from tests.loopback.wsclient import RawClient
    server = loopback_factory(rate_grace_s=1000, idle_timeout_s=0.3)   # even the idle timeout stalls
    server.inject(stall_after_ms=100)
    c = RawClient(server, protocol, params={"sample_rate": RATE})
    assert c.wait(lambda c: c.messages)
    time.sleep(0.2)
    c.stream(audio([("speech", 0.5), ("silence", 1.0)]), RATE)
    c.send_json({"terminate_session": True} if protocol == "v2" else {"type": "Terminate"})
    assert not c.wait_closed(1.0)                    # no answer, no close
    assert len(c.messages) == 1                      # only the session start
    c.close()
    assert server.wait_for(lambda: server.sessions[0].ended)
    assert server.sessions[0].closed_by == "client"


@pytest.mark.parametrize("protocol,code", [("v2", 4001), ("v3", 1008)])
def test_reject_auth_for_repeat_sessions(srv, connect, protocol, code):
    srv.inject(reject_auth=True, repeat=2)
    for _ in range(2):
        c = connect(protocol)
        assert c.wait_closed(5) and c.close_code == code
    ok = connect(protocol)
    assert ok.wait(lambda c: c.messages)
    terminate(ok, protocol)
    assert [s.auth for s in srv.sessions] == ["", "", "key"]


def test_faults_queue_in_order(srv, connect):
    srv.inject(close_after_ms=(50, 4008, "Session Expired"))
    srv.inject(drop_after_ms=50)
    first, second = connect("v2"), None
    assert first.wait_closed(5) and first.close_code == 4008
    second = connect("v2")
    assert second.wait_closed(5) and second.close_code == 1006


def test_dropped_session_gives_its_script_line_to_the_next(srv, connect):
    srv.set_script(["First line.", "Second line."])
    srv.inject(drop_after_ms=300)
    c = connect("v2")
    c.stream(audio([("speech", 0.5)]), RATE)         # utterance in progress when the drop hits
    assert c.wait_closed(5)
    c2 = connect("v2")
    c2.stream(audio([("speech", 0.5), ("silence", 1.0)]), RATE)
    terminate(c2, "v2")
    assert c2.finals() == ["First line."]


def test_unknown_fault_is_an_error(srv):
    with pytest.raises(TypeError):
        srv.inject(explode_after_ms=5)
    with pytest.raises(ValueError):
        srv.inject(drop_after_ms=5, repeat=0)


def test_stalled_server_does_not_answer_pings(srv, connect):
    srv.inject(stall_after_ms=400)
    c = connect("v3")
    c.ws.ping(b"before")
    assert c.wait(lambda c: c.pongs == [b"before"], 5)
    time.sleep(0.6)                                   # the stall has begun
    c.ws.ping(b"after")
    assert not c.wait(lambda c: len(c.pongs) > 1, 1.0)
    c.close()
    assert srv.wait_for(lambda: srv.sessions[0].ended)
