"""Smoke: `astroreason demo` runs every stage end to end on a small budget, and a rerun resumes.

Real parts throughout: GalSim data, the tiny Qwen3-VL, TRL's SFT and GRPO trainers, vLLM on CPU
(one server per arm), the report. The learning itself is measured by the full demo (README).
"""

import json

import pytest

from astroreason.cli import main
from astroreason.cli.demo import ARMS, EVAL_CONDITIONS, SFT_CONDITIONS
from astroreason.traces import read_traces

pytestmark = pytest.mark.slow

ARGS = ["--n", "60", "--view-size", "32", "--sft-episodes", "0", "--sft-epochs", "1"]
ARGS += ["--grpo-steps", "1", "--val-episodes", "2"]


def test_demo_runs_every_stage_and_resumes(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "demo"
    args = [*ARGS, "--base", str(tiny_model_dir)]  # random weights: this test needs no skill
    main(["demo", "--out", str(out), *args])
    text = capsys.readouterr().out
    assert "report:" in text and "demo finished" in text

    for arm in ARMS:
        assert (out / f"train-{arm}" / "sft" / "config.json").is_file()
        assert (out / f"train-{arm}" / "grpo" / "config.json").is_file()
    logs = {arm: (out / f"train-{arm}" / "experiment_log.md").read_text() for arm in ARMS}
    for arm, log in logs.items():  # one section per stage, written by the monitor
        assert log.count(f"astroreason demo (arm {arm}") == 2, log

    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    conds = metrics["conditions"]
    plan = {**{c: (a, "grpo") for a, cs in EVAL_CONDITIONS.items() for c in cs}}
    plan.update({c: (a, "sft") for a, cs in SFT_CONDITIONS.items() for c in cs})
    assert set(conds) == set(plan) and {"tools@grpo", "tools@sft", "reinput"} <= set(conds)
    for c, (arm, stage) in plan.items():
        assert conds[c]["model"].endswith(f"train-{arm}/{stage}"), (c, conds[c]["model"])
    n = conds["tools@grpo"]["n"]
    assert n > 0 and all(m["n"] == n for m in conds.values())
    assert metrics["comparisons"] and metrics["skeptic"]
    report = (out / "eval" / "report.html").read_text()
    assert "no-tools-matched" in report and "blank-tools" in report and "random-view" in report
    assert "Training curves" in report and "Solved only with tools" in report
    assert (out / "train-tools" / "grpo" / "curves.png").is_file()
    checks = {c["name"] for c in metrics["skeptic"]}
    assert {"matched_baseline", "placebo_reinput", "placebo_random_view", "rl_gain"} <= checks
    assert (out / "eval" / "traces.html").is_file()

    # a rerun trains nothing, serves nothing and duplicates no episode
    main(["demo", "--out", str(out), *args])
    text = capsys.readouterr().out
    assert "evaluated before" in text and "SFT done before" in text
    assert {arm: (out / f"train-{arm}" / "experiment_log.md").read_text() for arm in ARMS} == logs
    assert len(list(read_traces(out / "eval" / "tools@grpo"))) == n


def test_demo_without_a_base_says_how_to_build_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--out", str(tmp_path / "d"), *ARGS, "--base", str(tmp_path / "none")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "astroreason model pretrain" in err and "Traceback" not in err
