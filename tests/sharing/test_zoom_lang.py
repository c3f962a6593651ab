"""Zoom's ``lang``: the caption's detected language in Zoom's form, else the configured one;
against the strict Zoom stand-in, and end to end from a v3 session with language detection."""

from __future__ import annotations

import pytest

from app.core.events import Final
from app.core.sharing import CaptionShare, ShareConfig
from app.core.sharing.zoom_lang import ZOOM_LANGUAGE, zoom_lang
from tests.fixtures.caption_targets import LANG
from tests.sharing.helpers import wait_for

FAST = dict(backoff_s=(0.05, 0.2), request_timeout_s=1.0)


@pytest.mark.parametrize("detected, configured, expected", [
    ("es", "en-US", "es-ES"),
    ("de", "en-US", "de-DE"),
    ("ja", "en-US", "jp-JP"),        # Zoom's spelling of Japanese
    ("zh", "en-US", "zh-CN"),
    ("EN", "de-DE", "en-US"),
    ("en", "en-GB", "en-GB"),        # the configured country is kept for its own language
    ("ja", "jp-JP", "jp-JP"),
    ("pt-BR", "en-US", "pt-BR"),     # a country in the detection is the speaker's
    ("pt_br", "en-US", "pt-BR"),
    (None, "fr-FR", "fr-FR"),        # nothing detected: the setting
    ("", "fr-FR", "fr-FR"),
    ("xx", "fr-FR", "fr-FR"),        # unknown: never guessed
    ("yue", "fr-FR", "fr-FR"),
    ("es\r\nX-Injected: 1", "en-US", "en-US"),   # untrusted text is not passed on
    (42, "en-US", "en-US"),
])
def test_zoom_lang(detected, configured, expected):
    assert zoom_lang(detected, configured) == expected


def test_every_mapped_language_has_the_form_zoom_accepts():
    assert all(LANG.match(code) for code in ZOOM_LANGUAGE.values())


def test_zoom_gets_each_captions_detected_language_and_keeps_it_on_retry(targets):
    targets.zoom.fail = [503]                     # the first caption is retried
    share = CaptionShare(ShareConfig(zoom_url=targets.zoom_url, caption_lang="en-GB",
                                     **FAST)).start()
    try:
        for i, (text, language) in enumerate([("Good morning.", "en"), ("Buenos días.", "es"),
                                              ("Guten Tag.", "de"), ("No language.", None)]):
            share.on_event("mic", Final(text, i * 1000, i * 1000 + 900, language=language))
        wait_for(lambda: len(targets.zoom.accepted) == 4)
    finally:
        assert share.stop() == []
    z = targets.zoom
    assert z.faults == []
    sent = [(a.body, a.query["lang"], a.status) for a in z.attempts]
    assert sent[0] == ("Good morning.", "en-GB", 503) and sent[1] == ("Good morning.", "en-GB", 200)
    assert [(b, lang) for b, lang, status in sent if status == 200] == [
        ("Good morning.", "en-GB"), ("Buenos días.", "es-ES"), ("Guten Tag.", "de-DE"),
        ("No language.", "en-GB")]


def test_headless_v3_detection_reaches_zoom_as_zoom_languages(loopback_factory, speech_wav,
                                                               targets):
    from tests.e2e.test_cli import KEY, finish, start
    script = [{"text": "Good morning everyone.", "language": "en"},
              {"text": "Buenos días a todos.", "language": "es"},
              {"text": "Konnichiwa.", "language": "ja"}]
    server = loopback_factory(api_keys=(KEY,), script=script)
    wav = speech_wav(["Good morning everyone.", "Good afternoon.", "Good evening."],
                     tail_ms=1500, gap_ms=1500)
    proc = start(["--server", server.url, "--source", f"file:{wav}", "--language-detection",
                  "--speech-model", "universal-streaming-multilingual",
                  "--zoom-url", targets.zoom_url, "--caption-lang", "en-GB"])
    code, out, err = finish(proc)
    assert code == 0, err
    assert targets.zoom.faults == []
    assert [(a.body, a.query["lang"]) for a in targets.zoom.attempts if a.status == 200] == [
        ("Good morning everyone.", "en-GB"), ("Buenos días a todos.", "es-ES"),
        ("Konnichiwa.", "jp-JP")]
