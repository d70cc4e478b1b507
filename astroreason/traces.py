"""Episode traces: one JSON line per finished episode in ``RUN_DIR/traces.jsonl``, images beside it.

Each line holds ``metrics`` (numbers that evaluation aggregates) apart from ``logs`` (what people read:
messages, tool calls, errors). Images are written as lossless PNG files under ``RUN_DIR/images/<id>/``
and referenced from the messages by relative path. Evaluation and the trace viewer read the same file.

Writes are append-only; :class:`TraceWriter` drops a torn last line on open, and ``done_ids`` lets a run
resume. The exact guarantee:

* Killed process (any signal, ``kill -9``, OOM): no loss. :meth:`TraceWriter.write` hands the whole
  line to the operating system (write + flush) before it returns, and only then does the runner count
  the episode as written; the kernel keeps it whatever happens to the process. The episodes in flight
  are lost and re-run on resume.
* Machine crash or power loss: a background timer fsyncs the file at most ``sync_every_s`` (1 s) after
  a write, and closing fsyncs it, so at most the episodes written in the last second can be lost (they
  are re-run on resume). Image files are written before their line but never fsynced, so after a
  machine crash a surviving line may point at a lost image (as with per-episode fsync before).
* Never a duplicate: an id already in the file is skipped, on resume and within a run.

An fsync per episode cost 0.2-0.4 ms, as much as a turn's image encoding (``make bench``); pass
``sync_every_s=0`` to :class:`TraceWriter` to get it back.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from astroreason.errors import DataError
from astroreason.images import encode_image

TRACES_FILE = "traces.jsonl"


def episode_id(condition: str, split: str, row_id: int, sample: int) -> str:
    """Deterministic episode id: the same (condition, split, row, sample) always gets the same id."""
    return f"{condition}-{split}-{int(row_id)}-{int(sample)}"


class TraceWriter:
    """Append-only, crash-safe writer of ``traces.jsonl`` and its images."""

    def __init__(self, run_dir: str | os.PathLike, sync_every_s: float = 1.0):
        self.run_dir = Path(run_dir)
        self.sync_every_s = sync_every_s
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / TRACES_FILE
        self._repair()
        self.done_ids = (
            {rec["id"] for rec in read_traces(self.run_dir)} if self.path.exists() else set()
        )
        self._fh = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None  # the pending fsync, if any

    def _repair(self) -> None:
        """Drop a torn last line left by a killed run."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(cut)

    def save_images(self, ep_id: str, images: list[np.ndarray]) -> list[str]:
        """Write an episode's images; returns paths relative to the run folder."""
        folder = self.run_dir / "images" / ep_id
        folder.mkdir(parents=True, exist_ok=True)
        rels = []
        for k, img in enumerate(images):
            rel = f"images/{ep_id}/{k}.png"
            data, _ = encode_image(img, "png")
            (self.run_dir / rel).write_bytes(data)
            rels.append(rel)
        return rels

    def write(self, record: dict[str, Any]) -> None:
        """Append one episode unless its id is already done; see the module docstring.

        On return the line is with the operating system (it survives the process); a background
        timer fsyncs it within ``sync_every_s`` (0: at once, here), as do :meth:`sync` and
        :meth:`close`.
        """
        if record["id"] in self.done_ids:
            return
        self._fh.write(json.dumps(record, default=_json_default) + "\n")
        self._fh.flush()
        self.done_ids.add(record["id"])
        if self.sync_every_s <= 0:
            os.fsync(self._fh.fileno())
            return
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(self.sync_every_s, self._sync_from_timer)
                self._timer.daemon = True
                self._timer.start()

    def _sync_from_timer(self) -> None:
        with self._lock:  # what was flushed before this point is covered; later writes re-arm
            if self._timer is None or self._fh.closed:
                return
            self._timer = None
            fd = os.dup(self._fh.fileno())  # close() may run during the fsync
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync(self) -> None:
        """Make what was written so far durable against a machine crash (fsync)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._fh.closed:
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Make everything durable (fsync) and close the file."""
        if self._fh.closed:
            return
        try:
            self.sync()
        finally:
            self._fh.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_traces(run_dir: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Yield the episodes of a run (a torn last line is skipped; other bad lines are errors)."""
    path = Path(run_dir) / TRACES_FILE
    if not path.exists():
        raise DataError(
            path, "no traces here (run `astroreason rollout` or `astroreason eval` first)"
        )
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines) and not line.endswith("\n"):
                return
            raise DataError(path, f"line {n} is not valid JSON ({e.msg})") from None


def messages_for_trace(messages: list[dict[str, Any]], image_paths: list[str]) -> list[dict]:
    """The conversation with image arrays replaced by ``{"type": "image", "path": ...}`` in order."""
    it = iter(image_paths)
    out = []
    for m in messages:
        m2 = dict(m)
        if isinstance(m.get("content"), list):
            m2["content"] = [
                {"type": "image", "path": next(it, None)} if b.get("type") == "image" else dict(b)
                for b in m["content"]
            ]
        out.append(m2)
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
