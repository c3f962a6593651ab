"""The silence slider's non-linear scale."""

from app.core import silence
from app.core.silence_scale import STOPS, USEFUL_RANGE_MS, ms_at, position_for, share_of_slider


def test_scale_covers_the_whole_range_in_order():
    assert STOPS[0] == silence.MIN_MS and STOPS[-1] == silence.MAX_MS
    assert list(STOPS) == sorted(set(STOPS))


def test_the_useful_range_gets_a_usable_share_of_the_slider():
    assert share_of_slider(*USEFUL_RANGE_MS) >= 0.3     # was 6 % on the linear 0-20000 slider
    assert share_of_slider(300, 1500) > 5 * (1200 / 20000)


def test_positions_round_trip_and_clamp():
    for ms in (0, 50, 700, 1450, 1500, 2000, 9500, 20000):
        assert ms_at(position_for(ms)) == ms
    assert ms_at(position_for(720)) == 700 and ms_at(position_for(730)) == 750
    assert ms_at(position_for(999999)) == silence.MAX_MS and ms_at(position_for(-5)) == 0
    assert ms_at(10_000) == silence.MAX_MS and ms_at(-1) == 0
