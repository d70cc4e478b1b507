"""The HTML pages come from autoescaped, strict Jinja2 templates shipped inside the package."""

import base64
import importlib.resources
import json
import re
from pathlib import Path

import gymnasium
import jinja2
import jinja2.meta
import pytest

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID
from astroreason.eval.evaluate import EvalConfig, evaluate
from astroreason.eval.report import render_report
from astroreason.eval.templating import environment, render
from astroreason.policies.base import Policy, PolicyReply
from astroreason.protocol import format_answer, format_tool_call

ALERT = "<script>alert(1)</script>"
CLOSE = "</script><b id=breakout>"
EVAL_DIR = Path(__file__).resolve().parents[1] / "eval"
# the page templates the Python code renders; everything else is reached from these
PAGES = {"report.html", "viewer.html", "compare.html"}


def templates_dir():
    return importlib.resources.files("astroreason.eval") / "templates"


class ScriptPolicy(Policy):
    """Replies (and names itself) with a script and a closing ``</script>``; answers right."""

    name = "script"

    async def act(self, info):
        tools = [t["function"]["name"] for t in info.get("tools", [])]
        if tools and not info["tool_calls"]:
            call = format_tool_call("crop", {"bbox_2d": [250, 250, 750, 750]})
            return PolicyReply(f"<think>{ALERT} {CLOSE}</think>{ALERT}\n{call}")
        gt = info["ground_truth"]
        return PolicyReply(f"{CLOSE} {ALERT} {format_answer(gt['class_names'][gt['label']])}")


@pytest.fixture(scope="module")
def script_run(galaxy_file, tmp_path_factory):
    run = tmp_path_factory.mktemp("script_eval")

    def factory(cond):
        return lambda: gymnasium.make(
            GALAXY_ID, data=str(galaxy_file), split="test", view_size=32, condition=cond
        )

    cfg = EvalConfig(
        conditions=("tools", "no-tools"), episodes=4, concurrency=2, n_boot=50, progress=False
    )
    evaluate(factory, ScriptPolicy, run, cfg, run_meta={"model": f"model {ALERT}"})
    return run


def test_script_in_model_text_is_escaped_in_both_pages(script_run):
    traces = (script_run / "traces.html").read_text()
    report = (script_run / "report.html").read_text()
    for page in (traces, report):
        assert "<script>alert" not in page and "<b id=breakout>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in traces
    assert "&lt;/script&gt;&lt;b id=breakout&gt;" in traces
    # the model's name reaches the report's header, escaped
    assert "model &lt;script&gt;alert(1)&lt;/script&gt;" in report
    # the only </script> in the viewer close its own two scripts; the report has none
    assert traces.count("</script>") == 2 and report.count("<script") == 0


def test_data_strings_in_the_report_are_escaped(script_run, tmp_path):
    """Class names, check sentences, episode ids and arm names are data: all escaped."""
    png = tmp_path / "arm" / "grpo" / "curves.png"
    png.parent.mkdir(parents=True)
    png.write_bytes(base64.b64decode(PNG_1PX))
    metrics = json.loads((script_run / "metrics.json").read_text())
    for m in metrics["conditions"].values():
        m["class_names"][0] = ALERT
        m["examples"] = {ALERT: {"right": "ep/" + ALERT, "wrong": None}}
    metrics["skeptic"].append({"status": "fail", "name": ALERT, "sentence": CLOSE})
    metrics["training_runs"] = {ALERT: str(tmp_path / "arm")}
    page = render_report(metrics)
    assert "<script" not in page and "<b id=breakout>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5
    # the example link quotes the id into the anchor
    assert 'href="traces.html#ep=ep%2F%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in page
    assert "check(s) FAILED" in page and f"base64,{PNG_1PX}" in page


def test_css_and_js_are_inlined(script_run):
    css = (templates_dir() / "viewer.css").read_text()
    js = (templates_dir() / "viewer.js").read_text()
    traces = (script_run / "traces.html").read_text()
    assert ".ov rect.fp {" in css and ".ov rect.fp {" in traces
    assert css.strip() in traces and js.strip() in traces
    report_css = (templates_dir() / "report.css").read_text()
    report = (script_run / "report.html").read_text()
    assert ".checks li.fail {" in report_css and report_css.strip() in report
    # nothing is linked: one self-contained file each
    for page in (traces, report):
        assert not re.search(r"<link\b|<script[^>]+src=", page)


def test_every_referenced_template_is_installed():
    folder = templates_dir()
    shipped = {p.name for p in folder.iterdir() if p.is_file()}
    rendered = set()
    for path in EVAL_DIR.rglob("*.py"):
        rendered |= set(re.findall(r"""\brender\(\s*["']([^"']+)["']""", path.read_text()))
    assert rendered == PAGES
    env = environment()
    todo, seen = list(rendered), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert name in shipped, f"{name} is referenced but not in {folder}"
        ast = env.parse(env.loader.get_source(env, name)[0])
        refs = set(jinja2.meta.find_referenced_templates(ast))
        assert None not in refs, f"{name} includes a template chosen at run time"
        todo += refs
    assert {"report.css", "viewer.css", "viewer.js", "viewer_episode.html"} <= seen
    # and nothing is shipped that no page uses
    assert shipped == seen


def test_strict_undefined_catches_a_missing_variable():
    with pytest.raises(jinja2.UndefinedError, match="title"):
        render("viewer.html", episodes=[], n_correct=0, index_json="[]")
    with pytest.raises(jinja2.UndefinedError):
        render("report.html")


def test_autoescape_is_on_for_every_template():
    env = environment()
    assert isinstance(env.undefined, type) and issubclass(env.undefined, jinja2.StrictUndefined)
    for name in ("report.html", "viewer.html", "viewer_episode.html", "viewer.css", "x.js"):
        assert env.autoescape(name) if callable(env.autoescape) else env.autoescape
    out = env.from_string("{{ x }}").render(x=ALERT)
    assert out == "&lt;script&gt;alert(1)&lt;/script&gt;"


# a 1x1 transparent PNG
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
