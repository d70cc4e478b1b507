"""Throughput of the rollout runner against the real vLLM CPU server with the tiny model.

Concurrency 16 against concurrency 1, the same episodes, one server, measured in one run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def main() -> None:
    """Print episodes/s and turns/s at concurrency 1 and 16, and their ratio."""
    import gymnasium
    from rich.console import Console
    from rich.table import Table

    import astroreason.envs  # noqa: F401
    from astroreason.data.synth_galaxy import GalaxySynthConfig, write_galaxy_file
    from astroreason.models.serving import ServeConfig, VLLMServer
    from astroreason.models.tiny import build_tiny_model
    from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
    from astroreason.rollout import RolloutConfig, run_rollouts
    from astroreason.traces import read_traces

    tmp = Path(tempfile.mkdtemp())
    data = tmp / "g.h5"
    write_galaxy_file(data, GalaxySynthConfig(n=100, size=256, seed=0), progress=False)
    model = build_tiny_model(tmp / "tiny")
    sampling = SamplingConfig(temperature=1.0, max_tokens=32, seed=0)
    rows = []
    cfg = ServeConfig(model=str(model), served_model_name="tiny", max_model_len=4096)
    t0 = time.perf_counter()
    with VLLMServer(cfg) as server:
        startup = time.perf_counter() - t0
        for conc in (1, 16):
            pol = OpenAIChatPolicy(server.base_url, "tiny", sampling=sampling)

            def make():
                return gymnasium.make(
                    "AstroReason/Galaxy-v0", data=str(data), split="all", view_size=64, max_turns=3
                )

            run = tmp / f"c{conc}"
            t = time.perf_counter()
            run_rollouts(
                make, pol, run, RolloutConfig(episodes=32, concurrency=conc, progress=False)
            )
            wall = time.perf_counter() - t
            turns = sum(r["metrics"]["turns"] for r in read_traces(run))
            rows.append((conc, 32 / wall, turns / wall))
    table = Table(title=f"vLLM CPU, tiny Qwen3-VL (server start {startup:.0f} s)")
    for c in ("concurrency", "episodes/s", "turns/s"):
        table.add_column(c)
    for conc, eps, tps in rows:
        table.add_row(str(conc), f"{eps:.2f}", f"{tps:.2f}")
    table.add_row("ratio 16/1", f"{rows[1][1] / rows[0][1]:.2f}", f"{rows[1][2] / rows[0][2]:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
