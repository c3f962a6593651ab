"""The new-version check against a local HTTP stand-in for the release feed."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.core import update_check
from app.core.update_check import UpdateCheckError


class Feed:
    """Serves /repos/<repo>/releases/latest and records every request it gets."""

    def __init__(self):
        self.status = 200
        self.body: bytes = json.dumps({"tag_name": "v9.1.0", "html_url": "https://evil.example/x",
                                       "body": "<script>alert(1)</script>"}).encode()
        self.requests: list[dict] = []
        self.delay = 0.0
        self.closed = False
        feed = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                feed.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "command": self.command})
                if feed.delay:
                    threading.Event().wait(feed.delay)
                try:
                    self.send_response(feed.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(feed.body)))
                    self.end_headers()
                    self.wfile.write(feed.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass                      # the client gave up first (the timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/repos/Owner/app/releases/latest"

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed():
    f = Feed()
    yield f
    f.close()


def test_a_newer_release_is_found_and_its_page_is_built_here(feed):
    info = update_check.check(feed.url, current="0.1.0", repository="Owner/app")
    assert info.newer and info.latest == "9.1.0" and info.current == "0.1.0"
    assert info.page_url == "https://github.com/Owner/app/releases/tag/v9.1.0"   # not the reply's html_url
    assert "9.1.0" in info.message() and "evil" not in info.message() and "<script>" not in info.message()


def test_only_a_bare_get_is_sent(feed):
    update_check.check(feed.url, current="0.1.0")
    (request,) = feed.requests
    assert request["command"] == "GET" and request["path"] == "/repos/Owner/app/releases/latest"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["user-agent"] == "caption-overlay"            # no version, no OS
    assert set(headers) <= {"host", "user-agent", "accept", "accept-encoding", "connection"}
    assert "0.1.0" not in json.dumps(request)


@pytest.mark.parametrize("tag, current, newer", [
    ("v0.1.0", "0.1.0", False), ("0.2.0", "0.1.0", True), ("v0.1.0", "0.2.0", False),
    ("v1.0.0rc1", "0.9.9", True), ("v1.0.0rc1", "1.0.0", False), ("v1.0.0", "1.0.0rc2", True),
    ("v1.10", "1.9.3", True),
])
def test_versions_compare_as_numbers(feed, tag, current, newer):
    feed.body = json.dumps({"tag_name": tag}).encode()
    assert update_check.check(feed.url, current=current).newer is newer


@pytest.mark.parametrize("status, body, reason", [
    (404, b"{}", "No release has been published"),
    (403, b"{}", "rate limited"),
    (500, b"{}", "HTTP 500"),
    (200, b"<html>captive portal</html>", "not a release description"),
    (200, b"[1, 2]", "names no release"),
    (200, json.dumps({"tag_name": "latest; rm -rf /"}).encode(), "not a version number"),
    (200, json.dumps({"tag_name": "v1." + "9" * 5000}).encode(), "not a version number"),
    (200, b" " * (update_check.MAX_REPLY_BYTES + 10), "too large"),
])
def test_bad_replies_give_plain_words(feed, status, body, reason):
    feed.status, feed.body = status, body
    with pytest.raises(UpdateCheckError, match=reason) as info:
        update_check.check(feed.url, current="0.1.0")
    assert len(str(info.value)) < 200


def test_an_unreachable_or_slow_feed_is_reported_not_raised(feed):
    feed.delay = 2.0
    with pytest.raises(UpdateCheckError, match="timed out"):
        update_check.check(feed.url, current="0.1.0", timeout=0.3)
    port = feed.server.server_address[1]
    feed.close()
    with pytest.raises(UpdateCheckError, match="could not be reached"):
        update_check.check(f"http://127.0.0.1:{port}/x", current="0.1.0", timeout=2)


def test_only_https_feeds_outside_this_machine():
    with pytest.raises(UpdateCheckError, match="https"):
        update_check.check("http://example.com/releases/latest", current="0.1.0")


def test_the_real_feed_address_is_the_projects_release_api():
    from app import REPOSITORY
    assert update_check.feed_url() == f"https://api.github.com/repos/{REPOSITORY}/releases/latest"


@pytest.mark.parametrize("last, now, due", [
    (0, 1_000, True), (1_000, 1_000 + 3600, False), (1_000, 1_000 + 24 * 3600, True),
    (5_000_000, 1_000, True),                                   # clock set back
])
def test_at_most_one_check_a_day(last, now, due):
    assert update_check.is_due(last, now) is due
