"""Connection status: events → state and plain words."""

import pytest

from app.core.events import (Final, Gap, Partial, Reconnecting, Recovery, SessionEnded, SessionStarted,
                             StreamError)
from app.core.status import (GAP_NOTICE_S, MIN_NOTICE_S, State, Status, StatusModel,
                             format_latency)


def test_starts_stopped():
    m = StatusModel()
    assert m.status.state is State.STOPPED
    assert m.status.text == "Captions stopped"
    assert not m.status.running


def test_connecting_then_live_with_engine_name():
    m = StatusModel(silence_ms=700)
    s = m.starting(["mic"])
    assert s.state is State.CONNECTING and s.text == "Connecting…"
    s = m.on_event("mic", SessionStarted("abc", "v3"))
    assert s.state is State.LIVE
    assert s.text == "Live (AssemblyAI)"
    assert s.silence_ms == 700
    assert s.running


def test_offline_engine_state():
    m = StatusModel()
    m.starting(["mic"])
    s = m.on_event("mic", SessionStarted("local-1", "local"))
    assert s.state is State.OFFLINE
    assert "offline engine" in s.text


def test_reconnecting_then_live_again():
    m = StatusModel()
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "v3"))
    s = m.on_event("mic", StreamError(1011, "The server had a problem.", Recovery.RECONNECT))
    assert s.state is State.RECONNECTING
    assert "The server had a problem." in s.text
    s = m.on_event("mic", Reconnecting(2, 3.2, "Connection lost"))
    assert s.state is State.RECONNECTING
    assert s.text == "Reconnecting: Connection lost — trying again in 3 s (attempt 2)"
    s = m.on_event("mic", SessionStarted("b", "v3"))
    assert s.state is State.LIVE and s.detail == ""


def test_stop_class_error_in_plain_words():
    m = StatusModel()
    m.starting(["mic"])
    s = m.on_event("mic", StreamError(1008, "The API key was not accepted.", Recovery.STOP))
    assert s.state is State.ERROR
    assert s.text == "Stopped: The API key was not accepted."
    assert not s.running


def test_failed_before_start():
    m = StatusModel()
    s = m.failed("No microphone was found.")
    assert s.state is State.ERROR and "No microphone was found." in s.text


def test_ignored_errors_become_a_notice_only():
    m = StatusModel()
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "v3"))
    s = m.on_event("mic", StreamError(None, "Unknown message skipped", Recovery.IGNORE))
    assert s.state is State.LIVE
    assert "Unknown message skipped" in s.summary()


def test_gap_notice():
    m = StatusModel()
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "v3"))
    s = m.on_event("mic", Gap(1000, 4200, "connection lost"))
    assert "4.2 s of audio were not captioned" in s.summary()


def test_latency_shown_only_while_live():
    m = StatusModel()
    m.starting(["mic"])
    s = m.set_latency(420)
    assert s.latency_ms is None  # not live yet
    s = m.on_event("mic", SessionStarted("a", "v3"))
    assert s.latency_ms == 420
    assert s.summary() == "Live (AssemblyAI) · latency 420 ms"
    assert format_latency(1530) == "1.5 s"


def test_most_urgent_source_wins_and_is_named():
    m = StatusModel()
    m.starting(["mic", "system"])
    m.on_event("mic", SessionStarted("a", "v3"))
    s = m.on_event("system", SessionStarted("b", "v3"))
    assert s.state is State.LIVE
    s = m.on_event("system", StreamError(None, "Audio device lost", Recovery.RECONNECT))
    assert s.state is State.RECONNECTING
    assert s.detail == "system: Audio device lost"


def test_text_after_reconnect_counts_as_live():
    m = StatusModel()
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "v2"))
    m.on_event("mic", Reconnecting(1, 0.5, ""))
    s = m.on_event("mic", Partial("hi", 0, 100))
    assert s.state is State.LIVE
    assert "legacy v2" in s.text
    m.on_event("mic", Final("hi.", 0, 200))
    assert m.status.state is State.LIVE


def test_session_ended_does_not_claim_stopped_and_late_events_after_stop_are_ignored():
    m = StatusModel()
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "v3"))
    s = m.on_event("mic", SessionEnded(3.0))
    assert s.state is State.LIVE
    m.stopped()
    s = m.on_event("mic", Final("late", 0, 1))
    assert s.state is State.STOPPED


def test_silence_threshold_update_and_changed_flag():
    m = StatusModel(silence_ms=700)
    m.set_silence(1200)
    assert m.status.silence_ms == 1200 and m.changed
    m.set_silence(1200)
    assert not m.changed
    assert isinstance(m.status, Status)


def test_status_names_the_model_the_server_uses():
    m = StatusModel(silence_ms=700)
    m.starting(["system"])
    s = m.on_event("system", SessionStarted("abc", "v3", model="universal-3-5-pro"))
    assert s.text == "Live (AssemblyAI · universal-3-5-pro)"
    s = m.on_event("system", SessionStarted("abd", "v3", model="bad\nname  " + "x" * 80))
    assert "\n" not in s.text and len(s.engine) < 70
class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


BEHIND = "Captions are behind real time while the offline engine catches up"


def test_behind_notice_clears_when_live_words_flow_again():
    clock = Clock()
    m = StatusModel(clock=clock)
    m.starting(["mic"], engine="local")
    m.on_event("mic", SessionStarted("l", "local"))
    s = m.on_event("mic", StreamError(None, BEHIND, Recovery.IGNORE))
    assert s.state is State.OFFLINE and s.notice == BEHIND      # a notice, not an error
    m.on_event("mic", Final("Finals still come.", 0, 900))
    assert m.status.notice == BEHIND                              # still behind: no live words yet
    clock.t += 1
    m.on_event("mic", Partial("caught up", 1000, 1500))          # the engine has caught up
    assert m.status.notice == BEHIND                              # shown long enough to be read
    clock.t += 5
    s = m.tick()
    assert s.notice == "" and m.changed and "behind" not in s.summary()


def test_behind_notice_fades_if_nothing_more_is_said():
    clock = Clock()
    m = StatusModel(clock=clock)
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("l", "local"))
    m.on_event("mic", StreamError(None, BEHIND, Recovery.IGNORE))
    clock.t += 61
    assert m.tick().notice == ""


def test_gap_notice_is_news_for_a_while_then_clears():
    clock = Clock()
    m = StatusModel(clock=clock)
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "v3"))
    m.on_event("mic", Gap(1000, 4200, "connection lost"))
    clock.t += 10
    assert "4.2 s" in m.on_event("mic", Final("Back.", 5000, 6000)).notice
    clock.t += 11
    assert m.tick().notice == ""


def test_a_new_run_or_session_drops_old_notices():
    m = StatusModel()
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "local"))
    m.on_event("mic", StreamError(None, BEHIND, Recovery.IGNORE))
    assert m.on_event("mic", SessionStarted("b", "local")).notice == ""
    m.on_event("mic", StreamError(None, BEHIND, Recovery.IGNORE))
    assert m.starting(["mic"]).notice == ""


def test_loading_the_offline_model_is_not_connecting():
    m = StatusModel()
    assert m.starting(["mic"], engine="local").text == "Loading the offline speech model…"
    assert m.on_event("mic", SessionStarted("l", "local")).text == "Live (offline engine)"
    assert m.starting(["mic"], engine="assemblyai").text == "Connecting…"


def test_reconnect_reasons_name_the_server_not_its_websocket_address():
    from app.core.status import plain_addresses
    m = StatusModel()
    m.starting(["mic"])
    m.on_event("mic", SessionStarted("a", "v3"))
    s = m.on_event("mic", Reconnecting(1, 2.0, "Could not connect to ws://127.0.0.1:8765/v3/ws (connection refused)"))
    assert s.text == ("Reconnecting: Could not connect to the server at 127.0.0.1:8765 (connection refused)"
                      " — trying again in 2 s (attempt 1)")
    assert "ws://" not in s.detail
    assert plain_addresses("lost wss://streaming.assemblyai.com/v3/ws?sample_rate=16000") == "lost AssemblyAI"
    assert plain_addresses("no https://user:pw@broker.example.org:8443/token here") == \
        "no the server at broker.example.org:8443 here"
    assert "://" not in m.failed("Refused by wss://streaming.eu.assemblyai.com/v3/ws").text


def test_next_change_in_says_when_a_notice_fades_and_none_without_notices():
    now = [10.0]
    model = StatusModel(clock=lambda: now[0])
    model.starting(["mic"])
    model.on_event("mic", SessionStarted("s", "v3"))
    assert model.next_change_in() is None              # nothing timed: the front need not wake
    model.on_event("mic", Gap(0, 1500, "reconnecting"))
    assert model.next_change_in() == pytest.approx(GAP_NOTICE_S)
    now[0] += GAP_NOTICE_S - 1
    assert model.next_change_in() == pytest.approx(1.0)
    now[0] += 1
    assert model.next_change_in() == 0.0
    assert model.tick().notice == "" and model.next_change_in() is None
    model.on_event("mic", StreamError(None, "Engine behind", Recovery.IGNORE))
    model.on_event("mic", Partial("caught up", 0, 100))   # its cause is gone: fades at the minimum
    assert model.next_change_in() == pytest.approx(MIN_NOTICE_S)
