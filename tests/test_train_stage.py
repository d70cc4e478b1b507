"""What a training stage leaves and prints: settings and cards in every model folder, checkpoints of
short and interrupted runs, the end-of-stage validation line and its alarm, tracking scalars, and a
quiet terminal. Real SFT runs of the offline tiny Qwen3-VL on CPU (seconds each)."""

import dataclasses
import json
import logging
import sys
import types
import warnings

import pytest

from astroreason.checkpoint_settings import read_settings, settings_table
from astroreason.training.cards import config_name
from astroreason.training.checkpoints import scaled_save_steps
from astroreason.training.config import TrainConfig
from astroreason.training.experiment_log import ExperimentLog
from astroreason.training.monitor import TrainingMonitor
from astroreason.training.terminal import ProgressLine, quiet_stage


def _cfg(tmp_path, galaxy_file, tiny_model_dir, **kw):
    base = dict(
        model=str(tiny_model_dir),
        data=str(galaxy_file),
        output_dir=str(tmp_path / "run"),
        report_to="none",
        view_size=64,
        per_device_batch_size=2,
        num_generations=2,
        val_episodes=1,  # at the end only (val_every 0)
        val_max_new_tokens=8,
        logging_steps=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def _global_state():
    loggers = [logging.getLogger(n) for n in ("transformers", "trl", "torch", "py.warnings")]
    return warnings.showwarning, [(list(lg.handlers), lg.propagate) for lg in loggers]


def test_short_sft_run_leaves_settings_cards_checkpoints_scalars_and_a_quiet_terminal(
    tmp_path, galaxy_file, tiny_model_dir, capsys
):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from astroreason.training.sft import run_sft

    cfg = _cfg(
        tmp_path,
        galaxy_file,
        tiny_model_dir,
        sft_episodes=4,
        sft_max_steps=4,  # save_steps stays at its default 500: scaled to 1 for 4 steps
        max_tool_calls=2,
        val_every=2,
        val_episodes=2,
        val_max_new_tokens=8,
        report_to="tensorboard",
    )
    command = "astroreason train sft --config tiny-cpu --set sft_max_steps=4"
    before = _global_state()
    run_sft(cfg, command=command)
    assert _global_state() == before  # loggers and warnings.showwarning put back

    stage = cfg.sft_dir
    checkpoints = sorted(stage.glob("checkpoint-*"))
    assert checkpoints and checkpoints[-1].name == "checkpoint-4"
    for folder in [stage, *checkpoints]:
        raw = json.loads((folder / "astroreason.json").read_text())
        assert raw["env_options"]["view_size"] == cfg.view_size == 64
        assert raw["env_options"]["max_tool_calls"] == cfg.max_tool_calls == 2
        assert raw["sampling"] == {"temperature": 0.0, "max_tokens": cfg.val_max_new_tokens}
        steps = 4 if folder == stage else int(folder.name.split("-")[1])
        assert raw["trained"] == {"stage": "sft", "config": "tiny-cpu", "steps": steps,
                                  "command": command}  # fmt: skip
        card = (folder / "README.md").read_text()
        assert "fine-tuned version of" not in card and "# AstroReason sft" in card
        assert settings_table(read_settings(folder)) in card and f"`{command}`" in card
    card = (stage / "README.md").read_text()
    assert "The stage's final model" in card and "- stage: sft, 4 optimizer steps" in card
    assert "- last validation: step 4, 2 episodes, greedy: accuracy " in card
    assert "(start " in card and f"--model {stage}" in card

    (events,) = (stage / "runs").glob("*/events.out.tfevents.*")
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"val/accuracy", "val/tool_calls", "val/invalid", "val/over_turn"} <= set(tags)
    assert [e.step for e in acc.Scalars("val/accuracy")] == [0, 2, 4]

    err = capsys.readouterr().err
    assert "sft step 2/4 loss " in err and " lr " in err and "sft step 4/4" in err
    assert "{'loss'" not in err and "Loading weights" not in err and "%|" not in err
    assert "sft val: accuracy " in err and "tool calls" in err


def test_ctrl_c_logs_the_step_and_metrics_and_leaves_a_checkpoint_resume_continues(
    tmp_path, galaxy_file, tiny_model_dir, monkeypatch, capsys
):
    from astroreason.training import monitor as monitor_module
    from astroreason.training.sft import run_sft

    cfg = _cfg(tmp_path, galaxy_file, tiny_model_dir, sft_episodes=8, sft_max_steps=8)
    real_on_log = monitor_module.TrainingMonitor.on_log

    def on_log(self, args, state, control, logs=None, **kwargs):  # Ctrl-C after step 3's log
        real_on_log(self, args, state, control, logs=logs, **kwargs)
        if state.global_step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(monitor_module.TrainingMonitor, "on_log", on_log)
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg, command="pytest")
    monkeypatch.undo()

    (entry,) = ExperimentLog(cfg.output_dir).entries()
    loss_3 = next(h["loss"] for h in _history(cfg) if h["step"] == 3)
    assert entry["status"] == "stopped by user" and entry["step"] == 3
    assert entry["metrics"]["loss"] == pytest.approx(loss_3, abs=1e-5)
    assert "learning_rate" in entry["metrics"]
    ckpt = cfg.sft_dir / "checkpoint-3"  # save_steps 2 (8 steps // 4): this one is the interrupt's
    assert entry["checkpoint"] == str(ckpt)
    assert json.loads((ckpt / "trainer_state.json").read_text())["global_step"] == 3
    assert (ckpt / "optimizer.pt").is_file() and (ckpt / "astroreason.json").is_file()
    err = capsys.readouterr().err
    assert "[sft] stopped by user at step 3/8; last logged: loss " in err
    assert f"checkpoint {ckpt} (--resume continues from it)" in err

    summary = run_sft(dataclasses.replace(cfg, resume=True), command="pytest --resume")
    assert summary["steps"] == 8
    first, second = ExperimentLog(cfg.output_dir).entries()
    assert second["resumed_from"] == str(ckpt) and second["status"] == "finished"
    assert second["step"] == 8
    logged = [h["step"] for h in _history(cfg) if "loss" in h]
    assert logged == list(range(1, 9))  # each step once: none lost, none repeated


def _history(cfg):
    return json.loads((cfg.sft_dir / "log_history.json").read_text())


def test_stage_end_line_and_an_alarm_when_validation_ends_below_its_start(tmp_path, capsys):
    cfg = TrainConfig(output_dir=str(tmp_path / "a"), report_to="none")
    mon = TrainingMonitor(cfg, "grpo", command="x")
    start = {"on_target_rate": 0.8, "tool_calls": 1.0, "invalid_rate": 0.0, "over_turn_rate": 0.0}
    mon.record_validation(0, 0.5, start)
    end = {"on_target_rate": None, "tool_calls": 0.5, "invalid_rate": 0.1, "over_turn_rate": 0.0}
    mon.record_validation(10, 0.375, end)
    line = mon.report_end(10)
    assert line == (
        "grpo val: accuracy 0.375 (start 0.500), on-target -, tool calls 0.50, invalid 0.100, "
        "over-turn 0.000"
    )
    alarms = (tmp_path / "a" / "grpo" / "alarms.log").read_text()
    assert "final validation accuracy 0.375 is below its start 0.500 (step 0)" in alarms
    err = capsys.readouterr().err
    assert line in err and "ALARM (grpo)" in err

    steady = TrainingMonitor(TrainConfig(output_dir=str(tmp_path / "b")), "sft", command="x")
    steady.record_validation(0, 0.5)
    steady.record_validation(8, 0.5)
    assert steady.report_end(8).startswith("sft val: accuracy 0.500 (start 0.500)")
    assert steady.alarms == [] and not (tmp_path / "b" / "sft" / "alarms.log").exists()


def test_validation_goes_to_wandb_when_it_is_the_reporter(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setitem(
        sys.modules, "wandb", types.SimpleNamespace(run=object(), log=logged.append)
    )
    mon = TrainingMonitor(TrainConfig(output_dir=str(tmp_path)), "grpo", command="x")
    mon.trainer = types.SimpleNamespace(
        args=types.SimpleNamespace(report_to=["wandb"]),
        callback_handler=types.SimpleNamespace(callbacks=[]),
    )
    mon.record_validation(5, 0.25, {"tool_calls": 1.0, "on_target_rate": None})
    assert logged == [{"val/accuracy": 0.25, "val/tool_calls": 1.0, "train/global_step": 5}]


def test_quiet_stage_sends_third_party_noise_to_the_log_once_and_puts_everything_back(
    tmp_path, capsys
):
    before = _global_state()
    with quiet_stage(tmp_path / "grpo") as log:
        vllm = "TRL currently supports vLLM versions from 0.22.0 to 0.31.0"
        warnings.warn(vllm, UserWarning, stacklevel=1)  # TRL warns so from five places at import
        warnings.warn(vllm, UserWarning, stacklevel=1)
        for i in range(3):
            logging.getLogger("trl.trainer.grpo_trainer").warning(
                "All reward functions returned None for the following kwargs:\n{'row_id': %d}", i
            )
        logging.getLogger("transformers.modeling_utils").error("real trouble")
    assert _global_state() == before
    err = capsys.readouterr().err
    assert "vLLM" not in err and "row_id" not in err and "real trouble" in err
    text = log.read_text()
    assert text.startswith("--- ")
    assert text.count("WARNING py.warnings") == 1 and "TRL currently supports vLLM" in text
    assert "(1 more from py.warnings: UserWarning: TRL currently supports vLLM" in text
    assert "{'row_id': 0}" in text and "{'row_id': 1}" not in text
    assert "(2 more from trl.trainer.grpo_trainer: All reward functions returned None" in text


def test_progress_line_checkpoint_cadence_and_config_name():
    line = ProgressLine("sft").line(12, 75, {"loss": 1.2345, "learning_rate": 4.1e-4, "epoch": 1})
    assert line.startswith("sft step 12/75 loss 1.234 lr 4.1e-04 (")
    assert [scaled_save_steps(500, n) for n in (4, 40, 264, 10_000)] == [1, 10, 66, 500]
    assert scaled_save_steps(2, 10) == 2 and scaled_save_steps(500, None) == 500
    assert config_name("astroreason train grpo --config tiny-cpu --set max_steps=3") == "tiny-cpu"
    assert config_name("pytest") is None


def test_resume_skips_a_checkpoint_whose_files_are_truncated(tmp_path, capsys):
    """A truncated model.safetensors (or optimizer.pt) in the newest checkpoint: the one before."""
    import shutil
    from pathlib import Path

    import torch

    from astroreason.training.checkpoints import last_complete_checkpoint

    weights = (
        Path(__file__).resolve().parents[1] / "checkpoints/tiny-galaxy-agent/model.safetensors"
    )
    for step in (4, 8, 12):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "trainer_state.json").write_text("{}")
        shutil.copy(weights, d / "model.safetensors")
        torch.save({"step": step}, d / "optimizer.pt")
    data = (tmp_path / "checkpoint-12" / "model.safetensors").read_bytes()
    (tmp_path / "checkpoint-12" / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-8")
    assert "skipping" in capsys.readouterr().err
    opt = (tmp_path / "checkpoint-8" / "optimizer.pt").read_bytes()
    (tmp_path / "checkpoint-8" / "optimizer.pt").write_bytes(opt[:-30])
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert "optimizer.pt is damaged" in capsys.readouterr().err
