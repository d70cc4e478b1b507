"""The policy's HTTP/1.1 client against scripted servers: framing, keep-alive, stale connections, faults."""

import asyncio
import gzip

import pytest

from astroreason.policies.http11 import (
    HTTP11Pool,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
)


async def _read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    body = await reader.readexactly(int(headers.get("Content-Length", 0)))
    return lines[0], headers, body


def _run(script, requests, **pool_kw):
    """Serve with ``script(reader, writer, state)`` per connection; POST each of ``requests``."""
    state = {"connections": 0, "seen": []}

    async def main():
        async def handle(reader, writer):
            state["connections"] += 1
            try:
                await script(reader, writer, state)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HTTP11Pool(f"http://127.0.0.1:{port}/v1/chat?x=1", **{"timeout_s": 5, **pool_kw})
        out = []
        try:
            for body in requests:
                try:
                    out.append(await pool.post(body, {"Content-Type": "application/json"}))
                except TransportError as e:
                    out.append(e)
                await asyncio.sleep(0.02)  # let the loop see a close by the server
        finally:
            pool.close()
            server.close()
        return out

    return asyncio.run(main()), state


async def _echo_keepalive(reader, writer, state):
    while True:
        line, headers, body = await _read_request(reader)
        state["seen"].append((line, headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def test_keep_alive_reuses_one_connection_and_sends_a_complete_request():
    out, state = _run(_echo_keepalive, [b'{"a": 1}', b"x" * 100_000, b"{}"])
    assert out == [(200, b'{"a": 1}'), (200, b"x" * 100_000), (200, b"{}")]
    assert state["connections"] == 1
    line, headers, _ = state["seen"][0]
    assert line == "POST /v1/chat?x=1 HTTP/1.1"
    assert headers["Host"].startswith("127.0.0.1:") and headers["Content-Length"] == "8"


def test_chunked_gzip_and_interim_answers():
    async def script(reader, writer, state):
        await _read_request(reader)
        z = gzip.compress(b'{"ok": true}')
        writer.write(
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n"
            + b"%x;ext=1\r\n" % 5
            + z[:5]
            + b"\r\n"
            + b"%x\r\n" % (len(z) - 5)
            + z[5:]
            + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        await _read_request(reader)  # the connection is kept
        writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nno")

    out, state = _run(script, [b"{}", b"{}"])
    assert out == [(200, b'{"ok": true}'), (503, b"no")] and state["connections"] == 1


def test_answer_delimited_by_close_then_a_new_connection():
    async def script(reader, writer, state):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")

    out, state = _run(script, [b"1", b"2"])
    assert out == [(200, b"all of it")] * 2 and state["connections"] == 2


def test_connection_closed_by_the_server_while_idle_is_replaced():
    async def script(reader, writer, state):  # answers one request per connection, then hangs up
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()

    out, state = _run(script, [b"1", b"2", b"3"])
    assert out == [(200, b"ok")] * 3 and state["connections"] == 3


def test_stale_connection_failing_before_the_answer_is_retried_once_on_a_new_one():
    async def script(reader, writer, state):
        n = state["connections"]
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if n == 1:  # the first connection reads the next request, then drops it unanswered
            await _read_request(reader)
            writer.transport.abort()
            return
        await reader.read()  # until the client hangs up

    out, state = _run(script, [b"1", b"2"])
    assert out == [(200, b"ok"), (200, b"ok")] and state["connections"] == 2


def test_faults_on_a_fresh_connection_are_errors():
    async def truncated(reader, writer, state):
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()

    (err,), _ = _run(truncated, [b"1"])
    assert isinstance(err, RemoteProtocolError) and "mid-answer" in str(err)

    async def not_http(reader, writer, state):
        await _read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")

    (err,), _ = _run(not_http, [b"1"])
    assert isinstance(err, RemoteProtocolError)

    async def silent(reader, writer, state):
        await _read_request(reader)
        await reader.read()  # never answers; the client hangs up

    (err,), _ = _run(silent, [b"1"], timeout_s=0.2)
    assert isinstance(err, ReadTimeout) and "0.2 s" in str(err)


def test_refused_connection_and_bad_url():
    async def main():
        pool = HTTP11Pool("http://127.0.0.1:9/v1", timeout_s=2)  # discard port: nobody listens
        with pytest.raises(TransportError):
            await pool.post(b"{}", {})
        task = asyncio.current_task()
        assert not task.cancelling() if hasattr(task, "cancelling") else True

    asyncio.run(main())
    with pytest.raises(ValueError, match="not an http"):
        HTTP11Pool("ftp://x/v1", timeout_s=1)


def test_a_timeout_leaves_the_task_usable():
    async def main():
        async def handle(reader, writer):
            await _read_request(reader)
            await reader.read()  # never answers; the client hangs up
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = HTTP11Pool(f"http://127.0.0.1:{port}/", timeout_s=0.1)
        with pytest.raises(ReadTimeout):
            await pool.post(b"{}", {})
        task = asyncio.current_task()
        if hasattr(task, "cancelling"):
            assert task.cancelling() == 0
        await asyncio.sleep(0.01)  # not cancelled: a later await works
        server.close()

    asyncio.run(main())
