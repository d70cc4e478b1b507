"""Two CPU processes (torch.distributed with gloo, the trainer's accelerate inside): one writer."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import load_file


def test_two_processes_write_logs_alarms_and_validation_once(tmp_path, tiny_model_dir, galaxy_file):
    run = tmp_path / "run"
    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        "from astroreason.training.config import TrainConfig\n"
        f"CONFIG = TrainConfig(model={str(tiny_model_dir)!r}, data={str(galaxy_file)!r}, "
        f"output_dir={str(run)!r}, report_to='none', view_size=64, per_device_batch_size=2, "
        "num_generations=2, sft_episodes=8, sft_max_steps=2, save_steps=2, val_episodes=2, "
        "val_max_new_tokens=8, acc_ceiling=-1.0)\n"  # every validation raises the ceiling alarm
    )
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29531", "-m", "astroreason", "train", "sft", "--config", str(cfg)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    args = torch.load(run / "sft" / "training_args.bin", weights_only=False)
    assert args.world_size == 2  # really two processes in one process group
    assert out.stdout.count("stage=sft") == 1  # the summary line, from the main process only
    (entry,) = json.loads((run / "experiment_log.json").read_text())["runs"]
    assert entry["status"] == "finished" and entry["step"] == 2
    rows = (run / "sft" / "val_curve.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["step"] == 2
    alarms = (run / "sft" / "alarms.log").read_text().splitlines()
    assert len(alarms) == 1 and "above the ceiling" in alarms[0]
    # the final model, saved through the trainer, is the trained one (the step-2 checkpoint)
    final = load_file(run / "sft" / "model.safetensors")
    ckpt = load_file(run / "sft" / "checkpoint-2" / "model.safetensors")
    assert final.keys() == ckpt.keys() and all(torch.equal(final[k], ckpt[k]) for k in final)
