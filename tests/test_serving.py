"""vLLM serving of the tiny Qwen3-VL: multi-turn images, tool messages, token ids, clean shutdown."""

import base64
import contextlib
import io
import json
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from PIL import Image

from astroreason.errors import AstroReasonError
from astroreason.models.serving import (
    ServeConfig,
    VLLMServer,
    build_server_command,
    example_request,
    exit_status,
    server_env,
)

ZOOM = {
    "type": "function",
    "function": {
        "name": "zoom",
        "description": "Magnify part of an image.",
        "parameters": {
            "type": "object",
            "properties": {"factor": {"type": "number", "exclusiveMinimum": 1}},
            "required": ["factor"],
        },
    },
}


def data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


OVERVIEW = Image.new("RGB", (64, 64), (200, 30, 30))
ZOOMED = Image.new("RGB", (128, 128), (30, 200, 30))
MESSAGES = [
    {"role": "system", "content": "Classify the galaxy."},
    {
        "role": "user",
        "content": [
            {"type": "image_url", "image_url": {"url": data_url(OVERVIEW)}},
            {"type": "text", "text": "What is it?"},
        ],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_0",
                "type": "function",
                "function": {"name": "zoom", "arguments": '{"factor": 2}'},
            }
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": [
            {"type": "image_url", "image_url": {"url": data_url(ZOOMED)}},
            {"type": "text", "text": "zoomed 2x"},
        ],
    },
]


# -- fast checks of the command line ----------------------------------------------------------
def arg(cmd, flag):
    return cmd[cmd.index(flag) + 1]


def test_server_command_cpu_and_gpu(monkeypatch):
    cfg = ServeConfig(
        model="/m", served_model_name="tiny", max_images=3, extra_args=("--seed", "1")
    )
    cpu = build_server_command(cfg, gpu=False, port=1234)
    assert cpu[:3] == [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
    assert arg(cpu, "--model") == "/m" and arg(cpu, "--served-model-name") == "tiny"
    assert arg(cpu, "--port") == "1234" and arg(cpu, "--tool-call-parser") == "hermes"
    assert json.loads(arg(cpu, "--limit-mm-per-prompt")) == {"image": 3, "video": 0}
    assert "--enable-auto-tool-choice" in cpu and cpu[-2:] == ["--seed", "1"]
    assert "--gpu-memory-utilization" not in cpu
    gpu = build_server_command(cfg, gpu=True, port=1234)
    assert arg(gpu, "--gpu-memory-utilization") == "0.9"
    assert (
        build_server_command(ServeConfig(model="/m"), gpu=False, port=1)[
            cpu.index("--served-model-name") + 1
        ]
        == "/m"
    )

    assert "--enforce-eager" not in cpu
    eager = build_server_command(ServeConfig(model="/m", enforce_eager=True), gpu=False, port=1)
    assert eager.count("--enforce-eager") == 1

    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    env = server_env(ServeConfig(model="/m", cpu_kvcache_gib=2), gpu=False)
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    env = server_env(ServeConfig(model="/m", offline=False, extra_env=(("A", "b"),)), gpu=True)
    assert "VLLM_CPU_KVCACHE_SPACE" not in env and "HF_HUB_OFFLINE" not in env and env["A"] == "b"


def test_exit_status():
    assert exit_status(0) == 0 and exit_status(3) == 3 and exit_status(-15) == 143


def test_example_request_curl_is_runnable_shell():
    import shlex

    text = example_request("http://127.0.0.1:8123/v1", "it's tiny")
    argv = shlex.split(text.splitlines()[0])
    assert argv[:3] == ["curl", "-s", "http://127.0.0.1:8123/v1/chat/completions"]
    body = json.loads(argv[argv.index("-d") + 1])  # a quote in the model name survives quoting
    assert body["model"] == "it's tiny" and body["return_token_ids"] is True
    assert 'base_url="http://127.0.0.1:8123/v1"' in text


# -- the session's vLLM-CPU server (tests/conftest.py: started once, shared with other tests) --
@pytest.mark.slow
def test_chat_with_images_in_tool_messages(vllm_server, tiny_model_dir):
    server = vllm_server
    from openai import OpenAI
    from transformers import AutoProcessor

    client = OpenAI(base_url=server.base_url, api_key="EMPTY")
    t0 = time.perf_counter()
    reply = client.chat.completions.create(
        model=server.model_name,
        messages=MESSAGES,
        tools=[ZOOM],
        n=2,
        max_tokens=8,
        temperature=1.0,
        logprobs=True,
        extra_body={"return_token_ids": True},
    )
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    client.chat.completions.create(
        model=server.model_name, messages=MESSAGES, tools=[ZOOM], n=2, max_tokens=8, logprobs=True
    )
    print(
        f"\none request (2 images, n=2, 8 tokens): first {first:.3f} s, warm {time.perf_counter() - t0:.3f} s"
    )
    assert len(reply.choices) == 2
    for choice in reply.choices:
        ids = choice.token_ids
        assert isinstance(ids, list) and 1 <= len(ids) <= 8
        assert all(isinstance(i, int) for i in ids)
        assert len(choice.logprobs.content) == len(ids)
        assert all(lp.logprob <= 0.0 for lp in choice.logprobs.content)
    assert reply.usage.completion_tokens == sum(len(c.token_ids) for c in reply.choices)

    # vLLM's prompt is token for token what the HF processor renders (tools, tool image included)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    hf_messages = json.loads(json.dumps(MESSAGES))
    for m, img in ((hf_messages[1], OVERVIEW), (hf_messages[3], ZOOMED)):
        m["content"][0] = {"type": "image", "image": img}
    hf_messages[2]["content"] = ""  # the template iterates a None content; vLLM renders it as ""
    expected = processor.apply_chat_template(
        hf_messages, tools=[ZOOM], tokenize=True, add_generation_prompt=True, return_dict=True
    )["input_ids"]
    prompt_ids = reply.prompt_token_ids
    assert prompt_ids == list(expected[0] if isinstance(expected[0], list) else expected)
    assert reply.usage.prompt_tokens == len(prompt_ids)
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert prompt_ids.count(image_pad) == 4 + 16
    text = processor.tokenizer.decode(prompt_ids)
    assert "<tools>" in text and "<tool_response>" in text


@pytest.mark.slow
def test_too_many_images_is_refused(vllm_server):
    server = vllm_server
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=server.base_url, api_key="EMPTY")
    url = data_url(OVERVIEW)
    content = [{"type": "image_url", "image_url": {"url": url}} for _ in range(9)]
    with pytest.raises(BadRequestError, match="image"):
        client.chat.completions.create(
            model=server.model_name, messages=[{"role": "user", "content": content}], max_tokens=1
        )


@pytest.mark.slow
def test_openai_chat_policy_with_a_tool_image(vllm_server, tiny_model_dir):
    """The project's policy sends env-style messages (numpy images, dict arguments) to vLLM."""
    server = vllm_server
    import asyncio

    import numpy as np
    from transformers import AutoProcessor

    from astroreason.policies.openai_chat import OpenAIChatPolicy, SamplingConfig
    from astroreason.policies.transformers_local import to_hf_messages

    overview = np.full((64, 64, 3), 90, np.uint8)
    overview[16:48, 16:48] = 220
    view = np.ascontiguousarray(overview[16:48, 16:48].repeat(4, 0).repeat(4, 1))  # 128x128
    overview.flags.writeable = view.flags.writeable = False
    messages = [
        {"role": "system", "content": "Classify the galaxy."},
        {
            "role": "user",
            "content": [{"type": "image", "image": overview}, {"type": "text", "text": "Image 0"}],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_0",
                    "type": "function",
                    "function": {"name": "zoom", "arguments": {"factor": 2}},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_0",
            "name": "zoom",
            "content": [{"type": "image", "image": view}, {"type": "text", "text": "Image 1"}],
        },
    ]
    info = {"messages": messages, "tools": [ZOOM], "turn": 0}
    sampling = SamplingConfig(
        temperature=0.0, max_tokens=6, seed=0, logprobs=True, return_token_ids=True
    )
    policy = OpenAIChatPolicy(server.base_url, server.model_name, sampling=sampling)

    async def twice():
        try:
            return await asyncio.gather(policy.act(info), policy.act(info))
        finally:
            await policy.aclose()

    first, second = asyncio.run(twice())
    print(f"\nOpenAIChatPolicy.act (2 images, 6 tokens): {first.latency_s:.3f} s")
    assert isinstance(first.text, str)
    assert first.token_ids and 1 <= len(first.token_ids) <= 6
    assert first.completion_tokens == len(first.token_ids) == len(first.logprobs)
    assert first.extra["finish_reason"] in ("length", "stop", "tool_calls")
    assert second.token_ids == first.token_ids  # greedy: the same prompt gives the same reply
    # the prompt vLLM built is the one transformers renders: both images, the tool call, the tools
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    hf_messages, images = to_hf_messages(messages)
    assert len(images) == 2
    ids = processor.apply_chat_template(
        hf_messages, tools=[ZOOM], tokenize=True, add_generation_prompt=True, return_dict=True
    )["input_ids"]
    ids = ids[0] if isinstance(ids[0], list) else ids
    assert first.prompt_tokens == len(ids)
    assert first.extra["prompt_token_ids"] == list(ids)  # token for token, not just as many


# -- servers of their own: lifecycle ----------------------------------------------------------
def still_running(procs, timeout=10.0):
    """The processes still alive after ``timeout`` s (zombies awaiting their reaper count as gone)."""

    def alive(p):
        with contextlib.suppress(psutil.Error):
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        return False

    deadline = time.monotonic() + timeout
    while (left := [p for p in procs if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.mark.slow
def test_context_exit_leaves_no_process(tiny_model_dir, tmp_path):
    cfg = ServeConfig(
        model=str(tiny_model_dir), max_model_len=2048, log_path=str(tmp_path / "vllm.log")
    )
    with VLLMServer(cfg) as server:
        print(f"\nvLLM startup: {server.startup_s:.1f} s")
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        with urllib.request.urlopen(server.base_url + "/models", timeout=10) as r:
            assert json.loads(r.read())["data"][0]["id"] == str(tiny_model_dir)
        procs = server.processes()
        names = " ".join(p.name() for p in procs)
        assert len(procs) >= 3 and "VLLM::EngineCore" in names and "VLLM::Worker" in names, names
        t0 = time.perf_counter()
    print(f"\nvLLM stop: {time.perf_counter() - t0:.1f} s")
    assert still_running(procs) == []
    assert server.processes() == []
    assert server.returncode is not None


SERVE = (
    "import sys\n"
    "from astroreason.models.serving import ServeConfig, serve_forever\n"
    "cfg = ServeConfig(model=sys.argv[1], max_model_len=2048)\n"
    "sys.exit(serve_forever(cfg))\n"
)


@pytest.mark.slow
def test_serve_forever_forwards_ctrl_c(tiny_model_dir, tmp_path):
    """What ``astroreason serve`` runs: Ctrl-C during startup stops vLLM and all its processes.

    (During startup vLLM's API server can hang on SIGTERM once its engine died; serve_forever
    escalates to SIGKILL. Ctrl-C once it serves is forwarded and exits 0: checked by hand.)
    """
    with open(tmp_path / "stderr.log", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(tiny_model_dir)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    procs: list = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            procs = psutil.Process(proc.pid).children(recursive=True)
            if any(p.name() == "VLLM::EngineCore" for p in procs):
                break
            time.sleep(0.5)
        assert any(p.name() == "VLLM::EngineCore" for p in procs), procs
        proc.send_signal(signal.SIGINT)
        t0 = time.perf_counter()
        assert proc.wait(timeout=60) == 128 + signal.SIGINT
        print(f"\nstopped by Ctrl-C during startup in {time.perf_counter() - t0:.1f} s")
        assert still_running(procs) == []
        assert "AstroReasonError" not in (tmp_path / "stderr.log").read_text()
    finally:
        if proc.poll() is None:
            for p in [*psutil.Process(proc.pid).children(recursive=True), *procs]:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.mark.slow
def test_bad_model_dir_fails_fast(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "no_such_model"}))
    cfg = ServeConfig(model=str(bad), startup_timeout_s=300, log_path=str(tmp_path / "vllm.log"))
    server = VLLMServer(cfg)
    t0 = time.perf_counter()
    with pytest.raises(AstroReasonError, match=r"vLLM exited with status [1-9]") as err:
        server.start()
    elapsed = time.perf_counter() - t0
    assert elapsed < 150, elapsed  # exit detected, not the startup timeout
    lines = str(err.value).splitlines()
    assert str(bad) in lines[0] and len(lines) > 5, str(err.value)
    assert "no_such_model" in str(err.value)
    assert server.processes() == []
    assert (tmp_path / "vllm.log").read_text().startswith("$ ")
