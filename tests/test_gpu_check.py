"""scripts/gpu_check.py: the 2B shape built offline, and the script's stages on the tiny shape (CPU)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def expected_parameters(doc: dict) -> int:
    """Qwen3-VL's parameter count from its config.json, by hand (no transformers)."""
    t, v = doc["text_config"], doc["vision_config"]
    h, inter, hd = t["hidden_size"], t["intermediate_size"], t["head_dim"]
    q, kv = t["num_attention_heads"] * hd, t["num_key_value_heads"] * hd
    # q, k, v, o projections (no bias), q/k RMS norms, gated MLP, two RMS norms
    layer = h * q + 2 * h * kv + q * h + 2 * hd + 3 * h * inter + 2 * h
    embeddings = t["vocab_size"] * h * (1 if doc["tie_word_embeddings"] else 2)
    text = embeddings + t["num_hidden_layers"] * layer + h  # + the final norm

    hv, iv, out = v["hidden_size"], v["intermediate_size"], v["out_hidden_size"]
    patch = v["in_channels"] * v["temporal_patch_size"] * v["patch_size"] ** 2 * hv + hv
    # two LayerNorms, qkv and proj (biased), biased MLP
    block = 4 * hv + (3 * hv * hv + 3 * hv) + (hv * hv + hv) + (hv * iv + iv) + (iv * hv + hv)
    merged = hv * v["spatial_merge_size"] ** 2

    def merger(norm_width: int) -> int:  # LayerNorm, then merged -> merged -> out, biased
        return 2 * norm_width + merged * merged + merged + merged * out + out

    deepstack = len(v["deepstack_visual_indexes"]) * merger(merged)  # norm after the shuffle
    vision = patch + v["num_position_embeddings"] * hv + v["depth"] * block + merger(hv) + deepstack
    return text + vision


def test_2b_shape_on_the_meta_device_has_qwen3_vl_2b_parameters(gpu_check):
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    from astroreason.models.tiny import TinyModelConfig, build_tokenizer

    doc = json.loads(gpu_check.CONFIG_2B.read_text())
    expected = expected_parameters(doc)
    assert 2.0e9 < expected < 2.2e9  # "2B"; the published bf16 weights are 4.26 GB

    tok = build_tokenizer(TinyModelConfig())
    config = gpu_check.config_2b(tok)
    with torch.device("meta"):  # shapes only: nothing allocated
        model = Qwen3VLForConditionalGeneration(config)
    assert sum(p.numel() for p in model.parameters()) == expected
    assert all(p.device.type == "meta" for p in model.parameters())
    assert model.lm_head.weight is model.model.language_model.embed_tokens.weight

    # the 2B's shape, our tokenizer's ids
    text = config.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size) == (2048, 28, 151936)
    assert text.rope_parameters["mrope_section"] == [24, 20, 20] and len(tok) < text.vocab_size
    assert config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert config.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert text.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")


def test_a_spent_budget_skips_every_stage_and_says_so(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--shape", "tiny", "--out", str(tmp_path), "--budget-s", "1"]) == 0
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert {s["status"] for s in result["stages"].values()} == {"skipped"}
    assert "budget spent" in result["stages"]["data"]["reason"]
    assert "needs data, build" in result["stages"]["grpo"]["reason"]
    assert "serve_eval  skipped" in capsys.readouterr().out


def test_2b_shape_refuses_to_run_without_a_gpu(gpu_check, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # also on a machine with a GPU
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert not (tmp_path / "model").exists()  # refused before building anything


@pytest.mark.slow
def test_tiny_shape_end_to_end_on_cpu(gpu_check, vllm_server, tmp_path, capsys):
    """Every stage on the tiny shape; serving reuses the suite's vLLM server (the same tiny model)."""
    argv = ["--shape", "tiny", "--out", str(tmp_path), "--budget-s", "300",
            "--base-url", vllm_server.base_url, "--served-model", vllm_server.model_name,
            "--episodes", "4", "--grpo-steps", "1", "--galaxies", "40"]  # fmt: skip
    # its own process: the GRPO stage starts a colocated vLLM engine and a process group there
    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.py"
    proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    st = result["stages"]
    assert {k: s["status"] for k, s in st.items()} == dict.fromkeys(
        ("data", "build", "serve_eval", "grpo"), "ok"
    )
    assert st["build"]["parameters"] > 0 and (tmp_path / "model" / "config.json").is_file()
    ev = st["serve_eval"]
    assert ev["episodes"] == 4 and ev["requests"] >= 4 and ev["episodes_per_s"] > 0
    g = st["grpo"]
    assert g["steps"] == 1 and g["use_vllm"] is True and g["vllm_mode"] == "colocate"
    assert "colocated vLLM-CPU" in g["note"]
    assert 0 < g["rollout_share"] <= 1 and 0 < g["model_generate_share"] <= g["rollout_share"]
    out = proc.stdout
    assert "share of step in rollouts" in out and "episodes/s" in out
