"""A minimal keep-alive HTTP/1.1 client for JSON POSTs to one server (the policy's chat endpoint).

A request costs ~0.05-0.1 ms of client CPU here, against ~0.15-0.2 ms through aiohttp and ~0.7 ms
through httpx (two 128^2 images), and the runner sends one per turn (``make bench``). It does only what
a chat-completions call needs: POST a body to one ``http://`` or ``https://`` URL over pooled
connections, read a ``Content-Length``, chunked or read-to-close answer, and report connection errors
and timeouts as exceptions. A pooled connection that the server closed while idle (uvicorn does after
5 s) is replaced before use, and a request that fails on a reused connection before any byte of the
answer is sent again once on a new one. Proxies are not supported:
:class:`~astroreason.policies.openai_chat.OpenAIChatPolicy` uses aiohttp when ``HTTP(S)_PROXY`` applies.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
import zlib


class TransportError(Exception):
    """The request did not get a complete answer."""


class ConnectTimeout(TransportError):
    """No connection within the timeout."""


class ReadTimeout(TransportError):
    """No complete answer within the timeout."""


class RemoteProtocolError(TransportError):
    """The server's answer is not valid HTTP/1.1, or it closed the connection mid-answer."""


class _Stale(Exception):
    """A reused connection failed before the answer began: try a new one."""


class HTTP11Pool:
    """Pooled connections to the host of ``url``; :meth:`post` sends to its path.

    Args:
        url: ``http://`` or ``https://`` URL.
        timeout_s: Limit for connecting, and for sending the request plus reading the whole answer.
        max_connections: Connections at most (more requests wait for one).
    """

    def __init__(self, url: str, timeout_s: float, max_connections: int = 256):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url}: not an http:// or https:// URL")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = (parts.scheme == "http" and self.port == 80) or self.port == 443
        self.host_header = host if default else f"{host}:{self.port}"
        self.target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.timeout_s = timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body``; returns (status, answer body). Raises :class:`TransportError`."""
        if any("\r" in k + v or "\n" in k + v for k, v in headers.items()):
            raise ValueError("header names and values must not contain line breaks")
        head = "".join(
            [
                f"POST {self.target} HTTP/1.1\r\nHost: {self.host_header}\r\n",
                *(f"{k}: {v}\r\n" for k, v in headers.items()),
                f"Content-Length: {len(body)}\r\nAccept-Encoding: identity\r\n\r\n",
            ]
        ).encode("latin-1")
        async with self._slots:
            while True:
                conn, reused = await self._connection()
                try:
                    return await self._exchange(conn, head, body, reused)
                except _Stale:
                    continue

    async def _connection(self) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], bool]:
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():  # the server closed it while idle
                writer.close()
                continue
            return (reader, writer), True
        try:
            conn = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl), self.timeout_s
            )
        except asyncio.TimeoutError:
            raise ConnectTimeout(f"no connection within {self.timeout_s:g} s") from None
        except OSError as e:
            raise TransportError(f"{type(e).__name__}: {e}") from None
        return conn, False

    async def _exchange(self, conn, head: bytes, body: bytes, reused: bool) -> tuple[int, bytes]:
        reader, writer = conn
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        fired = False

        def fire() -> None:
            nonlocal fired
            fired = True
            task.cancel()  # type: ignore[union-attr]

        timer = loop.call_later(self.timeout_s, fire)
        started = False  # a byte of the answer has arrived
        keep = False
        try:
            writer.writelines((head, body))
            await writer.drain()
            line = await reader.readuntil(b"\r\n")
            started = True
            status, headers = await self._head(reader, line)
            raw, keep = await self._body(reader, status, headers)
            encoding = headers.get("content-encoding", "identity").lower()
            if encoding in ("gzip", "deflate"):
                raw = zlib.decompress(raw, 47)  # 47: gzip or zlib header, detected
            elif encoding != "identity":
                raise RemoteProtocolError(f"unsupported Content-Encoding {encoding!r}")
            return status, raw
        except asyncio.CancelledError:
            if not fired:
                raise
            if hasattr(task, "uncancel"):  # Python 3.11+: this cancellation is handled here
                task.uncancel()  # type: ignore[union-attr]
            raise ReadTimeout(f"no answer within {self.timeout_s:g} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            if reused and not started:
                raise _Stale from None
            if isinstance(e, OSError):
                raise TransportError(f"{type(e).__name__}: {e}") from None
            raise RemoteProtocolError(
                "the server closed the connection mid-answer"
                if isinstance(e, asyncio.IncompleteReadError)
                else f"bad answer ({e})"
            ) from None
        finally:
            timer.cancel()
            if keep:
                self._idle.append(conn)
            else:
                writer.close()

    @staticmethod
    async def _head(reader: asyncio.StreamReader, line: bytes) -> tuple[int, dict[str, str]]:
        while True:
            version, _, rest = line.decode("latin-1").partition(" ")
            if not version.startswith("HTTP/1."):
                raise ValueError(f"status line {line[:60]!r}")
            status = int(rest[:3])
            headers = {"__version": version}
            while True:
                h = await reader.readuntil(b"\r\n")
                if h == b"\r\n":
                    break
                k, sep, v = h.decode("latin-1").partition(":")
                if not sep:
                    raise ValueError(f"header line {h[:60]!r}")
                headers[k.strip().lower()] = v.strip()
            if not 100 <= status < 200:  # skip interim answers (100 Continue, 103 Early Hints)
                return status, headers
            line = await reader.readuntil(b"\r\n")

    @staticmethod
    async def _body(
        reader: asyncio.StreamReader, status: int, headers: dict[str, str]
    ) -> tuple[bytes, bool]:
        """The answer body, and whether the connection may be reused."""
        conn = headers.get("connection", "").lower()
        keep = conn != "close" and (headers["__version"] != "HTTP/1.0" or conn == "keep-alive")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                        pass
                    return b"".join(parts), keep
                chunk = await reader.readexactly(size + 2)
                parts.append(chunk[:-2])
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"])), keep
        if status in (204, 304):
            return b"", keep
        return await reader.read(), False  # delimited by the end of the connection

    def close(self) -> None:
        """Close the idle connections."""
        while self._idle:
            self._idle.pop()[1].close()
