"""The silence threshold mapped onto v2 and v3 parameters."""

import pytest

from app.core import silence


def test_v2_is_the_value_itself():
    assert silence.params_for("v2", 700) == {"end_utterance_silence_threshold": 700}


@pytest.mark.parametrize("ms, expected_max", [(0, 1280), (400, 1280), (1280, 1280), (1281, 1281),
                                              (20000, 20000)])
def test_v3_min_is_value_max_is_at_least_1280(ms, expected_max):
    assert silence.params_for("v3", ms) == {"min_turn_silence": ms, "max_turn_silence": expected_max}


def test_range_is_clamped():
    assert silence.v2_params(-5) == {"end_utterance_silence_threshold": 0}
    assert silence.v2_params(25000) == {"end_utterance_silence_threshold": 20000}
    assert silence.v3_params(99999)["min_turn_silence"] == 20000


def test_default_and_description():
    assert silence.DEFAULT_MS == 700
    assert silence.describe("v2", 900) == "v2: end_utterance_silence_threshold = 900 ms"
    assert silence.describe("v3", 300) == "v3: min_turn_silence = 300 ms, max_turn_silence = 1280 ms"


def test_unknown_protocol():
    with pytest.raises(ValueError):
        silence.params_for("v9", 100)


@pytest.mark.parametrize("protocol,ms,expected", [("v2", 700, 700), ("v2", 5000, 5000),
                                                  ("v3", 700, 1280), ("v3", 5000, 5000)])
def test_turn_over_is_the_pause_that_ends_any_turn(protocol, ms, expected):
    assert silence.turn_over_ms(protocol, ms) == expected
