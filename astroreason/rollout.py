"""The rollout runner: many multi-turn episodes of (environment, policy), concurrently, resumably.

Each episode is a full loop through a Gymnasium environment: ``reset`` then ``step(reply)`` until the
episode ends; the conversation is the environment's own ``info["messages"]``. Episodes run as asyncio
tasks, at most ``concurrency`` at a time, each on its own environment instance. Finished episodes are
written at once (see :mod:`astroreason.traces` for the exact guarantee) under deterministic ids, so a
killed run rerun with the same command resumes where it stopped, with no duplicate and no lost episode.

If the policy's server stays unreachable after its retries, the run stops cleanly with a one-line
error; everything finished so far is on disk.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from astroreason.chat import images_of
from astroreason.errors import AstroReasonError, DataError, check_concurrency, check_counts
from astroreason.policies.base import Policy
from astroreason.runlock import RunLock
from astroreason.sync import run_sync
from astroreason.traces import TraceRecord, TraceWriter, episode_id, trace_record


@dataclass(frozen=True)
class RolloutConfig:
    """What to run.

    Attributes:
        episodes: Rows to run, the split's first ``episodes`` (None: every row); each runs
            ``samples_per_row`` times, so the run holds ``episodes * samples_per_row`` episodes.
        samples_per_row: Episodes per row (sample 0, 1, ...: different seeds of the reset and
            of the policy, which sees the sample in ``info["episode"]``).
        concurrency: Episodes in flight at once (1 to 1024; never more than the episodes left).
        seed: Base seed of the environments' resets.
        progress: Show a progress bar.
    """

    episodes: int | None = None
    samples_per_row: int = 1
    concurrency: int = 8
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        check_counts(episodes=self.episodes, samples=self.samples_per_row)
        check_concurrency(self.concurrency)


@dataclass
class RolloutSummary:
    """What a run did (this invocation plus what was already on disk)."""

    run_dir: Path
    planned: int
    already_done: int
    written: int = 0
    correct: int = 0
    tool_calls: int = 0
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Accuracy over the episodes written by this invocation."""
        return self.correct / self.written if self.written else float("nan")


def plan_episodes(n_rows: int, cfg: RolloutConfig) -> list[tuple[int, int]]:
    """(index in split, sample number) pairs in run order: every row once, then again."""
    rows = n_rows if cfg.episodes is None else min(n_rows, cfg.episodes)
    return [(i, k) for k in range(cfg.samples_per_row) for i in range(rows)]


def run_rollouts(
    make_env: Callable[[], Any],
    policy: Policy,
    run_dir: str | Path,
    cfg: RolloutConfig = RolloutConfig(),
    run_meta: dict[str, Any] | None = None,
) -> RolloutSummary:
    """Run episodes and write traces; see the module docstring.

    Synchronous wrapper of :func:`arun_rollouts`; safe to call where an event loop already runs
    (a notebook): see :func:`astroreason.sync.run_sync`.
    """
    return run_sync(arun_rollouts(make_env, policy, run_dir, cfg, run_meta))


async def arun_rollouts(
    make_env: Callable[[], Any],
    policy: Policy,
    run_dir: str | Path,
    cfg: RolloutConfig = RolloutConfig(),
    run_meta: dict[str, Any] | None = None,
) -> RolloutSummary:
    """Async form of :func:`run_rollouts`; one writer per run folder (:class:`RunLock`)."""
    with RunLock(Path(run_dir)):
        return await _arun_locked(make_env, policy, run_dir, cfg, run_meta)


async def _arun_locked(
    make_env: Callable[[], Any],
    policy: Policy,
    run_dir: str | Path,
    cfg: RolloutConfig,
    run_meta: dict[str, Any] | None,
) -> RolloutSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    envs = [make_env()]
    base = envs[0].unwrapped
    condition, split = base.cfg.condition, base.split
    plan = plan_episodes(len(base.rows), cfg)
    identity = {
        "policy": policy.name,
        "condition": condition,
        "split": split,
        "env": type(base).__name__,
        "env_config": repr(base.cfg),
        "sampling": repr(getattr(policy, "sampling", None)),
        **(run_meta or {}),
    }
    check_run_identity(Path(run_dir), identity)
    writer = TraceWriter(run_dir)
    todo = [
        (i, k)
        for i, k in plan
        if episode_id(condition, split, int(base.rows[i]), k) not in writer.done_ids
    ]
    summary = RolloutSummary(Path(run_dir), planned=len(plan), already_done=len(plan) - len(todo))
    # one environment per episode in flight, never more than there are episodes to run
    workers = max(1, min(cfg.concurrency, len(todo)))
    envs += [make_env() for _ in range(workers - 1)]
    pool: asyncio.Queue = asyncio.Queue()
    for env in envs:
        pool.put_nowait(env)
    queue: asyncio.Queue = asyncio.Queue()
    for item in todo:
        queue.put_nowait(item)
    stop = asyncio.Event()
    t_start = time.perf_counter()
    progress = Progress(
        TextColumn(f"[bold]{condition}[/] {split}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "{task.fields[rate]:.2f} ep/s  acc {task.fields[acc]}  tools/ep {task.fields[tpe]}"
        ),
        TimeElapsedColumn(),
        disable=not cfg.progress,
    )
    task = progress.add_task(
        "episodes", total=len(plan), completed=summary.already_done, rate=0.0, acc="-", tpe="-"
    )

    async def worker() -> None:
        while not stop.is_set():
            try:
                index, k = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            env = await pool.get()
            try:
                record = await _episode(env, policy, index, k, cfg.seed, run_meta or {}, writer)
            except AstroReasonError as e:  # the policy gave up: stop cleanly
                summary.errors.append(f"{type(e).__name__}: {e}")
                stop.set()
                return
            finally:
                pool.put_nowait(env)
            writer.write(record)
            summary.written += 1
            summary.correct += int(bool(record["correct"]))
            summary.tool_calls += record["metrics"]["tool_calls"]
            elapsed = time.perf_counter() - t_start
            progress.update(
                task,
                advance=1,
                rate=summary.written / max(elapsed, 1e-9),
                acc=f"{summary.accuracy:.3f}",
                tpe=f"{summary.tool_calls / summary.written:.2f}",
            )

    try:
        with progress:
            await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        writer.close()
        for env in envs:
            env.close()
        await policy.aclose()
    summary.wall_s = time.perf_counter() - t_start
    if summary.errors:
        done = summary.already_done + summary.written
        raise AstroReasonError(
            f"{run_dir}: rollout stopped after {done}/{len(plan)} episodes: {summary.errors[0]}; "
            "finished episodes are saved; rerun the same command to resume"
        )
    return summary


RUN_FILE = "run.json"


def check_run_identity(run_dir: Path, identity: dict[str, Any]) -> None:
    """Record what a run folder holds; refuse to resume it with a different policy or setup.

    Everything that changes episodes is compared: policy, condition, split, env settings and the
    sampling (temperature, reply length, seed). A setting an older ``run.json`` lacks is added.
    """
    path = run_dir / RUN_FILE
    ident = {
        k: (v if isinstance(v, (str, int, float, bool)) or v is None else repr(v))
        for k, v in identity.items()
    }
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise DataError(
                path,
                f"not readable JSON ({err}); delete it to start the run over, or choose "
                "another output folder",
            ) from None
        if not isinstance(old, dict):
            raise DataError(path, "not a JSON object; delete it or choose another output folder")
        diff = [k for k in ident if k in old and old[k] != ident[k]]
        if set(ident) - set(old):
            path.write_text(json.dumps({**ident, **old}, indent=2) + "\n")
        if diff:
            k = diff[0]
            raise AstroReasonError(
                f"{run_dir}: this run folder holds {k}={old.get(k)!r}, not {ident[k]!r}; "
                "resume it with the same settings or choose another output folder"
            )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ident, indent=2) + "\n")


async def _episode(
    env, policy: Policy, index: int, k: int, seed: int, meta: dict, writer
) -> TraceRecord:
    u = env.unwrapped
    row_id = int(u.rows[index])
    ep_id = episode_id(u.cfg.condition, u.split, row_id, k)
    ep_seed = zlib.crc32(ep_id.encode()) ^ seed
    t0 = time.perf_counter()
    obs, info = env.reset(seed=ep_seed, options={"index": index, "sample": k})
    replies, latencies, finish = [], [], []
    prompt_tokens = completion_tokens = 0
    env_s = time.perf_counter() - t0
    done = False
    while not done:
        reply = await policy.act(info)
        replies.append(reply.text)
        latencies.append(round(reply.latency_s, 4))
        finish.append(reply.extra.get("finish_reason"))
        prompt_tokens += reply.prompt_tokens
        completion_tokens += reply.completion_tokens
        t1 = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step(reply.text)
        env_s += time.perf_counter() - t1
        done = terminated or truncated
    wall = time.perf_counter() - t0
    paths = writer.save_images(ep_id, images_of(info["messages"], decoded=True))
    return trace_record(
        info,
        ep_id=ep_id,
        sample=k,
        seed=ep_seed,
        policy=policy.name,
        meta=meta,
        replies=replies,
        latencies=latencies,
        finish_reasons=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        wall_s=wall,
        env_s=env_s,
        image_paths=paths,
    )
