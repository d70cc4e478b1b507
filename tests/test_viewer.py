import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from markupsafe import escape
from test_traces import trace_line

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID, SPECTRUM_ID
from astroreason.eval.viewer import script_json, serve_viewer, show_episode, write_viewer
from astroreason.policies.base import Policy, PolicyReply
from astroreason.protocol import format_answer, format_tool_call
from astroreason.rollout import RolloutConfig, run_rollouts

ROOT = Path(__file__).resolve().parents[1]
ALERT_SCRIPT = "<script>alert(1)</script>"
ALERT_IMG = "<img src=x onerror=alert(1)>"
FLAG_SCRIPT = "<script>window.__pwned = 1</script>"
FLAG_IMG = '<img src=x onerror="window.__pwned = 2">'
BREAKOUT = '</pre></details><b id="breakout">x</b>'
EPISODES = 6


class HostilePolicy(Policy):
    """A 'model' whose replies are HTML/JS injections; answers right on even rows, wrong on odd."""

    name = "hostile"

    async def act(self, info):
        gt = info["ground_truth"]
        tools = [t["function"]["name"] for t in info.get("tools", [])]
        payload = f"{ALERT_IMG} {FLAG_IMG} {BREAKOUT}"
        if tools and not info["tool_calls"]:
            call = format_tool_call("crop", {"bbox_2d": [250, 250, 750, 750]})
            return PolicyReply(f"<think>{ALERT_SCRIPT} {FLAG_SCRIPT}</think>{payload}\n{call}")
        names = gt["class_names"]
        k = gt["label"] if info["episode"]["row_id"] % 2 == 0 else (gt["label"] + 1) % len(names)
        return PolicyReply(f"{FLAG_SCRIPT} \u2028 {payload} {format_answer(names[k])}")


@pytest.fixture(scope="module")
def hostile_run(galaxy_file, tmp_path_factory):
    run = tmp_path_factory.mktemp("hostile")
    for cond in ("tools", "no-tools"):

        def make(cond=cond):
            return gymnasium.make(
                GALAXY_ID, data=str(galaxy_file), split="test", view_size=32, condition=cond
            )

        cfg = RolloutConfig(episodes=EPISODES, concurrency=2, progress=False)
        run_rollouts(make, HostilePolicy(), run / cond, cfg)
    write_viewer(run)
    return run


def test_model_text_is_escaped(hostile_run):
    page = (hostile_run / "traces.html").read_text()
    for raw in (ALERT_SCRIPT, ALERT_IMG, FLAG_SCRIPT, FLAG_IMG, BREAKOUT):
        assert raw not in page
        assert escape(raw) in page
    # the only scripts are the viewer's own two
    assert len(re.findall(r"<script\b", page)) == 2
    index = re.search(r'id="trace-index">(.*?)</script>', page, re.S).group(1)
    assert "<" not in index and "\u2028" not in index
    assert len(json.loads(index)) == 2 * EPISODES


def test_script_json_escapes_what_breaks_out_of_a_script():
    s = script_json({"x": "</script><b>&\u2028\u2029"})
    assert not set(s) & {"<", ">", "&", "\u2028", "\u2029"}
    assert json.loads(s) == {"x": "</script><b>&\u2028\u2029"}


def test_footprints_are_drawn_on_the_overview(hostile_run):
    page = (hostile_run / "traces.html").read_text()
    # every tools episode made one crop: one footprint rectangle each, none in no-tools
    assert page.count('<rect class="fp"') == EPISODES
    assert page.count('<rect class="gt"') == 2 * EPISODES
    srcs = re.findall(r'<img[^>]*\bsrc="([^"]+)"', page)
    assert srcs and all((hostile_run / s).exists() for s in srcs)
    # the crop 250..750 (Qwen 0-1000 grid) of the 32-px overview is drawn at pixels 8..24 of it
    assert '<svg viewBox="0 0 32 32"' in page
    m = re.search(
        r'<rect class="fp" stroke="[^"]+" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', page
    )
    x, y, w = (float(v) for v in m.groups())
    assert 7 <= x <= 9 and 7 <= y <= 9 and 15 <= w <= 17


def test_spectrum_windows_are_bands_on_a_wide_overview(spectra_dir, tmp_path):
    """Spectra keep their aspect ratio and each wavelength window is a band over the plot area."""

    class Windowing(Policy):
        name = "windowing"

        async def act(self, info):
            if not info["tool_calls"]:
                lo, hi = info["views"][0]["footprint"]
                mid = (lo + hi) / 2
                return PolicyReply(
                    format_tool_call("spectrum_window", {"lambda_min": lo, "lambda_max": mid})
                )
            return PolicyReply(format_answer(info["ground_truth"]["class_names"][0]))

    def make():
        return gymnasium.make(SPECTRUM_ID, data=str(spectra_dir), split="test", condition="tools")

    run_rollouts(make, Windowing(), tmp_path, RolloutConfig(episodes=2, progress=False))
    page = write_viewer(tmp_path).read_text()
    assert page.count('<div class="left wide">') == 2 and page.count('class="view wide"') == 4
    assert page.count('<svg viewBox="0 0 512 256"') == 2
    rects = re.findall(r'<rect class="fp"[^>]* x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', page)
    # the window is the left half of the full range: from the plot's left edge (5 px) to its middle
    for x, w in rects:
        assert float(x) == pytest.approx(5.0) and float(w) == pytest.approx(251.0)
    assert len(rects) == 2


def test_show_episode_and_cli(hostile_run, capsys):
    from astroreason.cli import main

    ep = json.loads((hostile_run / "tools" / "traces.jsonl").read_text().splitlines()[0])["id"]
    show_episode(hostile_run, ep)
    out = capsys.readouterr().out
    assert ep in out and "window.__pwned = 1" in out and "crop" in out
    main(["traces", "view", str(hostile_run)])
    assert "traces.html" in capsys.readouterr().out
    main(["traces", "show", str(hostile_run), ep])
    assert ep in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["traces", "show", str(hostile_run), "tools-test-999999-0"])
    assert e.value.code == 2 and "no episode" in capsys.readouterr().err


def test_serve_viewer_serves_page_and_images(hostile_run):
    server = serve_viewer(hostile_run, 0, block=False)
    try:
        page = urllib.request.urlopen(server.url, timeout=10).read().decode()
        assert server.url.startswith("http://127.0.0.1:") and "trace-index" in page
        src = re.search(r'<img[^>]*\bsrc="([^"]+)"', page).group(1)
        img = urllib.request.urlopen(server.url.rsplit("/", 1)[0] + "/" + src, timeout=10).read()
        assert img[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        server.shutdown()
        server.server_close()


CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _ensure_chromium():
    if not os.path.exists(CHROMIUM):
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], check=True)
    assert os.path.exists(CHROMIUM)


@pytest.mark.browser
def test_viewer_in_headless_chromium(hostile_run, tmp_path):
    from PIL import Image
    from playwright.sync_api import sync_playwright

    _ensure_chromium()
    server = serve_viewer(hostile_run, 0, block=False)
    dialogs, errors = [], []
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            page = ctx.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server.url)
            page.wait_for_load_state("load")
            page.wait_for_timeout(300)

            def visible():
                return page.evaluate(
                    "Array.from(document.querySelectorAll('article.ep'))"
                    ".filter(e => e.offsetParent !== null).length"
                )

            assert visible() == 2 * EPISODES
            page.select_option("#f-cond", "tools")
            assert visible() == EPISODES
            page.select_option("#f-ok", "true")
            n_right = visible()
            page.select_option("#f-ok", "false")
            n_wrong = visible()
            assert n_right + n_wrong == EPISODES and n_right > 0 and n_wrong > 0
            page.select_option("#f-ok", "")
            page.select_option("#f-cond", "")
            page.select_option("#f-calls", "1")
            assert visible() == EPISODES
            page.select_option("#f-calls", "")
            assert "of 12 shown" in page.inner_text("#count")

            # the injections show as text and never ran
            text = page.inner_text("main")
            assert ALERT_IMG in text and FLAG_IMG in text
            page.click("details.think >> nth=0")
            assert ALERT_SCRIPT in page.inner_text("details.think >> nth=0")
            assert page.evaluate("typeof window.__pwned") == "undefined"
            assert page.query_selector("#breakout") is None and BREAKOUT in text
            # no element of the injections exists in the DOM: they are text nodes only
            assert page.query_selector("img[src='x']") is None
            assert len(page.query_selector_all("script")) == 2
            assert dialogs == [] and errors == []

            # a report link opens one episode even when filters hide it
            ep = page.get_attribute("article.ep >> nth=-1", "id")[3:]
            page.select_option("#f-cond", "tools")
            page.goto(server.url + "#ep=" + ep)
            page.wait_for_timeout(200)
            assert page.is_visible(f"[id='ep-{ep}']")

            page.goto(server.url)
            page.wait_for_timeout(300)
            shot = tmp_path / "viewer.png"
            page.screenshot(path=str(shot))
            ctx.close()
    finally:
        server.shutdown()
        server.server_close()
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape[0] >= 800 and pixels.var() > 100
    # the page is drawn: dark header, images and text cover a good part of it, not a blank canvas
    assert 0.05 < (pixels < 200).mean() < 0.9


ESCAPES = "\x1b[2J\x1b]0;pwned\x07\r\x9b31m"


def _run_with(folder, *records):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_show_prints_no_terminal_escapes_from_trace_text(tmp_path, capsys):
    import io

    from rich.console import Console

    from astroreason.cli import main

    reply = f"<think>{ESCAPES}</think>clear {ESCAPES} [bold red]markup[/bold red] <answer>Round</answer>"
    ep = "tools-test-0-0"
    run = _run_with(tmp_path / "r\x1b[1m", trace_line(ep, reply, class_name=f"Round{ESCAPES}"))
    buf = io.StringIO()
    show_episode(run, ep, console=Console(file=buf, force_terminal=True, color_system=None))
    main(["traces", "show", str(run), ep])
    for out in (buf.getvalue(), capsys.readouterr().out):
        assert "\x1b" not in out and "\x07" not in out and "\r" not in out and "\x9b" not in out
        assert "\\x1b[2J" in out and "\\x1b]0;pwned\\x07" in out and "\\x9b31m" in out
        assert "[bold red]markup[/bold red]" in out  # literal, not markup
    # ids listed in an error are escaped too
    (run / "traces.jsonl").write_text(json.dumps(trace_line(f"ep{ESCAPES}")) + "\n")
    with pytest.raises(SystemExit):
        main(["traces", "show", str(run), "nope"])
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J" in err and err.count("\n") == 1


def test_viewer_caps_long_text(tmp_path):
    """20 episodes with a 2 MB reply and a 2 MB tool output make a page under 2 MB (not 200 MB)."""
    half = 1_000_000
    recs = []
    for i in range(20):
        rec = trace_line(f"tools-test-{i}-0", "<think>" + "t" * half + "</think>" + "r" * half)
        tool = {"role": "tool", "content": [{"type": "text", "text": "<" * 2 * half}]}
        rec["logs"]["messages"] += [tool] + [{"role": "user", "content": []}] * 1000
        recs.append(rec)
    page = write_viewer(_run_with(tmp_path, *recs)).read_text()
    assert len(page.encode()) < 2_000_000
    from astroreason.eval.viewer.render import TEXT_CAP

    # the reply is cut before it is split: its thinking shows TEXT_CAP characters, the cut marked
    assert page.count("t" * (TEXT_CAP - 7)) == 20 and "t" * (TEXT_CAP - 6) not in page
    mark = "\u2026 [{} more characters: see traces.jsonl]"
    reply = recs[0]["logs"]["replies"][0]  # traces.jsonl keeps TRACE_TEXT_CAP of it, marked
    assert page.count(mark.format(len(reply) - TEXT_CAP)) == 20  # the reply
    assert page.count(mark.format(2 * half - TEXT_CAP)) == 20  # the tool output
    assert page.count("more messages: see traces.jsonl]") == 20


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_serve_viewer_serves_only_files_inside_the_run_folder(tmp_path):
    import http.client

    run = _run_with(tmp_path / "run", trace_line())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (run / "images").mkdir()
    (run / "images" / "a.txt").write_text("inside")
    (run / "leak.txt").symlink_to(outside / "secret.txt")
    (run / "leakdir").symlink_to(outside)
    (run / "alias.txt").symlink_to(run / "images" / "a.txt")  # resolves inside: served
    server = serve_viewer(run, 0, block=False)
    base = server.url.rsplit("/", 1)[0]
    try:
        assert _get(server.url)[0] == 200
        assert _get(base + "/images/a.txt") == (200, b"inside")
        assert _get(base + "/alias.txt") == (200, b"inside")
        for path in ("/", "/images", "/images/", "/leak.txt", "/leakdir/secret.txt", "/leakdir/"):
            status, body = _get(base + path)
            assert status == 404 and b"secret" not in body, path
        conn = http.client.HTTPConnection(base.split("//")[1], timeout=10)
        conn.request("GET", "/../outside/secret.txt")
        resp = conn.getresponse()
        assert resp.status == 404 and b"secret" not in resp.read()
        conn.close()
    finally:
        server.shutdown()
        server.server_close()


def test_serve_viewer_on_a_bad_or_busy_port_is_a_one_line_error(tmp_path, capsys):
    import socket

    from astroreason.cli import main
    from astroreason.errors import ConfigError

    run = _run_with(tmp_path, trace_line())
    with pytest.raises(ConfigError, match=r"^--port 70000: not a port \(1-65535\)$"):
        serve_viewer(run, 70000, block=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^--port {port}: in use \("):
            serve_viewer(run, port, block=False)
        for p, problem in ((70000, "not a port (1-65535)"), (-1, "not a port"), (port, "in use")):
            with pytest.raises(SystemExit) as e:
                main(["traces", "view", str(run), "--serve", "--port", str(p)])
            err = capsys.readouterr().err
            assert e.value.code == 2 and err.startswith(f"error: --port {p}: {problem}")
            assert err.count("\n") == 1
