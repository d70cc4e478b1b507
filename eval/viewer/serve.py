"""Serve a run folder (viewer and images) over local HTTP (``astroreason traces view --serve``).

Only regular files inside the run folder are served: a directory (no listings) or a path that
resolves outside the folder (``..``, a symlink pointing out) is a 404.
"""

from __future__ import annotations

import errno
import os
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from astroreason.errors import ConfigError
from astroreason.eval.viewer.render import VIEWER_FILE, write_viewer
from astroreason.eval.viewer.show import printable


class RunFolderHandler(SimpleHTTPRequestHandler):
    """GET/HEAD of the regular files under ``directory`` (resolved); anything else is a 404."""

    def log_message(self, *args):  # noqa: D102 - silence per-request logs
        pass

    def served_file(self) -> Path | None:
        """The file the request names, resolved, or None when it is not one to serve."""
        top = Path(self.directory).resolve()
        try:
            path = Path(self.translate_path(self.path)).resolve(strict=True)
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a NUL byte
            return None
        return path if path.is_file() and path.is_relative_to(top) else None

    def send_head(self):
        """Headers of the file (returned open for the body), or a 404."""
        path = self.served_file()
        try:
            f = open(path, "rb") if path else None  # noqa: SIM115 - the caller closes it
        except OSError:
            f = None
        if f is None:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        try:
            st = os.fstat(f.fileno())
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-type", self.guess_type(str(path)))
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("Last-Modified", self.date_time_string(st.st_mtime))
            self.end_headers()
            return f
        except BaseException:
            f.close()
            raise

    def list_directory(self, path):  # noqa: D102 - never reached; no listings, ever
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None


def serve_viewer(run_dir: str | Path, port: int = 8765, *, block: bool = True):
    """Serve the run folder (viewer and images) on http://127.0.0.1:PORT/traces.html.

    Writes the viewer first when it is missing. ``port`` 0 takes a free one; a port outside
    1-65535, in use or refused is a ConfigError. With ``block`` (the CLI), serves until Ctrl-C;
    otherwise starts a daemon thread and returns the server (call ``shutdown()``).
    """
    import functools
    import threading

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: not a port (1-65535)")
    root = Path(run_dir)
    if not (root / VIEWER_FILE).exists():
        write_viewer(root)
    handler = functools.partial(RunFolderHandler, directory=str(root))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as e:
        why = e.strerror or str(e)
        if e.errno == errno.EADDRINUSE:
            raise ConfigError(f"--port {port}: in use ({why}); choose another") from None
        raise ConfigError(f"--port {port}: cannot listen there ({why})") from None
    url = f"http://127.0.0.1:{server.server_address[1]}/{VIEWER_FILE}"
    server.url = url  # type: ignore[attr-defined]
    if not block:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
    print(f"serving {printable(root)} at {url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return server
