"""Smoke: `astroreason demo` runs every stage of both tasks on a small budget, and a rerun resumes.

Real parts throughout: GalSim galaxies and SDSS-format spectra, the tiny Qwen3-VL, TRL's SFT and
GRPO trainers, vLLM on CPU (one server per arm), the reports. The learning itself is measured by
the full demo (README).
"""

import json

import pytest

from astroreason.cli import main
from astroreason.cli.demo import DEMO_TASKS
from astroreason.traces import read_traces

pytestmark = pytest.mark.slow

ARGS = ["--n", "60", "--n-spectra", "40", "--view-size", "32", "--sft-episodes", "0"]
ARGS += ["--sft-epochs", "1"]
ARGS += ["--grpo-steps", "1", "--val-episodes", "2"]


def test_demo_runs_every_stage_and_resumes(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "demo"
    args = [*ARGS, "--base", str(tiny_model_dir)]  # random weights: this test needs no skill
    main(["demo", "--out", str(out), *args])
    text = capsys.readouterr().out
    assert "report:" in text and "demo finished" in text

    logs = {}
    for task in DEMO_TASKS.values():
        for arm in task.arms:
            run = out / f"{task.train_prefix}{arm}"
            assert (run / "sft" / "config.json").is_file()
            assert (run / "grpo" / "config.json").is_file()
            logs[run] = log = (run / "experiment_log.md").read_text()
            assert log.count(f"astroreason demo ({task.name}, arm {arm}") == 2, log  # per stage

        folder = out / task.eval_dir
        metrics = json.loads((folder / "metrics.json").read_text())
        conds = metrics["conditions"]
        plan = {c: (a, "grpo") for a, cs in task.eval_conditions.items() for c in cs}
        plan.update({c: (a, "sft") for a, cs in task.sft_conditions.items() for c in cs})
        assert set(conds) == set(plan) and {"tools@grpo", "tools@sft", "reinput"} <= set(conds)
        for c, (arm, stage) in plan.items():
            model = conds[c]["model"]
            assert model.endswith(f"{task.train_prefix}{arm}/{stage}"), (c, model)
        n = conds["tools@grpo"]["n"]
        assert n > 0 and all(m["n"] == n for m in conds.values())
        assert metrics["comparisons"] and metrics["skeptic"]
        report = (folder / "report.html").read_text()
        assert "no-tools-matched" in report and "blank-tools" in report
        assert "Training curves" in report and "Solved only with tools" in report
        assert (out / f"{task.train_prefix}tools" / "grpo" / "curves.png").is_file()
        checks = {c["name"] for c in metrics["skeptic"]}
        assert {"matched_baseline", "placebo_reinput", "rl_gain"} <= checks
        assert (folder / "traces.html").is_file()
    galaxy_checks = json.loads((out / "eval" / "metrics.json").read_text())["skeptic"]
    assert "placebo_random_view" in {c["name"] for c in galaxy_checks}
    combined = (out / "report.html").read_text()
    assert "Galaxies" in combined and "Spectra" in combined and "eval-spectra/" in combined
    n_galaxies = len(list(read_traces(out / "eval" / "tools@grpo")))

    # a rerun trains nothing, serves nothing and duplicates no episode
    main(["demo", "--out", str(out), *args])
    text = capsys.readouterr().out
    assert "evaluated before" in text and "SFT done before" in text
    assert {run: (run / "experiment_log.md").read_text() for run in logs} == logs
    assert len(list(read_traces(out / "eval" / "tools@grpo"))) == n_galaxies


def test_demo_without_a_base_says_how_to_build_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(tmp_path / "d"), *ARGS, "--base", str(tmp_path / "none")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "astroreason model pretrain" in err and "Traceback" not in err
