"""Runner overhead per turn against a zero-latency stub server, and the cost of image encoding.

Everything on our side of the wire is measured: env step (parse + tool + view), message conversion
with image encoding, the HTTP request through the OpenAI client, and reply parsing. The stub answers
at once, so wall time per turn is our overhead plus the stub's own (small) HTTP handling.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np


def _table(rows):
    from rich.console import Console
    from rich.table import Table

    t = Table()
    for c in ("metric", "value", "target", "ratio"):
        t.add_column(c)
    for r in rows:
        t.add_row(*[str(x) for x in r])
    Console().print(t)


def _encoding_rows():
    from astroreason.images import encode_image

    rows = []
    from astroreason.data.synth_galaxy import GalaxySynthConfig, render_galaxy
    from astroreason.tools import crop, overview

    source, meta = render_galaxy(5, np.random.default_rng(1), GalaxySynthConfig(n=10, size=256))
    for side in (64, 128, 256):
        if side == 256:
            img = source
        else:
            x0, y0, x1, y1 = (v / 256 * 1000 for v in meta["bbox"])
            img = crop(source, overview(source, side)[1], [x0, y0, x1, y1], side)[0]
        for fmt in ("png", "jpeg"):
            ts = []
            for _ in range(30):
                t0 = time.perf_counter()
                data, _ = encode_image(img, fmt)
                ts.append(time.perf_counter() - t0)
            extra = ""
            if fmt == "jpeg":
                from io import BytesIO

                from PIL import Image

                back = np.asarray(Image.open(BytesIO(data)).convert("RGB")).astype(int)
                err = np.abs(back - img.astype(int))
                extra = f" (max |err| {err.max()}, mean {err.mean():.2f} levels)"
            rows.append(
                (
                    f"encode {side}^2 galaxy view, {fmt}",
                    f"{np.median(ts) * 1e3:.2f} ms, {len(data) // 1024} kB{extra}",
                    "-",
                    "-",
                )
            )
    return rows


def main() -> None:
    """Print the runner benchmark table."""
    import gymnasium

    import astroreason.envs  # noqa: F401
    from astroreason.data.synth_galaxy import GalaxySynthConfig, write_galaxy_file
    from astroreason.policies.openai_chat import OpenAIChatPolicy
    from astroreason.protocol import format_tool_call
    from astroreason.rollout import RolloutConfig, run_rollouts
    from astroreason.stub_server import StubChatServer
    from astroreason.traces import read_traces

    tmp = Path(tempfile.mkdtemp())
    data = tmp / "g.h5"
    write_galaxy_file(data, GalaxySynthConfig(n=200, size=256, seed=0), progress=False)
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[0]})  # the runner gets one core; the stub (forked later) another

    def reply(body):
        if not any(m["role"] == "tool" for m in body["messages"]):
            return format_tool_call("zoom", {"center": [500, 500], "factor": 2})
        return "<answer>Merging</answer>"

    rows = []
    for view in (64, 128):
        src = gymnasium.make(
            "AstroReason/Galaxy-v0", data=str(data), split="all", view_size=view
        ).unwrapped.source

        def make(view=view, src=src):
            return gymnasium.make("AstroReason/Galaxy-v0", data=src, split="all", view_size=view)

        srv = StubChatServer(reply).start_process()  # its own process: no GIL shared with us
        if len(cores) > 1:
            os.sched_setaffinity(srv.pid, {cores[-1]})
        try:
            pol = OpenAIChatPolicy(srv.base_url, "stub")
            run_dir = tmp / f"run{view}"
            t0 = time.perf_counter()
            s = run_rollouts(make, pol, run_dir, RolloutConfig(concurrency=1, progress=False))
            wall = time.perf_counter() - t0
            pol8 = OpenAIChatPolicy(srv.base_url, "stub")
            t8 = time.perf_counter()
            run_rollouts(
                make, pol8, tmp / f"run{view}-c8", RolloutConfig(concurrency=8, progress=False)
            )
            wall8 = time.perf_counter() - t8
        finally:
            srv.stop()
        recs = list(read_traces(run_dir))
        turns = sum(r["metrics"]["turns"] for r in recs)
        per_turn = [lat for r in recs for lat in r["metrics"]["policy_latency_s"]]
        env_s = [r["metrics"]["env_s"] / r["metrics"]["turns"] for r in recs]
        p50 = np.median(np.array(per_turn) + np.median(env_s)) * 1e3
        rows.append(
            (
                f"turn p50, view {view}, concurrency 1 (request+encode+env)",
                f"{p50:.2f} ms",
                "< 2 ms",
                f"{p50 / 2:.2f}",
            )
        )
        rows.append(
            (
                f"turns/s, view {view}, concurrency 1, one core (incl. traces)",
                f"{turns / wall:.0f}",
                ">= 500",
                f"{turns / wall / 500:.2f}",
            )
        )
        rows.append(
            (
                f"turns/s, view {view}, concurrency 8, one core (incl. traces)",
                f"{turns / wall8:.0f}",
                ">= 500",
                f"{turns / wall8 / 500:.2f}",
            )
        )
        rows.append((f"env step p50, view {view}", f"{np.median(env_s) * 1e3:.2f} ms", "-", "-"))
        assert s.written == len(recs)
    rows += _encoding_rows()
    _table(rows)


if __name__ == "__main__":
    main()
