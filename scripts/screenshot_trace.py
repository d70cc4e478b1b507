"""Screenshot one episode of a run's trace viewer (for the README): headless Chromium via Playwright.

    .venv/bin/python scripts/screenshot_trace.py runs/demo/eval --condition tools --out docs/trace.png

Picks the first correct episode of the condition with a successful tool call (or ``--episode ID``).
Needs /usr/bin/chromium (``scripts/ensure_chromium.sh``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from astroreason.eval.viewer import serve_viewer, write_viewer

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def pick(run_dir: Path, condition: str) -> str:
    for line in (run_dir / condition / "traces.jsonl").read_text().splitlines():
        rec = json.loads(line)
        calls = rec.get("logs", {}).get("tool_calls") or []
        if rec.get("correct") and any(c.get("ok") for c in calls):
            return rec["id"]
    raise SystemExit(f"{run_dir / condition}: no correct episode with a tool call")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--condition", default="tools")
    ap.add_argument("--episode", default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/trace.png"))
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    episode = args.episode or pick(args.run_dir, args.condition)
    write_viewer(args.run_dir)
    server = serve_viewer(args.run_dir, 0, block=False)
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
            ctx = p.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1100, "height": 900},
            )
            page = ctx.new_page()
            page.goto(f"{server.url}#ep={episode}")
            page.wait_for_load_state("load")
            page.wait_for_timeout(800)
            card = page.locator("article.ep", has=page.locator(f"text={episode}")).first
            card.scroll_into_view_if_needed()
            bar = page.evaluate(
                "Math.max(0, ...Array.from(document.body.querySelectorAll('*'))"
                ".filter(e => ['sticky', 'fixed'].includes(getComputedStyle(e).position))"
                ".map(e => e.getBoundingClientRect().bottom))"
            )
            top = card.evaluate("e => e.getBoundingClientRect().top + window.scrollY")
            page.evaluate(f"window.scrollTo(0, {top} - {bar} - 8)")
            page.wait_for_timeout(300)
            box = card.bounding_box()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            height = min(box["y"] + box["height"] + 8, 1400)
            page.set_viewport_size({"width": 1100, "height": int(height) + 8})
            page.screenshot(path=str(args.out), clip={"x": 0, "y": 0, "width": 1100, "height": height})
            ctx.close()
    finally:
        server.shutdown()
    print(f"{args.out}: episode {episode}")


if __name__ == "__main__":
    main()
