"""Trace files: what survives a killed process, when lines reach the disk, no duplicates."""

import subprocess
import sys
import time

from astroreason import traces
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
