"""Run a coroutine from synchronous code, also where an event loop already runs (Jupyter, IPython).

``asyncio.run`` refuses to start inside a running loop, which is where a notebook's cells run; there
:func:`run_sync` runs the coroutine to completion on a fresh loop in a worker thread and hands back
its result or its exception. Elsewhere it is ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, run on a new event loop (in a thread if one is running here)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = asyncio.run(coro)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller below
            out["error"] = e

    worker = threading.Thread(target=target, name="astroreason-run-sync", daemon=True)
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
