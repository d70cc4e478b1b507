"""A zero-latency OpenAI-compatible chat server for fault injection and overhead benchmarks.

It speaks just enough of the API (``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``)
for :class:`~astroreason.policies.openai_chat.OpenAIChatPolicy`. It is never a stand-in for a model:
tests of real behaviour use the real vLLM server. Faults: ``mode`` = ``ok``, ``garbage`` (200 with a
non-JSON body), ``message`` (``reply`` gives the whole ``message`` value, malformed ones
included), ``error500`` (every request fails with 500), ``flaky`` (the first ``fail_first``
requests fail with 503), ``slow`` (sleeps ``delay_s`` before answering); ``stop()`` kills it mid-run,
and setting ``dead`` makes it drop every later request's connection without an answer.

It is a bare asyncio HTTP/1.1 server (keep-alive, ``Content-Length`` bodies, no chunked requests), so
its own cost per request (0.1-0.2 ms with two 128^2 images, printed by ``make bench``) stays small next
to the runner's; ``http.server`` cost 0.3-0.45 ms.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

try:  # faster on large bodies (base64 images); a dependency of vLLM
    from msgspec.json import decode as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
_MAX_HEAD = 64 * 1024


class _Chat(NamedTuple):
    body: dict[str, Any]
    count: int


def _answer_last_class(body: dict[str, Any]) -> str:
    return "<answer>none</answer>"


def _response(
    code: int, body: bytes, ctype: str = "application/json", close: bool = False
) -> bytes:
    head = (
        f"HTTP/1.1 {code} {_REASONS.get(code, 'Unknown')}\r\n"
        f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        + ("Connection: close\r\n" if close else "")
        + "\r\n"
    )
    return head.encode("latin-1") + body


class StubChatServer:
    """A local HTTP server in a background thread (or process); use as a context manager."""

    def __init__(
        self,
        reply: Callable[[dict[str, Any]], str] = _answer_last_class,
        *,
        mode: str = "ok",
        fail_first: int = 0,
        delay_s: float = 0.0,
    ):
        self.reply = reply
        self.mode = mode
        self.fail_first = fail_first
        self.delay_s = delay_s
        self.requests = 0
        self.dead = False
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._proc = None
        self._stopped = False

    # -- serving -----------------------------------------------------------------------------
    async def _serve(self, ready: threading.Event | None = None) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._done = asyncio.Event()
        self._conns: set[_Connection] = set()
        server = await loop.create_server(lambda: _Connection(self), sock=self._sock)
        if ready is not None:
            ready.set()
        try:
            await self._done.wait()
        finally:
            server.close()
            for c in list(self._conns):
                c.transport.abort()

    def _answer(self, method: str, path: str, raw: bytes) -> tuple[int, bytes, str] | _Chat:
        """A finished answer (code, body, type), or a chat completion to answer."""
        if method == "GET":
            if path.endswith("/models"):
                return 200, b'{"object": "list", "data": [{"id": "stub"}]}', "application/json"
            return 200, b"{}", "application/json"
        if method != "POST":
            return 404, b'{"error": {"message": "not found"}}', "application/json"
        try:
            body = _loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return 400, b'{"error": {"message": "bad JSON"}}', "application/json"
        self.requests += 1  # only the event loop's thread touches it
        return _Chat(body, self.requests)

    def _complete(self, chat: _Chat) -> tuple[int, bytes, str] | None:
        """The answer to a chat completion (None: drop the connection, the server is dead)."""
        body, count = chat
        if self.dead:
            return None
        if self.mode == "error500":
            return 500, b'{"error": {"message": "boom"}}', "application/json"
        if self.mode == "flaky" and count <= self.fail_first:
            return 503, b'{"error": {"message": "busy"}}', "application/json"
        if self.mode == "garbage":
            return 200, b"<html>not json", "text/html"
        text = self.reply(body)
        resp = {
            "id": f"stub-{count}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "message": (
                        text if self.mode == "message" else {"role": "assistant", "content": text}
                    ),
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
        return 200, json.dumps(resp).encode(), "application/json"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> StubChatServer:
        """Start serving from a background thread (its own event loop)."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(ready)), name="stub-chat-server", daemon=True
        )
        self._thread.start()
        ready.wait(10)
        return self

    def start_process(self) -> StubChatServer:
        """Serve from a forked child process instead (no GIL shared with the client: benchmarks)."""
        import multiprocessing

        self._proc = multiprocessing.get_context("fork").Process(
            target=lambda: asyncio.run(self._serve()), daemon=True
        )
        self._proc.start()
        return self

    @property
    def pid(self) -> int | None:
        """Process id of the serving child (``start_process``), else None."""
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        """Stop serving and close the socket (later requests get connection errors)."""
        if self._stopped:
            return
        self._stopped = True
        self.dead = True
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(5)
        elif self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._done.set)
            self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> StubChatServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Connection(asyncio.Protocol):
    """One keep-alive client connection: requests are answered in order, one at a time."""

    def __init__(self, server: StubChatServer):
        self.server = server
        self.buf = bytearray()
        self.busy = False  # a slow answer is pending
        self.transport: asyncio.Transport

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.server._conns.add(self)

    def connection_lost(self, exc) -> None:
        self.server._conns.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._process()

    def _process(self) -> None:
        while not self.busy and not self.transport.is_closing():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    self.transport.abort()
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            path = rest.rpartition(" ")[0]
            headers = {}
            for line in lines[1:]:
                k, sep, v = line.partition(":")
                if sep:
                    headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length") or 0)
            if len(self.buf) < end + 4 + n:
                return
            raw = bytes(self.buf[end + 4 : end + 4 + n])
            del self.buf[: end + 4 + n]
            close = headers.get("connection", "").lower() == "close"
            srv = self.server
            if method == "POST" and srv.dead:  # killed: drop the connection, no answer
                self.transport.abort()
                return
            answer = srv._answer(method, path, raw)
            if isinstance(answer, _Chat):
                if srv.mode == "slow":
                    self.busy = True
                    asyncio.get_running_loop().call_later(
                        srv.delay_s, self._finish_slow, answer, close
                    )
                    return
                answer = srv._complete(answer)
            self._send(answer, close)

    def _finish_slow(self, chat: _Chat, close: bool) -> None:
        self.busy = False
        if self.transport.is_closing():
            return
        self._send(self.server._complete(chat), close)
        self._process()

    def _send(self, answer: tuple[int, bytes, str] | None, close: bool) -> None:
        if answer is None:
            self.transport.abort()
            return
        code, body, ctype = answer
        self.transport.write(_response(code, body, ctype, close))
        if close:
            self.transport.close()
