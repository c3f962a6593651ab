"""Live audio sent on the capture thread only when that cannot wait on the network."""

from __future__ import annotations

import socket
import threading
import time

from app.core.events import Recovery, StreamError
from app.core.streaming.transport import TransportClosed, WebSocketTransport, _has_room
from tests.core.streaming.fakes import FakeTransport
from tests.core.streaming.test_clients import assert_terminal_last, make

FRAME = b"\x01\x00" * 1600          # 100 ms at 16 kHz


class RoomyTransport(FakeTransport):
    """A socket with room unless the test says otherwise; records who sent each frame."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.room = True
        self.senders = []
        self.hold = threading.Event()      # set: a queued send blocks (a slow network)
        self.release = threading.Event()

    def try_send_binary(self, data):
        if self.closed.is_set():
            raise TransportClosed("connection reset")
        if not self.room:
            return False
        self.senders.append(threading.current_thread())
        self.send_binary(data)
        return True

    def send_text(self, text):
        if self.hold.is_set():
            self.release.wait(5)
        super().send_text(text)


def test_live_frames_leave_on_the_capture_thread_when_the_socket_has_room():
    t = RoomyTransport()
    session, t, rec = make(transport=t, chunk_ms=100)
    session.start(timeout=5)
    for _ in range(3):
        session.send_audio(FRAME)
        time.sleep(0.1)
    assert len(t.frames()) == 3 and t.senders == [threading.current_thread()] * 3
    session.stop(timeout=5)
    assert_terminal_last(rec)


def test_no_room_means_queued_and_the_sender_thread_sends_it():
    t = RoomyTransport()
    session, t, rec = make(transport=t, chunk_ms=100)
    session.start(timeout=5)
    t.room = False
    began = time.monotonic()
    session.send_audio(FRAME)
    assert time.monotonic() - began < 0.05           # the capture thread never waits
    assert t.wait_for(lambda: len(t.frames()) == 1) and t.senders == []
    session.stop(timeout=5)


def test_a_frame_never_overtakes_a_control_message_still_queued():
    t = RoomyTransport()
    session, t, rec = make(transport=t, chunk_ms=100)
    session.start(timeout=5)
    t.hold.set()                                      # the next text send is slow
    session.force_end()                               # queued; the sender is stuck sending it
    time.sleep(0.05)
    session.send_audio(FRAME)                         # must wait its turn, in the queue
    session.send_audio(FRAME)
    assert t.frames() == [] and t.senders == []
    t.release.set()
    assert t.wait_for(lambda: len(t.frames()) == 2)
    kinds = [(k, d if k == "text" else None) for k, d, _ in t.sent]
    assert kinds[0][0] == "text" and "ForceEndpoint" in kinds[0][1]
    assert [k for k, _ in kinds[1:3]] == ["binary", "binary"]
    session.stop(timeout=5)


def test_live_audio_is_not_sent_ahead_of_real_time_either():
    t = RoomyTransport()
    session, t, rec = make(transport=t, chunk_ms=100)
    session.start(timeout=5)
    session.send_audio(FRAME * 5)                     # a burst after a stall: 500 ms at once
    sent_now = len(t.senders)
    assert sent_now <= 2                              # one frame of slack; the rest is paced
    assert t.wait_for(lambda: len(t.frames()) == 5, timeout=3)
    times = [ts for k, _, ts in t.sent if k == "binary"]
    assert times[-1] - times[0] >= 0.3 - 0.01
    session.stop(timeout=5)


def test_the_connection_gone_under_the_capture_thread_is_one_reconnectable_error():
    t = RoomyTransport()
    session, t, rec = make(transport=t, chunk_ms=100)
    session.start(timeout=5)
    t.closed.set()
    session.send_audio(FRAME)
    assert rec.wait_for(lambda: rec.of(StreamError))
    assert [e.recovery for e in rec.of(StreamError)] == [Recovery.RECONNECT]
    session.stop(timeout=1)
    assert_terminal_last(rec)


def test_room_is_reported_only_while_a_send_cannot_block():
    """A peer that stops reading: every send made while ``_has_room`` said yes completes at
    once on a non-blocking socket, and the answer turns to no long before the buffer is full."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    frame = b"x" * 3214
    sends = 0
    try:
        while _has_room(client, len(frame)):
            assert client.send(frame) == len(frame)   # whole, without waiting
            sends += 1
            assert sends < 10_000
            time.sleep(0.001)
        assert sends >= 1
        assert client.send(frame) == len(frame)       # margin left even at "no room"
    finally:
        for s in (client, peer, server):
            s.close()


def test_the_transport_refuses_to_send_now_while_another_send_is_under_way():
    t = WebSocketTransport()
    a, b = socket.socketpair()
    try:
        t._sock, t.connected = a, True
        assert t.try_send_binary(b"\x00" * 100) is True
        with t._send_lock:                            # the sender thread is mid-send
            assert t.try_send_binary(b"\x00" * 100) is False
        t._closed = True
        try:
            t.try_send_binary(b"\x00")
            raise AssertionError("a closed transport must say so")
        except TransportClosed:
            pass
    finally:
        a.close()
        b.close()


def test_speech_after_a_long_silence_is_noticed_by_the_stall_check():
    # Loudness is measured on one frame per LOUD_CHECK_MS of audio while nothing loud waits:
    # a few hundred ms of speech are always seen, whatever frame it starts on.
    from app.core.streaming.session import LOUD_CHECK_MS
    loud = (b"\x00\x10" * 1600)                        # 4096: about -18 dBFS
    frames_per_check = int(LOUD_CHECK_MS // 100)
    for offset in range(frames_per_check):
        t = RoomyTransport()
        session, t, rec = make(transport=t, chunk_ms=100)
        session.start(timeout=5)
        for _ in range(7 + offset):
            session.send_audio(FRAME)
        assert t.wait_for(lambda: len(t.frames()) == 7 + offset)     # paced at real time
        assert session._loud_since is None
        for _ in range(frames_per_check):
            session.send_audio(loud)
        assert t.wait_for(lambda: len(t.frames()) == 7 + offset + frames_per_check)
        assert session._loud_since is not None, offset
        session.stop(timeout=5)


ZEROS = bytes(3200)                 # 100 ms of a muted microphone


def test_a_muted_microphone_is_sent_in_longer_frames_once_any_turn_is_over():
    # v2 with a 0 ms threshold: any turn is over at once, so zeros are held after 1 s (the margin)
    session, t, rec = make("v2", transport=RoomyTransport("v2"), chunk_ms=100, silence_ms=0)
    session.start(timeout=5)
    for _ in range(20):
        session.send_audio(ZEROS)
    session.send_audio(FRAME)                         # speech: what is held goes first, at once
    assert t.wait_for(lambda: len(t.frames()) == 10 + 2 + 1)
    durations = [len(f) / 32 for f in t.frames()]
    assert durations == [100.0] * 10 + [500.0, 500.0] + [100.0]
    assert t.frames()[-1] == FRAME and not any(any(f) for f in t.frames()[:-1])
    session.stop(timeout=5)
    assert_terminal_last(rec)


def test_stop_sends_held_zeros_before_it_ends_and_a_longer_threshold_holds_later():
    session, t, rec = make("v2", transport=RoomyTransport("v2"), chunk_ms=100, silence_ms=0)
    session.start(timeout=5)
    session.set_silence_threshold(500)                # zeros now held after 1.5 s
    for _ in range(17):
        session.send_audio(ZEROS)
    session.stop(timeout=5)
    durations = [len(f) / 32 for f in t.frames()]
    assert durations == [100.0] * 15 + [200.0]
    assert_terminal_last(rec)
