"""Endpointer hysteresis, live threshold, segmenter offsets, length cuts, no audio reused."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.engines.segmenter import Segmenter
from app.core.engines.vad import WINDOW, Endpointer, SileroVad
from tests.core.engines.fakes import EnergyVad, silence, tone

W = WINDOW


def push_all(ep: Endpointer, probs, first=0):
    out = []
    for i, p in enumerate(probs):
        b = ep.push(p, first + i * W)
        if b is not None:
            out.append((b.kind, b.sample))
    return out


def test_start_needs_two_loud_windows_and_is_dated_back():
    ep = Endpointer(silence_ms=100)
    assert push_all(ep, [0.9, 0.1, 0.9, 0.9]) == [("start", 2 * W)]
    assert ep.in_speech


def test_end_after_the_threshold_dated_to_the_last_speech():
    ep = Endpointer(silence_ms=320)              # 10 windows
    events = push_all(ep, [0.9] * 5 + [0.0] * 12)
    assert events == [("start", 0), ("end", 5 * W)]


def test_threshold_change_applies_mid_pause():
    ep = Endpointer(silence_ms=5000)
    assert push_all(ep, [0.9] * 3 + [0.0] * 20) == [("start", 0)]
    ep.set_silence_ms(300)
    assert ep.push(0.0, 23 * W).kind == "end"


def test_zero_threshold_ends_on_the_first_quiet_window_and_dips_above_off_keep_speech():
    ep = Endpointer(silence_ms=0)
    assert push_all(ep, [0.9, 0.9, 0.4, 0.9, 0.1]) == [("start", 0), ("end", 4 * W)]


def test_segmenter_offsets_and_bounded_buffer():
    seg = Segmenter(300, vad=EnergyVad())
    utts = seg.feed(np.concatenate([silence(1.0), tone(1.0), silence(0.5)]))
    assert len(utts) == 1
    u = utts[0]
    assert u.start == pytest.approx(16000, abs=W) and u.end == pytest.approx(32000, abs=W)
    # Pre-roll (300 ms) before, a short tail after: the decoder hears the soft edges.
    assert len(u.audio) == pytest.approx(u.end - u.start + 4800 + 2400, abs=2 * W)
    seg.feed(silence(30.0))
    assert len(seg._buf) <= 4800 + W                       # silence is not hoarded


def test_long_speech_is_cut_at_the_quietest_moment_without_losing_audio():
    seg = Segmenter(300, vad=EnergyVad(), max_utterance_s=4.0)
    dip = silence(0.1)                                       # a breath, far below the threshold
    audio = np.concatenate([silence(0.3), tone(2.5), dip, tone(3.0), silence(0.6)])
    utts = seg.feed(audio)
    assert [u.reason for u in utts] == ["length", "silence"]
    first, second = utts
    assert first.end == pytest.approx(int(2.8 * 16000), abs=3 * W)     # inside the breath
    assert second.start == first.end                         # contiguous, nothing dropped
    assert second.end == pytest.approx(int(5.9 * 16000), abs=2 * W)


def test_force_end_and_flush():
    seg = Segmenter(2000, vad=EnergyVad())
    seg.feed(np.concatenate([silence(0.3), tone(0.7)]))
    assert seg.in_speech
    forced = seg.force_end()
    assert forced.reason == "force" and forced.end == seg.position
    assert seg.force_end() is None
    seg.feed(np.concatenate([tone(0.5)]))
    last = seg.flush()
    assert last.reason == "flush" and last.start >= forced.end
    assert seg.flush() is None


def test_silero_scores_speech_above_silence(speech_wav):
    import wave
    with wave.open(str(speech_wav("Please send the updated slides."))) as w:
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    vad = SileroVad()
    probs = [vad.probability(audio[i:i + W]) for i in range(0, len(audio) - W, W)]
    lead = probs[:5]                                        # 300 ms of leading silence
    assert max(lead) < 0.2 and max(probs) > 0.8
