"""Smoke: `astroreason demo` runs every stage of its tasks on a small budget, and a rerun resumes.

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
SPECTRA_ARGS = [*ARGS, "--task", "spectra", "--grpo-steps", "0"]
GALAXY_ARGS = [*ARGS, "--task", "galaxies", "--grpo-steps", "1", "--val-episodes", "2"]


def _check_task(out, task, stages=("sft", "grpo")):
    """Every arm trained (one log section per stage), every planned condition evaluated."""
    logs = {}
    for arm in task.arms:
        run = out / f"{task.train_prefix}{arm}"
        for stage in stages:
            assert (run / stage / "config.json").is_file()
        logs[run] = log = (run / "experiment_log.md").read_text()
        # one section per stage (the table at the top names each run too)
        sections = log.count(f"- command: `astroreason demo ({task.name}, arm {arm}")
        assert sections == len(stages), log
        assert log.count(f"| `astroreason demo ({task.name}, arm {arm}") == len(stages), log
    folder = out / task.eval_dir
    metrics = json.loads((folder / "metrics.json").read_text())
    conds = metrics["conditions"]
    final = stages[-1]
    plan = {}
    for arm, labels in task.eval_conditions.items():
        for label in labels:
            plan[label if final == "grpo" else label.removesuffix("@grpo")] = (arm, final)
    if final == "grpo":
        plan.update({c: (a, "sft") for a, cs in task.sft_conditions.items() for c in cs})
    assert set(conds) == set(plan), (set(conds), set(plan))
    for c, (arm, stage) in plan.items():
        model = conds[c]["model"]
        assert model.endswith(f"{task.train_prefix}{arm}/{stage}"), (c, model)
    n = next(iter(conds.values()))["n"]
    assert n > 0 and all(m["n"] == n for m in conds.values())
    assert metrics["comparisons"] and metrics["skeptic"]
    report = (folder / "report.html").read_text()
    assert "no-tools-matched" in report and "blank-tools" in report and "reinput" in report
    assert "Training curves" in report and "Solved only with tools" in report
    assert (folder / "traces.html").is_file()
    return logs, metrics


def test_demo_runs_every_stage_and_resumes(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "demo"
    args = [*GALAXY_ARGS, "--base", str(tiny_model_dir)]  # random weights: this test needs no skill
    main(["demo", "--out", str(out), *args])
    text = capsys.readouterr().out
    assert "report:" in text and "demo finished" in text
    assert "where the time went (galaxies" in text
    timings = json.loads((out / "eval" / "timings.json").read_text())
    phases = timings["phases"]
    assert set(phases) == {"data and audit", "training", "evaluation", "report"}
    assert all(s > 0 for s in phases.values())
    arms = DEMO_TASKS["galaxies"].arms
    assert set(timings["arms"]) == set(arms)
    assert all(set(t) == {"SFT", "GRPO"} for t in timings["arms"].values())
    servers = timings["servers"]  # one per arm, plus the tools arm's SFT start
    assert len(servers) == len(arms) + 1
    assert all(set(t) == {"start-up", "rollouts", "stop"} for t in servers.values())
    for arm in arms:  # two arms at a time, each in its own process, its output in its folder
        assert "[grpo] step 1" in (out / f"train-{arm}" / "train.log").read_text()
    logs, metrics = _check_task(out, DEMO_TASKS["galaxies"])
    off = metrics["conditions"]["tools-off"]
    assert off["model"] == metrics["conditions"]["tools@grpo"]["model"]  # the same checkpoint
    assert all(not r["logs"]["tool_calls"] for r in read_traces(out / "eval" / "tools-off"))
    assert (out / "train-tools" / "grpo" / "curves.png").is_file()
    checks = {c["name"] for c in metrics["skeptic"]}
    assert {"matched_baseline", "placebo_reinput", "placebo_random_view", "rl_gain"} <= checks
    assert "tools_off" in checks
    n = metrics["conditions"]["tools@grpo"]["n"]

    # a rerun trains nothing, serves nothing and duplicates no episode
    main(["demo", "--out", str(out), *args])
    text = capsys.readouterr().out
    assert "evaluated before" in text and "SFT done before" in text
    assert {run: (run / "experiment_log.md").read_text() for run in logs} == logs
    assert len(list(read_traces(out / "eval" / "tools@grpo"))) == n


def test_demo_spectra_task_trains_and_evaluates_its_arms(tmp_path, capsys, tiny_model_dir):
    """``--task spectra`` (SFT only, to keep CI short: GRPO on spectra is tested in test_training)."""
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), *SPECTRA_ARGS, "--base", str(tiny_model_dir)])
    text = capsys.readouterr().out
    assert "spectra report:" in text and "galaxies" not in text.split("demo finished")[1]
    assert not (out / "eval").exists() and not (out / "report.html").exists()  # one task: no page
    _, metrics = _check_task(out, DEMO_TASKS["spectra"], stages=("sft",))
    assert metrics["setup"]["data"].endswith("data/spectra")
    views = [v for r in read_traces(out / "eval-spectra" / "tools") for v in r["logs"]["views"]]
    assert views and all(len(v["footprint"]) == 2 for v in views)  # wavelength ranges, not boxes


def test_demo_without_a_base_says_how_to_build_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(tmp_path / "d"), *GALAXY_ARGS, "--base", str(tmp_path / "none")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "astroreason model pretrain" in err and "Traceback" not in err
