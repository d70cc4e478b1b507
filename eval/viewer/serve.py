"""Serve a run folder (viewer and images) over local HTTP (``astroreason traces view``)."""

from __future__ import annotations

from pathlib import Path

from astroreason.eval.viewer.render import VIEWER_FILE, write_viewer


def serve_viewer(run_dir: str | Path, port: int = 8765, *, block: bool = True):
    """Serve the run folder (viewer and images) on http://127.0.0.1:PORT/traces.html.

    Writes the viewer first when it is missing. With ``block`` (the CLI), serves until Ctrl-C;
    otherwise starts a daemon thread and returns the server (call ``shutdown()``).
    """
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = Path(run_dir)
    if not (root / VIEWER_FILE).exists():
        write_viewer(root)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # noqa: D102 - silence per-request logs
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/{VIEWER_FILE}"
    server.url = url  # type: ignore[attr-defined]
    if not block:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
    print(f"serving {root} at {url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return server
