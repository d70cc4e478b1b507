"""Trace files: what survives a killed process, when lines reach the disk, no duplicates."""

import json
import re
import subprocess
import sys
import time

import pytest

from astroreason import traces
from astroreason.errors import DataError
from astroreason.traces import TraceWriter, read_traces


def test_a_killed_process_loses_no_episode_that_write_returned_for(tmp_path):
    code = (
        "import os, sys\n"
        "from astroreason.traces import TraceWriter\n"
        "w = TraceWriter(sys.argv[1], sync_every_s=3600)\n"
        "for i in range(50):\n"
        "    w.write({'id': f'e{i}', 'x': 'y' * 5000})\n"
        "os.kill(os.getpid(), 9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True)
    assert out.returncode == -9, out.stderr[-2000:]
    assert [r["id"] for r in read_traces(tmp_path)] == [f"e{i}" for i in range(50)]
    with TraceWriter(tmp_path) as w:
        assert len(w.done_ids) == 50
        w.write({"id": "e3"})  # already done: skipped
        w.write({"id": "e50"})
    assert len(list(read_traces(tmp_path))) == 51


def test_lines_are_fsynced_by_a_timer_and_on_close(tmp_path, monkeypatch):
    calls = []
    real = traces.os.fsync
    monkeypatch.setattr(traces.os, "fsync", lambda fd: calls.append(fd) or real(fd))
    w = TraceWriter(tmp_path, sync_every_s=0.1)
    for i in range(3):
        w.write({"id": f"e{i}"})
    assert calls == []  # not per episode
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(calls) == 1  # one fsync for the three
    w.write({"id": "e3"})
    w.close()
    assert len(calls) == 2 and [r["id"] for r in read_traces(tmp_path)][-1] == "e3"
    time.sleep(0.2)  # the timer armed by e3 was cancelled by close()
    assert len(calls) == 2


def test_sync_every_zero_fsyncs_each_episode(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(traces.os, "fsync", lambda fd: calls.append(fd))
    with TraceWriter(tmp_path, sync_every_s=0) as w:
        w.write({"id": "a"})
        w.write({"id": "b"})
        assert len(calls) == 2


def trace_line(ep_id: str = "tools-test-0-0", reply: str = "<answer>Round</answer>", **over):
    """A full trace record as the rollout writes it (built by ``trace_record``), with ``over`` set."""
    from astroreason.traces import trace_record

    messages = [
        {"role": "system", "content": "You classify galaxies."},
        {"role": "user", "content": [{"type": "text", "text": "Which class?"}]},
        {"role": "assistant", "content": reply},
    ]
    info = {
        "messages": messages,
        "tools": [],
        "tool_calls": [],
        "views": [{"index": 0, "kind": "overview", "parent": None, "footprint": [0, 0, 64, 64]}],
        "turn": 1,
        "max_turns": 4,
        "invalid_actions": 0,
        "condition": "tools",
        "over_turn": False,
        "prediction": 0,
        "correct": True,
        "return": 1.0,
        "episode": {"split": "test", "index": 0, "row_id": 0, "sample": 0},
        "ground_truth": {"label": 0, "class_names": ["Round", "Spiral"], "bbox": None},
    }
    rec = trace_record(
        info,
        ep_id=ep_id,
        sample=0,
        seed=0,
        policy="test",
        meta={},
        replies=[reply],
        latencies=[0.1],
        finish_reasons=["stop"],
        prompt_tokens=10,
        completion_tokens=5,
        wall_s=0.2,
        env_s=0.01,
        image_paths=[],
    )
    return {**rec, **over}


def _write_lines(folder, *lines):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traces.jsonl").write_text("".join(line + "\n" for line in lines))


GOOD = json.dumps(trace_line())


@pytest.mark.parametrize(
    "line, problem",
    [
        ("[]", "line 2: a trace is a JSON object, not a list"),
        ("42", "line 2: a trace is a JSON object, not an integer"),
        ('"episode"', "line 2: a trace is a JSON object, not a string"),
        ('{"condition": "tools"}', "line 2: no key 'id'"),
        ('{"id": 7}', "line 2: id is an integer, not a string"),
        ('{"id": "a", "correct": 1}', "line 2: correct is an integer, not true or false"),
        ('{"id": "a", "metrics": 42}', "line 2: metrics is an integer, not an object"),
        ('{"id": "a", "metrics": {"turns": "2"}}', "line 2: metrics.turns is a string, not an"),
        ('{"id": "a", "logs": {"messages": [{}, 42]}}', "logs.messages[1] is an integer, not an"),
        ('{"id": "a", "logs": {"replies": [null]}}', "logs.replies[0] is null, not a string"),
    ],
)
def test_a_line_of_the_wrong_shape_is_a_one_line_error(tmp_path, line, problem):
    _write_lines(tmp_path, GOOD, line)
    with pytest.raises(DataError) as e:
        list(read_traces(tmp_path))
    assert str(e.value).startswith(f"{tmp_path / 'traces.jsonl'}: ") and problem in str(e.value)
    with pytest.raises(DataError, match=re.escape(problem)):
        TraceWriter(tmp_path)  # resuming reads the file too


def test_a_line_missing_keys_is_a_one_line_error_in_every_reader(tmp_path, capsys):
    from astroreason.cli import main
    from astroreason.eval.metrics import condition_metrics
    from astroreason.eval.viewer import write_viewer

    rec = trace_line("tools-test-1-0")
    del rec["class_name"], rec["metrics"]["turns"]
    _write_lines(tmp_path / "tools", GOOD, json.dumps(rec))
    records = list(read_traces(tmp_path / "tools"))  # the types of what is there are right
    where = f"{tmp_path / 'tools' / 'traces.jsonl'}: line 2: no key"
    with pytest.raises(DataError, match=re.escape(where)):
        condition_metrics(records)
    with pytest.raises(DataError, match=re.escape(where)):
        write_viewer(tmp_path)
    for bad in ([], 42):
        _write_lines(tmp_path / "tools", GOOD, json.dumps(bad))
        with pytest.raises(SystemExit) as e:
            main(["traces", "view", str(tmp_path)])
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.count("\n") == 1 and "line 2: a trace is" in err
    # a missing key is also a KeyError, so ``except KeyError`` and templates' defaults still work
    assert records[0].get("nope") is None
    with pytest.raises(KeyError):
        records[1]["class_name"]
