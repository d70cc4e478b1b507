"""Smoke: `astroreason demo` runs end to end (synthetic data, audit, tiny model, vLLM) and resumes."""

import pytest

from astroreason.cli import main
from astroreason.traces import read_traces

pytestmark = pytest.mark.slow


def test_demo_runs_and_reruns(tmp_path, capsys):
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), "--n", "60", "--view-size", "32"])
    text = capsys.readouterr().out
    assert "AstroReason demo" in text and "oracle" in text
    oracle = list(read_traces(out / "rollouts" / "oracle-tools"))
    assert oracle and all(r["correct"] for r in oracle)
    tiny = list(read_traces(out / "rollouts" / "tiny-tools"))
    assert len(tiny) == len(oracle)  # the whole test split, through the real server
    main(
        ["demo", "--out", str(out), "--n", "60", "--view-size", "32"]
    )  # a rerun resumes: nothing new
    assert len(list(read_traces(out / "rollouts" / "tiny-tools"))) == len(tiny)
