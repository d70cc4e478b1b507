"""Run folders: made safely, written by one run at a time.

:class:`RunLock` keeps ``RUN_DIR/.lock`` (the writer's pid, host and start) while a run writes; a
second run into the folder is refused in one line, and a lock whose process is gone is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from astroreason.errors import AstroReasonError, ConfigError

LOCK_FILE = ".lock"


def make_run_folder(folder: Path) -> Path:
    """Make the run folder (and its parents); a file in its place is a one-line error."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder}: is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"--out {folder}: cannot make the folder ({err.strerror or err})"
        ) from None
    return folder


class RunLock:
    """One writer per run folder: ``RUN_DIR/.lock`` holds the owner's pid, host and start time.

    A second run into the same folder is refused in one line naming the owner (exit 2 through the
    CLI). A lock whose process is gone (a killed run, on this host) is stale and taken over.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._held = False

    def __enter__(self) -> RunLock:
        make_run_folder(self.path.parent)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner):
                    since = time.strftime("%H:%M:%S", time.localtime(owner.get("started", 0)))
                    raise AstroReasonError(
                        f"{self.path.parent}: another run (pid {owner.get('pid')} on "
                        f"{owner.get('host')}, since {since}) is writing here; wait for it or "
                        "choose another output folder"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._held = True
            return self
        raise AstroReasonError(f"{self.path}: cannot take the run folder's lock")

    def __exit__(self, *exc) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def _owner(self) -> dict[str, Any] | None:
        try:
            owner = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None  # unreadable or half-written by a killed run: stale
        return owner if isinstance(owner, dict) else None


def _alive(owner: dict[str, Any]) -> bool:
    """Whether a lock's owner still runs (another host's owner is assumed alive)."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        return pid_alive(int(owner.get("pid", -1)))
    except (TypeError, ValueError):
        return False


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (one we may not signal counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
