"""A run killed with SIGKILL resumes from its last checkpoint and ends like an uninterrupted one."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astroreason.cli import main
from astroreason.training.experiment_log import ExperimentLog

STEPS = 10


def write_config(tmp_path, tiny_model_dir, galaxy_file) -> Path:
    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        "from astroreason.training.config import TrainConfig\n"
        f"CONFIG = TrainConfig(model={str(tiny_model_dir)!r}, data={str(galaxy_file)!r}, "
        "report_to='none', view_size=64, per_device_batch_size=2, num_generations=2, "
        f"sft_episodes=8, sft_max_steps={STEPS}, save_steps=2, logging_steps=1, val_episodes=0, "
        "sft_learning_rate=1e-3)\n"
    )
    return cfg


def losses(run: Path) -> dict[int, float]:
    hist = json.loads((run / "sft" / "log_history.json").read_text())
    return {h["step"]: h["loss"] for h in hist if "loss" in h}


def test_sigkilled_sft_resumes_with_the_same_loss_curve(
    tmp_path, tiny_model_dir, galaxy_file, capsys
):
    cfg = write_config(tmp_path, tiny_model_dir, galaxy_file)
    main(["train", "sft", "--config", str(cfg), "--set", f"output_dir={tmp_path / 'a'}"])
    whole = losses(tmp_path / "a")
    assert sorted(whole) == list(range(1, STEPS + 1))

    b = tmp_path / "b"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "astroreason", "train", "sft", "--config", str(cfg),
         "--set", f"output_dir={b}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.time() + 300
    while not (b / "sft" / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(int(d.name.split("-")[1]) for d in (b / "sft").glob("checkpoint-*"))
    if max(done) >= STEPS:
        pytest.fail(f"the run was killed too late to test resuming: {done}")
    # the entry written at the start survives the kill; the next reader sees the process gone
    (entry,) = ExperimentLog(b).entries()
    assert entry["status"] == "crashed (process gone)" and entry["stage"] == "sft"

    capsys.readouterr()
    main(["train", "sft", "--config", str(cfg), "--set", f"output_dir={b}", "--resume"])
    err = capsys.readouterr().err
    assert "resuming from" in err and "checkpoint-" in err
    resumed = losses(b)
    assert sorted(resumed) == sorted(whole)  # ends at the same step, no step lost or repeated
    for step, loss in whole.items():
        assert resumed[step] == pytest.approx(loss, rel=1e-4, abs=1e-6), step
    first, second = ExperimentLog(b).entries()
    assert second["status"] == "finished" and second["resumed_from"].startswith(str(b / "sft"))
    assert second["step"] == STEPS
    table = (b / "experiment_log.md").read_text().split("\n## ")[0]
    assert "| sft-1 | crashed (process gone) |" in table and "| sft-2 | finished |" in table
