"""``caption-overlay --headless --serve/--zoom-url/--webhook-url`` end to end (loopback server)."""

from __future__ import annotations

import json
import re
import socket

import pytest

from tests.e2e.test_cli import KEY, S1, events, finish, free_port, start
from tests.sharing.helpers import SSEReader, request


def read_share_url(proc) -> tuple[str, list[str]]:
    seen = []
    for line in proc.stderr:
        seen.append(line)
        match = re.search(r"sharing captions at (\S+)", line)
        if match:
            return match.group(1), seen
    raise AssertionError("no share URL on stderr: " + "".join(seen))


def test_headless_serves_the_page_and_sends_to_zoom_and_webhook(loopback_factory, speech_wav,
                                                                 targets):
    server = loopback_factory(api_keys=(KEY,), script=[S1])
    wav = speech_wav(S1, tail_ms=900)
    port = free_port()
    proc = start(["--server", server.url, "--source", f"file:{wav}", "--json",
                  "--serve", f"127.0.0.1:{port}", "--zoom-url", targets.zoom_url,
                  "--webhook-url", targets.webhook_url, "--caption-lang", "en-GB"], log="debug")
    url, early = read_share_url(proc)
    assert url == f"http://127.0.0.1:{port}/"
    assert request(url)[0] == 200
    reader = SSEReader(url)
    streamed = []
    while True:
        _, record = reader.next()
        streamed.append(record)
        if record["event"] == "session_ended":
            break
    reader.close()
    code, out, err = finish(proc)
    err = "".join(early) + err
    assert code == 0, err
    printed = events(out)
    # The SSE data lines are exactly the --json records.
    assert streamed == printed
    assert [e["text"] for e in printed if e["event"] == "final"] == [S1]
    assert targets.zoom.accepted == [(42, S1)] and targets.zoom.faults == []
    assert [a.query["lang"] for a in targets.zoom.attempts] == ["en-GB"]
    assert [r["text"] for _, r in targets.webhook.accepted] == [S1]
    assert "Zoom: sending" in err
    assert "s1gN" not in err and "signature=" not in err     # the signed URL is never printed
    assert KEY not in err and KEY not in out


def test_headless_lan_share_prints_a_token_link(loopback_factory, speech_wav):
    server = loopback_factory(api_keys=(KEY,), script=[S1])
    wav = speech_wav(S1, tail_ms=900)
    port = free_port()
    proc = start(["--server", server.url, "--source", f"file:{wav}", "--serve", f"0.0.0.0:{port}"])
    url, _ = read_share_url(proc)
    token = re.search(r"/\?token=([A-Za-z0-9_-]{32,})$", url).group(1)
    local = f"http://127.0.0.1:{port}/"
    assert request(local, "/events")[0] == 401
    assert request(local, "/", token=token)[0] == 200
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.splitlines() == [S1]


@pytest.mark.parametrize("flags,message", [
    (["--serve", "localhost:http"], "not a port number"),
    (["--serve", "files.example:8080"], "not an IP address"),
    (["--zoom-url", "http://wmcapi.zoom.us/closedcaption?id=1"], "must use https://"),
    (["--webhook-url", "@/nonexistent/hook-url.txt"], "Cannot read the Webhook URL"),
    (["--zoom-url", "https://wmcapi.zoom.us/closedcaption?id=1", "--caption-lang", "english"],
     "should look like en-US"),
])
def test_headless_sharing_usage_errors(flags, message, speech_wav):
    wav = speech_wav(S1, tail_ms=900)
    code, out, err = finish(start(["--source", f"file:{wav}", *flags]))
    assert code == 2, err
    assert message in err and out == ""


def test_headless_port_in_use(speech_wav):
    wav = speech_wav(S1, tail_ms=900)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        code, _, err = finish(start(["--source", f"file:{wav}", "--serve", str(port)]))
    assert code == 2 and "another program already uses that port" in err


def test_zoom_url_from_a_file_keeps_it_out_of_argv(tmp_path, loopback_factory, speech_wav, targets):
    server = loopback_factory(api_keys=(KEY,), script=[S1])
    url_file = tmp_path / "zoom.txt"
    url_file.write_text(targets.zoom_url + "\n")
    wav = speech_wav(S1, tail_ms=900)
    code, out, err = finish(start(["--server", server.url, "--source", f"file:{wav}",
                                   "--zoom-url", f"@{url_file}"]))
    assert code == 0, err
    assert targets.zoom.texts() == [S1]
    assert json.dumps(err).find("s1gN") < 0


def test_lan_link_gets_a_qr_code_on_a_terminal():
    import io

    from app.cli import build_parser
    from app.core.settings import DictStore, Settings
    from app.headless import Output, _start_share

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    for stream, wants_qr in ((Terminal(), True), (io.StringIO(), False)):
        args = build_parser().parse_args(["--headless", "--serve", f"0.0.0.0:{free_port()}"])
        share = _start_share(args, Settings(DictStore()), Output(False, io.StringIO(), stream))
        try:
            text = stream.getvalue()
            assert "sharing captions at http://" in text and "?token=" in text
            assert ("scan to open the captions on a phone" in text) is wants_qr
            assert ("█" in text) is wants_qr
        finally:
            share.stop()
