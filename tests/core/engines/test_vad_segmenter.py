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
    seg = Segmenter(300, vad=EnergyVad(), max_utterance_s=4.0, phrase_after_s=None)
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


def test_a_long_stretch_is_committed_at_its_next_short_pause():
    seg = Segmenter(700, vad=EnergyVad(), phrase_after_s=4.0, phrase_pause_ms=250)
    breath = silence(0.3)                                    # shorter than the 700 ms threshold
    audio = np.concatenate([silence(0.3), tone(2.0), breath, tone(2.5), breath, tone(1.5),
                            silence(1.0)])
    utts = seg.feed(audio)
    # The first breath comes after only 2 s of speech: it stays inside the phrase. The second
    # comes after 4.8 s: the phrase ends there, ~250 ms into the pause, not 700 ms.
    assert [u.reason for u in utts] == ["pause", "silence"]
    first, second = utts
    assert first.start == pytest.approx(int(0.3 * 16000), abs=2 * W)
    assert first.end == pytest.approx(int(5.1 * 16000), abs=2 * W)
    assert second.start == pytest.approx(int(5.4 * 16000), abs=3 * W)
    assert second.end == pytest.approx(int(6.9 * 16000), abs=2 * W)
    assert second.start >= first.end                         # no audio decoded twice


def test_phrase_commits_follow_the_speculative_decode_and_respect_a_short_threshold():
    seg = Segmenter(700, vad=EnergyVad(), phrase_after_s=4.0, phrase_pause_ms=250)
    seg.feed(np.concatenate([silence(0.3), tone(4.5), silence(0.2)]))
    spec = seg.speculative()                                # decoded while the pause runs
    assert spec is not None and seg.phrase_pause_pending()
    (cut,) = seg.feed(silence(0.1))
    assert cut.reason == "pause"
    # The committed phrase is exactly what was decoded early, so that decode is reused.
    assert (cut.start, cut.end, len(cut.audio)) == (spec.start, spec.end, len(spec.audio))
    # A threshold at or below the phrase pause: the threshold alone decides.
    short = Segmenter(200, vad=EnergyVad(), phrase_after_s=4.0, phrase_pause_ms=250)
    utts = short.feed(np.concatenate([silence(0.3), tone(4.5), silence(0.4)]))
    assert [u.reason for u in utts] == ["silence"] and not short.phrase_pause_pending()
    # Switched off: only the threshold ends the utterance.
    off = Segmenter(700, vad=EnergyVad(), phrase_after_s=None)
    assert off.feed(np.concatenate([silence(0.3), tone(4.5), silence(0.4)])) == []
