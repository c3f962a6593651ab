"""A loopback AssemblyAI-compatible server: WebSocket (v2 + v3) and the HTTP token endpoints on
ONE port on 127.0.0.1. The asyncio loop runs on a background thread; tests talk to it through
thread-safe methods and read the SessionRecords it fills in.

    with LoopbackServer() as server:
        server.set_script(["Hello there.", "General Kenobi."])
        ... connect a client to server.url (http://127.0.0.1:PORT) with server.api_key ...
        assert server.sessions[0].finals == ["Hello there.", "General Kenobi."]
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response, parse_headers, parse_line
from websockets.protocol import CONNECTING, Protocol
from websockets.server import ServerProtocol

from .faults import FaultPlan, FaultQueue
from .session import SessionRecord
from .tokens import TokenStore
from .transcripts import TextSource, Transcriber
from .v2 import V2Session
from .v3 import V3Session

WS_PATHS = {"/v2/realtime/ws": V2Session, "/v2/realtime": V2Session, "/v3/ws": V3Session}
V2_TOKEN_RANGE = (60, 360000)
V3_TOKEN_RANGE = (1, 600)
V3_MAX_SESSION_RANGE = (60, 10800)
MAX_BODY = 64 * 1024


# ---- one port for HTTP and WebSocket -----------------------------------------------------------
# websockets only parses body-less GET requests; the token endpoint is a POST with a JSON body.
# This protocol subclass reads the body (Content-Length) and hands the request to
# process_request, which answers the HTTP endpoints and lets WebSocket upgrades through.

def _read_request(reader):
    line = yield from parse_line(reader.read_line)
    method, path, version = line.split(b" ", 2)
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ValueError(f"unsupported protocol {version!r}")
    headers = yield from parse_headers(reader.read_line)
    if "Transfer-Encoding" in headers:
        raise ValueError("chunked request bodies are not supported")
    length = int(headers.get("Content-Length", "0") or "0")
    if not 0 <= length <= MAX_BODY:
        raise ValueError("request body too large")
    body = bytes((yield from reader.read_exact(length))) if length else b""
    request = Request(path.decode("ascii"), headers, method.decode("ascii"), version.decode("ascii"))
    request.body = body  # type: ignore[attr-defined]
    return request


class _HttpAwareProtocol(ServerProtocol):
    stalled = False     # set by the stall fault: a hung server answers nothing, not even pings

    def send_frame(self, frame: Frame) -> None:
        if self.stalled and frame.opcode is Opcode.PONG:
            return
        super().send_frame(frame)

    def parse(self):
        if self.state is CONNECTING:
            try:
                request = yield from _read_request(self.reader)
            except Exception as exc:
                self.handshake_exc = InvalidMessage("did not receive a valid HTTP request")
                self.handshake_exc.__cause__ = exc
                self.send_eof()
                self.parser = self.discard()
                next(self.parser)
                yield
            self.events.append(request)
        yield from Protocol.parse(self)


class _Connection(ServerConnection):
    def __init__(self, protocol: ServerProtocol, *args, **kwargs) -> None:
        # Swap in the body-aware parser before any byte has arrived.
        protocol.__class__ = _HttpAwareProtocol
        protocol.parser = protocol.parse()
        next(protocol.parser)
        super().__init__(protocol, *args, **kwargs)


@dataclass
class HttpRecord:
    method: str
    path: str
    query: dict[str, str]
    status: int
    body: dict | None = None
    response: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)    # Authorization redacted


def _json_response(status: int, payload: dict) -> Response:
    body = json.dumps(payload).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                       ("Connection", "close")])
    return Response(status, HTTPStatus(status).phrase, headers, body)


def _redacted_headers(headers: Headers) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in headers.raw_items()}


class LoopbackServer:
    def __init__(self, *, api_keys: Iterable[str] = ("test-key",), script: Iterable[str] = (),
                 transcriber: Transcriber | None = None, partial_interval_ms: int = 300,
                 idle_timeout_s: float = 60.0, rate_grace_s: float = 60.0,
                 max_session_s: float | None = None, port: int = 0,
                 vad_threshold_dbfs: float = -40.0, min_speech_ms: int = 40,
                 close_timeout_s: float = 2.0, log: Callable[[str], None] | None = None,
                 tls: tuple[str, str] | None = None,
                 allowed_origins: Iterable[str] = ()) -> None:
        self.api_keys = tuple(api_keys)
        self.allowed_origins = tuple(o.lower() for o in allowed_origins)
        if not self.api_keys:
            raise ValueError("at least one API key is needed")
        self.api_key = self.api_keys[0]
        self.text = TextSource(script)
        self.text.transcriber = transcriber
        self.partial_interval_ms = partial_interval_ms
        self.idle_timeout_s = idle_timeout_s
        self.rate_grace_s = rate_grace_s
        self.max_session_s = max_session_s
        self.vad_threshold_dbfs = vad_threshold_dbfs
        self.min_speech_ms = min_speech_ms
        self.close_timeout_s = close_timeout_s
        self.realtime_factor = 1.6      # what Heartbeat reports; below 1.0 the "service" falls behind
        self.tokens = TokenStore()
        self.faults = FaultQueue()
        self._token_faults: list[tuple[int, str]] = []
        self.sessions: list[SessionRecord] = []
        self.http: list[HttpRecord] = []
        self._requested_port = port
        self.port = 0
        self.url = ""
        self._log = log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        self._stopping = False
        self._ssl = None
        if tls is not None:   # (certfile, keyfile): serve https/wss instead of http/ws
            import ssl
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.load_cert_chain(str(tls[0]), str(tls[1]))

    # ---- public API ------------------------------------------------------------------------------
    @property
    def transcriber(self) -> Transcriber | None:
        return self.text.transcriber

    @transcriber.setter
    def transcriber(self, value: Transcriber | None) -> None:
        self.text.transcriber = value

    def set_script(self, texts: Iterable) -> None:
        """Final texts handed out in order, one per utterance (across sessions); an entry may be
        a dict with speaker, language, revise and translation (see transcripts.py)."""
        self.text.set_script(texts)

    def inject(self, **faults) -> None:
        """Faults for the NEXT session(s); each call queues one plan for `repeat` sessions (default 1).

        drop_after_ms=N, close_after_ms=(N, code, reason), malformed_after_ms=N,
        unknown_message_after_ms=N, stall_after_ms=N (N = ms after the session began), reject_auth=True,
        message_after_ms=(N, {message}) or ((N, {…}), …) sends those messages as they are.
        token_error=(status, message) instead makes the next `repeat` token requests fail.
        """
        faults = dict(faults)
        if "token_error" in faults:
            status, message = faults.pop("token_error")
            repeat = int(faults.get("repeat", 1))
            if repeat < 1:
                raise ValueError("repeat must be at least 1")
            self._token_faults.extend([(int(status), str(message))] * repeat)
            if set(faults) <= {"repeat"}:
                return
        plan, repeat = FaultPlan.from_kwargs(dict(faults))
        self.faults.add(plan, repeat)

    def clear_faults(self) -> None:
        self.faults.clear()
        self._token_faults.clear()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def ws_url(self, protocol: str = "v3") -> str:
        return self.url.replace("http", "ws", 1) + ("/v3/ws" if protocol == "v3" else "/v2/realtime/ws")

    def mint_token(self, protocol: str = "v3", expires_in_s: float = 60.0,
                   max_session_s: float | None = None) -> str:
        """A temporary token without the HTTP round trip (tests of token sessions)."""
        return self.tokens.issue(protocol, expires_in_s, max_session_s).value

    def expire_tokens(self) -> None:
        self.tokens.expire_all()

    @property
    def all_violations(self) -> list[str]:
        return [v for s in self.sessions for v in s.violations]

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> "LoopbackServer":
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._run, name="loopback-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("loopback server did not start within 15 s")
        if self._start_error is not None:
            raise RuntimeError(f"loopback server failed to start: {self._start_error}") from self._start_error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to start()
            self._start_error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", self._requested_port, process_request=self._process_request,
                         create_connection=_Connection, ping_interval=None, max_size=16 * 2**20,
                         close_timeout=self.close_timeout_s, compression=None, ssl=self._ssl) as server:
            sock = next(iter(server.sockets))
            self.port = sock.getsockname()[1]
            self.url = f"{'https' if self._ssl else 'http'}://127.0.0.1:{self.port}"
            self._ready.set()
            await self._stop_event.wait()
            server.close(close_connections=True)
            await server.wait_closed()

    def _say(self, text: str) -> None:
        if self._log is not None:
            self._log(text)

    # ---- HTTP ------------------------------------------------------------------------------------
    def _process_request(self, connection, request: Request) -> Response | None:
        split = urlsplit(request.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        refused = self._foreign_request(request)
        if refused:
            return self._note(request, path, query, 403, {"error": refused})
        if path in WS_PATHS:
            if request.method != "GET":
                return _json_response(405, {"error": "Method not allowed"})
            return None     # WebSocket handshake continues (426 from websockets if not an upgrade)
        if path == "/v2/realtime/token":
            return self._token_v2(request, query)
        if path == "/v3/token":
            return self._token_v3(request, query)
        return self._note(request, path, query, 404, {"error": "Not found"})

    def _foreign_request(self, request: Request) -> str | None:
        """Why a request did not come from a program on this computer, or None.

        A web page open in a browser can reach 127.0.0.1 too: its requests carry the page's
        Origin, and a DNS-rebinding page an unknown Host. Neither may drive this server.
        """
        own = {f"127.0.0.1:{self.port}", f"localhost:{self.port}", f"[::1]:{self.port}"}
        host = (request.headers.get("Host") or "").strip().lower()
        if host not in own:
            return "Host not allowed: this server answers only to 127.0.0.1 / localhost"
        origin = request.headers.get("Origin")
        if origin is not None:
            allowed = {f"{scheme}://{h}" for scheme in ("http", "https") for h in own}
            if origin.strip().lower() not in allowed | set(self.allowed_origins):
                return "Origin not allowed: web pages may not use this server"
        return None

    def _note(self, request: Request, path: str, query: dict, status: int, payload: dict,
              body: dict | None = None) -> Response:
        self.http.append(HttpRecord(request.method, path, query, status, body, payload,
                                    _redacted_headers(request.headers)))
        self._say(f"HTTP {request.method} {path} → {status}")
        return _json_response(status, payload)

    def _key_ok(self, request: Request) -> bool:
        return request.headers.get("Authorization", "") in self.api_keys

    def _token_fault(self) -> tuple[int, str] | None:
        return self._token_faults.pop(0) if self._token_faults else None

    def _token_v2(self, request: Request, query: dict) -> Response:
        path = "/v2/realtime/token"
        if request.method != "POST":
            return self._note(request, path, query, 405, {"error": "Method not allowed"})
        if not self._key_ok(request):
            return self._note(request, path, query, 401, {"error": "Authentication error, API token missing/invalid"})
        if (fault := self._token_fault()) is not None:
            return self._note(request, path, query, fault[0], {"error": fault[1]})
        ctype = request.headers.get("Content-Type", "")
        if not ctype.split(";")[0].strip().lower() == "application/json":
            return self._note(request, path, query, 400, {"error": "Content-Type must be application/json"})
        try:
            body = json.loads(getattr(request, "body", b"") or b"null")
        except ValueError:
            return self._note(request, path, query, 400, {"error": "Request body is not valid JSON"})
        expires = body.get("expires_in") if isinstance(body, dict) else None
        lo, hi = V2_TOKEN_RANGE
        if type(expires) is not int or not lo <= expires <= hi:
            return self._note(request, path, query, 400,
                              {"error": f"expires_in must be an integer from {lo} to {hi}"}, body)
        token = self.tokens.issue("v2", expires)
        return self._note(request, path, query, 200, {"token": token.value}, body)

    def _token_v3(self, request: Request, query: dict) -> Response:
        path = "/v3/token"
        if request.method != "GET":
            return self._note(request, path, query, 405, {"error": "Method not allowed"})
        if not self._key_ok(request):
            return self._note(request, path, query, 401, {"error": "Invalid API key"})
        if (fault := self._token_fault()) is not None:
            return self._note(request, path, query, fault[0], {"error": fault[1]})
        lo, hi = V3_TOKEN_RANGE
        try:
            expires = int(query.get("expires_in_seconds", ""))
        except ValueError:
            expires = None
        if expires is None or not lo <= expires <= hi:
            return self._note(request, path, query, 400,
                              {"error": f"expires_in_seconds must be an integer from {lo} to {hi}"})
        max_session = None
        if "max_session_duration_seconds" in query:
            mlo, mhi = V3_MAX_SESSION_RANGE
            try:
                max_session = int(query["max_session_duration_seconds"])
            except ValueError:
                max_session = -1
            if not mlo <= max_session <= mhi:
                return self._note(request, path, query, 400,
                                  {"error": f"max_session_duration_seconds must be an integer from {mlo} to {mhi}"})
        token = self.tokens.issue("v3", expires, max_session)
        return self._note(request, path, query, 200, {"token": token.value, "expires_in_seconds": expires})

    # ---- WebSocket -------------------------------------------------------------------------------
    async def _handle(self, ws) -> None:
        request = ws.request
        split = urlsplit(request.path)
        session_cls = WS_PATHS[split.path]
        pairs = parse_qsl(split.query, keep_blank_values=True)
        query = dict(pairs)
        record = SessionRecord(protocol=session_cls.protocol,
                               query={k: ("<redacted>" if k == "token" else v) for k, v in query.items()},
                               headers=_redacted_headers(request.headers))
        if len(pairs) != len(query):
            record.violations.append("a query parameter was given more than once")
        for name, value in query.items():
            if value in self.api_keys:
                record.violations.append(f"the API key appeared in the URL (query parameter {name!r})")
        self.sessions.append(record)
        session = session_cls(self, ws, record, self.faults.next(), query, request.headers)
        self._say(f"{record.protocol} session {len(self.sessions)} opened")
        try:
            await session.run()
        finally:
            self._say(f"{record.protocol} session {len(self.sessions)} ended: close {record.close_code} "
                      f"({record.closed_by}); finals={len(record.finals)} violations={record.violations}")
