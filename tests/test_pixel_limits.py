"""The processor's pixel limits: no view is rescaled behind our back, in any condition.

The image processor here has Qwen3-VL's real settings (patch 16, merge 2, temporal patch 2, and the
released checkpoints' ``size``: at least 256 x 256 and at most 4096 x 4096 pixels); the tokenizer and
chat template are the tiny model's (the image tokens do not depend on them).
"""

import json

import gymnasium
import numpy as np
import pytest
from transformers import AutoProcessor, Qwen2VLImageProcessor
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize as hf_smart_resize

from astroreason.data.synthesis.galaxy import GalaxySynthConfig, write_galaxy_file
from astroreason.envs import GALAXY_ID
from astroreason.models.pixels import (
    PixelLimits,
    apply_to_processor,
    folder_limits,
    folder_with_limits,
    image_tokens,
    smart_resize,
)
from astroreason.models.serving import ServeConfig, build_server_command
from astroreason.policies import OraclePolicy
from astroreason.policies.transformers_local import to_hf_messages
from astroreason.sync import run_sync

QWEN3_VL_SIZE = {"shortest_edge": 65536, "longest_edge": 16777216}  # preprocessor_config.json
RECIPE = {"view_size": 128, "max_tool_calls": 3, "max_turns": 4}  # the README's real-data recipe


@pytest.fixture(scope="module")
def qwen3_vl_processor(tiny_model_dir):
    proc = AutoProcessor.from_pretrained(tiny_model_dir)
    proc.image_processor = Qwen2VLImageProcessor(
        patch_size=16, merge_size=2, temporal_patch_size=2, size=dict(QWEN3_VL_SIZE)
    )
    return proc


@pytest.fixture(scope="module")
def cutouts_256(tmp_path_factory):
    return write_galaxy_file(
        tmp_path_factory.mktemp("px") / "g.h5", GalaxySynthConfig(n=40, size=256, seed=41)
    )


def episode_messages(data, condition):
    """The conversation of one oracle episode (one crop when tools are offered)."""
    env = gymnasium.make(GALAXY_ID, data=str(data), split="all", condition=condition, **RECIPE)
    _, info = env.reset(seed=0)
    oracle = OraclePolicy()
    done = False
    while not done:
        reply = run_sync(oracle.act(info))
        _, _, term, trunc, info = env.step(reply.text)
        done = term or trunc
    return info


def image_token_counts(processor, info):
    """Image-pad tokens per image in the chat-templated conversation."""
    chat, images = to_hf_messages(info["messages"])
    text = processor.apply_chat_template(chat, tools=info.get("tools") or None, tokenize=False)
    ids = processor(text=[text], images=images or None, return_tensors="np")["input_ids"][0]
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    runs, n = [], 0
    for t in ids.tolist() + [-1]:
        if t == pad:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs, [np.asarray(im).shape[:2] for im in images]


@pytest.mark.parametrize(
    "condition, sides",
    [
        ("tools", [128, 128]),  # overview at half resolution, then a crop at full resolution
        ("no-tools", [128]),
        ("no-tools-matched", [256]),  # 128 * sqrt(1 + 3) = 256: the whole budget as one image
        ("blank-tools", [128, 128]),
        ("reinput", [128, 128]),
        ("blind", []),
    ],
)
def test_prompt_tokens_per_condition_with_qwen3_vl_settings(
    qwen3_vl_processor, cutouts_256, condition, sides
):
    info = episode_messages(cutouts_256, condition)
    apply_to_processor(qwen3_vl_processor, PixelLimits())
    runs, shapes = image_token_counts(qwen3_vl_processor, info)
    assert [h for h, _ in shapes] == sides
    assert runs == [(s // 32) ** 2 for s in sides]  # 16 tokens per 128 px view, 64 for 256 px
    # the released checkpoints' own limits upscale every 128 px view to 256 px: 64 tokens, the same
    # as the matched image, so no-tools-matched would equal no-tools
    qwen3_vl_processor.image_processor.size = dict(QWEN3_VL_SIZE)
    runs_default, _ = image_token_counts(qwen3_vl_processor, info)
    assert runs_default == [64] * len(sides)


def test_smart_resize_is_transformers_own():
    for limits in (PixelLimits(), PixelLimits(65536, 16777216), PixelLimits(4096, 8192)):
        for h, w in [(64, 64), (128, 64), (100, 60), (256, 256), (3000, 2000), (33, 500)]:
            expected = hf_smart_resize(
                h, w, factor=32, min_pixels=limits.min_pixels, max_pixels=limits.max_pixels
            )
            assert smart_resize(h, w, limits) == tuple(expected)
    assert image_tokens(128, 128, PixelLimits()) == 16
    assert image_tokens(128, 64, PixelLimits()) == 8  # the tiny recipe's spectrum plot
    assert image_tokens(128, 128, PixelLimits(65536, 16777216)) == 64


def test_limits_reach_vllm_and_checkpoints(tmp_path, tiny_model_dir):
    cmd = build_server_command(ServeConfig(model="/m", min_pixels=4096), gpu=False, port=1)
    kwargs = json.loads(cmd[cmd.index("--mm-processor-kwargs") + 1])
    assert kwargs == {"size": {"shortest_edge": 4096, "longest_edge": PixelLimits().max_pixels}}
    # a saved processor carries the limits; a folder of links gives them to a model that lacks them
    limits = PixelLimits(4096, 65536)
    proc = apply_to_processor(AutoProcessor.from_pretrained(tiny_model_dir), limits)
    proc.save_pretrained(tmp_path / "saved")
    assert folder_limits(tmp_path / "saved") == limits
    assert folder_limits(tiny_model_dir) != limits
    linked = folder_with_limits(tiny_model_dir, limits, tmp_path / "linked")
    assert folder_limits(linked) == limits
    assert (tmp_path / "linked" / "config.json").is_symlink()
    again = AutoProcessor.from_pretrained(linked)
    assert dict(again.image_processor.size)["shortest_edge"] == 4096
    assert folder_with_limits(linked, limits, tmp_path / "other") == linked  # already right
    with pytest.raises(Exception, match="not a local model folder"):
        folder_with_limits(tmp_path, limits, tmp_path / "x")


def test_a_hub_id_is_looked_up_in_the_local_cache_only(monkeypatch, tmp_path):
    from astroreason.errors import ConfigError
    from astroreason.models.pixels import local_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match="neither a local folder nor in the Hugging Face cache"):
        local_folder("astroreason-tests/no-such-model")
    assert local_folder(tmp_path) == str(tmp_path)
