"""Training: config, the TRL environment adapter, SFT data and masks, a real SFT -> GRPO run, alarms.

CPU only, the offline tiny Qwen3-VL, real generation. The random tiny model never writes a tool
call by itself, so the GRPO test steers it with TRL's public ``generation_kwargs`` (a
``sequence_bias`` that favours one crop call after the overview and one of two answers after a tool
result): the tokens are still sampled by ``generate`` and scored by the training forward pass.
"""

import json
import math
import re

import numpy as np
import pytest
import torch

from astroreason.envs.factory import make_env
from astroreason.errors import ConfigError
from astroreason.protocol import format_tool_call
from astroreason.reward import RewardConfig
from astroreason.tools import TOOL_SCHEMAS
from astroreason.training.alarms import (
    check_accuracy_ceiling,
    check_invalid_rise,
    check_loss_collapse,
    check_tool_collapse,
)
from astroreason.training.config import (
    TrainConfig,
    build_grpo_config,
    build_sft_config,
    list_configs,
    load_config,
)
from astroreason.training.env_adapter import (
    AnswerAdapter,
    ToolAdapter,
    adapter_factory,
    env_tool_schemas,
    episode_reward,
    grpo_rows,
    tool_schema_json,
)
from astroreason.training.monitor import TrainingMonitor

ENV_OPTS = {"view_size": 64, "max_turns": 4, "max_tool_calls": 3, "split_seed": 0}


def _cfg(tmp_path, galaxy_file, tiny_model_dir, **kw):
    base = dict(
        model=str(tiny_model_dir),
        data=str(galaxy_file),
        output_dir=str(tmp_path / "run"),
        report_to="none",
        view_size=64,
        per_device_batch_size=2,
        num_generations=2,
        val_episodes=0,
    )
    base.update(kw)
    return TrainConfig(**base)


# ------------------------------------------------------------------------------------------------
# config
# ------------------------------------------------------------------------------------------------
def test_named_configs_load_and_translate():
    assert {"tiny-cpu", "qwen3-vl-2b-1gpu", "qwen3-vl-8b-8gpu"} <= set(list_configs())
    for name in list_configs():
        assert isinstance(load_config(name), TrainConfig)
    cfg = load_config("tiny-cpu", ["max_steps=7", "condition=no-tools", "max_wall_s=none"])
    assert (cfg.max_steps, cfg.condition, cfg.max_wall_s) == (7, "no-tools", None)
    grpo = build_grpo_config(cfg)
    assert grpo.use_cpu and not grpo.bf16 and not grpo.use_vllm
    assert grpo.max_tool_calling_iterations == cfg.max_turns - 1
    assert grpo.num_generations == cfg.num_generations
    assert grpo.output_dir.endswith("grpo")
    sft = build_sft_config(cfg)
    assert sft.assistant_only_loss and not sft.packing and sft.output_dir.endswith("sft")
    big = load_config("qwen3-vl-8b-8gpu")
    assert big.use_vllm and big.vllm_mode == "server" and big.bf16


@pytest.mark.parametrize(
    "overrides",
    [
        ["nope=1"],
        ["max_steps=abc"],
        ["condition=tools-please"],
        ["use_vllm=true", "vllm_mode=server"],
        ["max_steps"],
        ["sft_tool=box"],
        ["sft_grid=0"],
    ],
)
def test_bad_overrides_are_config_errors(overrides):
    with pytest.raises(ConfigError):
        load_config("tiny-cpu", overrides)


def test_cli_reports_unknown_config(capsys):
    from astroreason.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "sft", "--config", "no-such-config"])
    assert e.value.code == 2
    assert "no-such-config" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# the environment adapter
# ------------------------------------------------------------------------------------------------
def test_tool_methods_render_the_declared_schemas(galaxy_file):
    adapter = adapter_factory(str(galaxy_file), "tools", ENV_OPTS)
    assert issubclass(adapter, ToolAdapter)
    schemas = {s["function"]["name"]: s["function"] for s in tool_schema_json(adapter)}
    assert set(schemas) == {"zoom", "crop"}  # the env's default tools
    for name, fn in schemas.items():
        decl = TOOL_SCHEMAS[name]["function"]
        assert fn["description"] == decl["description"]
        assert set(fn["parameters"]["properties"]) == set(decl["parameters"]["properties"])
        assert fn["parameters"]["required"] == decl["parameters"]["required"]
        for arg, prop in fn["parameters"]["properties"].items():
            assert prop["description"] == decl["parameters"]["properties"][arg]["description"]
            assert prop["type"] == decl["parameters"]["properties"][arg]["type"]
    assert tool_schema_json(AnswerAdapter) == []
    assert tool_schema_json(ToolAdapter) == []  # tools come from the configured env
    wide = adapter_factory(str(galaxy_file), "tools", {**ENV_OPTS, "tools": ("zoom", "stretch")})
    assert [s["function"]["name"] for s in tool_schema_json(wide)] == ["stretch", "zoom"]
    assert tool_schema_json(adapter_factory(str(galaxy_file), "no-tools", ENV_OPTS)) == []


def test_adapter_runs_tools_through_the_env_and_scores_with_its_reward(galaxy_file):
    cls = adapter_factory(str(galaxy_file), "tools", ENV_OPTS)
    env = cls()
    row_id = grpo_rows(make_env("galaxy", str(galaxy_file), "train", "tools", **ENV_OPTS))[3][
        "row_id"
    ]
    blocks = env.reset(row_id=row_id, prompt=[])
    assert [b["type"] for b in blocks] == ["image", "text"] and blocks[0]["image"].size == (64, 64)

    view = env.crop(bbox_2d=[250, 250, 750, 750])
    assert [b["type"] for b in view] == ["image", "text"]
    assert view[1]["text"].startswith("Image 1: crop of image 0")
    refused = env.zoom(center=[500, 500], factor=100)
    assert isinstance(refused, str) and "factor" in refused and refused.startswith("Error")
    odd = env.crop(bbox_2d=[0, 0, 500, 500], colour="red")  # unexpected argument: the env decides
    assert isinstance(odd, str) and "colour" in odd
    assert env.info["invalid_actions"] == 2 and len(env.info["tool_calls"]) == 3

    label = env.info["ground_truth"]["class_name"]
    answer = [{"role": "assistant", "content": f"<answer>{label}</answer>"}]
    seen = {}
    rewards = episode_reward([answer], [env], log_metric=lambda k, v: seen.__setitem__(k, v))
    cost = env.env.unwrapped.cfg.reward
    # one call that worked pays call_cost; the two refused calls pay format_penalty instead
    assert rewards == [pytest.approx(1.0 - cost.call_cost - 2 * cost.format_penalty)]
    assert env.info["correct"] and seen["episode/tool_calls"] == 3 and seen["episode/accuracy"] == 1
    assert seen["episode/on_target_rate"] in (0.0, 1.0)  # the one crop that worked, scored

    env.reset(row_id=row_id)
    still_calling = [{"role": "assistant", "content": "", "tool_calls": [{"function": {}}]}]
    assert episode_reward([still_calling], [env]) == [None]  # cut off by TRL: unscorable
    env.reset(row_id=row_id)
    assert episode_reward([[{"role": "assistant", "content": "hmm"}]], [env]) == [
        pytest.approx(-cost.format_penalty)
    ]


def _random_views(galaxy_file, seed, row_id, episodes=3):
    """Footprints the random-view placebo shows in ``episodes`` training episodes on one row."""
    cls = adapter_factory(str(galaxy_file), "random-view", ENV_OPTS, seed=seed)
    shown = []
    for _ in range(episodes):
        env = cls()  # TRL builds one adapter per rollout
        env.reset(row_id=row_id)
        env.zoom(center=[500, 500], factor=3)
        shown.append(tuple(env.info["views"][-1]["footprint"]))
    return shown


def test_random_view_training_episodes_are_seeded_by_the_run(galaxy_file):
    """The placebo arm's GRPO views come from the run's seed: a rerun shows the same places."""
    row_id = grpo_rows(make_env("galaxy", str(galaxy_file), "train", "tools", **ENV_OPTS))[0][
        "row_id"
    ]
    first = _random_views(galaxy_file, 0, row_id)
    assert _random_views(galaxy_file, 0, row_id) == first
    assert len(set(first)) == 3  # the completions of one group look at different places
    assert _random_views(galaxy_file, 1, row_id) != first


# ------------------------------------------------------------------------------------------------
# SFT data: same env, same prompt tokens as GRPO, tool results masked
# ------------------------------------------------------------------------------------------------
def test_sft_rows_mask_everything_but_the_models_turns(tmp_path, galaxy_file, tiny_model_dir):
    from transformers import AutoProcessor

    from astroreason.training.sft import ToolConversationCollator, oracle_dataset

    cfg = _cfg(tmp_path, galaxy_file, tiny_model_dir, sft_episodes=2)
    ds = oracle_dataset(cfg)
    assert len(ds) == 2 and len(ds[0]["images"]) == 2  # overview + crop
    call = ds[0]["messages"][2]["tool_calls"][0]["function"]
    assert call["name"] == "crop" and isinstance(call["arguments"], str)
    assert json.loads(call["arguments"])["bbox_2d"]

    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    tools = env_tool_schemas(adapter_factory(str(galaxy_file), "tools", ENV_OPTS))
    assert [t["function"]["name"] for t in tools] == ["zoom", "crop"]
    assert tools[1] == TOOL_SCHEMAS["crop"]  # the env's schemas, bounds included, not TRL's
    batch = ToolConversationCollator(processor, tools)(list(ds))
    tok = processor.tokenizer
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    image_pad = tok.convert_tokens_to_ids("<|image_pad|>")
    grid = batch["image_grid_thw"]
    assert grid.shape[0] == 4  # 2 conversations x (overview + tool view)
    assert int((batch["input_ids"] == image_pad).sum()) == int(grid.prod(-1).sum()) // 4

    trained = tok.decode(ids[labels != -100])
    assert "<tool_call>" in trained and "<answer>" in trained and "<|im_end|>" in trained
    assert "tool_response" not in trained and "Image 1" not in trained and "Classes" not in trained
    start = tok.convert_tokens_to_ids("<tool_response>")
    end = tok.convert_tokens_to_ids("</tool_response>")
    s, e = int((ids == start).nonzero()[0]), int((ids == end).nonzero()[0])
    assert (labels[s : e + 1] == -100).all()
    assert (labels[ids == image_pad] == -100).all()

    # GRPO's prompt (dataset row + what reset returns) renders to the same tokens as the SFT prefix
    row = grpo_rows(make_env("galaxy", str(galaxy_file), "train", "tools", **ENV_OPTS))[0]
    adapter = adapter_factory(str(galaxy_file), "tools", ENV_OPTS)()
    obs = adapter.reset(**row)
    user = {"role": "user", "content": [{"type": "text", "text": ""}, *obs]}
    grpo_prompt = processor.apply_chat_template(
        [row["prompt"][0], user], tools=tools, add_generation_prompt=True, tokenize=False
    )
    sft_messages = [
        {"role": "system", "content": adapter.info["messages"][0]["content"]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": obs[1]["text"]}]},
    ]
    sft_prompt = processor.apply_chat_template(
        sft_messages, tools=tools, add_generation_prompt=True, tokenize=False
    )
    assert grpo_prompt == sft_prompt and "crop" in grpo_prompt
    # ... and to the prompt evaluation renders (TransformersPolicy / vLLM: the env's info["tools"])
    from astroreason.policies.transformers_local import to_hf_messages

    msgs, _ = to_hf_messages(adapter.info["messages"])
    eval_prompt = processor.apply_chat_template(
        msgs, tools=adapter.info["tools"], add_generation_prompt=True, tokenize=False
    )
    assert eval_prompt == sft_prompt


# ------------------------------------------------------------------------------------------------
# a real run: SFT (through the CLI) then GRPO with a tool image mid-episode
# ------------------------------------------------------------------------------------------------
def _train_recording_first_batch(trainer) -> dict:
    """Train, with a spy that records TRL's batches (changes nothing); returns the first one."""
    batches = []
    produce = trainer._generate_and_score_completions

    def spy(inputs):
        batches.append(produce(inputs))
        return batches[-1]

    trainer._generate_and_score_completions = spy
    trainer.train()
    return batches[0]


def _steering(processor, data, tools, env="galaxy", env_opts=ENV_OPTS, call=None, answers=None):
    """``sequence_bias``: one tool call (a crop) after the overview, then one of two answers."""
    from astroreason.policies.transformers_local import to_hf_messages

    tok = processor.tokenizer
    _, info = make_env(env, str(data), "train", "tools", **env_opts).reset(options={"index": 0})
    msgs, _ = to_hf_messages(info["messages"])
    prompt = processor.apply_chat_template(
        msgs, tools=tools, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    prompt = prompt[0] if isinstance(prompt[0], list) else prompt
    after_overview = list(prompt[-8:])
    after_tool = tok("</tool_response><|im_end|>\n<|im_start|>assistant\n").input_ids

    def bias(context, text, value=40.0):
        t = tok(text, add_special_tokens=False).input_ids
        return [[context + t[: k + 1], value] for k in range(len(t))]

    call = call or format_tool_call("crop", {"bbox_2d": [250, 250, 750, 750]})
    out = bias(after_overview, call + "<|im_end|>")
    for answer in answers or ("Round Smooth", "Nonsense"):
        out += bias(after_tool, f"<answer>{answer}</answer><|im_end|>")
    return out


def test_sft_then_grpo_trains_with_tool_images(tmp_path, galaxy_file, tiny_model_dir):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from astroreason.cli import main
    from astroreason.training.grpo import build_trainer, start_checkpoint

    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(
        "from astroreason.training.config import TrainConfig\n"
        f"CONFIG = TrainConfig(model={str(tiny_model_dir)!r}, data={str(galaxy_file)!r}, "
        f"output_dir={str(tmp_path / 'run')!r}, report_to='none', view_size=64, "
        "per_device_batch_size=2, num_generations=2, sft_episodes=4)\n"
    )
    main(["train", "sft", "--config", str(cfg_file), "--set", "sft_max_steps=2"])
    cfg = load_config(str(cfg_file), ["sft_max_steps=2"])
    sft_dir = cfg.sft_dir
    model = AutoModelForImageTextToText.from_pretrained(sft_dir)
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    changed = [
        n
        for (n, p), (_, q) in zip(model.named_parameters(), base.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert changed, "SFT left every weight unchanged"
    log = (tmp_path / "run" / "experiment_log.md").read_text()
    assert ": sft" in log and "sft_max_steps=2" in log and "git commit" in log
    sft_loss = json.loads(log.split("- result: ")[1].splitlines()[0])["train_loss"]
    assert math.isfinite(sft_loss) and sft_loss > 0
    assert "![sft learning curves](sft/curves.png)" in log and (sft_dir / "curves.png").is_file()
    assert json.loads((sft_dir / "log_history.json").read_text())[0]["loss"] > 0

    # GRPO from the SFT checkpoint, 1 step, 4 rollouts of 2 prompts with a crop mid-episode
    cfg = _cfg(
        tmp_path,
        galaxy_file,
        tiny_model_dir,
        max_steps=1,
        per_device_batch_size=4,
        max_completion_length=128,
        val_episodes=2,
        val_every=1,
        val_max_new_tokens=8,
    )
    assert start_checkpoint(cfg) == str(sft_dir)
    processor = AutoProcessor.from_pretrained(sft_dir)
    tools = env_tool_schemas(adapter_factory(str(galaxy_file), "tools", ENV_OPTS))
    overrides = {"generation_kwargs": {"sequence_bias": _steering(processor, galaxy_file, tools)}}
    monitor = TrainingMonitor(cfg, stage="grpo", command="pytest")
    trainer, stats = build_trainer(cfg, monitor, trl_overrides=overrides)
    out = _train_recording_first_batch(trainer)

    # TRL rendered the env's tool schemas (as evaluation does), not its signature-derived ones
    prompt = processor.tokenizer.decode(out["prompt_ids"][0], skip_special_tokens=False)
    assert json.dumps(TOOL_SCHEMAS["crop"]) in prompt[: prompt.index("<|im_start|>user")]
    assert out["image_grid_thw"].shape[0] == 8  # 4 rollouts x (overview + crop view)
    assert list(out["num_images"]) == [2, 2, 2, 2]
    tool_mask, ids = out["tool_mask"], out["completion_ids"]
    tok = processor.tokenizer
    for i in range(ids.shape[0]):
        real = out["completion_mask"][i].bool()
        masked = tok.decode(ids[i][real & (tool_mask[i] == 0)])
        kept = tok.decode(ids[i][real & (tool_mask[i] == 1)])
        assert "<tool_response>" in masked and "Image 1: crop" in masked
        assert "<tool_call>" in kept and "<answer>" in kept and "tool_response" not in kept
    logs = trainer.state.log_history[0]
    assert math.isfinite(logs["loss"]) and logs["tools/call_frequency"] == 1.0
    assert logs["episode/tool_calls"] == 1.0 and logs["episode/over_turn_rate"] == 0.0
    assert stats.tool_calls == 4 and stats.episodes == 4
    assert monitor.val_history and 0.0 <= monitor.val_history[0][1] <= 1.0
    assert (cfg.grpo_dir / "val" / "step-1" / "traces.jsonl").is_file()
    curve = [json.loads(line) for line in (cfg.grpo_dir / "val_curve.jsonl").open()]
    assert [r["step"] for r in curve] == [0, 1] and curve[0]["n"] == 2  # from the SFT checkpoint
    assert (cfg.grpo_dir / "curves.png").is_file() and (cfg.grpo_dir / "log_history.json").is_file()

    from astroreason.training.model_loading import save_final

    save_final(trainer, cfg.grpo_dir)
    reloaded = AutoModelForImageTextToText.from_pretrained(cfg.grpo_dir)
    assert sum(p.numel() for p in reloaded.parameters()) == sum(
        p.numel() for p in model.parameters()
    )


SPECTRUM_OPTS = {
    "view_width": 128,
    "view_height": 64,
    "task": "subclass",
    "table": False,
    "max_turns": 4,
    "max_tool_calls": 1,
    "split_seed": 0,
    "reward": RewardConfig(),  # the config's reward_* fields, the env's defaults here
}


def test_spectrum_training_sft_rows_and_grpo_rollouts_open_windows(
    tmp_path, spectra_dir, tiny_model_dir
):
    """``env=spectrum``: the teacher's windows in SFT rows, spectrum_window as a TRL tool in GRPO."""
    from transformers import AutoProcessor

    from astroreason.training.config import env_options
    from astroreason.training.env_adapter import open_config_source
    from astroreason.training.grpo import build_trainer
    from astroreason.training.sft import oracle_dataset, run_sft

    cfg = _cfg(
        tmp_path,
        spectra_dir,
        tiny_model_dir,
        env="spectrum",
        spectrum_task="subclass",
        max_tool_calls=1,
        sft_episodes=4,
        sft_max_steps=1,
        sft_window_grid=50,
        max_steps=1,
        per_device_batch_size=4,
        max_completion_length=160,
        val_episodes=2,
        val_max_new_tokens=8,
    )
    assert env_options(cfg) == SPECTRUM_OPTS
    source = open_config_source(cfg)  # the subclass task's labels, as the env reads them
    assert len(source.class_names) == 4 and "GALAXY AGN" in source.class_names
    rows = oracle_dataset(cfg, source)
    said = [m["content"] for r in rows for m in r["messages"] if m["role"] == "assistant"]
    answers = {b["text"] for content in said for b in content if b.get("text")}
    assert answers and answers <= {f"<answer>{c}</answer>" for c in source.class_names}
    calls = [
        m["tool_calls"][0]["function"] for r in rows for m in r["messages"] if m.get("tool_calls")
    ]
    assert len(calls) == 4 and {c["name"] for c in calls} == {"spectrum_window"}
    for c in calls:  # the teacher's bounds on the 50 A grid, the window around the key lines
        lo, hi = json.loads(c["arguments"]).values()
        assert lo % 50 == 0 and hi % 50 == 0 and 3700 < lo < hi < 9300
    assert all(len(r["images"]) == 2 for r in rows)  # the overview and the window
    summary = run_sft(cfg, command="pytest")
    assert summary["steps"] == 1 and math.isfinite(summary["train_loss"])

    processor = AutoProcessor.from_pretrained(cfg.sft_dir)
    adapter = adapter_factory(str(spectra_dir), "tools", SPECTRUM_OPTS, env="spectrum")
    assert hasattr(adapter, "spectrum_window") and not hasattr(adapter, "zoom")
    tools = env_tool_schemas(adapter)
    window = format_tool_call("spectrum_window", {"lambda_min": 6500, "lambda_max": 6650})
    steer = _steering(
        processor,
        spectra_dir,
        tools,
        env="spectrum",
        env_opts=SPECTRUM_OPTS,
        call=window,
        answers=("GALAXY AGN", "STAR"),
    )
    trainer, stats = build_trainer(
        cfg, trl_overrides={"generation_kwargs": {"sequence_bias": steer}}
    )
    out = _train_recording_first_batch(trainer)
    prompt = processor.tokenizer.decode(out["prompt_ids"][0], skip_special_tokens=False)
    assert json.dumps(TOOL_SCHEMAS["spectrum_window"]) in prompt and '"zoom"' not in prompt
    assert list(out["num_images"]) == [2, 2, 2, 2]  # overview + window in every rollout
    masked = processor.tokenizer.decode(out["completion_ids"][0][out["tool_mask"][0] == 0])
    assert "Image 1: spectrum 6500" in masked
    assert stats.tool_calls == 4 and stats.episodes == 4


# ------------------------------------------------------------------------------------------------
# alarms and budget guards
# ------------------------------------------------------------------------------------------------
def test_alarm_checks_fire_on_planted_failures_and_stay_quiet_otherwise():
    steps = list(range(1, 41))
    normal = [2.0 * 0.99**s + 0.05 * math.sin(s) for s in steps]
    collapsing = [2.0] * 10 + [0.05] * 30
    format_learnt = [7.0] * 3 + [0.5] * 37  # x14 within the window, but the answer stays uncertain
    assert check_loss_collapse(steps, format_learnt) is None
    assert check_loss_collapse(steps, normal) is None
    assert "collapsed" in check_loss_collapse(steps, collapsing)
    slow = [2.0 * 0.9**s for s in steps]  # x10 only over ~22 steps: too fast -> alarm
    assert check_loss_collapse(steps, slow, factor=10, window=30) is not None
    assert check_loss_collapse(steps, slow, factor=10, window=5) is None
    assert check_loss_collapse([1, 2], [0.01, -0.02]) is None  # GRPO-like losses near 0
    assert check_accuracy_ceiling(0.97, 0.90) is not None
    assert check_accuracy_ceiling(0.42, 0.90) is None
    assert check_tool_collapse([1.2, 1.0, 0.9, 0.0, 0.0, 0.0]) is not None
    assert check_tool_collapse([1.2, 1.0, 0.0, 1.0, 0.8, 1.1]) is None
    assert check_invalid_rise([0.05, 0.1, 0.05, 0.4, 0.5, 0.6]) is not None
    assert check_invalid_rise([0.3, 0.2, 0.25, 0.2, 0.3, 0.25]) is None


def _break_the_labels(dataset):
    """A planted data fault: every answer is the first row's class, as when a class-sorted file
    (the overnight failure's file) is cut without shuffling. The answer becomes predictable from
    nothing, which is what a leak looks like to the loss; this fault is learnt in a few dozen
    steps on any machine, whereas copying a class named in the prompt is learnt by the tiny
    random model at a speed that varies between CPUs."""
    first = dataset[0]["messages"][-1]["content"][0]["text"]  # <answer>CLASS</answer>

    def plant(row):
        row["messages"][-1]["content"][0]["text"] = first
        return row

    return dataset.map(plant)


@pytest.mark.slow
@pytest.mark.parametrize("leak, epochs", [(False, 8.0), (True, 8.0)])
def test_real_sft_run_alarms_on_a_label_leak(tmp_path, galaxy_file, tiny_model_dir, leak, epochs):
    """Real SFT of the tiny model (no-tools arm, 40 train rows): when the answer can be had without
    looking (here a broken label column) the loss falls past the honest ~0.45 plateau to below 0.1
    and the monitor says so; honest rows level off at the plateau and stay quiet. (Run long enough,
    honest SFT on 40 rows memorises them and the same alarm fires: it says "memorising, a leak, or
    a broken mask".)"""
    from astroreason.training import sft

    cfg = _cfg(
        tmp_path,
        galaxy_file,
        tiny_model_dir,
        condition="no-tools",
        sft_episodes=0,
        sft_epochs=epochs,
        sft_learning_rate=3e-3,
        per_device_batch_size=4,
        logging_steps=2,
    )
    honest = sft.oracle_dataset
    if leak:  # fault injection: only the data changes; trainer, monitor and alarm are the real ones
        import unittest.mock

        patch = unittest.mock.patch.object(
            sft, "oracle_dataset", lambda c, s=None: _break_the_labels(honest(c, s))
        )
    else:
        import contextlib

        patch = contextlib.nullcontext()
    with patch:
        summary = sft.run_sft(cfg, command="pytest")
    log = (tmp_path / "run" / "experiment_log.md").read_text()
    alarms = tmp_path / "run" / "sft" / "alarms.log"
    if leak:
        assert "loss collapsed" in alarms.read_text(), summary
        assert "loss collapsed" in log
    else:
        assert not alarms.exists(), alarms.read_text()
        assert "- alarms: none" in log


def test_monitor_writes_alarms_and_stops_on_budget(tmp_path, capsys):
    from transformers import TrainerControl, TrainerState

    from astroreason.training.env_adapter import EpisodeStats

    cfg = TrainConfig(output_dir=str(tmp_path), max_generated_tokens=100, report_to="none")
    quiet = TrainingMonitor(cfg, "grpo", command="x")
    state, control = TrainerState(), TrainerControl()
    for s, loss in enumerate(np.linspace(1.0, 0.8, 10), start=1):
        state.global_step = s
        quiet.on_log(None, state, control, logs={"loss": float(loss), "episode/tool_calls": 1.0})
    quiet.record_validation(10, 0.4)
    assert quiet.alarms == [] and not (tmp_path / "grpo" / "alarms.log").exists()

    loud = TrainingMonitor(cfg, "grpo", command="x", stats=EpisodeStats())
    for s, loss in enumerate([1.0, 0.9, 0.05], start=1):
        state.global_step = s
        loud.on_log(None, state, control, logs={"loss": loss})
    loud.record_validation(3, 0.96)
    text = (tmp_path / "grpo" / "alarms.log").read_text()
    # GRPO's loss is a policy-gradient surrogate (near 0, any sign): no collapse alarm from it
    assert "above the ceiling" in text and "loss collapsed" not in text and len(loud.alarms) == 1
    assert "ALARM" in capsys.readouterr().err
    sft = TrainingMonitor(cfg, "sft", command="x")
    for s, loss in enumerate([1.0, 0.9, 0.05], start=1):
        state.global_step = s
        sft.on_log(None, state, control, logs={"loss": loss})
    assert "loss collapsed" in (tmp_path / "sft" / "alarms.log").read_text()

    loud.stats.completion_tokens = 99
    loud.on_step_end(None, state, control)
    assert not control.should_training_stop
    loud.stats.completion_tokens = 101
    loud.on_step_end(None, state, control)
    assert control.should_training_stop and control.should_save
    path = loud.finish(state, {"steps": 3})
    section = path.read_text()
    assert (
        "max_generated_tokens" in section and "above the ceiling" in section and "sha256" in section
    )
    assert "| grpo-1 | stopped by budget: 101 generated tokens" in section

    # the cost guard: wall hours x devices x price per device-hour
    import types

    priced = TrainConfig(
        output_dir=str(tmp_path / "c"), price_per_device_hour=3.6, max_cost=0.01, report_to="none"
    )
    mon, control = TrainingMonitor(priced, "grpo", command="x"), TrainerControl()
    args = types.SimpleNamespace(world_size=4)
    mon._t0 -= 1.0  # one second on 4 devices at 3.6 an hour: 0.004
    mon.on_step_end(args, state, control)
    assert not control.should_training_stop and 0.004 <= mon.cost(args) < 0.006
    mon._t0 -= 2.0  # three seconds: 0.012 > 0.01
    mon.on_step_end(args, state, control)
    assert control.should_training_stop and mon.stopped_by.startswith("cost 0.01")
    from astroreason.training import config as config_module

    with pytest.raises(ConfigError, match="price_per_device_hour"):
        config_module.check_config(TrainConfig(max_cost=5.0))


def test_training_refuses_leaky_data_unless_allowed(tmp_path, tiny_model_dir, capsys):
    """The audit runs before any step: a class-sorted file is refused in one line (exit 2);
    ``--allow-leaky`` trains and the finding goes into the experiment log."""
    from fakesources import sorted_labels, write_galaxy10_h5

    from astroreason.cli import main

    data = write_galaxy10_h5(tmp_path / "sorted.h5", sorted_labels([12] * 10), side=64)
    base = [
        "--set", f"model={tiny_model_dir}", "--set", f"data={data}",
        "--set", f"output_dir={tmp_path / 'run'}", "--set", "report_to=none",
        "--set", "sft_episodes=2", "--set", "sft_max_steps=1", "--set", "val_episodes=0",
        "--set", "per_device_batch_size=2", "--set", "num_generations=2",
    ]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(["train", "sft", "--config", "tiny-cpu", *base])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "HIGH row_order" in err and "--allow-leaky" in err and str(data) in err
    assert not (tmp_path / "run" / "sft").exists()  # refused before the model was loaded

    main(["train", "sft", "--config", "tiny-cpu", *base, "--allow-leaky"])
    log = (tmp_path / "run" / "experiment_log.md").read_text()
    assert "leakage audit: TRAINED WITH --allow-leaky" in log
    assert "  - HIGH row_order: Rows are ordered by class" in log
    assert "allow_leaky=true" in log  # the command as recorded


def test_a_shuffled_repack_of_a_sorted_file_passes_the_gate(tmp_path):
    """The cure the refusal points to for a class-sorted Galaxy10 file: same rows, seeded order."""
    from fakesources import sorted_labels, write_galaxy10_h5

    from astroreason.cli import main
    from astroreason.data import open_source
    from astroreason.training.leakage import LeakyDataError, audit_gate

    data = write_galaxy10_h5(tmp_path / "sorted.h5", sorted_labels([12] * 10), side=16)
    cfg = TrainConfig(data=str(data))
    with pytest.raises(LeakyDataError, match="row_order"):
        audit_gate(cfg, open_source(data))
    main(["data", "repack", str(data), str(tmp_path / "shuffled.h5"), "--shuffle"])
    a, b = open_source(data), open_source(tmp_path / "shuffled.h5")
    assert audit_gate(cfg, b) == []
    # the same samples, each with its own label and metadata, in another order
    assert sorted(a.pixel_hashes()) == sorted(b.pixel_hashes())

    def pairs(src):
        return zip(src.pixel_hashes(), src, strict=True)

    by_hash = {h: (int(s.label), float(s.meta["ra"])) for h, s in pairs(a)}
    assert all(by_hash[h] == (int(s.label), float(s.meta["ra"])) for h, s in pairs(b))


def test_tokens_training_sft_rows_and_grpo_rollouts_read_codec_ids(
    tmp_path, galaxy_file, tiny_model_dir
):
    """``obs=tokens``: SFT rows and GRPO prompts carry codec ids as text, no image; a zoom's tokens
    come back in the (masked) tool turn."""
    from transformers import AutoProcessor

    from astroreason.codecs import open_codec
    from astroreason.training.config import env_options
    from astroreason.training.grpo import build_trainer
    from astroreason.training.sft import oracle_dataset, run_sft

    cfg = _cfg(
        tmp_path,
        galaxy_file,
        tiny_model_dir,
        obs="tokens",
        max_tool_calls=1,
        sft_tool="zoom",
        sft_grid=50,
        sft_episodes=4,
        sft_max_steps=1,
        max_steps=1,
        per_device_batch_size=4,
        max_completion_length=384,
    )
    opts = env_options(cfg)
    assert (opts["obs"], opts["codec"], opts["view_size"]) == ("tokens", "tiny-vq", 64)
    rows = oracle_dataset(cfg)
    assert all(r["images"] == [] for r in rows)  # no pixels anywhere
    texts = [
        b["text"]
        for r in rows
        for m in r["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("type") == "text"
    ]
    ids = [t for t in texts if t.startswith("<v")]
    assert len(ids) == 8  # the overview's and the zoom's ids in each of the 4 conversations
    codec = open_codec("tiny-vq")
    assert all(t.count("<v") == (64 // codec.patch) ** 2 for t in ids)
    summary = run_sft(cfg, command="pytest")
    assert summary["steps"] == 1 and math.isfinite(summary["train_loss"])

    processor = AutoProcessor.from_pretrained(cfg.sft_dir)
    adapter = adapter_factory(str(galaxy_file), "tools", opts)
    zoom = format_tool_call("zoom", {"center": [500, 500], "factor": 3})
    steer = _steering(processor, galaxy_file, env_tool_schemas(adapter), env_opts=opts, call=zoom)
    trainer, stats = build_trainer(
        cfg, trl_overrides={"generation_kwargs": {"sequence_bias": steer}}
    )
    out = _train_recording_first_batch(trainer)
    prompt = processor.tokenizer.decode(out["prompt_ids"][0], skip_special_tokens=False)
    assert "<|image_pad|>" not in prompt and codec.name in prompt
    grid_ids = re.compile(r"(<v\d+>){" + str((64 // codec.patch) ** 2) + r"}")
    assert grid_ids.search(prompt)
    masked = processor.tokenizer.decode(out["completion_ids"][0][out["tool_mask"][0] == 0])
    assert "Image 1: zoom x3" in masked
    assert grid_ids.search(masked)
    assert stats.tool_calls == 4 and stats.episodes == 4


def test_grpo_freeze_vision_keeps_the_tower_and_trains_the_rest(tiny_model_dir):
    from transformers import AutoModelForImageTextToText

    from astroreason.training.grpo import freeze_vision

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    visual = {id(p) for p in model.model.visual.parameters()}
    frozen = freeze_vision(model)
    assert frozen == sum(p.numel() for p in model.model.visual.parameters()) > 0
    for p in model.parameters():
        assert p.requires_grad == (id(p) not in visual)
