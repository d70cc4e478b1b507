"""Sweeps: a run per grid point, skipped when done, one budget for all, a table and a plot."""

import json

from astroreason.cli import main
from astroreason.training.experiment_log import ExperimentLog
from astroreason.training.sweep import point_name


def test_point_names_are_safe_distinct_folder_names():
    assert point_name({"beta": "0.04", "learning_rate": "1e-5"}) == "beta=0.04,learning_rate=1e-5"
    odd = [{"data": "a/b"}, {"data": "a_b"}, {"data": "a\x00b"}, {"data": "a b"}, {"data": ".."}]
    long = [{"data": "x" * 300 + str(i)} for i in range(2)]
    names = [point_name(p) for p in odd + long]
    assert len(set(names)) == len(names)
    for n in names:
        assert len(n) <= 120 and n not in (".", "..") and "/" not in n and "\x00" not in n
        assert all(c.isalnum() or c in "._=,+-~" for c in n), n


def test_sweep_runs_points_resumes_and_respects_its_budget(
    tmp_path, tiny_model_dir, galaxy_file, capsys
):
    cfg = tmp_path / "cfg.py"
    cfg.write_text(
        "from astroreason.training.config import TrainConfig\n"
        f"CONFIG = TrainConfig(model={str(tiny_model_dir)!r}, data={str(galaxy_file)!r}, "
        "report_to='none', view_size=64, per_device_batch_size=2, num_generations=2, "
        "sft_episodes=4, sft_max_steps=2, val_episodes=2, val_max_new_tokens=8)\n"
    )
    out = tmp_path / "sweep"
    args = ["sweep", "--config", str(cfg), "--grid", "sft_learning_rate=1e-4,1e-3",
            "--stage", "sft", "--out", str(out)]  # fmt: skip
    main(args)
    points = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["point"] for p in points] == [
        {"sft_learning_rate": "1e-4"},
        {"sft_learning_rate": "1e-3"},
    ]
    assert all(p["status"] == "finished" and 0 <= p["val"]["accuracy"] <= 1 for p in points)
    table = (out / "sweep.md").read_text()
    assert "| 1e-4 | finished | sft | 2 |" in table and (out / "sweep.png").stat().st_size > 1000
    logs = [ExperimentLog(p["folder"]).entries() for p in points]
    assert [e["config"]["sft_learning_rate"] for (e,) in logs] == [1e-4, 1e-3]

    main(args)  # a rerun trains nothing
    again = json.loads((out / "sweep.json").read_text())["points"]
    assert all(p["status"] == "finished (earlier run)" for p in again)
    assert [len(ExperimentLog(p["folder"]).entries()) for p in again] == [1, 1]
    assert "sweep of" in capsys.readouterr().out  # the terminal table

    tight = tmp_path / "tight"
    main([*args[:-1], str(tight), "--max-wall-s", "0.001"])
    first, second = json.loads((tight / "sweep.json").read_text())["points"]
    assert first["status"].startswith("stopped by budget") and second["status"].startswith(
        "not run"
    )
