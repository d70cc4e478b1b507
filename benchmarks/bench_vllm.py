"""Throughput against the real vLLM CPU server with a tiny Qwen3-VL, measured in one run.

The model is the shipped pretrained agent ``checkpoints/tiny-galaxy-agent`` (``build_tiny_model``
if it is missing or does not serve). Two tables:

1. The rollout runner at concurrency 16 against concurrency 1 (tools condition, same episodes).
2. Eval throughput, our path against vLLM's offline engine on the same prompts. Ours is
   ``run_rollouts`` -> ``OpenAIChatPolicy`` -> ``VLLMServer`` at concurrency 16 (no-tools condition,
   one turn per episode; env resets, image encoding and trace writing included; the envs are built
   before the runner's clock starts). Offline is ``vllm.LLM(...).chat(conversations, params)`` in
   one batch on the very bodies our policy sent (recorded), with the same model, ``max_model_len``,
   KV cache size and sampling (temperature 0, top_p, max_tokens, seed), in a child process after
   the server has stopped (``_vllm_offline.py``). Settings: every request generates exactly
   ``MAX_TOKENS`` (``ignore_eos``), or the model's natural greedy replies. Startup is excluded from
   both, and both warm up first on prompts of *other* galaxies; every timed run has galaxies of its
   own, so its prompts are cold in vLLM's prefix and multimodal caches on both sides. Each figure
   is the median of ``REPEATS`` runs (the runs of all settings interleaved). Diagnostic rows:
   recorded bodies replayed by the HTTP client alone (aiohttp) (the server plus HTTP, without env or traces),
   and everything at concurrency 128 (all requests at once, like the offline batch).
The HTTP client was chosen here: a home-made keep-alive HTTP/1.1 client against aiohttp on the
recorded bodies, same server, concurrency 16, 8 alternating pairs of 64-request rounds (2026-12-03):
aiohttp +7.3% requests/s in sum, per-pair median -6.6% (range -14% to +69%), 0.2 ms more client CPU
per request (0.7% of the 2-core machine). No difference that matters: aiohttp is the only client.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "tiny-galaxy-agent"
EPISODES = 128  # per timed eval run (one request each)
WARM_EPISODES = 48
REPEATS = 3  # timed eval runs per setting and path, each on galaxies of its own (cold prompts)
CONCURRENCY = 16
MAX_MODEL_LEN = 4096
VIEW_SIZE = 64
TEMPERATURE = 0.0
MAX_TOKENS = 48
SEED = 0


def with_ignore_eos(payload: bytes) -> bytes:
    """The chat-completions JSON body with ``"ignore_eos": true`` added (vLLM's extra parameter)."""
    payload = payload.rstrip()
    if not payload.endswith(b"}"):
        raise ValueError("not a JSON object")
    return payload[:-1] + b', "ignore_eos": true}'


def _policy(base_url: str, model: str, *, ignore_eos: bool):
    """``OpenAIChatPolicy`` that keeps every request body it sends (optionally with ignore_eos)."""
    from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig

    class RecordingPolicy(OpenAIChatPolicy):
        def __init__(self) -> None:
            sampling = SamplingConfig(temperature=TEMPERATURE, max_tokens=MAX_TOKENS, seed=SEED)
            super().__init__(base_url, model, sampling=sampling)
            self.payloads: list[bytes] = []

        def request_payload(self, info: dict[str, Any]) -> bytes:
            payload = super().request_payload(info)
            if ignore_eos:
                payload = with_ignore_eos(payload)
            self.payloads.append(payload)
            return payload

    return RecordingPolicy()


def _make_env(data: Path, **kw: Any):
    import gymnasium

    import astroreason.envs  # noqa: F401

    opts = {"condition": "no-tools", "max_turns": 1, **kw}
    return gymnasium.make(
        "AstroReason/Galaxy-v0", data=str(data), split="all", view_size=VIEW_SIZE, **opts
    )


def _eval_run(
    server, data: Path, run: Path, n: int, *, ignore_eos: bool, conc: int = CONCURRENCY
) -> dict[str, Any]:
    """``n`` no-tools episodes (one turn each) through our runner at concurrency ``conc``."""
    from astroreason.rollout import RolloutConfig, run_rollouts
    from astroreason.traces import read_traces

    pol = _policy(server.base_url, server.model_name, ignore_eos=ignore_eos)
    cpu = time.process_time()
    summary = run_rollouts(
        lambda: _make_env(data),
        pol,
        run,
        RolloutConfig(episodes=n, concurrency=conc, progress=False),
    )
    cpu = time.process_time() - cpu  # includes building the envs (small)
    traces = list(read_traces(run))
    return {
        "payloads": pol.payloads,
        "wall": summary.wall_s,  # from after the envs are built to the last trace written
        "cpu": cpu,
        "requests": sum(r["metrics"]["turns"] for r in traces),
        "prompt_tokens": sum(r["metrics"]["prompt_tokens"] for r in traces),
        "completion_tokens": sum(r["metrics"]["completion_tokens"] for r in traces),
        "latency": statistics.fmean(x for r in traces for x in r["metrics"]["policy_latency_s"]),
    }


def _bodies(data: Path, n: int) -> list[bytes]:
    """The turn-1 bodies our policy would send for ``n`` episodes of ``data`` (no server needed)."""
    env = _make_env(data)
    pol = _policy("http://127.0.0.1:9/v1", "tiny", ignore_eos=True)
    for i in range(n):
        _, info = env.reset(seed=i, options={"index": i})
        pol.request_payload(info)
    env.close()
    return pol.payloads


async def _replay(
    url: str, bodies: list[bytes], n: int, warm: list[bytes], conc: int = CONCURRENCY
) -> dict[str, Any]:
    """POST ``n`` bodies (cycled) at concurrency ``conc`` with aiohttp: wall, CPU, latency, tokens.

    ``conc`` requests of ``warm`` first open the keep-alive connections (not timed).
    """
    import aiohttp

    headers = {
        "Authorization": "Bearer EMPTY",
        "Content-Type": "application/json",
        "User-Agent": "astroreason",
    }
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=120.0, sock_read=120.0),
        connector=aiohttp.TCPConnector(limit=256),  # keep-alive pool, as OpenAIChatPolicy's
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
    )

    async def post(body: bytes) -> tuple[int, bytes]:
        async with session.post(url, data=body, headers=headers) as r:
            return r.status, await r.read()

    await asyncio.gather(*(post(warm[i % len(warm)]) for i in range(conc)))
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(bodies[i % len(bodies)])
    latencies: list[float] = []
    answers: list[bytes] = []
    bad = 0

    async def worker() -> None:
        nonlocal bad
        while True:
            try:
                body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            t = time.perf_counter()
            status, raw = await post(body)
            latencies.append(time.perf_counter() - t)
            answers.append(raw)
            bad += status != 200

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await session.close()
    if bad:
        raise RuntimeError(f"replay: {bad} of {n} requests failed")
    usage = [json.loads(a).get("usage") or {} for a in answers]
    return {
        "wall": wall,
        "cpu": cpu,
        "requests": n,
        "latency": statistics.fmean(latencies),
        "prompt_tokens": sum(u.get("prompt_tokens", 0) for u in usage),
        "completion_tokens": sum(u.get("completion_tokens", 0) for u in usage),
    }


def _offline(model: Path, warm: list[bytes], timed: dict[str, list[bytes]], tmp: Path):
    """``vllm.LLM.chat``, one batch per entry of ``timed``, in a child process (``_vllm_offline``).

    The child gets the server's environment (``server_env``: KV cache size, offline mode) and
    arguments; it frees the engine and exits before this returns, so it never overlaps the server.
    """
    from astroreason.models.serving import ServeConfig, server_env

    files = []
    for name, payloads in (("warm", warm), *timed.items()):
        path = tmp / f"{name}.jsonl"
        path.write_bytes(b"\n".join(payloads) + b"\n")
        files.append(str(path))
    out, log = tmp / "offline.json", tmp / "offline.log"
    env = server_env(ServeConfig(model=str(model), max_model_len=MAX_MODEL_LEN), gpu=False)
    helper = Path(__file__).resolve().parent / "_vllm_offline.py"
    cmd = [sys.executable, str(helper), str(model), str(MAX_MODEL_LEN), str(out), *files]
    with open(log, "wb") as f:
        status = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if status != 0 or not out.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"offline vLLM failed (exit {status}), log {log}:\n{tail}")
    return json.loads(out.read_text())


def _concurrency_rows(server, data: Path, tmp: Path) -> list[tuple[int, float, float]]:
    """Episodes/s and turns/s of the runner at concurrency 1 and 16 (tools condition)."""
    import gymnasium

    import astroreason.envs  # noqa: F401
    from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
    from astroreason.rollout import RolloutConfig, run_rollouts
    from astroreason.traces import read_traces

    sampling = SamplingConfig(temperature=1.0, max_tokens=32, seed=0)
    rows = []
    for conc in (1, 16):
        pol = OpenAIChatPolicy(server.base_url, server.model_name, sampling=sampling)

        def make():
            return gymnasium.make(
                "AstroReason/Galaxy-v0",
                data=str(data),
                split="all",
                view_size=VIEW_SIZE,
                max_turns=3,
            )

        run = tmp / f"c{conc}"
        t = time.perf_counter()
        run_rollouts(make, pol, run, RolloutConfig(episodes=32, concurrency=conc, progress=False))
        wall = time.perf_counter() - t
        turns = sum(r["metrics"]["turns"] for r in read_traces(run))
        rows.append((conc, 32 / wall, turns / wall))
    return rows


def _rate(r: dict[str, Any], key: str = "requests") -> float:
    return r[key] / r["wall"]


def _med(runs: list[dict[str, Any]], key: str = "requests") -> float:
    """The median over runs of ``key`` per second."""
    return statistics.median(_rate(r, key) for r in runs)


def main() -> None:
    """Print the three tables of the module docstring."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_vllm-"))
    _bench(tmp)  # after an error, tmp (data, traces, vLLM's logs) is left for a look
    shutil.rmtree(tmp, ignore_errors=True)


def _bench(tmp: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file
    from astroreason.errors import AstroReasonError
    from astroreason.models.serving import ServeConfig, VLLMServer

    t_bench = time.perf_counter()
    load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console = Console(width=None if sys.stdout.isatty() else 120)
    seeds = iter(range(1000))

    def galaxies(name: str, n: int) -> Path:
        path = tmp / f"{name}.h5"
        write_galaxy_file(path, GalaxySynthConfig(n=n, size=256, seed=next(seeds)), progress=False)
        return path

    # galaxies of their own for every timed run, so that no timed prompt was seen before.
    # ours: (ignore_eos, concurrency) of each runner setting; replays: concurrency (ignore_eos)
    ours_cfg = {"ign": (True, CONCURRENCY), "nat": (False, CONCURRENCY), "all": (True, EPISODES)}
    replay_cfg = {"r16": CONCURRENCY, "rall": EPISODES}
    warm_data = galaxies("warm", WARM_EPISODES)
    eval_data = {(s, k): galaxies(f"{s}{k}", EPISODES) for k in range(REPEATS) for s in ours_cfg}
    cold = {
        (s, k): _bodies(galaxies(f"{s}{k}", EPISODES), EPISODES)
        for k in range(REPEATS)
        for s in replay_cfg
    }
    model, label = CHECKPOINT, "checkpoints/tiny-galaxy-agent"
    if not (CHECKPOINT / "model.safetensors").exists():
        from astroreason.models.tiny import build_tiny_model

        model, label = build_tiny_model(tmp / "tiny"), "build_tiny_model"

    def serve(model: Path) -> VLLMServer:
        log = str(tmp / "vllm.log")
        cfg = ServeConfig(
            model=str(model), served_model_name="tiny", max_model_len=MAX_MODEL_LEN, log_path=log
        )
        return VLLMServer(cfg).start()

    try:
        server = serve(model)
    except AstroReasonError as e:  # the shipped checkpoint does not serve: fall back
        from astroreason.models.tiny import build_tiny_model

        console.print(f"[yellow]{label} did not serve ({str(e).splitlines()[0]})")
        model, label = build_tiny_model(tmp / "tiny"), "build_tiny_model"
        server = serve(model)
    ours: dict[str, list[dict[str, Any]]] = {s: [] for s in ours_cfg}
    replay: dict[str, list[dict[str, Any]]] = {s: [] for s in replay_cfg}
    try:
        startup = server.startup_s or 0.0
        url = server.base_url + "/chat/completions"
        warm = [
            _eval_run(server, warm_data, tmp / f"warm-{s}", WARM_EPISODES, ignore_eos=s == "ign")
            for s in ("ign", "nat")
        ]
        for k in range(REPEATS):  # the settings interleaved, so that load elsewhere hits all
            for s, (ign, conc) in ours_cfg.items():
                run = tmp / f"ours-{s}{k}"
                r = _eval_run(server, eval_data[s, k], run, EPISODES, ignore_eos=ign, conc=conc)
                ours[s].append(r)
            for s, conc in replay_cfg.items():
                r = _replay(url, cold[s, k], EPISODES, warm[0]["payloads"], conc)
                replay[s].append(asyncio.run(r))
        conc_rows = _concurrency_rows(server, eval_data["ign", 0], tmp)
    finally:
        server.stop()
    timed = {f"{s}{k}": ours[s][k]["payloads"] for k in range(REPEATS) for s in ours_cfg}
    raw = _offline(model, warm[0]["payloads"] + warm[1]["payloads"], timed, tmp)
    off = {s: [raw[f"{s}{k}"] for k in range(REPEATS)] for s in ours_cfg}

    table = Table(title=f"vLLM CPU, {label} (server start {startup:.0f} s): runner, tools")
    for c in ("concurrency", "episodes/s", "turns/s"):
        table.add_column(c)
    for conc, eps, tps in conc_rows:
        table.add_row(str(conc), f"{eps:.2f}", f"{tps:.2f}")
    r16, r1 = conc_rows[1], conc_rows[0]
    table.add_row("ratio 16/1", f"{r16[1] / r1[1]:.2f}", f"{r16[2] / r1[2]:.2f}")
    console.print(table)

    prompt = {
        r["prompt_tokens"] / r["requests"] for rs in (*ours.values(), *off.values()) for r in rs
    }
    table = Table(
        title="Eval throughput: ours (run_rollouts + OpenAIChatPolicy + VLLMServer) vs vLLM "
        f"offline (LLM.chat, one batch) on the same no-tools prompts, {EPISODES} per run, median "
        f"of {REPEATS} runs (target ours/offline >= 0.8); prompt tokens/req "
        f"{', '.join(f'{x:.0f}' for x in sorted(prompt))}; offline LLM start "
        f"{off['ign'][0]['startup']:.0f} s"
    )
    cols = ("setting", "path", "req/s", "req/s per run", "gen tok/s", "gen tok/req")
    for c in (*cols, "latency ms", "CPU ms/req"):
        table.add_column(c)

    def row(setting: str, path: str, runs: list[dict[str, Any]]) -> None:
        n = sum(r["requests"] for r in runs)
        lat = "latency" in runs[0]
        table.add_row(
            setting,
            path,
            f"{_med(runs):.2f}",
            ", ".join(f"{_rate(r):.1f}" for r in runs),
            f"{_med(runs, 'completion_tokens'):.0f}",
            f"{sum(r['completion_tokens'] for r in runs) / n:.1f}",
            f"{1e3 * statistics.fmean(r['latency'] for r in runs):.0f}" if lat else "-",
            f"{1e3 * sum(r['cpu'] for r in runs) / n:.2f}" if "cpu" in runs[0] else "-",
        )

    def ratio(setting: str, path: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
        lo = min(map(_rate, a)) / max(map(_rate, b))
        hi = max(map(_rate, a)) / min(map(_rate, b))
        tok = _med(a, "completion_tokens") / _med(b, "completion_tokens")
        table.add_row(setting, path, f"{_med(a) / _med(b):.2f}", f"{lo:.2f}-{hi:.2f}", f"{tok:.2f}")

    ign, nat, c = f"{MAX_TOKENS} tok (ignore_eos)", "natural (greedy)", CONCURRENCY
    row(ign, f"ours, conc {c}", ours["ign"])
    row(ign, "offline", off["ign"])
    row(ign, f"replay: aiohttp, no env, conc {c}", replay["r16"])
    ratio(ign, f"ours/offline, conc {c}", ours["ign"], off["ign"])
    ratio(ign, f"replay/offline, conc {c}", replay["r16"], off["ign"])
    ratio(ign, f"ours/replay, conc {c}", ours["ign"], replay["r16"])
    row(ign, f"ours, conc {EPISODES} (all at once)", ours["all"])
    row(ign, "offline (same prompts)", off["all"])
    row(ign, f"replay: aiohttp, no env, conc {EPISODES}", replay["rall"])
    ratio(ign, f"ours/offline, conc {EPISODES}", ours["all"], off["all"])
    ratio(ign, f"replay/offline, conc {EPISODES}", replay["rall"], off["all"])
    row(nat, f"ours, conc {c}", ours["nat"])
    row(nat, "offline", off["nat"])
    ratio(nat, f"ours/offline, conc {c}", ours["nat"], off["nat"])
    console.print(table)

    cores = os.cpu_count() or 1
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(
        f"bench_vllm took {time.perf_counter() - t_bench:.0f} s; load average at the start "
        f"{load_start}, at the end {load} (1, 5, 15 min; {cores} cores)"
    )


if __name__ == "__main__":
    main()
