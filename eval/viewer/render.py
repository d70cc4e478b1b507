"""``RUN_DIR/traces.html``: one static page over every episode of a run.

``write_viewer(run_dir)`` reads ``RUN_DIR/traces.jsonl`` and every ``RUN_DIR/<condition>/traces.jsonl``
and writes the page from the Jinja2 templates ``templates/viewer.html`` and
``templates/viewer_episode.html`` (CSS and JS inlined from ``viewer.css`` and ``viewer.js``). This
module turns trace records into plain values (geometry of the overlays, the messages split into
blocks); the templates print them, autoescaped. The JSON index the filters read goes through
:func:`script_json`, the only markup passed in as safe.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from astroreason.conditions import CONDITIONS
from astroreason.errors import DataError
from astroreason.eval.templating import render
from astroreason.traces import TRACES_FILE, TraceRecord, read_traces

VIEWER_FILE = "traces.html"
THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
COLORS = ("#ff7f0e", "#1f9eff", "#d62fd6", "#ffd11a", "#2ee66b", "#ff4d4d", "#a98bff", "#00e0d0")


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


def _overlay(rec: TraceRecord, src: str, size: tuple[int, int] | None) -> dict[str, Any] | None:
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
    for v in views_ok:
        x, y, w, h = box(v["footprint"])
        number = int(v["index"])
        footprints.append(
            {
                "x": x,
                "y": y,
                "w": w,
                "h": h,
                "number": number,
                "kind": "" if v.get("kind") is None else str(v["kind"]),
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


def _blocks(content: Any, prefix: str, root: Path | None = None) -> list[dict[str, Any]]:
    """A message's content as ``text``, ``image`` and ``tokens`` blocks for the template.

    A ``tokens`` block (the ``tokens`` observation) shows its decoded image beside the ids the model
    read.
    """
    if isinstance(content, str):
        return [{"type": "text", "text": content, "error": False}] if content else []
    out = []
    for b in content or []:
        if b.get("type") == "image":
            if b.get("path"):
                wide = _is_wide(_png_size(root, prefix, b["path"]))
                out.append({"type": "image", "src": _img_src(prefix, b["path"]), "wide": wide})
        elif b.get("type") == "tokens":
            shape = "x".join(str(int(x)) for x in b.get("shape") or [])
            src = _img_src(prefix, b["path"]) if b.get("path") else ""
            out.append({"type": "tokens", "src": src, "shape": shape, "text": b.get("text", "")})
        elif b.get("type") == "text":
            t = b.get("text", "")
            out.append({"type": "text", "text": t, "error": t.startswith("Error:")})
    return out


def _messages(rec: TraceRecord, prefix: str, root: Path | None = None) -> list[dict[str, Any]]:
    """The conversation: system prompt, model replies (thinking split off, tool calls), the rest."""
    logs = rec["logs"]
    replies = list(logs.get("replies") or [])
    out: list[dict[str, Any]] = []
    k = 0
    image_no = 0
    for m in logs.get("messages") or []:
        role = m.get("role")
        if role == "system":
            out.append({"kind": "system", "blocks": _blocks(m.get("content"), prefix, root)})
            continue
        if role == "assistant":
            raw = replies[k] if k < len(replies) else m.get("content") or ""
            k += 1
            text = raw if isinstance(raw, str) else ""
            calls = [
                {
                    "name": "" if fn.get("name") is None else str(fn["name"]),
                    "args": json.dumps(fn.get("arguments"), ensure_ascii=False),
                }
                for fn in (tc.get("function", {}) for tc in m.get("tool_calls") or [])
            ]
            out.append(
                {
                    "kind": "assistant",
                    "thinking": [t.strip() for t in THINK.findall(text)],
                    "rest": THINK.sub("", text).strip(),
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
                "role": role or "",
                "label": "tool" if role == "tool" else "user",
                "image_no": image_no if n_img else None,
                "blocks": _blocks(m.get("content"), prefix, root),
            }
        )
        image_no += n_img
    return out


def _episode(i: int, rec: TraceRecord, prefix: str, root: Path | None = None) -> dict[str, Any]:
    """What ``viewer_episode.html`` shows of one record."""
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
    errors = [
        {"name": "" if c.get("name") is None else str(c["name"]), "error": str(c["error"])}
        for c in rec["logs"].get("tool_calls") or []
        if c.get("error")
    ]
    return {
        "i": i,
        "id": rec["id"],
        "ok": bool(rec["correct"]),
        "condition": rec["condition"],
        "class_name": rec["class_name"],
        "answer": pred if pred is not None else "(none)",
        "tool_calls": int(m["tool_calls"]),
        "turns": int(m["turns"]),
        "reward": float(m["return"]),
        "over_turn": bool(m.get("over_turn")),
        "invalid": int(m.get("invalid_actions") or 0),
        "errors": errors,
        "wide": _is_wide(size),
        "overlay": _overlay(rec, _img_src(prefix, overview) if overview else "", size),
        "messages": _messages(rec, prefix, root),
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
            "id": r["id"],
            "c": r["condition"],
            "ok": bool(r["correct"]),
            "t": r["class_name"],
            "p": r.get("predicted_class") or "(none)",
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
