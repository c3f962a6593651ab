"""The caption page in a real browser (Debian chromium + chromium-driver via selenium)."""

from __future__ import annotations

import time

import pytest

from app.core.events import Final, Partial
from app.core.sharing import CaptionShare, ShareConfig
from tests.sharing.browser import browser_missing, start_chromium
from tests.sharing.helpers import local_url

pytestmark = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")

HOSTILE = ['<img src=x onerror="window.__pwned=1">',
           "<script>window.__pwned=2</script>",
           '"><svg onload=window.__pwned=3>']


@pytest.fixture(scope="module")
def driver():
    d = start_chromium()
    yield d
    d.quit()


@pytest.fixture
def share():
    s = CaptionShare(ShareConfig(serve=True, port=0, style={
        "font_size": 32, "text_color": "#ffff00", "background_color": "#000000",
        "background_opacity": 75, "text_effect": "outline", "lines": 2, "clear_after_s": 0,
        "show_source_labels": True, "font_family": ""})).start()
    yield s
    s.stop(timeout_s=3)


def wait_js(driver, script: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not true in time: {script}")


def lines(driver) -> list[tuple[str, str]]:
    return [tuple(x) for x in driver.execute_script(
        "return [...document.querySelectorAll('#captions .line')]"
        ".map(e => [e.className.replace('line ', ''), e.textContent]);")]


def open_page(driver, url):
    driver.get(url)
    wait_js(driver, "return document.getElementById('state').textContent === 'Live'")


def test_finals_appear_and_the_partial_is_replaced_in_place(driver, share):
    open_page(driver, share.url)
    share.on_event("mic", Partial("hello", 0, 300))
    wait_js(driver, "return document.querySelector('#captions .partial')?.textContent === 'hello'")
    driver.execute_script("window.__partialEl = document.querySelector('#captions .partial');")
    share.on_event("mic", Partial("hello wor", 0, 600))
    wait_js(driver, "return document.querySelector('#captions .partial')?.textContent === 'hello wor'")
    assert driver.execute_script(
        "return window.__partialEl === document.querySelector('#captions .partial')")
    assert lines(driver) == [("partial", "hello wor")]
    assert driver.execute_script("return window.__partialEl.getAttribute('aria-hidden')") == "true"
    share.on_event("mic", Final("Hello world.", 0, 900))
    wait_js(driver, "return document.querySelectorAll('#captions .final').length === 1")
    assert lines(driver) == [("final", "Hello world.")]
    assert driver.execute_script(   # a new node: screen readers announce the final once
        "return document.querySelector('#captions .final').hasAttribute('aria-hidden')") is False
    for i in range(3):
        share.on_event("mic", Final(f"Caption {i}.", 1000 * i, 1000 * i + 500))
        wait_js(driver, f"return document.querySelectorAll('#captions .final').length === {i + 2}")
    assert [t for _, t in lines(driver)] == ["Hello world.", "Caption 0.", "Caption 1.", "Caption 2."]
    assert not [e for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def test_two_sources_are_labelled_and_each_partial_keeps_its_place(driver, share):
    open_page(driver, share.url)
    share.on_event("mic", Partial("mic talking", 0, 100))
    share.on_event("system", Partial("video playing", 0, 100))
    share.on_event("mic", Final("Mic done.", 0, 900))
    wait_js(driver, "return document.querySelectorAll('#captions .final').length === 1")
    assert lines(driver) == [("final", "micMic done."), ("partial", "systemvideo playing")]
    assert driver.execute_script(
        "return [...document.querySelectorAll('#captions .src')].map(e => e.textContent)") == [
        "mic", "system"]
    share.on_event("system", Partial("", 0, 100))        # the other partial is withdrawn
    wait_js(driver, "return !document.querySelector('#captions .partial')")
    assert lines(driver) == [("final", "micMic done.")]


def test_hostile_captions_are_shown_as_text_with_no_element_created(driver, share):
    open_page(driver, share.url)
    for text in HOSTILE:
        share.on_event("mic", Partial(text, 0, 1))
        share.on_event("mic", Final(text, 0, 1))
    wait_js(driver, f"return document.querySelectorAll('#captions .final').length === {len(HOSTILE)}")
    time.sleep(0.3)   # give any injected handler the chance to run
    assert [t for _, t in lines(driver)] == HOSTILE
    assert driver.execute_script(
        "return document.querySelectorAll('#captions img, #captions script, #captions svg').length") == 0
    assert driver.execute_script("return document.querySelectorAll('img, svg').length") == 0
    assert driver.execute_script("return typeof window.__pwned") == "undefined"


def test_late_joiner_sees_history_and_page_reconnects_after_a_drop(driver, share):
    share.on_event("mic", Final("said before you came", 0, 1))
    open_page(driver, share.url)
    wait_js(driver, "return document.querySelectorAll('#captions .final').length === 1")
    # Every viewer is cut off (as when a phone loses Wi-Fi); captions continue meanwhile.
    share._loop.call_soon_threadsafe(lambda: [c.drop() for c in list(share.server.clients)])
    share.on_event("mic", Final("said while you were away", 0, 1))
    share.on_event("mic", Final("and after", 0, 1))
    wait_js(driver, "return document.querySelectorAll('#captions .final').length === 3", 15)
    assert [t for _, t in lines(driver)] == ["said before you came", "said while you were away",
                                             "and after"]


def test_token_page_loads_everything_with_its_token(driver):
    s = CaptionShare(ShareConfig(serve=True, host="0.0.0.0", port=0)).start()
    try:
        url = local_url(s)
        open_page(driver, url)
        s.on_event("mic", Final("only with the link", 0, 1))
        wait_js(driver, "return document.querySelectorAll('#captions .final').length === 1")
        s.regenerate_token()                 # "New link": this viewer is cut off for good
        wait_js(driver, "return document.getElementById('state').textContent"
                        ".includes('no longer valid')", 15)
        driver.get(url.split("?")[0])
        assert "access token" in driver.find_element("tag name", "body").text
    finally:
        s.stop(timeout_s=3)


def test_font_size_buttons_and_theme(driver, share):
    open_page(driver, share.url)
    size = lambda: driver.execute_script(  # noqa: E731
        "return parseFloat(getComputedStyle(document.getElementById('captions')).fontSize)")
    start = size()
    assert start == 32                                   # the overlay's font size
    driver.find_element("id", "larger").click()
    assert size() > start
    driver.find_element("id", "smaller").click()
    driver.find_element("id", "smaller").click()
    assert size() < start
    light = driver.execute_script("return document.documentElement.classList.contains('light')")
    driver.find_element("id", "theme").click()
    assert driver.execute_script(
        "return document.documentElement.classList.contains('light')") is not light
    driver.refresh()                                      # choices are remembered
    wait_js(driver, "return document.getElementById('state').textContent === 'Live'")
    assert size() < start
    driver.execute_script("localStorage.clear()")


def _pixel(png: bytes, x: int, y: int) -> tuple[int, int, int, int]:
    from PySide6.QtGui import QImage
    image = QImage.fromData(png, "PNG")
    assert not image.isNull()
    c = image.pixelColor(x, y)
    return c.red(), c.green(), c.blue(), c.alpha()


def test_transparent_mode_for_obs(driver, share):
    # OBS composites the page over the scene: like OBS, ask for a see-through default backdrop.
    driver.execute_cdp_cmd("Emulation.setDefaultBackgroundColorOverride",
                           {"color": {"r": 0, "g": 0, "b": 0, "a": 0}})
    try:
        open_page(driver, share.url + "?transparent=1")
        share.on_event("mic", Final("Streamer caption", 0, 1))
        wait_js(driver, "return document.querySelectorAll('#captions .final').length === 1")
        assert not driver.find_element("id", "bar").is_displayed()
        box = driver.execute_script(
            "const r = document.getElementById('captions').getBoundingClientRect();"
            "return [r.left, r.top, r.right, r.bottom];")
        png = driver.get_screenshot_as_png()
        assert _pixel(png, 10, 10)[3] == 0                    # above the captions: see-through
        assert _pixel(png, 400, 100)[3] == 0
        inside = _pixel(png, int(box[0]) + 2, int(box[3]) - 2)  # the caption box: overlay colour
        assert 150 <= inside[3] <= 230 and inside[:3] == (0, 0, 0)
        colour = driver.execute_script(
            "return getComputedStyle(document.querySelector('#captions .final')).color")
        assert colour == "rgb(255, 255, 0)"
        # Only the overlay's last lines stay on screen.
        for i in range(4):
            share.on_event("mic", Final(f"line {i}", 0, 1))
        wait_js(driver, "return [...document.querySelectorAll('#captions .final')].pop()"
                        "?.textContent === 'line 3'")
        assert [t for _, t in lines(driver)] == ["line 2", "line 3"]
        # The normal page is opaque.
        open_page(driver, share.url)
        assert _pixel(driver.get_screenshot_as_png(), 400, 300)[3] == 255
    finally:
        driver.execute_cdp_cmd("Emulation.setDefaultBackgroundColorOverride", {})


def test_finals_only_setting_hides_partials(driver):
    s = CaptionShare(ShareConfig(serve=True, port=0, style={"stable_only": True})).start()
    try:
        open_page(driver, s.url)
        s.on_event("mic", Partial("not shown", 0, 1))
        s.on_event("mic", Final("shown", 0, 1))
        wait_js(driver, "return document.querySelectorAll('#captions .final').length === 1")
        assert lines(driver) == [("final", "shown")]
    finally:
        s.stop(timeout_s=3)


def test_translations_go_under_their_own_captions_as_text(driver, share):
    from app.core.events import Translation
    open_page(driver, share.url)
    one, two = Final("Good morning.", 0, 900), Final("Shall we start?", 1000, 1900)
    share.on_event("mic", one)
    share.on_event("mic", two)
    wait_js(driver, "return document.querySelectorAll('#captions .final').length === 2")
    share.on_event("mic", Translation(two.id, "es", "¿Empezamos?"))
    share.on_event("mic", Translation(one.id, "es", HOSTILE[0]))
    wait_js(driver, "return document.querySelectorAll('#captions .tr').length === 2")
    assert driver.execute_script(
        "return [...document.querySelectorAll('#captions .final')].map("
        "e => [e.firstChild.textContent, e.querySelector('.tr').textContent, e.querySelector('.tr').lang])") == [
        ["Good morning.", HOSTILE[0], "es"], ["Shall we start?", "¿Empezamos?", "es"]]
    assert driver.execute_script("return document.querySelectorAll('#captions img').length") == 0
    assert driver.execute_script("return window.__pwned === undefined")
