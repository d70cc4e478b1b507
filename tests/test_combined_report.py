"""One page over two evaluation runs (galaxies and spectra): ``write_combined_report``."""

import json
import re
import shutil

import gymnasium
import pytest

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID, SPECTRUM_ID
from astroreason.errors import ConfigError
from astroreason.eval.evaluate import EvalConfig, summarize
from astroreason.eval.format import headline_rows
from astroreason.eval.report import write_combined_report
from astroreason.policies.scripted import OraclePolicy, RandomPolicy
from astroreason.rollout import RolloutConfig, run_rollouts

CONDITIONS = ("tools", "no-tools", "blind")
SPECTRA_TITLE = 'Spectra <b>"&"</b>'


class LeakyPolicy(OraclePolicy):
    """The oracle's answers under a model's name: a run whose label leaks (the oracle's is exempt)."""

    def __init__(self):
        super().__init__()
        self.name = "leaky"


def _run(run_dir, factory, policy):
    """Episodes of every condition through run_rollouts, then summarize: a complete run folder."""
    cfg = EvalConfig(conditions=CONDITIONS, episodes=4, concurrency=2, n_boot=50, progress=False)
    rcfg = RolloutConfig(episodes=cfg.episodes, concurrency=cfg.concurrency, progress=False)
    for cond in CONDITIONS:
        run_rollouts(factory(cond), policy(), run_dir / cond, rcfg)
    return summarize(run_dir, factory(CONDITIONS[0]), cfg)


@pytest.fixture(scope="module")
def demo(galaxy_file, spectra_dir, tmp_path_factory):
    """``DEMO/eval`` (a leaky model on galaxies: the blind probe fails), ``DEMO/eval-spectra`` (random)."""
    root = tmp_path_factory.mktemp("demo")

    def galaxies(cond):
        return lambda: gymnasium.make(
            GALAXY_ID, data=str(galaxy_file), split="test", view_size=32, condition=cond
        )

    def spectra(cond):
        return lambda: gymnasium.make(
            SPECTRUM_ID,
            data=str(spectra_dir),
            split="test",
            view_width=128,
            view_height=64,
            condition=cond,
        )

    _run(root / "eval", galaxies, LeakyPolicy)
    _run(root / "eval-spectra", spectra, RandomPolicy)
    page = write_combined_report(
        root / "report.html",
        [("Galaxies", root / "eval"), (SPECTRA_TITLE, root / "eval-spectra")],
    )
    return root, page.read_text(encoding="utf-8")


def _metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def _parts(html):
    """The page before the first section (title, contents) and each section's markup."""
    head, *sections = re.split(r'<section id="s\d+">', html)
    return head, sections


def _headline_table(html, level):
    return re.search(rf"Headline</h{level}>\s*(<table>.*?</table>)", html, re.S).group(1)


def test_both_sections_with_their_headline_tables(demo):
    root, html = demo
    head, sections = _parts(html)
    assert len(sections) == 2 and "<h1>AstroReason evaluation report</h1>" in head
    assert "<h2>Galaxies</h2>" in sections[0]
    escaped = "Spectra &lt;b&gt;&#34;&amp;&#34;&lt;/b&gt;"
    assert f"<h2>{escaped}</h2>" in sections[1] and SPECTRA_TITLE not in html
    assert f'href="#s2"><b>{escaped}</b>' in head  # the contents link to each section
    for part, folder in zip(sections, ("eval", "eval-spectra"), strict=True):
        rows = headline_rows(_metrics(root / folder))
        for row in rows:  # condition name and accuracy of every row, from that run's metrics.json
            assert f"<tr><td>{row[0]}</td>" in part and f"<td>{row[3]}</td>" in part
        # the same markup as the run's own report.html: one template for both pages
        single = (root / folder / "report.html").read_text()
        assert _headline_table(part, 3) == _headline_table(single, 2)
        for h in ("Skeptic checks", "Paired comparisons", "Confusion matrices", "Tool use"):
            assert f"<h3>{h}</h3>" in part
        assert len(re.findall(r'src="data:image/png;base64,', part)) >= 3
    # self-contained: nothing linked or fetched
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert not re.search(r"<link\b|<img[^>]+src=\"(?!data:)", html)


def test_links_point_into_each_runs_own_folder(demo):
    _, html = demo
    _, sections = _parts(html)
    for part, folder in zip(sections, ("eval", "eval-spectra"), strict=True):
        examples = re.findall(r'href="([^"]*#ep=[^"]*)"', part)
        assert examples and all(h.startswith(f"{folder}/traces.html#ep=") for h in examples)
        assert f'href="{folder}/report.html"' in part and f'href="{folder}/traces.html"' in part
    assert 'href="traces.html' not in html


def test_failed_checks_of_every_section_show_at_the_top(demo):
    root, html = demo
    head, _ = _parts(html)
    failed = {}
    for title, folder in (("Galaxies", "eval"), ("Spectra", "eval-spectra")):
        checks = _metrics(root / folder)["skeptic"]
        failed[title] = sum(c["status"] == "fail" for c in checks)
        assert f"{failed[title]} of {len(checks)} skeptic checks failed" in head
    # the leaky model reads the label even blind: the blind probe fails for galaxies
    assert failed["Galaxies"] >= 1
    assert '<p class="banner">' in head and f"Galaxies: {failed['Galaxies']}" in head
    assert re.search(r'<li class="fail"><span class="badge fail">FAIL</span><a href="#s1">', head)


def test_a_page_elsewhere_quotes_relative_links(demo, tmp_path):
    root, _ = demo
    odd = tmp_path / "my run #1"
    odd.mkdir()
    shutil.copy(root / "eval-spectra" / "metrics.json", odd)
    page = write_combined_report(
        tmp_path / "pages" / "all.html", [("odd", odd), ("galaxies", root / "eval")]
    )
    html = page.read_text()
    _, (first, second) = _parts(html)
    assert 'href="../my%20run%20%231/traces.html#ep=' in first
    assert root.parent == tmp_path.parent  # both under pytest's base folder
    assert f'href="../../{root.name}/eval/traces.html#ep=' in second


def test_a_run_without_metrics_is_a_one_line_config_error(demo, tmp_path):
    root, _ = demo
    empty = tmp_path / "not-evaluated"
    empty.mkdir()
    sections = [("Galaxies", root / "eval"), ("Other", empty)]
    with pytest.raises(ConfigError) as err:
        write_combined_report(tmp_path / "report.html", sections)
    msg = str(err.value)
    assert str(empty) in msg and "metrics.json" in msg and "\n" not in msg
    assert not (tmp_path / "report.html").exists()
    with pytest.raises(ConfigError, match="no sections"):
        write_combined_report(tmp_path / "report.html", [])
    # the page may not overwrite a section's own report
    with pytest.raises(ConfigError, match="Galaxies"):
        write_combined_report(root / "eval" / "report.html", sections[:1])
