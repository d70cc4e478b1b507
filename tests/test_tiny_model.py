"""The offline tiny Qwen3-VL: builds deterministically, loads offline, renders tools and images."""

import json
import os

import pytest
import torch
from PIL import Image

from astroreason.errors import ConfigError
from astroreason.models.tiny import (
    MARKER,
    TinyModelConfig,
    build_tiny_model,
    built_parameters,
    count_parameters,
    is_built,
)

ZOOM = {
    "type": "function",
    "function": {
        "name": "zoom",
        "description": "Magnify part of an image.",
        "parameters": {
            "type": "object",
            "properties": {
                "center": {"type": "array", "items": {"type": "number"}},
                "factor": {"type": "number", "exclusiveMinimum": 1},
            },
            "required": ["center", "factor"],
        },
    },
}


@pytest.fixture(scope="module")
def tiny_dir(tiny_model_dir):
    """The session's tiny model (tests/conftest.py builds it into a temporary folder)."""
    return tiny_model_dir


@pytest.fixture(scope="module")
def loaded(tiny_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    processor = AutoProcessor.from_pretrained(tiny_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    return processor, model


def conversation():
    overview = Image.new("RGB", (64, 64), (180, 40, 40))
    zoomed = Image.new("RGB", (128, 128), (40, 180, 40))
    return [
        {"role": "system", "content": "Classify the galaxy."},
        {
            "role": "user",
            "content": [
                {"type": "image", "image": overview},
                {"type": "text", "text": "What is it?"},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "type": "function",
                    "function": {"name": "zoom", "arguments": {"center": [500, 500], "factor": 2}},
                }
            ],
        },
        {
            "role": "tool",
            "content": [{"type": "image", "image": zoomed}, {"type": "text", "text": "zoomed 2x"}],
        },
    ]


def test_processor_classes_template_and_special_tokens(loaded):
    from transformers import PreTrainedTokenizerFast, Qwen2VLImageProcessor, Qwen3VLProcessor
    from trl.chat_template_utils import qwen3_vl_chat_template

    processor, model = loaded
    assert isinstance(processor, Qwen3VLProcessor)
    assert isinstance(processor.tokenizer, PreTrainedTokenizerFast)
    # the phrase-level pre-tokenizer survives a reload: the galaxy system prompt stays short
    from astroreason.models.tiny import tokenizer_corpus

    prompt = tokenizer_corpus().split("<|im_start|>user")[0]
    assert len(processor.tokenizer(prompt).input_ids) < 300
    assert isinstance(processor.image_processor, Qwen2VLImageProcessor)
    assert processor.chat_template == qwen3_vl_chat_template  # TRL matches it by exact text
    tok = processor.tokenizer
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    for t in ("<|im_start|>", "<|im_end|>", "<|image_pad|>", "<tool_call>", "</tool_response>"):
        ids = tok(t, add_special_tokens=False).input_ids
        assert len(ids) == 1, (t, ids)
    # tool tags are plain added tokens: they survive skip_special_tokens (the hermes parser needs them)
    ids = tok('<tool_call>{"a": 1}</tool_call><|im_end|>').input_ids
    assert tok.decode(ids, skip_special_tokens=True) == '<tool_call>{"a": 1}</tool_call>'
    cfg = model.config
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.text_config.vocab_size >= len(tok)
    gen = model.generation_config
    assert gen.eos_token_id == [
        tok.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")
    ]
    assert gen.pad_token_id == tok.pad_token_id


def test_trl_recognises_the_tool_call_parser(loaded):
    from trl.chat_template_utils import add_response_schema

    processor, _ = loaded
    add_response_schema(processor)  # raises ValueError on an unrecognised template
    text = '<tool_call>\n{"name": "zoom", "arguments": {"factor": 2}}\n</tool_call><|im_end|>'
    parsed = processor.tokenizer.parse_response(text, prefix="<|im_start|>assistant\n")
    assert parsed["tool_calls"][0]["function"] == {"name": "zoom", "arguments": {"factor": 2}}


def test_chat_template_renders_tools_tool_calls_and_tool_images(loaded):
    processor, _ = loaded
    text = processor.apply_chat_template(
        conversation(), tools=[ZOOM], tokenize=False, add_generation_prompt=True
    )
    assert json.dumps(ZOOM) in text
    assert '<tool_call>\n{"name": "zoom", "arguments": {"center": [500, 500], "factor": 2}}' in text
    assert (
        "<|im_start|>user\n<tool_response>\n<|vision_start|><|image_pad|><|vision_end|>zoomed 2x"
        "\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    ) in text
    assert text.count("<|vision_start|>") == 2


def test_small_views_keep_their_size(loaded):
    """64x64 costs 4 visual tokens and 128x128 16: small views are not upscaled to 256x256."""
    processor, _ = loaded
    inputs = processor.apply_chat_template(
        conversation(), tools=[ZOOM], tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert inputs["image_grid_thw"].tolist() == [[1, 4, 4], [1, 8, 8]]
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_pad).sum()) == 4 + 16


def test_bpe_vocabulary_shortens_prompts(loaded):
    processor, _ = loaded
    text = processor.apply_chat_template(conversation()[:2], tools=[ZOOM], tokenize=False)
    n = len(processor.tokenizer(text).input_ids)
    assert n < len(text.encode()) / 2.5, (n, len(text))


def test_forward_and_generate(loaded):
    processor, model = loaded
    inputs = processor.apply_chat_template(
        conversation(),
        tools=[ZOOM],
        tokenize=True,
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    length = inputs["input_ids"].shape[1]
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape == (1, length, model.config.text_config.vocab_size)
    assert torch.isfinite(out.logits).all()
    gen = model.generate(**inputs, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert gen.shape == (1, length + 5)
    assert torch.equal(gen[:, :length], inputs["input_ids"])


def test_parameter_count(loaded, tiny_dir):
    _, model = loaded
    n = count_parameters(model)
    assert 300_000 <= n <= 3_000_000, n
    assert built_parameters(tiny_dir) == n


def test_rebuild_is_idempotent_and_seeded(tiny_dir, tmp_path):
    marker = tiny_dir / MARKER
    before = (marker.stat().st_mtime_ns, (tiny_dir / "model.safetensors").stat().st_mtime_ns)
    assert is_built(tiny_dir)
    assert build_tiny_model(tiny_dir) == tiny_dir
    after = (marker.stat().st_mtime_ns, (tiny_dir / "model.safetensors").stat().st_mtime_ns)
    assert after == before, "an up-to-date model was rebuilt"
    assert not is_built(tiny_dir, seed=1)

    from safetensors.torch import load_file

    ref = load_file(tiny_dir / "model.safetensors")
    same = load_file(build_tiny_model(tmp_path / "same", seed=0) / "model.safetensors")
    other = load_file(build_tiny_model(tmp_path / "other", seed=1) / "model.safetensors")
    assert ref.keys() == same.keys() == other.keys()
    assert all(torch.equal(ref[k], same[k]) for k in ref)
    assert not all(torch.equal(ref[k], other[k]) for k in ref)
    assert (tmp_path / "same" / "tokenizer.json").read_text() == (
        tiny_dir / "tokenizer.json"
    ).read_text()


def test_changed_config_rebuilds(tmp_path):
    small = TinyModelConfig(hidden_size=64, num_heads=2, num_kv_heads=1, intermediate_size=128)
    out = build_tiny_model(tmp_path / "m", small)
    assert is_built(out, small) and not is_built(out, TinyModelConfig())
    build_tiny_model(out, TinyModelConfig())
    assert is_built(out, TinyModelConfig())
    assert json.loads((out / "config.json").read_text())["text_config"]["hidden_size"] == 128
    assert not (tmp_path / "m.building").exists()


@pytest.mark.parametrize(
    "bad", [{"head_dim": 48}, {"num_heads": 3}, {"min_pixels": 0}, {"bpe_vocab_size": 100}]
)
def test_bad_config_is_refused(tmp_path, bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        build_tiny_model(tmp_path / "m", TinyModelConfig(**bad))
    assert not (tmp_path / "m").exists()
