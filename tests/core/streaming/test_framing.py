"""Every frame within the protocol limits, the last one included; µ-law via numpy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from app.core.audio.convert import mulaw_decode, mulaw_encode
from app.core.session_config import CHUNK_LIMITS_MS
from app.core.streaming.framing import Framer, frame_samples


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
