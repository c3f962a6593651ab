"""ShareRunner: sharing follows the saved preferences, started and stopped off the caller's thread."""

from __future__ import annotations

import threading
import time

from app.core.events import Final
from app.core.settings import DictStore, Settings
from app.core.sharing.qr import qr_png, qr_text
from app.core.sharing.runner import ShareRunner
from tests.sharing.helpers import SSEReader, local_url, wait_for


def settings(**values) -> Settings:
    s = Settings(DictStore())
    for key, value in values.items():
        s.set(key.replace("__", "/"), value)
    return s


def runner_with(**kw):
    changes = []
    problems = []
    r = ShareRunner(on_change=lambda: changes.append(time.monotonic()),
                    on_problem=problems.append, **kw)
    return r, changes, problems


def test_off_by_default():
    r, changes, _ = runner_with()
    r.apply(settings().snapshot())
    assert r.wait_idle()
    assert not r.running and r.url is None


def test_starts_restyles_in_place_and_restarts_on_address_change():
    from tests.e2e.test_cli import free_port
    port = free_port()
    s = settings(sharing__serve=True, sharing__lan=True, sharing__port=port)
    r, changes, _ = runner_with()
    r.apply(s.snapshot())
    assert r.wait_idle() and r.running
    first = r.url
    assert "token=" in first
    share = r._share
    s.set("appearance/font_size", 60)              # looks only: same link, new style served
    r.apply(s.snapshot())
    assert r.wait_idle()
    assert r.url == first and r._share is share
    wait_for(lambda: share.server.config.style["font_size"] == 60)
    s.set("sharing/port", free_port())             # a new address: sharing starts anew
    r.apply(s.snapshot())
    assert r.wait_idle()
    assert r.url != first and r._share is not share
    s.set("sharing/serve", False)
    r.apply(s.snapshot())
    assert r.wait_idle() and not r.running


def test_feeds_events_and_regenerates():
    from tests.e2e.test_cli import free_port
    r, _, _ = runner_with()
    r.apply(settings(sharing__serve=True, sharing__lan=True, sharing__port=free_port()).snapshot())
    assert r.wait_idle()
    url = local_url(r._share)
    reader = SSEReader(url, token=r._share.server.token)
    r.on_event("mic", Final("through the runner", 0, 1))
    assert reader.take(1)[0]["text"] == "through the runner"
    reader.close()
    old = r.url
    r.regenerate_token()
    assert r.wait_idle()
    assert r.url != old
    r.shutdown()
    assert r.wait_idle() and not r.running


def test_apply_never_blocks_the_caller(monkeypatch):
    from app.core.sharing import share as share_module
    from tests.e2e.test_cli import free_port
    release = threading.Event()
    original = share_module.CaptionShare.start

    def slow_start(self):            # binding stuck (a slow interface): the caller must not wait
        release.wait(10)
        return original(self)
    monkeypatch.setattr(share_module.CaptionShare, "start", slow_start)
    r, _, _ = runner_with()
    r.apply(settings(sharing__serve=True, sharing__port=free_port()).snapshot())
    r.shutdown()
    assert not release.is_set() and not r.running     # both calls returned while start hung
    release.set()
    assert r.wait_idle()
    assert not r.running                              # and the queued stop still ran, in order


def test_bad_settings_and_busy_port_are_reported_not_raised():
    import socket
    r, _, _ = runner_with()
    bad = settings(sharing__zoom_url="http://wmcapi.zoom.us/closedcaption").snapshot()
    r.apply(bad)
    assert "must use https://" in r.error
    assert r.wait_idle() and not r.running
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        r.apply(settings(sharing__serve=True, sharing__port=blocker.getsockname()[1]).snapshot())
        assert r.wait_idle()
    assert "already uses that port" in r.error and not r.running


def test_a_failing_target_is_announced_once(targets):
    targets.zoom.fail = [503] * 6
    r, _, problems = runner_with()
    r.apply(settings(sharing__zoom_url=targets.zoom_url).snapshot())
    assert r.wait_idle()
    for t in r._share.targets:           # the default backoff, shortened for the test
        t.backoff = (0.05, 0.1)
    r.on_event("mic", Final("hello", 0, 1))
    wait_for(lambda: targets.zoom.accepted, timeout=15)
    r.shutdown()
    assert r.wait_idle()
    assert len(problems) == 1 and "HTTP 503" in problems[0]


def test_worker_thread_ends_when_idle():
    r, _, _ = runner_with()
    r.apply(settings().snapshot())
    assert r.wait_idle()
    wait_for(lambda: not any(t.name == "share-runner" for t in threading.enumerate()), timeout=5)


def test_qr_code_of_the_link():
    png = qr_png("http://192.168.1.20:8765/?token=abc")
    assert png.startswith(b"\x89PNG")
    text = qr_text("http://192.168.1.20:8765/?token=abc")
    assert len(text.splitlines()) >= 10 and "█" in text


def test_changing_targets_keeps_the_link(targets):
    from tests.e2e.test_cli import free_port
    s = settings(sharing__serve=True, sharing__lan=True, sharing__port=free_port())
    r, _, _ = runner_with()
    r.apply(s.snapshot())
    assert r.wait_idle()
    link, share = r.url, r._share
    reader = SSEReader(local_url(share), token=share.server.token)
    s.set("sharing/webhook_url", targets.webhook_url)   # a target added while people watch
    r.apply(s.snapshot())
    assert r.wait_idle()
    assert r.url == link and r._share is share and [t.name for t in share.targets] == ["Webhook"]
    r.on_event("mic", Final("after the change", 0, 1))
    assert reader.take(1)[0]["text"] == "after the change"     # still connected
    wait_for(lambda: targets.webhook.accepted)
    s.set("sharing/webhook_url", "")
    r.apply(s.snapshot())
    assert r.wait_idle()
    assert r._share is share and share.targets == []
    reader.close()
    r.shutdown()
    assert r.wait_idle()
