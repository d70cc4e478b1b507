"""Smoke: `astroreason demo` runs every stage end to end on a small budget, and a rerun resumes.

Real parts throughout: GalSim data, the tiny Qwen3-VL, TRL's SFT and GRPO trainers, vLLM on CPU
(one server per arm), the report. The learning itself is measured by the full demo (README).
"""

import json

import pytest

from astroreason.cli import main
from astroreason.demo import ARMS, EVAL_CONDITIONS
from astroreason.traces import read_traces

pytestmark = pytest.mark.slow

ARGS = ["--n", "60", "--view-size", "32", "--sft-epochs", "1", "--grpo-steps", "1"]


def test_demo_runs_every_stage_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), *ARGS])
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
    assert set(conds) == {c for cs in EVAL_CONDITIONS.values() for c in cs}
    for arm, cs in EVAL_CONDITIONS.items():
        for c in cs:
            assert conds[c]["model"].endswith(f"train-{arm}/grpo"), (c, conds[c]["model"])
    n = conds["tools"]["n"]
    assert n > 0 and all(m["n"] == n for m in conds.values())
    assert metrics["comparisons"] and metrics["skeptic"]
    report = (out / "eval" / "report.html").read_text()
    assert "no-tools-matched" in report and "blank-tools" in report
    assert (out / "eval" / "traces.html").is_file()

    # a rerun trains nothing, serves nothing and duplicates no episode
    main(["demo", "--out", str(out), *ARGS])
    text = capsys.readouterr().out
    assert "evaluated before" in text and "SFT done before" in text
    assert {arm: (out / f"train-{arm}" / "experiment_log.md").read_text() for arm in ARMS} == logs
    assert len(list(read_traces(out / "eval" / "tools"))) == n
