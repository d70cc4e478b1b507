"""The experiment log of a run folder: an entry per stage run from its start, crash-safe.

``OUTPUT_DIR/experiment_log.json`` holds one entry per stage run (SFT, GRPO; a resumed run is a
new entry that names the checkpoint it resumed from). An entry is written when the run starts
(command, config, data hash, split, git commit, status ``running``), updated at each checkpoint
(step, last checkpoint) and at the end (``finished``, ``stopped by budget: ...``, ``crashed: ...``,
``stopped by user``). A run killed outright (SIGKILL, power loss) leaves ``running`` behind; the
next writer finds its process gone and marks it ``crashed (process gone)``.

``OUTPUT_DIR/experiment_log.md`` is rendered from the JSON after every write: a table with one line
per run, then one section per run (the section's lines are what a reader greps for: ``- command:``,
``- result:``, ``- alarms:``, ...). Both files are replaced atomically, so a crash mid-write leaves
the previous version. Only the main process of a multi-process run writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

from astroreason.runlock import pid_alive

LOG_JSON = "experiment_log.json"
LOG_MD = "experiment_log.md"


def now() -> str:
    """UTC time, to the second."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def is_main_process() -> bool:
    """Rank 0 of an ``accelerate``/``torchrun`` launch (or a single process)."""
    return int(os.environ.get("RANK", "0")) == 0


class ExperimentLog:
    """The log of one run folder (see the module docstring)."""

    def __init__(self, output_dir: str | os.PathLike):
        self.dir = Path(output_dir)
        self.json_path = self.dir / LOG_JSON
        self.md_path = self.dir / LOG_MD

    def entries(self) -> list[dict[str, Any]]:
        """All entries, oldest first (stale ``running`` ones shown as crashed)."""
        try:
            doc = json.loads(self.json_path.read_text())
        except (OSError, ValueError):
            return []
        runs = doc.get("runs", []) if isinstance(doc, dict) else []
        host = socket.gethostname()
        for e in runs:
            if e.get("status") == "running" and e.get("host") == host:
                if not pid_alive(int(e.get("pid", -1))):
                    e["status"] = "crashed (process gone)"
        return runs

    def start(self, **fields: Any) -> str:
        """Add a ``running`` entry; returns its id (``STAGE-N``)."""
        runs = self.entries()
        stage = fields.get("stage", "run")
        run_id = f"{stage}-{sum(1 for e in runs if e.get('stage') == stage) + 1}"
        entry = {
            "id": run_id,
            "status": "running",
            "started": now(),
            "updated": now(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "step": 0,
            **fields,
        }
        self._write([*runs, entry])
        return run_id

    def update(self, run_id: str, **fields: Any) -> None:
        """Merge ``fields`` into an entry and rewrite both files."""
        runs = self.entries()
        for e in runs:
            if e.get("id") == run_id:
                e.update(fields, updated=now())
        self._write(runs)

    def _write(self, runs: list[dict[str, Any]]) -> None:
        if not is_main_process():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic(self.json_path, json.dumps({"runs": runs}, indent=1, default=str) + "\n")
        _atomic(self.md_path, render(runs, self.dir))


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _cell(x: Any) -> str:
    return str(x).replace("|", "/").replace("\n", " ")


def render(runs: list[dict[str, Any]], folder: Path) -> str:
    """The markdown log: a table of runs, then a section per run."""
    lines = [
        "# Experiment log",
        "",
        "| run | status | started | updated | step | val accuracy | command |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in runs:
        val = e.get("val_history") or []
        acc = f"{val[-1][1]:.3f}" if val else "-"
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    e["id"],
                    e["status"],
                    e["started"],
                    e["updated"],
                    e.get("step", 0),
                    acc,
                    f"`{e.get('command', '')}`",
                )
            )
            + " |"
        )
    lines.append("")
    for e in runs:
        lines += _section(e, folder)
    return "\n".join(lines) + "\n"


def _section(e: dict[str, Any], folder: Path) -> list[str]:
    curves = e.get("curves")
    if curves:
        try:
            rel = Path(curves).resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            rel = curves
        curves_line = f"![{e['stage']} learning curves]({rel}) (`{curves}`)"
    else:
        curves_line = "none yet" if e["status"] == "running" else "none (nothing logged)"
    leaks = e.get("leaks") or []
    alarms = e.get("alarms") or []
    lines = [
        f"## {e['started']}: {e['stage']} ({e['id']}, {e['status']})",
        "",
        f"- command: `{e.get('command', '')}`",
        f"- git commit: {e.get('git_commit', 'unknown')}",
        f"- data: `{e.get('data', '')}` sha256 {e.get('data_hash', '?')}; {e.get('split', '')}",
        f"- status: {e['status']} (updated {e['updated']}, step {e.get('step', 0)})",
    ]
    if e.get("resumed_from"):
        lines.append(f"- resumed from: `{e['resumed_from']}`")
    if e.get("checkpoint"):
        lines.append(f"- last checkpoint: `{e['checkpoint']}`")
    if "result" in e:
        lines.append(f"- result: {json.dumps(e['result'], default=str)}")
    lines += [
        f"- stopped by budget guard: {e.get('stopped_by') or 'no'}",
        "- leakage audit: "
        + ("no high-severity finding" if not leaks else "TRAINED WITH --allow-leaky"),
        *[f"  - {x}" for x in leaks],
        f"- final metrics: {json.dumps(e.get('metrics', {}), sort_keys=True)}",
        f"- validation (val split): {e.get('val_history') or 'none'}",
        f"- learning curves: {curves_line}",
        "- alarms: " + ("none" if not alarms else ""),
        *[f"  - {a}" for a in alarms],
        "",
        "<details><summary>config</summary>",
        "",
        "```json",
        json.dumps(e.get("config", {}), indent=2),
        "```",
        "</details>",
        "",
    ]
    return lines
