"""Every documented close code has a plain message and the right recovery policy."""

from __future__ import annotations

import pytest

from app.core.events import Recovery
from app.core.streaming import close_codes as cc

V2_ALL = [4000, 4001, 4002, 4003, 4004, 4008, 4010, 4029, 4030, 4031, 4032, 4033, 4034,
          4100, 4101, 4102, 4103, 4104, 1013]
V3_ALL = [1008, 3005, 3006, 3007, 3008, 3009]

EXPECTED = {
    # auth / billing / limits / configuration: stop, never loop
    4000: (Recovery.STOP, cc.CONFIG), 4001: (Recovery.STOP, cc.AUTH),
    4002: (Recovery.STOP, cc.BILLING), 4003: (Recovery.STOP, cc.BILLING),
    4102: (Recovery.STOP, cc.LIMIT), 4104: (Recovery.STOP, cc.CONFIG),
    1008: (Recovery.STOP, cc.AUTH), 3009: (Recovery.STOP, cc.LIMIT),
    # transient: reconnect
    4004: (Recovery.RECONNECT, cc.TRANSIENT), 4008: (Recovery.RECONNECT, cc.TRANSIENT),
    4010: (Recovery.RECONNECT, cc.TRANSIENT), 4030: (Recovery.RECONNECT, cc.TRANSIENT),
    4031: (Recovery.RECONNECT, cc.TRANSIENT), 4103: (Recovery.RECONNECT, cc.TRANSIENT),
    1013: (Recovery.RECONNECT, cc.TRANSIENT), 3005: (Recovery.RECONNECT, cc.TRANSIENT),
    3008: (Recovery.RECONNECT, cc.TRANSIENT),
    # our own faults
    4029: (Recovery.BUG, cc.BUG), 4032: (Recovery.BUG, cc.BUG), 4033: (Recovery.BUG, cc.BUG),
    4034: (Recovery.BUG, cc.BUG), 4100: (Recovery.BUG, cc.BUG), 4101: (Recovery.BUG, cc.BUG),
    3006: (Recovery.BUG, cc.BUG), 3007: (Recovery.BUG, cc.BUG),
}


def test_tables_cover_every_documented_code():
    assert sorted(cc.V2_CODES) == sorted(V2_ALL)
    assert sorted(cc.V3_CODES) == sorted(V3_ALL)
    assert sorted(EXPECTED) == sorted(V2_ALL + V3_ALL)


@pytest.mark.parametrize("code", V2_ALL + V3_ALL)
def test_each_code_maps_to_message_and_policy(code):
    protocol = "v3" if code in V3_ALL else "v2"
    err = cc.from_close(code, None, protocol)
    recovery, category = EXPECTED[code]
    assert err.code == code and err.recovery is recovery
    assert cc.category(err) == category
    assert err.message and err.message[0].isupper() and err.message.endswith(".")
    assert str(code) not in err.message or code == 4000     # plain words, not numbers


def test_v3_server_may_use_the_v2_range():
    assert cc.from_close(4001, None, "v3").recovery is Recovery.STOP
    assert cc.from_close(3005, None, "v2").recovery is Recovery.RECONNECT


def test_reason_detail_kept_when_it_adds_information():
    err = cc.from_close(3007, "Input duration violation: 30 ms. Expected between 50 and 1000 ms", "v3")
    assert "30 ms" in err.message
    same = cc.from_close(4001, "Not Authorized", "v2")
    assert "server said" not in same.message


def test_generic_and_unknown_codes():
    assert cc.from_close(1006, None, "v3").recovery is Recovery.RECONNECT
    assert cc.from_close(1011, None, "v2").recovery is Recovery.RECONNECT
    unexpected = cc.from_close(1000, None, "v3")
    assert unexpected.recovery is Recovery.RECONNECT and "without being asked" in unexpected.message
    unknown = cc.from_close(4999, "weird", "v2")
    assert unknown.recovery is Recovery.RECONNECT and "4999" in unknown.message and "weird" in unknown.message
    lost = cc.from_close(None, None, "v3")
    assert lost.recovery is Recovery.RECONNECT


def test_model_deprecated_stops_with_advice():
    err = cc.from_error_text("Model deprecated. See docs for new model information: https://x", "v2")
    assert err.recovery is Recovery.STOP and "v3" in err.message and cc.category(err) == cc.CONFIG
    assert cc.from_close(4000, "Model deprecated, see our docs", "v2").message == cc.MODEL_DEPRECATED


@pytest.mark.parametrize("code", V2_ALL)
def test_v2_error_texts_are_recognised(code):
    info = cc.V2_CODES[code]
    err = cc.from_error_text(info.doc_text, "v2")
    assert err.code == code and err.recovery is info.recovery


def test_unknown_error_text_is_transient():
    err = cc.from_error_text("Something odd happened", "v2")
    assert err.recovery is Recovery.RECONNECT and "Something odd happened" in err.message


@pytest.mark.parametrize("status,recovery,category", [
    (401, Recovery.STOP, cc.AUTH), (403, Recovery.STOP, cc.AUTH), (402, Recovery.STOP, cc.BILLING),
    (400, Recovery.STOP, cc.CONFIG), (404, Recovery.STOP, cc.CONFIG), (422, Recovery.STOP, cc.CONFIG),
    (429, Recovery.RECONNECT, cc.TRANSIENT), (500, Recovery.RECONNECT, cc.TRANSIENT),
    (503, Recovery.RECONNECT, cc.TRANSIENT), (408, Recovery.RECONNECT, cc.TRANSIENT),
])
def test_http_statuses(status, recovery, category):
    err = cc.from_http_status(status, "The server", "details")
    assert err.recovery is recovery and cc.category(err) == category and f"HTTP {status}" in err.message
