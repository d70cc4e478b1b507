"""One episode in the terminal (``astroreason traces show``), printed with rich.

Trace text is untrusted: everything printed goes through :func:`printable` (control characters as
visible escapes, so a reply cannot clear the screen or retitle the terminal) and into rich ``Text``
objects (never parsed as markup).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from astroreason.errors import DataError
from astroreason.eval.viewer.render import THINK, iter_run_records

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def printable(text: Any) -> str:
    """``str(text)`` with control characters but newline and tab (and bidi overrides) escaped."""
    return _UNPRINTABLE.sub(_escape, str(text))


def find_episode(run_dir: str | Path, episode_id: str) -> tuple[str, dict[str, Any]]:
    """(prefix, record) of one episode; DataError naming close ids when it is not there."""
    ids = []
    for prefix, rec in iter_run_records(run_dir):
        if rec["id"] == episode_id:
            return prefix, rec
        ids.append(rec["id"])
    near = [i for i in ids if episode_id in i or i in episode_id][:5] or ids[:5]
    near = [printable(i[:80]) for i in near]
    raise DataError(Path(run_dir), f"no episode {episode_id!r}; e.g. {', '.join(near)}")


def show_episode(run_dir: str | Path, episode_id: str, console=None) -> None:
    """Print one episode in the terminal (model text escaped by :func:`printable`, never markup)."""
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
        printable(
            f"  true {rec['class_name']}  answer {rec.get('predicted_class') or '(none)'}  "
            f"tool calls {m['tool_calls']}  turns {m['turns']}  reward {m['return']:+.3f}"
            + ("  OVER TURN" if m.get("over_turn") else "")
        )
    )
    console.print(Panel(head, title=Text(printable(f"{rec['id']} ({rec['condition']})"))))
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
                body.append(printable("<think> " + t.strip() + "\n"), style="dim italic")
            body.append(printable(THINK.sub("", raw).strip()))
            style = "blue"
        else:
            for b in msg.get("content") or [] if not isinstance(msg.get("content"), str) else []:
                if b.get("type") == "image":
                    path = Path(run_dir) / (prefix + str(b.get("path")))
                    body.append(printable(f"[image] {path}\n"))
                elif b.get("type") == "text":
                    t = b.get("text", "")
                    body.append(
                        printable(t + "\n"), style="red" if t.startswith("Error:") else None
                    )
            if isinstance(msg.get("content"), str):
                body.append(printable(msg["content"]))
            style = "yellow" if role == "tool" else "white"
        title = Text(printable(role or "?"))
        console.print(Panel(body, title=title, border_style=style, title_align="left"))
    views = rec["logs"].get("views") or []
    for v in views:
        console.print(
            Text(printable(f"view {v['index']}: {v['kind']} footprint {v.get('footprint')}"))
        )
