"""Energy-VAD endpointer: utterance boundaries, live threshold changes, force end."""

from tests.loopback.endpointer import Endpointer, UtteranceEnd, UtteranceStart
from tests.loopback.wsclient import tone_speech

RATE = 16000


def feed_all(ep, audio, chunk_ms=100):
    events = []
    step = RATE * chunk_ms // 1000
    for i in range(0, len(audio), step):
        events += ep.feed(audio[i:i + step])
    return events


def test_one_utterance_with_boundaries():
    ep = Endpointer(RATE, 700)
    events = feed_all(ep, tone_speech([("silence", 0.5), ("speech", 1.0), ("silence", 1.0)]))
    assert events[0] == UtteranceStart(500)
    assert isinstance(events[1], UtteranceEnd)
    assert events[1].start_ms == 500 and events[1].end_ms == 1500
    assert len(events) == 2 and not ep.in_utterance


def test_short_pause_below_threshold_does_not_split():
    ep = Endpointer(RATE, 700)
    audio = tone_speech([("speech", 0.5), ("silence", 0.5), ("speech", 0.5), ("silence", 1.0)])
    ends = [e for e in feed_all(ep, audio) if isinstance(e, UtteranceEnd)]
    assert ends == [UtteranceEnd(0, 1500)]


def test_lower_threshold_splits_the_same_audio():
    ep = Endpointer(RATE, 300)
    audio = tone_speech([("speech", 0.5), ("silence", 0.5), ("speech", 0.5), ("silence", 1.0)])
    ends = [e for e in feed_all(ep, audio) if isinstance(e, UtteranceEnd)]
    assert ends == [UtteranceEnd(0, 500), UtteranceEnd(1000, 1500)]


def test_threshold_change_applies_to_the_utterance_in_progress():
    ep = Endpointer(RATE, 2000)
    feed_all(ep, tone_speech([("speech", 0.5), ("silence", 0.4)]))
    assert ep.in_utterance
    ep.silence_ms = 300                      # already 400 ms of silence: ends at the next window
    events = ep.feed(tone_speech([("silence", 0.01)]))
    assert events == [UtteranceEnd(0, 500)]


def test_no_end_until_the_silence_is_long_enough():
    ep = Endpointer(RATE, 1000)
    events = feed_all(ep, tone_speech([("speech", 0.3), ("silence", 0.9)]))
    assert [type(e) for e in events] == [UtteranceStart]
    assert ep.feed(tone_speech([("silence", 0.1)])) == [UtteranceEnd(0, 300)]


def test_force_end_and_zero_threshold():
    ep = Endpointer(RATE, 700)
    feed_all(ep, tone_speech([("speech", 0.4)]))
    assert ep.force_end() == UtteranceEnd(0, 400)
    assert ep.force_end() is None
    ep.silence_ms = 0
    events = feed_all(ep, tone_speech([("speech", 0.2), ("silence", 0.1)]))
    assert events[-1] == UtteranceEnd(400, 600)


def test_clicks_shorter_than_min_speech_are_ignored():
    ep = Endpointer(RATE, 300, min_speech_ms=40)
    events = feed_all(ep, tone_speech([("speech", 0.02), ("silence", 0.5)] * 3), chunk_ms=10)
    assert events == []


def test_quiet_noise_is_not_speech():
    import numpy as np
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(RATE * 2) * 50).astype(np.int16)   # about -56 dBFS
    assert feed_all(Endpointer(RATE, 300), noise) == []
