"""A zero-latency OpenAI-compatible chat server for fault injection and overhead benchmarks.

It speaks just enough of the API (``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``)
for :class:`~astroreason.policies.openai_chat.OpenAIChatPolicy`. It is never a stand-in for a model:
tests of real behaviour use the real vLLM server. Faults: ``mode`` = ``ok``, ``garbage`` (200 with a
non-JSON body), ``error500`` (every request fails with 500), ``flaky`` (the first ``fail_first``
requests fail with 503), ``slow`` (sleeps ``delay_s`` before answering); ``stop()`` kills it mid-run.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _answer_last_class(body: dict[str, Any]) -> str:
    return "<answer>none</answer>"


class StubChatServer:
    """A local HTTP server in a background thread; use as a context manager."""

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
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()  # answer at once: no Nagle delay between headers and body
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path.endswith("/models"):
                    self._send(
                        200, json.dumps({"object": "list", "data": [{"id": "stub"}]}).encode()
                    )
                else:
                    self._send(200, b"{}")

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                if server.dead:  # killed: drop the connection without an answer
                    self.close_connection = True
                    return
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                with server._lock:
                    server.requests += 1
                    count = server.requests
                if server.mode == "slow":
                    time.sleep(server.delay_s)
                if server.mode == "error500":
                    return self._send(500, b'{"error": {"message": "boom"}}')
                if server.mode == "flaky" and count <= server.fail_first:
                    return self._send(503, b'{"error": {"message": "busy"}}')
                if server.mode == "garbage":
                    return self._send(200, b"<html>not json", "text/html")
                text = server.reply(body)
                resp = {
                    "id": f"stub-{count}",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", "stub"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                self._send(200, json.dumps(resp).encode())

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> StubChatServer:
        """Start serving in the background."""
        self._thread.start()
        return self

    def start_process(self) -> StubChatServer:
        """Serve from a forked child process instead (no GIL shared with the client: benchmarks)."""
        import multiprocessing

        self._proc = multiprocessing.get_context("fork").Process(
            target=self._httpd.serve_forever, daemon=True
        )
        self._proc.start()
        return self

    @property
    def pid(self) -> int | None:
        """Process id of the serving child (``start_process``), else None."""
        proc = getattr(self, "_proc", None)
        return proc.pid if proc is not None else None

    def stop(self) -> None:
        """Stop serving and close the socket (later requests get connection errors)."""
        self.dead = True
        proc = getattr(self, "_proc", None)
        if proc is not None:
            proc.terminate()
            proc.join(5)
            self._httpd.server_close()
            return
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> StubChatServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
