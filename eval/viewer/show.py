"""One episode in the terminal (``astroreason traces show``), printed with rich."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from astroreason.errors import DataError
from astroreason.eval.viewer.render import THINK, iter_run_records


def find_episode(run_dir: str | Path, episode_id: str) -> tuple[str, dict[str, Any]]:
    """(prefix, record) of one episode; DataError naming close ids when it is not there."""
    ids = []
    for prefix, rec in iter_run_records(run_dir):
        if rec["id"] == episode_id:
            return prefix, rec
        ids.append(rec["id"])
    near = [i for i in ids if episode_id in i or i in episode_id][:5] or ids[:5]
    raise DataError(Path(run_dir), f"no episode {episode_id!r}; e.g. {', '.join(near)}")


def show_episode(run_dir: str | Path, episode_id: str, console=None) -> None:
    """Print one episode in the terminal (rich; model text printed literally, never as markup)."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = console or Console()
    prefix, rec = find_episode(run_dir, episode_id)
    m = rec["metrics"]
    ok = bool(rec["correct"])
    head = Text()
    head.append("correct" if ok else "wrong", style="bold green" if ok else "bold red")
    head.append(
        f"  true {rec['class_name']}  answer {rec.get('predicted_class') or '(none)'}  "
        f"tool calls {m['tool_calls']}  turns {m['turns']}  reward {m['return']:+.3f}"
        + ("  OVER TURN" if m.get("over_turn") else "")
    )
    console.print(Panel(head, title=Text(f"{rec['id']} ({rec['condition']})")))
    replies = list(rec["logs"].get("replies") or [])
    k = 0
    for msg in rec["logs"].get("messages") or []:
        role = msg.get("role")
        if role == "system":
            continue
        body = Text()
        if role == "assistant":
            raw = replies[k] if k < len(replies) else str(msg.get("content") or "")
            k += 1
            for t in THINK.findall(raw):
                body.append("<think> " + t.strip() + "\n", style="dim italic")
            body.append(THINK.sub("", raw).strip())
            style = "blue"
        else:
            for b in msg.get("content") or [] if not isinstance(msg.get("content"), str) else []:
                if b.get("type") == "image":
                    body.append(f"[image] {Path(run_dir) / (prefix + str(b.get('path')))}\n")
                elif b.get("type") == "text":
                    t = b.get("text", "")
                    body.append(t + "\n", style="red" if t.startswith("Error:") else None)
            if isinstance(msg.get("content"), str):
                body.append(msg["content"])
            style = "yellow" if role == "tool" else "white"
        console.print(Panel(body, title=Text(role or "?"), border_style=style, title_align="left"))
    views = rec["logs"].get("views") or []
    for v in views:
        console.print(Text(f"view {v['index']}: {v['kind']} footprint {v.get('footprint')}"))
