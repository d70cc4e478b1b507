"""``RUN_DIR/traces.html``: one static page over every episode of a run.

``write_viewer(run_dir)`` reads ``RUN_DIR/traces.jsonl`` and every ``RUN_DIR/<condition>/traces.jsonl``
and writes the page from the Jinja2 templates ``templates/viewer.html`` and
``templates/viewer_episode.html`` (CSS and JS inlined from ``viewer.css`` and ``viewer.js``). This
module turns trace records into plain values (geometry of the overlays, the messages split into
blocks); the templates print them, autoescaped. The JSON index the filters read goes through
:func:`script_json`, the only markup passed in as safe.

Trace text is unbounded (a 2 MB reply), so the page shows at most :data:`TEXT_CAP` characters of any
one text, :data:`EPISODE_CAP` characters and :data:`ITEM_CAP` messages, blocks and calls of one
episode, each cut marked ``… [N more ...: see traces.jsonl]``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from astroreason.conditions import CONDITIONS
from astroreason.errors import DataError
from astroreason.eval.templating import render
from astroreason.protocol import THINK_RE as THINK
from astroreason.traces import TRACES_FILE, TraceRecord, cap_text, cut_mark, read_traces

VIEWER_FILE = "traces.html"
COLORS = ("#ff7f0e", "#1f9eff", "#d62fd6", "#ffd11a", "#2ee66b", "#ff4d4d", "#a98bff", "#00e0d0")

TEXT_CAP = 4000
"""Characters of one text the page shows (a reply, a tool output, an id); the rest is cut, marked."""
EPISODE_CAP = 40_000
"""Characters of text one episode shows in all; past it, texts show only their cut mark."""
ITEM_CAP = 300
"""Messages, blocks, tool calls, errors and footprints one episode shows in all."""


_SEE = ": see traces.jsonl"


def _cut_mark(n: int, what: str = "characters") -> str:
    return cut_mark(n, what, _SEE)


def cap(text: Any) -> str:
    """``text`` (None: empty) cut to :data:`TEXT_CAP` characters, the cut marked."""
    return cap_text("" if text is None else str(text), TEXT_CAP, _SEE)


class _Shown:
    """What is left to show of one episode: :data:`EPISODE_CAP` characters, :data:`ITEM_CAP` items."""

    def __init__(self) -> None:
        self.chars = EPISODE_CAP
        self.items = ITEM_CAP

    def cut(self, value: Any) -> tuple[str, int]:
        """(``value`` as text cut to :data:`TEXT_CAP` and what the episode has left, chars cut)."""
        s = "" if value is None else str(value)
        keep = s[: max(min(TEXT_CAP, self.chars), 0)]
        self.chars -= len(keep)
        return keep, len(s) - len(keep)

    def text(self, value: Any) -> str:
        """``value`` as text, cut as by :meth:`cut`, the cut marked."""
        keep, more = self.cut(value)
        return keep + _cut_mark(more) if more else keep

    def each(self, seq: Any, what: str, cuts: list[str]) -> Iterator[Any]:
        """The items of ``seq`` while the episode's items last; a cut adds its mark to ``cuts``."""
        seq = list(seq or [])
        for n, item in enumerate(seq):
            if self.items <= 0:
                cuts.append(_cut_mark(len(seq) - n, what))
                return
            self.items -= 1
            yield item


def script_json(obj: Any) -> Markup:
    """JSON safe to place inside a ``<script>`` element (no ``</script>``, no line separators)."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return Markup(
        s.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def iter_run_records(run_dir: str | Path) -> Iterator[tuple[str, TraceRecord]]:
    """(path prefix, record) for every episode under a run folder (the prefix locates its images)."""
    root = Path(run_dir)
    found = False
    if (root / TRACES_FILE).exists():
        found = True
        for rec in read_traces(root):
            yield "", rec
    for sub in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if (sub / TRACES_FILE).exists():
            found = True
            for rec in read_traces(sub):
                yield f"{sub.name}/", rec
    if not found:
        raise DataError(root, "no traces here (run `astroreason eval` or `astroreason rollout`)")


def _img_src(prefix: str, path: str | None) -> str:
    """The image's relative URL; empty for a path too long to be one of ours."""
    if len(prefix + (path or "")) > TEXT_CAP:
        return ""
    return quote(prefix + (path or ""), safe="/")


def _png_size(root: Path | None, prefix: str, path: str | None) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, None when unknown (no file, not a PNG)."""
    if root is None or not path:
        return None
    try:
        with open(root / (prefix + path), "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return (int(w), int(h)) if w and h else None


def _is_wide(size: tuple[int, int] | None) -> bool:
    return size is not None and size[0] >= 1.5 * size[1]


def _plot_area(size: tuple[int, int]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the data area of a spectrum plot in image pixels.

    Mirrors the margins of :func:`astroreason.tools.spectrum_tools.render_spectrum` (5 px left,
    right and top; tick labels below), so that wavelength windows land on the plotted wavelengths.
    """
    w, h = size
    font = max(8, min(12, h // 14))
    return (5.0, 5.0, w - 5.0, h - font - 8.0)


def _overlay(
    rec: TraceRecord, src: str, size: tuple[int, int] | None, shown: _Shown
) -> dict[str, Any] | None:
    """The shapes to draw over the overview image: every view's footprint and the ground truth.

    Image footprints ``[x0, y0, x1, y1]`` (galaxies: source pixels) become rectangles, scaled so that
    the overview's own footprint spans the overview image; wavelength windows ``[lambda_min,
    lambda_max]`` (spectra) become vertical bands (``band``) over the plot's data area. The ground
    truth (``gt``) is drawn dashed (``bbox`` or ``key_window``). None when there is no image.
    """
    views = rec["logs"].get("views") or []
    if not views or not src:
        return None
    fp0 = views[0].get("footprint")
    gt = rec.get("ground_truth") or {}
    if fp0 and len(fp0) == 2:
        W, H = size or (1000, 500)
        x0, y0, x1, y1 = _plot_area(size) if size else (0.0, 0.0, 1000.0, 500.0)
        span = (fp0[1] - fp0[0]) or 1.0

        def box(b):
            a = x0 + (min(max(b[0], fp0[0]), fp0[1]) - fp0[0]) / span * (x1 - x0)
            z = x0 + (min(max(b[1], fp0[0]), fp0[1]) - fp0[0]) / span * (x1 - x0)
            return (a, y0, max(z - a, 1.0), y1 - y0)

        gt_box = gt.get("key_window")
        gt_box = gt_box if gt_box and len(gt_box) == 2 else None
        views_ok = [v for v in views[1:] if v.get("footprint") and len(v["footprint"]) == 2]
    else:
        W, H = size or (1000, 1000)
        ok4 = bool(fp0 and len(fp0) == 4 and fp0[2] > fp0[0] and fp0[3] > fp0[1])
        sx = W / (fp0[2] - fp0[0]) if ok4 else 1.0
        sy = H / (fp0[3] - fp0[1]) if ok4 else 1.0

        def box(b):
            return (
                (b[0] - fp0[0]) * sx,
                (b[1] - fp0[1]) * sy,
                (b[2] - b[0]) * sx,
                (b[3] - b[1]) * sy,
            )

        gt_box = gt.get("bbox") if ok4 else None
        gt_box = gt_box if gt_box and len(gt_box) == 4 else None
        views_ok = [v for v in views[1:] if ok4 and v.get("footprint") and len(v["footprint"]) == 4]
    band = len(fp0 or ()) == 2
    footprints = []
    for v in shown.each(views_ok, "views", []):
        x, y, w, h = box(v["footprint"])
        number = int(v["index"])
        footprints.append(
            {
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                "number": number,
                "kind": shown.text(v.get("kind")),
                "color": COLORS[(number - 1) % len(COLORS)],
            }
        )
    gt_shape = dict(zip("xywh", box(gt_box), strict=True)) if gt_box else None
    return {
        "src": src,
        "wide": _is_wide(size),
        "width": W,
        "height": H,
        "band": band,
        "font": 0.09 * H if band else 0.07 * max(W, H),
        "gt": gt_shape,
        "footprints": footprints,
    }


IMAGE_BLOCKS = ("image", "tokens")
"""Trace blocks that stand for one image (``tokens``: codec ids, with their decoded image)."""


def _blocks(
    content: Any, prefix: str, root: Path | None = None, shown: _Shown | None = None
) -> list[dict[str, Any]]:
    """A message's content as ``text``, ``image`` and ``tokens`` blocks for the template.

    A ``tokens`` block (the ``tokens`` observation) shows its decoded image beside the ids the model
    read. Texts and blocks are cut to what ``shown`` leaves of the episode.
    """
    shown = shown or _Shown()
    if isinstance(content, str):
        return [{"type": "text", "text": shown.text(content), "error": False}] if content else []
    out = []
    cuts: list[str] = []
    for b in shown.each(content, "blocks", cuts):
        src = _img_src(prefix, b["path"]) if b.get("path") else ""
        if b.get("type") == "image":
            if src:
                wide = _is_wide(_png_size(root, prefix, b["path"]))
                out.append({"type": "image", "src": src, "wide": wide})
        elif b.get("type") == "tokens":
            shape = shown.text("x".join(str(int(x)) for x in b.get("shape") or []))
            text = shown.text(b.get("text", ""))
            out.append({"type": "tokens", "src": src, "shape": shape, "text": text})
        elif b.get("type") == "text":
            t = b.get("text", "")
            out.append({"type": "text", "text": shown.text(t), "error": t.startswith("Error:")})
    return out + [{"type": "text", "text": c, "error": False} for c in cuts]


def _messages(
    rec: TraceRecord, prefix: str, root: Path | None = None, shown: _Shown | None = None
) -> list[dict[str, Any]]:
    """The conversation: system prompt, model replies (thinking split off, tool calls), the rest.

    Cut to what ``shown`` leaves of the episode (a reply to :data:`TEXT_CAP` before it is split).
    """
    shown = shown or _Shown()
    logs = rec["logs"]
    replies = list(logs.get("replies") or [])
    out: list[dict[str, Any]] = []
    k = 0
    image_no = 0
    cuts: list[str] = []
    for m in shown.each(logs.get("messages"), "messages", cuts):
        role = m.get("role")
        if role == "system":
            out.append({"kind": "system", "blocks": _blocks(m.get("content"), prefix, root, shown)})
            continue
        if role == "assistant":
            raw = replies[k] if k < len(replies) else m.get("content") or ""
            k += 1
            text, cut = shown.cut(raw if isinstance(raw, str) else "")
            more: list[str] = []
            calls = [
                {
                    "name": shown.text(tc.get("function", {}).get("name")),
                    "args": shown.text(
                        json.dumps(tc.get("function", {}).get("arguments"), ensure_ascii=False)
                    ),
                }
                for tc in shown.each(m.get("tool_calls"), "tool calls", more)
            ]
            calls += [{"name": "", "args": c} for c in more]
            rest = THINK.sub("", text).strip()
            out.append(
                {
                    "kind": "assistant",
                    "thinking": [t.strip() for t in THINK.findall(text)],
                    "rest": f"{rest}\n{_cut_mark(cut)}".strip() if cut else rest,
                    "calls": calls,
                }
            )
            continue
        n_img = sum(
            1
            for b in (m.get("content") or [])
            if isinstance(b, dict) and b.get("type") in IMAGE_BLOCKS
        )
        out.append(
            {
                "kind": "other",
                "role": shown.text(role),
                "label": "tool" if role == "tool" else "user",
                "image_no": image_no if n_img else None,
                "blocks": _blocks(m.get("content"), prefix, root, shown),
            }
        )
        image_no += n_img
    for c in cuts:
        note = [{"type": "text", "text": c, "error": False}]
        out.append({"kind": "other", "role": "", "label": "", "image_no": None, "blocks": note})
    return out


def _episode(i: int, rec: TraceRecord, prefix: str, root: Path | None = None) -> dict[str, Any]:
    """What ``viewer_episode.html`` shows of one record (cut to :data:`EPISODE_CAP`, ...)."""
    shown = _Shown()
    m = rec["metrics"]
    overview = next(
        (
            b.get("path")
            for msg in rec["logs"].get("messages") or []
            if msg.get("role") == "user" and isinstance(msg.get("content"), list)
            for b in msg["content"]
            if b.get("type") in IMAGE_BLOCKS
        ),
        None,
    )
    pred = rec.get("predicted_class")
    size = _png_size(root, prefix, overview)
    messages = _messages(rec, prefix, root, shown)  # first: the conversation gets the budget
    failed = [c for c in rec["logs"].get("tool_calls") or [] if c.get("error")]
    cuts: list[str] = []
    errors = [
        {"name": shown.text(c.get("name")), "error": shown.text(c["error"])}
        for c in shown.each(failed, "tool errors", cuts)
    ]
    errors += [{"name": "", "error": c} for c in cuts]
    return {
        "i": i,
        "id": cap(rec["id"]),
        "ok": bool(rec["correct"]),
        "condition": cap(rec["condition"]),
        "class_name": cap(rec["class_name"]),
        "answer": cap(pred) if pred is not None else "(none)",
        "tool_calls": int(m["tool_calls"]),
        "turns": int(m["turns"]),
        "reward": float(m["return"]),
        "over_turn": bool(m.get("over_turn")),
        "invalid": int(m.get("invalid_actions") or 0),
        "errors": errors,
        "wide": _is_wide(size),
        "overlay": _overlay(rec, _img_src(prefix, overview) if overview else "", size, shown),
        "messages": messages,
    }


def render_viewer(
    items: list[tuple[str, dict[str, Any]]],
    title: str = "AstroReason traces",
    root: str | Path | None = None,
) -> str:
    """The viewer page for (image path prefix, record) pairs.

    ``root`` is the folder the page will sit in (image paths are relative to it); with it, image
    sizes are read from the PNG headers, so wide spectrum plots keep their aspect ratio and wavelength
    windows land on the plot's data area.
    """
    root = Path(root) if root is not None else None
    index = [
        {
            "id": cap(r["id"]),
            "c": cap(r["condition"]),
            "ok": bool(r["correct"]),
            "t": cap(r["class_name"]),
            "p": cap(r.get("predicted_class") or "(none)"),
            "n": int(r["metrics"]["tool_calls"]),
        }
        for _, r in items
    ]
    return render(
        "viewer.html",
        title=title,
        episodes=[_episode(i, r, prefix, root) for i, (prefix, r) in enumerate(items)],
        n_correct=sum(e["ok"] for e in index),
        index_json=script_json(index),
    )


def write_viewer(run_dir: str | Path, title: str | None = None) -> Path:
    """Write ``RUN_DIR/traces.html`` over every episode of the run; returns its path."""
    root = Path(run_dir)
    order = {c: i for i, c in enumerate(CONDITIONS)}

    def key(pr):
        r = pr[1]
        return (order.get(r["condition"], 99), r["condition"], r["row_id"], r["sample"], r["id"])

    items = sorted(iter_run_records(root), key=key)
    path = root / VIEWER_FILE
    page = render_viewer(items, title or f"AstroReason traces: {root.name}", root)
    path.write_text(page, "utf-8")
    return path
