"""The caption web server: the page, ``/events`` (SSE), ``/ws`` (WebSocket), all on one loop.

Runs inside the sharing loop (``share.py``); nothing here is called from another thread.
Every client has its own queue: broadcasting never awaits a client, and a client that falls
``client_queue`` events behind (a phone on bad Wi-Fi) is disconnected; its browser
reconnects with ``Last-Event-ID`` and resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import secrets
from importlib import resources

from aiohttp import WSMsgType, web

from app.core.sharing.config import ShareConfig, config_style, is_loopback  # noqa: F401 (config_style: part of this API)
from app.core.sharing.feed import Feed, Item

log = logging.getLogger(__name__)

TOKEN_BYTES = 24          # 192 bits
WRITE_TIMEOUT_S = 5.0     # a client that takes longer to accept bytes is dropped
KEEPALIVE_S = 15.0        # comment lines keep proxies and phones from closing idle streams
MAX_REQUEST_BYTES = 1024  # GET only: any body is refused
SPARE_CONNECTIONS = 20    # page loads beyond the viewer cap before connections are refused
KEEPALIVE_TIMEOUT_S = 15.0

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",   # the token is in the URL: never hand it to another site
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_DROP = object()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _asset(name: str) -> bytes:
    return resources.files("app.core.sharing").joinpath("assets", name).read_bytes()


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        transport.close()


class Client:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.queue: asyncio.Queue = asyncio.Queue()
        self.dropped = False

    def push(self, item, limit: int) -> None:
        if self.dropped:
            return
        if self.queue.qsize() >= limit:
            self.drop()
        else:
            self.queue.put_nowait(item)

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            self.queue.put_nowait(_DROP)


class CaptionServer:
    def __init__(self, config: ShareConfig, feed: Feed) -> None:
        self.config = config
        self.feed = feed
        self.token: str | None = new_token() if config.needs_token else None
        self.clients: set[Client] = set()
        self.dropped_slow = 0
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.AbstractServer | None = None
        self.refused_connections = 0
        self.port: int | None = None
        self._assets = {name: _asset(name) for name in ("index.html", "page.js", "page.css")}

    # --- lifecycle (on the loop) ------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_REQUEST_BYTES,
                              handler_args={"max_line_size": 4096, "max_field_size": 4096})
        app.router.add_get("/", self._page)
        app.router.add_get("/page.js", self._static)
        app.router.add_get("/page.css", self._static)
        app.router.add_get("/config.json", self._page_config)
        app.router.add_get("/events", self._sse)
        app.router.add_get("/ws", self._ws)
        # handler_cancellation: a viewer who closes the tab frees its slot at once, not at
        # the next keep-alive write.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0, handler_cancellation=True,
                                     keepalive_timeout=KEEPALIVE_TIMEOUT_S)
        await self._runner.setup()
        # Our own listening socket (not a TCPSite) so that connections beyond the cap are
        # closed on accept, before they cost a request handler.
        self._listener = await asyncio.get_running_loop().create_server(
            self._protocol, self.config.host.strip("[]"), self.config.port,
            backlog=self.config.max_clients, reuse_address=True)
        self.port = self._listener.sockets[0].getsockname()[1]

    @property
    def max_connections(self) -> int:
        return self.config.max_clients + SPARE_CONNECTIONS

    def _protocol(self):
        handlers = self._runner.server
        if len(handlers.connections) >= self.max_connections:
            self.refused_connections += 1
            return _Refuse()
        return handlers()

    async def close(self) -> None:
        for client in list(self.clients):
            client.drop()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def broadcast(self, item: Item) -> None:
        limit = self.config.client_queue
        for client in list(self.clients):
            client.push(item, limit)

    def regenerate_token(self) -> None:
        """A new link; everyone who joined with the old one is disconnected."""
        if self.token is None:
            return
        self.token = new_token()
        for client in list(self.clients):
            client.drop()

    @property
    def url(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "::"):      # listening everywhere: give the LAN address
            from app.core.sharing.config import lan_address
            host = lan_address() or host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        base = f"http://{host}:{self.port}/"
        return f"{base}?token={self.token}" if self.token else base

    # --- request guard ----------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        try:
            self._check(request)
            response = await handler(request)
        except web.HTTPException as exc:
            response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
        if not response.prepared:   # streams set their headers before preparing
            response.headers.update(SECURITY_HEADERS)
        return response

    def _check(self, request: web.Request) -> None:
        if request.method not in ("GET", "HEAD"):
            raise web.HTTPMethodNotAllowed(request.method, ["GET"], text="Only GET is served.\n")
        if request.body_exists or (request.content_length or 0) > 0:
            raise web.HTTPRequestEntityTooLarge(max_size=0, actual_size=request.content_length or 0,
                                                text="Requests must not carry a body.\n")
        if self.token is not None:
            given = request.query.get("token", "")
            if not given:
                raise web.HTTPUnauthorized(text="This caption page needs the link with its "
                                                "access token.\n")
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise web.HTTPForbidden(text="This link's access token is not valid (it may have "
                                             "been renewed).\n")
        else:
            # Loopback without a token: refuse other sites' names that resolve to 127.0.0.1
            # (DNS rebinding would otherwise let any web page read the captions).
            host = request.host.rsplit(":", 1)[0] if not request.host.startswith("[") \
                else request.host.split("]")[0] + "]"
            if not is_loopback(host):
                raise web.HTTPForbidden(text="Open the caption page through localhost or "
                                             "127.0.0.1.\n")

    def _tokened(self, path: str) -> str:
        return f"{path}?token={self.token}" if self.token else path

    # --- the page ---------------------------------------------------------------------------

    async def _page(self, request: web.Request) -> web.Response:
        page = self._assets["index.html"].decode()
        for name in ("page.js", "page.css"):
            page = page.replace(f'"{name}"', f'"{html.escape(self._tokened(name))}"')
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.path.lstrip("/")
        kind = "text/javascript" if name.endswith(".js") else "text/css"
        return web.Response(body=self._assets[name], content_type=kind, charset="utf-8")

    async def _page_config(self, request: web.Request) -> web.Response:
        return web.json_response({"style": self.config.style})

    # --- streams ----------------------------------------------------------------------------

    def _join(self, request: web.Request, last_id: str | None) -> tuple[Client, list[Item]]:
        if len(self.clients) >= self.config.max_clients:
            raise web.HTTPServiceUnavailable(text="Too many people are viewing the captions "
                                                  "right now; try again later.\n",
                                             headers={"Retry-After": "10"})
        client = Client(self.token)
        # Replay and registration happen without an await in between: no event is missed
        # or sent twice.
        backlog = self.feed.replay(self.feed.parse_last_id(last_id))
        self.clients.add(client)
        return client, backlog

    def _leave(self, client: Client) -> None:
        self.clients.discard(client)
        if client.dropped and client.token == self.token:
            self.dropped_slow += 1

    async def _next(self, client: Client):
        try:
            return await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
        except asyncio.TimeoutError:
            return None

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        client, backlog = self._join(request, last)
        try:
            response = web.StreamResponse(headers={
                **SECURITY_HEADERS, "Content-Type": "text/event-stream; charset=utf-8",
                "X-Accel-Buffering": "no"})
            await response.prepare(request)

            async def send(data: bytes) -> None:
                await asyncio.wait_for(response.write(data), WRITE_TIMEOUT_S)

            await send(b"retry: 1000\n\n" + b"".join(i.sse for i in backlog))
            while True:
                item = await self._next(client)
                if item is _DROP:
                    break
                await send(b": keepalive\n\n" if item is None else item.sse)
        except (ConnectionError, asyncio.TimeoutError, RuntimeError) as exc:
            log.debug("caption stream client left: %s", type(exc).__name__)
        finally:
            self._leave(client)
        return response

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        client, backlog = self._join(request, request.query.get("last_event_id"))
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=MAX_REQUEST_BYTES)
        ws.headers.update(SECURITY_HEADERS)
        reader = None
        try:
            await ws.prepare(request)

            async def read() -> None:   # viewers only listen; anything they send is ignored
                async for msg in ws:
                    if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                        break
                client.drop()

            reader = asyncio.ensure_future(read())
            for item in backlog:
                await asyncio.wait_for(ws.send_str(item.ws), WRITE_TIMEOUT_S)
            while True:
                item = await self._next(client)
                if item is _DROP:
                    break
                if item is not None:
                    await asyncio.wait_for(ws.send_str(item.ws), WRITE_TIMEOUT_S)
        except (ConnectionError, asyncio.TimeoutError, RuntimeError) as exc:
            log.debug("caption socket client left: %s", type(exc).__name__)
        finally:
            self._leave(client)
            if reader is not None:
                reader.cancel()
            if not ws.closed:
                try:
                    await asyncio.wait_for(ws.close(), 1.0)
                except (ConnectionError, asyncio.TimeoutError, RuntimeError):
                    pass
        return ws
