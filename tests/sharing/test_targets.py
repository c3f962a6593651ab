"""Zoom, YouTube and webhook senders against strict local stand-ins that inject failures."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from app.core.events import Final, Partial, SessionStarted
from app.core.sharing import CaptionShare, ShareConfig
from tests.sharing.helpers import finals, wait_for

FAST = dict(backoff_s=(0.05, 0.2), request_timeout_s=1.0)


def share_with(**kw) -> CaptionShare:
    return CaptionShare(ShareConfig(**{**FAST, **kw})).start()


def test_zoom_resumes_seq_and_counts_up_per_caption(targets):
    share = share_with(zoom_url=targets.zoom_url, caption_lang="de-DE")
    try:
        share.on_event("mic", SessionStarted("s1", "v3"))
        share.on_event("mic", Partial("Guten", 0, 300))       # partials never reach Zoom
        finals(share, "mic", ["Guten Morgen.", "Zweiter Satz mit Ümlaut.", "Drei."])
        wait_for(lambda: len(targets.zoom.accepted) == 3)
    finally:
        assert share.stop() == []
    z = targets.zoom
    assert z.faults == []
    assert z.accepted == [(42, "Guten Morgen."), (43, "Zweiter Satz mit Ümlaut."), (44, "Drei.")]
    assert z.seq_gets >= 1                                     # read before the first post
    assert all(a.headers["Content-Type"] == "text/plain; charset=utf-8" for a in z.attempts)
    assert {a.query["lang"] for a in z.attempts} == {"de-DE"}


def test_zoom_keeps_seq_on_retry_after_503_and_keeps_order(targets):
    targets.zoom.fail = [503, 503]
    statuses = []
    share = CaptionShare(ShareConfig(zoom_url=targets.zoom_url, **FAST),
                         on_status=lambda name, text: statuses.append(text)).start()
    try:
        finals(share, "mic", ["one", "two", "three"])
        wait_for(lambda: len(targets.zoom.accepted) == 3)
    finally:
        share.stop()
    z = targets.zoom
    assert z.faults == []
    posts = [(a.seq, a.body, a.status) for a in z.attempts]
    assert posts[:2] == [(42, "one", 503), (42, "one", 503)]    # same seq on each retry
    assert [p for p in posts if p[2] == 200] == [(42, "one", 200), (43, "two", 200), (44, "three", 200)]
    assert {p[0] for p in posts if p[1] == "one"} == {42}
    assert any("HTTP 503" in s and "Retrying" in s for s in statuses)
    assert statuses[-1] == "Zoom: sending"
    assert not any("signature" in s or "s1gN" in s for s in statuses)   # no secrets in status


def test_zoom_lost_answer_is_not_sent_twice(targets):
    targets.zoom.lose = 1          # accepted, but the client sees 503
    share = share_with(zoom_url=targets.zoom_url)
    try:
        finals(share, "mic", ["first", "second"])
        wait_for(lambda: len(targets.zoom.accepted) == 2)
    finally:
        share.stop()
    assert targets.zoom.faults == []
    assert targets.zoom.accepted == [(42, "first"), (43, "second")]


def test_zoom_speaker_name_and_lines(targets):
    share = share_with(zoom_url=targets.zoom_url)
    try:
        share.on_event("mic", Final("Hello there.\nSecond line", 0, 10), speaker="Ana")
        wait_for(lambda: targets.zoom.accepted)
    finally:
        share.stop()
    assert targets.zoom.accepted == [(42, "Ana: Hello there.\nSecond line")]


def test_zoom_meeting_not_started_keeps_captions_until_it_starts(targets):
    targets.zoom.fail_seq = [400, 400]    # seq reads and posts refused until the meeting starts
    targets.zoom.fail = [400, 400]
    share = share_with(zoom_url=targets.zoom_url)
    try:
        finals(share, "mic", [f"caption {i}" for i in range(5)])
        wait_for(lambda: len(targets.zoom.accepted) == 5)
    finally:
        share.stop()
    assert targets.zoom.faults == []
    assert targets.zoom.texts() == [f"caption {i}" for i in range(5)]
    assert [s for s, _ in targets.zoom.accepted] == [42, 43, 44, 45, 46]


def test_zoom_timeout_is_retried(targets):
    targets.zoom.delay_s = 1.5        # longer than the 1 s request timeout
    share = share_with(zoom_url=targets.zoom_url)
    try:
        share.on_event("mic", Final("slow", 0, 10))
        wait_for(lambda: any("no answer within" in s for s in share.statuses().values()), 5)
        targets.zoom.delay_s = 0
        wait_for(lambda: len(targets.zoom.accepted) >= 1, 10)
    finally:
        share.stop()
    # The timed-out post may have been accepted late; it must not be accepted twice.
    assert targets.zoom.accepted == [(42, "slow")]
    assert not [f for f in targets.zoom.faults if "duplicate" not in f]


def test_stop_reports_unsent_captions_without_the_url(targets):
    targets.zoom.fail = [503] * 1000
    share = share_with(zoom_url=targets.zoom_url)
    finals(share, "mic", ["a", "b"])
    wait_for(lambda: targets.zoom.attempts or targets.zoom.seq_gets)
    notes = share.stop(grace_s=0.3)
    assert notes and "2 caption(s) were not accepted" in notes[0]
    assert "signature" not in notes[0] and "s1gN" not in notes[0]


def test_youtube_body_seq_and_clock_timestamps(targets):
    targets.youtube.fail = [500]
    share = share_with(youtube_url=targets.youtube_url)
    before = datetime.now(timezone.utc)
    try:
        finals(share, "mic", ["first line", "second\nline"])
        wait_for(lambda: len(targets.youtube.accepted) == 2)
    finally:
        share.stop()
    y = targets.youtube
    assert y.faults == []
    assert [s for s, _ in y.accepted] == [1, 2]
    assert y.attempts[0].seq == 1 and y.attempts[0].status == 500 and y.attempts[1].seq == 1
    assert y.attempts[0].body == y.attempts[1].body                # a retry repeats the cue
    stamps = []
    for _, body in y.accepted:
        stamp, text = body.rstrip("\n").split("\n")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}", stamp)
        stamps.append(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc))
    assert [b.rstrip("\n").split("\n")[1] for _, b in y.accepted] == ["first line", "second<br>line"]
    assert stamps == sorted(stamps)
    # Clock-based: the utterance start (arrival minus its 0.9 s of audio), near now.
    assert abs((stamps[0] - before).total_seconds()) < 5


def test_webhook_gets_json_records_once_in_order(targets):
    targets.webhook.fail = [502]
    targets.webhook.lose = 1
    share = share_with(webhook_url=targets.webhook_url)
    try:
        share.on_event("mic", Partial("ignored", 0, 1))
        finals(share, "mic", ["alpha", "beta", "gamma"])
        wait_for(lambda: len(targets.webhook.accepted) == 3)
    finally:
        share.stop()
    h = targets.webhook
    records = [r for _, r in h.accepted]
    assert [r["text"] for r in records] == ["alpha", "beta", "gamma"]
    assert {k: v for k, v in records[0].items() if k != "id"} == {
        "event": "final", "text": "alpha", "audio_start": 0, "audio_end": 900, "speaker": None,
        "language": None, "source": "mic"}
    # The answer to "alpha" was lost once: it came again with the same event id (receivers
    # can ignore it); the stand-in counts that as a repeat, never as a new caption.
    assert [f for f in h.faults if "twice" not in f] == []
    ids = [i for i, _ in h.accepted]
    assert len(set(ids)) == 3


def test_all_targets_at_once_and_empty_finals_skipped(targets):
    share = share_with(zoom_url=targets.zoom_url, youtube_url=targets.youtube_url,
                       webhook_url=targets.webhook_url)
    try:
        finals(share, "mic", ["x", "  ", "y"])
        wait_for(lambda: len(targets.zoom.accepted) == 2 and len(targets.youtube.accepted) == 2
                 and len(targets.webhook.accepted) == 2)
    finally:
        share.stop()
    assert targets.zoom.texts() == ["x", "y"]
    assert not (targets.zoom.faults or targets.youtube.faults or targets.webhook.faults)


def test_on_event_never_blocks_while_a_target_hangs(targets):
    import time
    targets.zoom.delay_s = 5
    share = share_with(zoom_url=targets.zoom_url)
    try:
        t0 = time.perf_counter()
        finals(share, "mic", [f"c{i}" for i in range(2000)])
        elapsed = time.perf_counter() - t0
    finally:
        share.stop(grace_s=0.1, timeout_s=3)
    assert elapsed < 2.0, elapsed    # 2000 hand-overs; a blocking send would take 5 s each


@pytest.mark.parametrize("url,message", [
    ("ftp://zoom.us/closedcaption", "should start with https://"),
    ("http://wmcapi.zoom.us/closedcaption?id=1", "must use https://"),
    ("https://user:pw@zoom.us/x", "user name or password"),
    ("https://zoom.us/close caption", "contains spaces"),
    ("https://", "should start with https://"),
])
def test_bad_target_urls_are_refused_in_plain_words(url, message):
    from app.core.sharing import ShareConfigError
    with pytest.raises(ShareConfigError, match=message):
        ShareConfig(zoom_url=url).validate()


@pytest.mark.parametrize("lang", ["en", "english", "EN-us", "en_US", ""])
def test_bad_caption_language_refused(lang):
    from app.core.sharing import ShareConfigError
    with pytest.raises(ShareConfigError, match="should look like en-US"):
        ShareConfig(zoom_url="https://wmcapi.zoom.us/closedcaption?id=1", caption_lang=lang).validate()
