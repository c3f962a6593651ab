"""Network faults end to end: headless CLI → loopback server, then the saved transcript is checked.

For every fault: captions resume, every final the server sent is in the transcript file exactly
once and in order, outages are marked as gaps in continuous stream time, and the client never
broke a protocol limit. Auth failures stop at once (exit code 3) without a retry.

The scenarios stream at real time, so they run concurrently (each with its own server, transcript
folder and private config dirs) in one module fixture; each test then checks one scenario.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from app.cli import EXIT_AUTH, EXIT_OK
from tests.e2e.transcript_helpers import (SCRIPT, describe, run_headless, saved_entries, sent_finals)
from tests.fixtures.loopback import FIXTURE_DEFAULTS
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.timeout(240)

# Short utterances, ~1.3 s of speech each, 0.9 s apart (> the 700 ms end-of-turn silence).
PHRASES = ["Alpha one two three.", "Bravo four five six.", "Charlie seven eight nine.", "Delta ten eleven."]
# The client declares a stall after 20 s of speech with no answer: this needs ~28 s of audio.
LONG_PHRASES = PHRASES * 3


@dataclass
class Scenario:
    protocol: str = "v3"
    faults: list[dict] = field(default_factory=list)     # one inject() call each
    key: str | None = None                               # None = the server's valid key
    long: bool = False
    # filled in by the run
    server: LoopbackServer | None = None
    proc: object = None
    tdir: Path | None = None


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    "no-fault-v2-malformed": lambda: Scenario("v2", [dict(malformed_after_ms=800, unknown_message_after_ms=1200)]),
    "no-fault-v3-malformed": lambda: Scenario("v3", [dict(malformed_after_ms=800, unknown_message_after_ms=1200)]),
    "drops-v3": lambda: Scenario("v3", [dict(drop_after_ms=2500, repeat=2)]),
    "drops-v2": lambda: Scenario("v2", [dict(drop_after_ms=2500, repeat=2)]),
    "close-v2": lambda: Scenario("v2", [dict(close_after_ms=(2000, 1013, "try again later")),
                                        dict(close_after_ms=(2000, 4008, "Session Expired"))]),
    "close-v3": lambda: Scenario("v3", [dict(close_after_ms=(2000, 3005, "Session Cancelled")),
                                        dict(close_after_ms=(2000, 3008, "Session Expired"))]),
    "stall-v3": lambda: Scenario("v3", [dict(stall_after_ms=1500)], long=True),
    "auth-rejected": lambda: Scenario("v3", [dict(reject_auth=True, repeat=5)]),
    "auth-wrong-key": lambda: Scenario("v2", [], key="not-a-valid-key"),
}


def _run(name: str, scenario: Scenario, wav: Path, root: Path) -> Scenario:
    server = LoopbackServer(**FIXTURE_DEFAULTS).start()
    server.set_script(SCRIPT)
    for fault in scenario.faults:
        server.inject(**fault)
    scenario.server = server
    scenario.tdir = root / name / "transcripts"
    scenario.proc = run_headless(server.url, scenario.key or server.api_key, wav, scenario.tdir,
                                 "--protocol", scenario.protocol, home=root / name / "home", timeout=120)
    return scenario


@pytest.fixture(scope="module")
def results(speech_wav, tmp_path_factory):
    short = speech_wav(PHRASES, gap_ms=900, tail_ms=1200)
    long = speech_wav(LONG_PHRASES, gap_ms=900, tail_ms=1200)
    root = tmp_path_factory.mktemp("faults")
    done: dict[str, Scenario] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
        futures = {}
        for name, make in SCENARIOS.items():
            scenario = make()
            futures[pool.submit(_run, name, scenario, long if scenario.long else short, root)] = name
        for future in concurrent.futures.as_completed(futures):
            done[futures[future]] = future.result()
    yield done
    for scenario in done.values():
        scenario.server.stop()


def check_transcript(s: Scenario, *, faults: int):
    """The assertions every fault test shares; returns the transcript entries."""
    server, tdir, proc = s.server, s.tdir, s.proc
    info = describe(proc, server, tdir)
    assert proc.returncode == EXIT_OK, info
    entries = saved_entries(tdir)
    saved = [e.text for e in entries if e.kind == "final"]
    sent = sent_finals(server)
    assert sent, "the server sent no finals at all\n" + info
    assert saved == sent, "transcript ≠ finals sent (each exactly once, in order)\n" + info
    assert len(set(saved)) == len(saved)
    assert server.all_violations == [], info
    assert entries[0].kind == "header" and entries[0].data["protocol"] == s.protocol
    assert {r.protocol for r in server.sessions} == {s.protocol}
    sessions = [e for e in entries if e.kind == "session"]
    assert len(sessions) == len(server.sessions), info
    assert [e.data["session_id"] for e in sessions] == [r.session_id for r in server.sessions], info
    if faults:
        assert len(server.sessions) >= faults + 1, info
        # Captions resumed: the last session (after every fault) delivered finals.
        assert server.sessions[-1].finals, "no captions after the last reconnect\n" + info
        gaps = [e for e in entries if e.kind == "gap"]
        reconnects = [e for e in entries if e.kind == "reconnect"]
        assert len(gaps) >= faults and all(g.duration_ms > 0 for g in gaps), info
        assert len(reconnects) >= faults, info
    else:
        assert len(server.sessions) == 1, "the session must survive\n" + info
    # Continuous stream time: finals and gaps never go back in time across reconnects.
    timeline = [(e.audio_start, e.audio_end) if e.kind == "final" else (e.start_ms, e.start_ms + e.duration_ms)
                for e in entries if e.kind in ("final", "gap")]
    starts = [t[0] for t in timeline]
    assert starts == sorted(starts), info
    assert all(end >= start for start, end in timeline), info
    assert entries[-1].kind == "end", "the transcript was not closed\n" + info
    return entries


@pytest.mark.parametrize("name", ["no-fault-v2-malformed", "no-fault-v3-malformed"])
def test_malformed_and_unknown_messages_are_ignored(results, name):
    s = results[name]
    check_transcript(s, faults=0)
    assert len(sent_finals(s.server)) >= len(PHRASES) - 1
    sent = [m.get("message_type", m.get("type")) for m in s.server.sessions[0].sent]
    assert sent.count("Begin") + sent.count("SessionBegins") == 1


@pytest.mark.parametrize("name", ["drops-v3", "drops-v2"])
def test_connection_dropped_every_few_seconds(results, name):
    s = results[name]
    check_transcript(s, faults=2)
    assert [r.closed_by for r in s.server.sessions[:2]] == ["drop", "drop"]


@pytest.mark.parametrize("name, codes", [("close-v2", [1013, 4008]), ("close-v3", [3005, 3008])])
def test_transient_close_codes_reconnect(results, name, codes):
    s = results[name]
    entries = check_transcript(s, faults=len(codes))
    assert [r.close_code for r in s.server.sessions[:len(codes)]] == codes
    errors = [e for e in entries if e.kind == "error"]
    assert [e.data["code"] for e in errors][:len(codes)] == codes
    assert all(e.data["recovery"] == "reconnect" for e in errors)


def test_stalled_server_is_detected_and_replaced(results):
    s = results["stall-v3"]
    check_transcript(s, faults=1)


@pytest.mark.parametrize("name", ["auth-rejected", "auth-wrong-key"])
def test_auth_failure_stops_without_retry(results, name):
    s = results[name]
    info = describe(s.proc, s.server, s.tdir)
    assert s.proc.returncode == EXIT_AUTH, info
    assert len(s.server.sessions) <= 1, "auth failure must not be retried\n" + info
    assert s.server.api_key not in s.proc.stdout + s.proc.stderr, "the key leaked into the output"
    assert s.proc.stderr.strip(), "no message saying why"
    entries = saved_entries(s.tdir)
    assert [e.kind for e in entries if e.kind in ("final", "reconnect", "gap")] == [], info
    assert entries[-1].kind == "end"
