"""The trace viewer: ``RUN_DIR/traces.html``, one static page over every episode of a run.

``write_viewer(run_dir)`` reads ``RUN_DIR/traces.jsonl`` and every ``RUN_DIR/<condition>/traces.jsonl``
(an ``astroreason eval`` folder or a single ``astroreason rollout`` folder) and writes one page. Images
are referenced by relative path, so the page works opened from disk or served by
:func:`serve_viewer`. Plain-JS filters: condition, correct/incorrect, true class, predicted class,
number of tool calls. Each episode shows the overview with every zoom/crop footprint drawn on it (and
the ground-truth box, dashed), each returned view, the model's replies (``<think>`` folded in a
``<details>``), tool calls and tool errors, the answer and the reward. ``traces.html#ep=<id>`` opens
one episode.

Model text is untrusted: everything is rendered server-side through ``html.escape``; the JSON index the
filters read sits in a ``<script type="application/json">`` with ``<``, ``>``, ``&``, U+2028 and
U+2029 escaped, and the script never puts data into ``innerHTML``.
"""

from __future__ import annotations

import html
import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from astroreason.conditions import CONDITIONS
from astroreason.errors import DataError
from astroreason.traces import TRACES_FILE, read_traces

VIEWER_FILE = "traces.html"
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S)
COLORS = ("#ff7f0e", "#1f9eff", "#d62fd6", "#ffd11a", "#2ee66b", "#ff4d4d", "#a98bff", "#00e0d0")


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def script_json(obj: Any) -> str:
    """JSON safe to place inside a ``<script>`` element (no ``</script>``, no line separators)."""
    s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return (
        s.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def iter_run_records(run_dir: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
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
    return _e(quote(prefix + (path or ""), safe="/"))


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


def _overlay(rec: dict[str, Any], src: str, size: tuple[int, int] | None) -> str:
    """The overview image with every view's footprint and the ground truth drawn on it (SVG).

    Image footprints ``[x0, y0, x1, y1]`` (galaxies: source pixels) become rectangles, scaled so that
    the overview's own footprint spans the overview image; wavelength windows ``[lambda_min,
    lambda_max]`` (spectra) become vertical bands over the plot's data area. The ground truth is the
    dashed shape (``bbox`` or ``key_window``).
    """
    views = rec["logs"].get("views") or []
    if not views or not src:
        return '<div class="noimg">no image (blind)</div>'
    fp0 = views[0].get("footprint")
    gt = rec.get("ground_truth") or {}
    shapes = []
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
    if gt_box:
        x, y, w, h = box(gt_box)
        shapes.append(
            f'<rect class="gt" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}">'
            "<title>ground truth</title></rect>"
        )
    band = len(fp0 or ()) == 2
    fs = 0.09 * H if band else 0.07 * max(W, H)
    for v in views_ok:
        x, y, w, h = box(v["footprint"])
        c = COLORS[(int(v["index"]) - 1) % len(COLORS)]
        fill = f' style="fill:{c};fill-opacity:.18"'
        shapes.append(
            f'<rect class="fp" stroke="{c}"{fill if band else ""} x="{x:.1f}" y="{y:.1f}" '
            f'width="{w:.1f}" '
            f'height="{h:.1f}"><title>image {int(v["index"])}: {_e(v.get("kind"))}</title></rect>'
            f'<text x="{x + 0.01 * W:.1f}" y="{y + fs:.1f}" fill="{c}" font-size="{fs:.1f}">'
            f"{int(v['index'])}</text>"
        )
    svg = (
        f'<svg viewBox="0 0 {W} {H}" preserveAspectRatio="none" aria-hidden="true">'
        + "".join(shapes)
        + "</svg>"
    )
    wide = " wide" if _is_wide(size) else ""
    return f'<div class="ov{wide}"><img src="{src}" alt="overview" loading="lazy">{svg}</div>'


def _reply_html(text: str) -> str:
    thinking = [m.strip() for m in _THINK.findall(text)]
    rest = _THINK.sub("", text).strip()
    out = []
    for t in thinking:
        out.append(
            f'<details class="think"><summary>thinking ({len(t)} chars)</summary>'
            f"<pre>{_e(t)}</pre></details>"
        )
    if rest:
        out.append(f"<pre>{_e(rest)}</pre>")
    return "".join(out) or '<pre class="muted">(empty reply)</pre>'


def _content_html(content: Any, prefix: str, root: Path | None = None) -> str:
    if isinstance(content, str):
        return f"<pre>{_e(content)}</pre>" if content else ""
    out = []
    for b in content or []:
        if b.get("type") == "image":
            if b.get("path"):
                src = _img_src(prefix, b["path"])
                cls = "view wide" if _is_wide(_png_size(root, prefix, b["path"])) else "view"
                out.append(f'<img class="{cls}" src="{src}" alt="view" loading="lazy">')
        elif b.get("type") == "text":
            t = b.get("text", "")
            cls = "err" if t.startswith("Error:") else ""
            out.append(f'<pre class="{cls}">{_e(t)}</pre>')
    return "".join(out)


def _conversation(rec: dict[str, Any], prefix: str, root: Path | None = None) -> str:
    logs = rec["logs"]
    replies = list(logs.get("replies") or [])
    parts = []
    k = 0
    image_no = 0
    for m in logs.get("messages") or []:
        role = m.get("role")
        if role == "system":
            parts.append(
                '<details class="msg system"><summary>system prompt</summary>'
                f"{_content_html(m.get('content'), prefix, root)}</details>"
            )
            continue
        if role == "assistant":
            raw = replies[k] if k < len(replies) else m.get("content") or ""
            k += 1
            body = _reply_html(raw if isinstance(raw, str) else "")
            for tc in m.get("tool_calls") or []:
                fn = tc.get("function", {})
                args = json.dumps(fn.get("arguments"), ensure_ascii=False)
                body += f'<div class="call">tool call: <b>{_e(fn.get("name"))}</b> {_e(args)}</div>'
            parts.append(f'<div class="msg assistant"><div class="role">model</div>{body}</div>')
            continue
        n_img = sum(
            1 for b in (m.get("content") or []) if isinstance(b, dict) and b.get("type") == "image"
        )
        label = "tool" if role == "tool" else "user"
        if n_img:
            label += f" &middot; image {image_no}"
            image_no += n_img
        parts.append(
            f'<div class="msg {_e(role)}"><div class="role">{label}</div>'
            f"{_content_html(m.get('content'), prefix, root)}</div>"
        )
    return "".join(parts)


def _episode_html(i: int, rec: dict[str, Any], prefix: str, root: Path | None = None) -> str:
    m = rec["metrics"]
    overview = next(
        (
            b.get("path")
            for msg in rec["logs"].get("messages") or []
            if msg.get("role") == "user" and isinstance(msg.get("content"), list)
            for b in msg["content"]
            if b.get("type") == "image"
        ),
        None,
    )
    ok = bool(rec["correct"])
    pred = rec.get("predicted_class")
    errors = [c for c in rec["logs"].get("tool_calls") or [] if c.get("error")]
    err_html = "".join(f"<li><b>{_e(c.get('name'))}</b>: {_e(c.get('error'))}</li>" for c in errors)
    flags = []
    if m.get("over_turn"):
        flags.append('<span class="tag bad">over turn</span>')
    if m.get("invalid_actions"):
        flags.append(f'<span class="tag bad">{int(m["invalid_actions"])} invalid</span>')
    src = _img_src(prefix, overview) if overview else ""
    size = _png_size(root, prefix, overview)
    wide = " wide" if _is_wide(size) else ""
    return f"""
<article class="ep {"right" if ok else "wrong"}" id="ep-{_e(rec["id"])}" data-i="{i}">
 <header>
  <span class="mark">{"&#10003;" if ok else "&#10007;"}</span>
  <span class="eid">{_e(rec["id"])}</span>
  <span class="tag cond">{_e(rec["condition"])}</span>
  <span>true <b>{_e(rec["class_name"])}</b></span>
  <span>answer <b>{_e(pred if pred is not None else "(none)")}</b></span>
  <span class="tag">{int(m["tool_calls"])} tool call(s)</span>
  <span class="tag">{int(m["turns"])} turn(s)</span>
  <span class="tag">reward {float(m["return"]):+.2f}</span>
  {"".join(flags)}
 </header>
 <div class="body">
  <div class="left{wide}">{_overlay(rec, src, size)}
   <div class="legend"><span class="sw gt"></span>ground truth
   <span class="sw fp"></span>views (numbered)</div></div>
  <div class="conv">{_conversation(rec, prefix, root)}
   {f'<div class="errors"><b>tool errors</b><ul>{err_html}</ul></div>' if errors else ""}
   <div class="final {"right" if ok else "wrong"}">answer: <b>{_e(pred if pred is not None else "(none)")}</b>
    &middot; true: <b>{_e(rec["class_name"])}</b> &middot; {"correct" if ok else "wrong"}
    &middot; reward {float(m["return"]):+.3f}</div>
  </div>
 </div>
</article>"""


CSS = """
:root { --fg:#1d2430; --muted:#5b6574; --line:#d9dee6; --bg:#eef1f5; --ok:#1f7a3a; --bad:#b3261e; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color:var(--fg); background:var(--bg); }
.top { position: sticky; top:0; z-index:5; background:#16202e; color:#fff; padding:10px 18px;
       display:flex; flex-wrap:wrap; gap:10px 16px; align-items:center; box-shadow:0 2px 6px #0003; }
.top h1 { font-size:17px; margin:0 12px 0 0; }
.top label { font-size:12px; color:#c7d0dc; display:flex; flex-direction:column; gap:2px; }
.top select { font-size:13px; padding:3px 4px; border-radius:4px; border:0; min-width:110px; }
#count { margin-left:auto; font-weight:600; }
main { padding: 14px 18px 40px; max-width: 1400px; margin: 0 auto; }
.ep { background:#fff; border:1px solid var(--line); border-left:6px solid var(--line);
      border-radius:6px; margin:0 0 14px; }
.ep.right { border-left-color: var(--ok); } .ep.wrong { border-left-color: var(--bad); }
.ep.target { box-shadow: 0 0 0 3px #1a5fb4; }
.ep header { display:flex; flex-wrap:wrap; gap:6px 12px; align-items:center; padding:8px 12px;
             border-bottom:1px solid var(--line); background:#f8f9fb; }
.mark { font-size:18px; font-weight:700; } .right .mark { color:var(--ok); }
.wrong .mark { color:var(--bad); }
.eid { font-family: ui-monospace, Menlo, monospace; font-size:12px; color:var(--muted); }
.tag { background:#e8ecf2; border-radius:10px; padding:1px 8px; font-size:12px; }
.tag.cond { background:#dbe7ff; } .tag.bad { background:#fde2e0; color:var(--bad); }
.body { display:flex; gap:16px; padding:12px; align-items:flex-start; }
.left { flex: 0 0 260px; } .left.wide { flex-basis: 516px; }
.ov { position:relative; width:256px; background:#000; }
.ov.wide { width:512px; max-width:100%; background:#fff; border:1px solid var(--line); }
.ov img { width:100%; height:auto; image-rendering: pixelated; display:block; }
.ov.wide img { image-rendering: auto; }
.ov svg { position:absolute; inset:0; width:100%; height:100%; }
.ov rect { fill:none; stroke-width:10; vector-effect: non-scaling-stroke; }
.ov rect.fp { stroke-width:2.5; } .ov rect.gt { stroke:#2ee66b; stroke-width:1.5; stroke-dasharray:5 4; }
.ov text { font-weight: bold; font-family: sans-serif; }
.noimg { width:256px; height:80px; display:flex; align-items:center; justify-content:center;
         background:#e8ecf2; color:var(--muted); border-radius:4px; }
.legend { font-size:11px; color:var(--muted); margin-top:4px; }
.sw { display:inline-block; width:14px; height:9px; margin:0 3px 0 8px; vertical-align:middle; }
.sw.gt { border:1.5px dashed #2ea44f; } .sw.fp { border:2px solid #ff7f0e; }
.conv { flex:1; min-width:0; }
.msg { border-left:3px solid var(--line); padding:4px 10px; margin:0 0 8px; }
.msg .role { font-size:11px; text-transform:uppercase; letter-spacing:.05em; color:var(--muted); }
.msg.assistant { border-left-color:#1a5fb4; background:#f5f8ff; }
.msg.tool { border-left-color:#ff7f0e; } .msg.system summary { color:var(--muted); cursor:pointer; }
pre { white-space:pre-wrap; word-break:break-word; margin:4px 0; font: 12.5px/1.4 ui-monospace, Menlo,
      monospace; }
pre.err { color:var(--bad); }
.think summary { cursor:pointer; color:#6a4fb3; font-size:12px; }
.think pre { color:#4b3f72; background:#f4f0ff; padding:6px; border-radius:4px; }
img.view { height:160px; width:auto; image-rendering: pixelated; border:1px solid var(--line);
           display:block; margin:4px 0; }
img.view.wide { height:auto; width:512px; max-width:100%; image-rendering: auto; }
.call { font: 12.5px ui-monospace, Menlo, monospace; color:#8a4b00; }
.errors { color: var(--bad); font-size:13px; }
.final { margin-top:6px; padding:6px 10px; border-radius:4px; }
.final.right { background:#e6f4ea; } .final.wrong { background:#fdecea; }
.muted { color:var(--muted); }
#more { display:block; margin: 10px auto; padding:8px 18px; font-size:14px; }
"""

JS = """
(function () {
  var index = JSON.parse(document.getElementById('trace-index').textContent);
  var els = document.querySelectorAll('article.ep');
  var PAGE = 100, limit = PAGE;
  var f = {};
  ['f-cond', 'f-ok', 'f-true', 'f-pred', 'f-calls'].forEach(function (id) {
    f[id] = document.getElementById(id);
  });
  function fill(sel, values) {
    values.forEach(function (v) {
      var o = document.createElement('option');
      o.value = v; o.textContent = v; sel.appendChild(o);
    });
  }
  function uniq(key) {
    var seen = {}, out = [];
    index.forEach(function (e) { var v = String(e[key]); if (!seen[v]) { seen[v] = 1; out.push(v); } });
    return out.sort(function (a, b) { return (+a - +b) || (a < b ? -1 : a > b ? 1 : 0); });
  }
  fill(f['f-cond'], uniq('c')); fill(f['f-true'], uniq('t'));
  fill(f['f-pred'], uniq('p')); fill(f['f-calls'], uniq('n'));
  function match(e) {
    var c = f['f-cond'].value, ok = f['f-ok'].value, t = f['f-true'].value,
        p = f['f-pred'].value, n = f['f-calls'].value;
    return (!c || e.c === c) && (!ok || String(e.ok) === ok) && (!t || e.t === t) &&
           (!p || e.p === p) && (!n || String(e.n) === n);
  }
  var forced = null;
  function apply() {
    var shown = 0, total = 0;
    for (var i = 0; i < els.length; i++) {
      var el = els[i], e = index[+el.getAttribute('data-i')];
      var m = match(e);
      if (m) total++;
      var vis = (m && shown < limit) || el === forced;
      if (m && shown < limit) shown++;
      el.style.display = vis ? '' : 'none';
    }
    document.getElementById('count').textContent = shown + ' of ' + total + ' shown (' +
      els.length + ' episodes)';
    document.getElementById('more').style.display = total > shown ? '' : 'none';
    window.__visibleEpisodes = shown;
  }
  Object.keys(f).forEach(function (k) {
    f[k].addEventListener('change', function () { limit = PAGE; forced = null; apply(); });
  });
  document.getElementById('more').addEventListener('click', function () { limit += PAGE; apply(); });
  function openHash() {
    var h = decodeURIComponent(location.hash.replace(/^#/, ''));
    if (h.indexOf('ep=') !== 0) return;
    var el = document.getElementById('ep-' + h.slice(3));
    if (!el) return;
    Object.keys(f).forEach(function (k) { f[k].value = ''; });
    forced = el; apply();
    document.querySelectorAll('.ep.target').forEach(function (x) { x.classList.remove('target'); });
    el.classList.add('target'); el.scrollIntoView();
  }
  window.addEventListener('hashchange', openHash);
  apply(); openHash();
})();
"""


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
    eps = "".join(_episode_html(i, r, prefix, root) for i, (prefix, r) in enumerate(items))
    n_ok = sum(e["ok"] for e in index)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{CSS}</style></head>
<body>
<div class="top">
 <h1>{_e(title)}</h1>
 <label>condition<select id="f-cond"><option value="">all</option></select></label>
 <label>outcome<select id="f-ok"><option value="">all</option>
  <option value="true">correct</option><option value="false">incorrect</option></select></label>
 <label>true class<select id="f-true"><option value="">all</option></select></label>
 <label>predicted<select id="f-pred"><option value="">all</option></select></label>
 <label>tool calls<select id="f-calls"><option value="">all</option></select></label>
 <span id="count">{len(items)} episodes, {n_ok} correct</span>
</div>
<main>{eps}
<button id="more" type="button">show more</button>
</main>
<script type="application/json" id="trace-index">{script_json(index)}</script>
<script>{JS}</script>
</body></html>
"""


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
            for t in _THINK.findall(raw):
                body.append("<think> " + t.strip() + "\n", style="dim italic")
            body.append(_THINK.sub("", raw).strip())
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


def serve_viewer(run_dir: str | Path, port: int = 8765, *, block: bool = True):
    """Serve the run folder (viewer and images) on http://127.0.0.1:PORT/traces.html.

    Writes the viewer first when it is missing. With ``block`` (the CLI), serves until Ctrl-C;
    otherwise starts a daemon thread and returns the server (call ``shutdown()``).
    """
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = Path(run_dir)
    if not (root / VIEWER_FILE).exists():
        write_viewer(root)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # noqa: D102 - silence per-request logs
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    url = f"http://127.0.0.1:{server.server_address[1]}/{VIEWER_FILE}"
    server.url = url  # type: ignore[attr-defined]
    if not block:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server
    print(f"serving {root} at {url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return server
