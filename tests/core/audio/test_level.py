"""Level meter values, how often it measures, overflow count and the silent-device hint."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.core.audio.level import FLOOR_DBFS, SILENT_HINT_AFTER_S, Level, LevelMeter, is_zero, to_dbfs


def _pcm(x) -> bytes:
    return np.asarray(x, dtype="<i2").tobytes()


def _sine(amp, n=1600, rate=16000, freq=1000):
    return np.rint(amp * np.sin(2 * np.pi * freq * np.arange(n) / rate))


def test_full_scale_sine_reads_minus_3_dbfs_rms():
    m = LevelMeter(16000)
    m.update(_pcm(_sine(32767)))
    assert m.snapshot().rms_dbfs == pytest.approx(-3.01, abs=0.05)


def test_half_scale_is_6_db_lower():
    m = LevelMeter(16000)
    m.update(_pcm(_sine(16384)))
    assert m.snapshot().rms_dbfs == pytest.approx(-9.03, abs=0.05)


def test_silence_reads_the_floor():
    m = LevelMeter(16000)
    m.update(_pcm(np.zeros(1600)))
    assert m.snapshot().rms_dbfs == FLOOR_DBFS
    assert to_dbfs(0) == FLOOR_DBFS


def test_after_the_first_sound_the_chunks_of_one_display_interval_are_measured_together():
    m = LevelMeter(16000)                                  # told at most every 0.2 s
    m.update(_pcm(_sine(3000)))                            # the first sound: measured at once
    first = m.snapshot().rms_dbfs
    m.update(_pcm(_sine(30000)))                           # 100 ms later: waits for its window
    assert m.snapshot().rms_dbfs == first
    m.update(_pcm(np.zeros(1600)))                         # 200 ms: the window, all of its audio
    assert m.snapshot().rms_dbfs == pytest.approx(to_dbfs(30000 / 2), abs=0.05)
    m.on_change(lambda: None, interval_s=0.0)              # a display told of every chunk
    m.update(_pcm(_sine(300)))
    assert m.snapshot().rms_dbfs == pytest.approx(to_dbfs(300 / np.sqrt(2)), abs=0.1)


def test_until_the_first_sound_every_chunk_is_measured():
    m = LevelMeter(16000)
    for _ in range(5):
        m.update(_pcm(np.zeros(1600)))
    assert m.snapshot().silent_s == pytest.approx(0.5)
    m.update(_pcm([0] * 1599 + [3]))                       # one sample above dither is sound
    lv = m.snapshot()
    assert lv.ever_sound and lv.silent_s == 0


def test_overflows_are_counted():
    m = LevelMeter()
    m.count_overflow()
    m.count_overflow(2)
    assert m.snapshot().overflows == 3


def test_silent_hint_after_several_seconds_of_digital_silence():
    m = LevelMeter(16000)
    for _ in range(int(SILENT_HINT_AFTER_S * 10) - 1):       # 100 ms chunks, just under the limit
        m.update(_pcm(np.zeros(1600)))
    lv = m.snapshot()
    assert not lv.silent and lv.hint is None
    m.update(_pcm(np.zeros(1600)))
    lv = m.snapshot()
    assert lv.silent and lv.silent_s == pytest.approx(SILENT_HINT_AFTER_S)
    assert "silent" in lv.hint and "muted" in lv.hint
    assert lv.short_hint == "no sound from the microphone yet: muted?"


def test_dither_counts_as_silence_but_speech_resets_it():
    m = LevelMeter(16000)
    rng = np.random.default_rng(0)
    for _ in range(60):
        m.update(_pcm(rng.integers(-2, 3, 1600)))
    assert m.snapshot().silent
    m.update(_pcm(_sine(3000)))
    assert m.snapshot().silent_s == 0 and not m.snapshot().silent


def test_a_quiet_device_is_not_a_dead_one():
    """After speech stops (or the far side of a call goes quiet) the silence is normal: no hint."""
    m = LevelMeter(16000, source="mic")
    m.update(_pcm(_sine(3000)))
    for _ in range(int(SILENT_HINT_AFTER_S * 10) * 4):      # 20 s of digital silence after speech
        m.update(_pcm(np.zeros(1600)))
    lv = m.snapshot()
    assert lv.silent_s >= 19.9 and lv.ever_sound           # (the last chunk waits for its window)
    assert not lv.silent and lv.hint is None and lv.short_hint == ""
    m.reset_silence()                                       # another device opened: it must prove itself
    for _ in range(int(SILENT_HINT_AFTER_S * 10)):
        m.update(_pcm(np.zeros(1600)))
    assert m.snapshot().silent


def test_reset_silence_when_a_new_device_opens():
    m = LevelMeter(16000)
    for _ in range(60):
        m.update(_pcm(np.zeros(1600)))
    m.reset_silence()
    assert m.snapshot().silent_s == 0


def test_empty_chunk_changes_nothing():
    m = LevelMeter()
    m.update(_pcm(_sine(1000)))
    before = m.snapshot()
    m.update(b"")
    assert m.snapshot().rms_dbfs == before.rms_dbfs


def test_concurrent_update_and_snapshot():
    m = LevelMeter()
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            try:
                assert isinstance(m.snapshot(), Level)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(2000):
        m.update(_pcm(_sine(5000, n=160)))
    stop.set()
    t.join()
    assert not errors


def test_system_audio_silence_is_explained_differently():
    from app.core.audio.level import SYSTEM_HINT_AFTER_S
    m = LevelMeter(16000, source="system")
    for _ in range(int(SILENT_HINT_AFTER_S * 10)):
        m.update(_pcm(np.zeros(1600)))
    assert m.snapshot().hint is None           # an idle output is normal for a while
    for _ in range(int((SYSTEM_HINT_AFTER_S - SILENT_HINT_AFTER_S) * 10)):
        m.update(_pcm(np.zeros(1600)))
    lv = m.snapshot()
    assert "nothing is playing yet" in lv.hint and "check the device" not in lv.hint
    assert lv.short_hint == "nothing heard from system audio yet"


def test_source_level_carries_its_label(tmp_path):
    from app.core.audio.source import WavFileSource
    src = WavFileSource(tmp_path / "x.wav", 16000, 100)
    src.label = "system"
    assert src.level.snapshot().source == "system"


# ---- telling the display only when it moves -------------------------------------------------

class _Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _watched(source="mic"):
    m = LevelMeter(16000, source=source)
    clock, told = _Clock(), []
    m.on_change(lambda: told.append(clock.t), clock=clock)
    return m, clock, told


def _feed(m, clock, chunk, n, step_s=0.1):
    for _ in range(n):
        m.update(chunk)
        clock.t += step_s


def test_a_quiet_open_microphone_is_told_once_then_never():
    m, clock, told = _watched()
    _feed(m, clock, _pcm(np.zeros(1600)), 40)        # 4 s of digital silence (no hint yet)
    assert len(told) == 1
    room = _pcm(_sine(30, freq=300))                  # about -63 dBFS: room noise, bar empty
    _feed(m, clock, room, 40)
    assert len(told) == 1


def test_noise_at_the_edge_of_a_step_does_not_flicker_the_bar():
    m, clock, told = _watched()
    # -55 dBFS is 1.0 steps of 12, -55.6 is 0.88: alternating costs no report (hysteresis).
    a = _pcm(_sine(32768 * 10 ** (-55 / 20) * 2 ** 0.5))
    b = _pcm(_sine(32768 * 10 ** (-55.6 / 20) * 2 ** 0.5))
    for _ in range(20):
        _feed(m, clock, a, 1)
        _feed(m, clock, b, 1)
    assert len(told) == 1


def test_speech_moves_the_bar_at_most_five_times_a_second_and_the_last_move_is_told():
    m, clock, told = _watched()
    loud, quiet = _pcm(_sine(20000)), _pcm(np.zeros(1600))
    for i in range(60):                               # the level jumps every 300 ms
        _feed(m, clock, loud if (i // 3) % 2 else quiet, 1)
    gaps = np.diff(told)
    assert len(told) >= 10 and gaps.min() >= 0.2 - 1e-9
    _feed(m, clock, quiet, 3)                         # it stays quiet: that is told too
    assert m.snapshot().rms_dbfs == FLOOR_DBFS and told[-1] > 100.0 + 2.9


def test_the_silent_device_hint_is_told_when_it_starts_and_then_every_ten_seconds():
    m, clock, told = _watched()
    silence = _pcm(np.zeros(1600))
    _feed(m, clock, silence, int(SILENT_HINT_AFTER_S * 10) - 1)
    assert len(told) == 1                             # not yet
    _feed(m, clock, silence, 2)
    assert len(told) == 2 and m.snapshot().silent     # the hint appears
    _feed(m, clock, silence, 90)
    assert len(told) == 2
    _feed(m, clock, silence, 10)
    assert len(told) == 2 + 1                         # its "silent for N s" retold after 10 s
    _feed(m, clock, _pcm(_sine(8000)), 2)             # sound: the hint goes (a chunk later)
    assert len(told) == 4 and not m.snapshot().silent


def test_a_meter_nobody_watches_calls_nothing_and_watching_can_stop():
    m, clock, told = _watched()
    m.on_change(None)
    _feed(m, clock, _pcm(_sine(20000)), 5)
    assert told == []


def test_exact_zeros_are_known_without_arithmetic():
    assert is_zero(bytes(3200)) and is_zero(bytearray(3200)) and is_zero(b"")
    one_sample = bytearray(3200)
    one_sample[3198] = 1                                      # the last sample is 1 LSB
    assert not is_zero(bytes(one_sample))
    assert all(is_zero(bytes(n)) for n in range(1, 40))       # many lengths: the cache stays small
    meter = LevelMeter(16000)
    meter.update(bytes(3200))
    meter.update(bytes(one_sample))                           # one LSB: still digital silence
    level = meter.snapshot()
    assert level.rms_dbfs < -90
    assert not level.ever_sound and level.silent_s == pytest.approx(0.2)
