"""Runner overhead per turn against a zero-latency stub server, and the cost of image encoding.

Everything on our side of the wire is measured: env step (parse + tool + view), message conversion
with image encoding, the HTTP request over the policy's pooled connections, and reply parsing; turns/s
also counts writing traces (JSON lines and PNG files). The stub answers at once, so wall time per turn
is our overhead plus the stub's own HTTP handling, printed apart ("stub CPU per request"). The runner
gets one core; the stub, in its own process, gets another when there is one, else shares the runner's
core (``taskset -c 0``), and then its CPU time is inside our figures too.
"""

from __future__ import annotations

import os
import sys
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


def _median_ms(fn, n=30):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return np.median(ts) * 1e3, out


def _encoding_rows():
    """Encoding cost per view: a noisy overview (as the env's first views) and an upsampled crop.

    PNG is compared with Pillow's fastest PNG (what the encoder replaced), JPEG by its error.
    """
    from io import BytesIO

    from PIL import Image

    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, render_galaxy
    from astroreason.images import _encode
    from astroreason.tools import crop, overview

    def pillow_png(img):
        buf = BytesIO()
        Image.fromarray(img).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    rows = []
    source, meta = render_galaxy(5, np.random.default_rng(1), GalaxySynthConfig(n=10, size=256))
    x0, y0, x1, y1 = (v / 256 * 1000 for v in meta["bbox"])
    for side in (64, 128, 256):
        views = {
            "overview": overview(source, side)[0],
            "zoomed crop": crop(source, overview(source, side)[1], [x0, y0, x1, y1], side)[0],
        }
        for what, img in views.items():
            for fmt in ("png", "jpeg"):
                ms, (data, _) = _median_ms(lambda img=img, fmt=fmt: _encode(img, fmt))
                if fmt == "jpeg":
                    back = np.asarray(Image.open(BytesIO(data)).convert("RGB")).astype(int)
                    err = np.abs(back - img.astype(int))
                    extra = f" (max |err| {err.max()}, mean {err.mean():.2f} levels)"
                else:
                    ms_pil, ref = _median_ms(lambda img=img: pillow_png(img))
                    extra = f" (Pillow level 1: {ms_pil:.2f} ms, {len(ref) // 1024} kB)"
                rows.append(
                    (
                        f"encode {side}^2 galaxy {what}, {fmt}",
                        f"{ms:.2f} ms, {len(data) // 1024} kB{extra}",
                        "-",
                        "-",
                    )
                )
    return rows


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of a process so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Print the runner benchmark table."""
    import gymnasium

    import astroreason.envs  # noqa: F401
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file
    from astroreason.policies.openai_chat import OpenAIChatPolicy
    from astroreason.protocol import format_tool_call
    from astroreason.rollout import RolloutConfig, run_rollouts

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from stub_server import StubChatServer  # the tests' fault-injection server

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
        stub0 = _cpu_s(srv.pid)
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
            stub1 = _cpu_s(srv.pid)
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
        if stub0 is not None and stub1 is not None:
            where = "own core" if len(cores) > 1 else "same core, inside the figures above"
            rows.append(
                (
                    f"stub CPU per request, view {view} ({where})",
                    f"{(stub1 - stub0) / (2 * turns) * 1e3:.2f} ms",
                    "-",
                    "-",
                )
            )
        assert s.written == len(recs)
    rows += _encoding_rows()
    _table(rows)


if __name__ == "__main__":
    main()
