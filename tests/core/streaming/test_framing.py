"""Every frame within the protocol limits, the last one included; µ-law via numpy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from app.core.audio.convert import mulaw_decode, mulaw_encode
from app.core.session_config import CHUNK_LIMITS_MS
from app.core.streaming.framing import HOLD_MS, Framer, frame_samples


def test_regular_frames_are_chunk_sized():
    f = Framer("v3", 16000, 100, "pcm_s16le")
    frames = f.push(b"\x00\x01" * 16000)
    assert len(frames) == 10 and all(fr.duration_ms == 100 for fr in frames)
    assert f.flush() == []


def test_short_tail_is_padded_with_silence():
    f = Framer("v2", 16000, 100, "pcm_s16le")
    assert f.push(b"\x10\x00" * 800) == []          # 50 ms: held back
    (last,) = f.flush()
    assert last.duration_ms == 100 and last.samples == 1600
    assert last.payload[:1600] == b"\x10\x00" * 800 and last.payload[1600:] == b"\x00" * 1600


def test_odd_rates_never_go_below_the_minimum():
    regular, minimum = frame_samples("v3", 22050, 50)
    assert regular * 1000 / 22050 >= 50 and minimum * 1000 / 22050 >= 50
    regular, minimum = frame_samples("v2", 44100, 2000)
    assert regular * 1000 / 44100 <= 2000


def test_chunk_setting_clamped_to_the_protocol():
    assert frame_samples("v2", 16000, 50)[0] == 1600       # v2 minimum 100 ms
    assert frame_samples("v3", 16000, 2000)[0] == 16000    # v3 maximum 1000 ms


def test_mulaw_encoding_and_loudness():
    pcm = (np.sin(np.arange(1600) / 3) * 12000).astype("<i2")
    f = Framer("v3", 16000, 100, "pcm_mulaw")
    (frame,) = f.push(pcm.tobytes())
    assert frame.payload == mulaw_encode(pcm).tobytes() and len(frame.payload) == 1600
    assert frame.loud
    decoded = mulaw_decode(np.frombuffer(frame.payload, dtype=np.uint8))
    assert np.max(np.abs(decoded.astype(int) - pcm.astype(int))) < 600
    (quiet,) = Framer("v3", 16000, 100, "pcm_s16le").push(b"\x02\x00" * 1600)
    assert not quiet.loud


@settings(max_examples=100, deadline=None)
@given(protocol=st.sampled_from(["v2", "v3"]), rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000]),
       chunk=st.integers(10, 2500), pieces=st.lists(st.integers(0, 9000), max_size=12),
       encoding=st.sampled_from(["pcm_s16le", "pcm_mulaw"]))
def test_any_input_gives_frames_within_limits(protocol, rate, chunk, pieces, encoding):
    lo, hi = CHUNK_LIMITS_MS[protocol]
    f = Framer(protocol, rate, chunk, encoding)
    frames = []
    total = 0
    for n in pieces:
        frames += f.push(b"\x01\x00" * n)
        total += n
    frames += f.flush()
    width = 1 if encoding == "pcm_mulaw" else 2
    for fr in frames:
        assert lo <= fr.duration_ms <= hi
        assert len(fr.payload) == fr.samples * width
    assert sum(fr.samples for fr in frames) >= total
    assert sum(fr.samples for fr in frames) - total < max(1, frame_samples(protocol, rate, chunk)[1])


def test_a_chunk_that_is_one_frame_goes_out_as_the_same_bytes():
    chunk = (np.arange(1600) % 200).astype("<i2").tobytes()
    f = Framer("v3", 16000, 100, "pcm_s16le")
    (frame,) = f.push(chunk)
    assert frame.payload is chunk and frame.samples == 1600 and frame.duration_ms == 100
    # A part chunk first: then frames are cut from the buffer, and still in order.
    assert f.push(chunk[:1000]) == []
    frames = f.push(chunk)
    assert b"".join(fr.payload for fr in frames) + bytes(f._buf) == chunk[:1000] + chunk


# ---- long digital silence leaves in fewer, longer frames -----------------------------------------
ZERO = bytes(3200)                           # 100 ms of exact zeros at 16 kHz
SOUND = b"\x01\x00" * 1600                   # 100 ms that is not


def test_zeros_are_held_only_after_any_turn_is_over():
    f = Framer("v3", 16000, 100, "pcm_s16le", hold_after_ms=1000)
    early = [f.push(ZERO) for _ in range(10)]          # the first second: one frame per chunk
    assert all(len(frames) == 1 and frames[0].duration_ms == 100 for frames in early)
    later = [f.push(ZERO) for _ in range(20)]          # then one 500 ms frame per five chunks
    sent = [fr for frames in later for fr in frames]
    assert [len(frames) for frames in later] == [0, 0, 0, 0, 1] * 4
    assert all(fr.duration_ms == HOLD_MS and fr.payload == bytes(16000) for fr in sent)
    assert not any(fr.loud for fr in sent)


def test_sound_releases_what_is_held_ahead_of_itself_at_once():
    f = Framer("v3", 16000, 100, "pcm_s16le", hold_after_ms=0)
    assert f.push(ZERO) == [] and f.push(ZERO) == []
    held, sound = f.push(SOUND)
    assert held.duration_ms == 200 and held.payload == bytes(6400)
    assert sound.payload == SOUND
    # holding starts over: zeros after sound go one per chunk until hold_after_ms has passed
    f.hold_after_ms = 300
    assert [len(f.push(ZERO)) for _ in range(4)] == [1, 1, 1, 0]
    (held,) = f.flush()
    assert held.duration_ms == 100


def test_a_part_chunk_releases_what_is_held_too():
    f = Framer("v2", 16000, 100, "pcm_s16le", hold_after_ms=0)
    f.push(ZERO)
    f.push(ZERO)
    (held,) = f.push(SOUND[:1000])                     # too short for a frame: buffered
    assert held.duration_ms == 200
    (tail,) = f.flush()
    assert tail.payload[:1000] == SOUND[:1000]


def test_no_holding_where_a_hold_is_not_two_frames():
    f = Framer("v3", 16000, 300, "pcm_s16le", hold_after_ms=0)   # 300 ms frames: 500 holds one
    chunk = bytes(9600)
    assert all(len(f.push(chunk)) == 1 for _ in range(5))


def test_held_frames_are_within_both_protocols_limits_and_mulaw_encoded():
    for protocol in ("v2", "v3"):
        lo, hi = CHUNK_LIMITS_MS[protocol]
        f = Framer(protocol, 16000, 100, "pcm_mulaw", hold_after_ms=0)
        frames = [fr for _ in range(12) for fr in f.push(ZERO)] + f.flush()
        assert all(lo <= fr.duration_ms <= hi for fr in frames)
        assert sum(fr.samples for fr in frames) == 12 * 1600
        assert all(fr.payload == mulaw_encode(np.zeros(fr.samples, dtype="<i2")).tobytes()
                   for fr in frames)


@settings(max_examples=100, deadline=None)
@given(protocol=st.sampled_from(["v2", "v3"]), chunk_ms=st.sampled_from([50, 100, 200]),
       hold_after=st.sampled_from([0, 250, 1000]),
       pieces=st.lists(st.sampled_from(["zero", "sound", "part"]), max_size=40))
def test_holding_keeps_every_sample_in_order(protocol, chunk_ms, hold_after, pieces):
    f = Framer(protocol, 16000, chunk_ms, "pcm_s16le", hold_after_ms=hold_after)
    size = 2 * f.regular
    sent, frames = b"", []
    for i, kind in enumerate(pieces):
        data = bytes(size) if kind == "zero" else \
            (bytes([i % 250 + 1, 0]) * (size // 2))[: size if kind == "sound" else size // 3 * 2]
        sent += data
        frames += f.push(data)
    frames += f.flush()
    lo, hi = CHUNK_LIMITS_MS[protocol]
    assert all(lo <= fr.duration_ms <= hi for fr in frames)
    out = b"".join(fr.payload for fr in frames)
    assert out[: len(sent)] == sent and not out[len(sent):].strip(b"\x00")
