"""``astroreason compare``: paired tests between evaluation runs on the episodes they share."""

import json
import shutil

import gymnasium
import pytest
from fakesources import cli_eval

import astroreason.envs  # noqa: F401
from astroreason.envs import GALAXY_ID
from astroreason.errors import ConfigError, DataError
from astroreason.eval.compare import arm_pairs, compare_runs, condition_pairs, run_names
from astroreason.eval.evaluate import EvalConfig, evaluate
from astroreason.eval.metrics import exact_mcnemar
from astroreason.policies.scripted import OraclePolicy, RandomPolicy
from astroreason.traces import read_traces

ALERT = "<script>alert(1)</script>"


def _eval(out, galaxy_file, policy, *extra, conditions="tools,no-tools"):
    return cli_eval(out, galaxy_file, policy, *extra, conditions=conditions)


@pytest.fixture(scope="module")
def runs(galaxy_file, tmp_path_factory):
    """A random run on the whole test split, an oracle run on its first 6 items, a 3-sample run."""
    root = tmp_path_factory.mktemp("compare")
    return {
        "random": _eval(root / "random", galaxy_file, "random", "--model", ALERT),
        "oracle": _eval(root / "oracle", galaxy_file, "oracle", "--episodes", "6"),
        "k3": _eval(root / "k3" / "random", galaxy_file, "random", "--samples", "3"),
        "val": _eval(root / "val", galaxy_file, "oracle", "--split", "val"),
    }


def _by_row(run, cond):
    return {r["row_id"]: r["correct"] for r in read_traces(run / cond)}


def test_oracle_beats_random_on_the_shared_episodes(runs):
    res = compare_runs([runs["random"], runs["oracle"]])
    assert res["baseline"] == "random" and [r["name"] for r in res["runs"]] == ["random", "oracle"]
    comps = {c["a"]: c for c in res["comparisons"]}
    assert set(comps) == {"tools", "no-tools"}
    for cond, c in comps.items():
        rnd, orc = _by_row(runs["random"], cond), _by_row(runs["oracle"], cond)
        assert len(orc) == 6 < len(rnd) and set(orc) < set(rnd)
        # the shared episodes are the oracle's 6, paired row by row
        assert (c["n_pairs"], c["items_a"], c["items_b"]) == (6, 6, len(rnd))
        assert (c["kind"], c["a_run"], c["b_run"], c["match"]) == (
            "runs",
            "oracle",
            "random",
            "label",
        )
        wrong = sum(not rnd[row] for row in orc)
        assert (c["a_only"], c["b_only"]) == (wrong, 0)
        assert c["accuracy_a"] == 1.0 and c["accuracy_b"] == pytest.approx(1 - wrong / 6)
        assert c["difference"] == pytest.approx(wrong / 6)
        assert c["p_value"] == pytest.approx(exact_mcnemar(wrong, 0))
        lo, hi = c["difference_ci"]
        assert lo <= c["difference"] <= hi
    assert comps["tools"]["p_value"] < 0.05  # random is wrong on all 6: 2 / 64
    # the other way round: the baseline's sign flips
    back = {c["a"]: c for c in compare_runs([runs["oracle"], runs["random"]])["comparisons"]}
    assert back["tools"]["difference"] == pytest.approx(-comps["tools"]["difference"])


def test_k_samples_pair_on_the_first_sample(runs):
    res = compare_runs([runs["random"], runs["k3"], runs["oracle"]])
    assert [r["name"] for r in res["runs"]] == ["compare0/random", "k3/random", "oracle"]
    assert [r["samples"] for r in res["runs"]] == [1, 3, 1]
    k3 = [c for c in res["comparisons"] if c["a_run"] == "k3/random"]
    assert len(k3) == 2 and all(c["b_run"] == "compare0/random" for c in res["comparisons"])
    for c in k3:  # sample 0 of the 3-sample run is the one-sample run's episode
        assert c["n_pairs"] == c["items_a"] == c["items_b"]
        assert (c["a_only"], c["b_only"], c["difference"], c["p_value"]) == (0, 0, 0.0, 1.0)
        assert 0 <= c["avg_at_k_a"] <= 1 and c["avg_at_k_b"] == c["accuracy_b"]
    assert any("first sample" in n for n in res["notes"])
    assert len([c for c in res["comparisons"] if c["a_run"] == "oracle"]) == 2


def test_cli_writes_page_and_json(runs, tmp_path, monkeypatch, capsys):
    from astroreason.cli import main

    main(["compare", str(runs["random"]), str(runs["oracle"]), "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "oracle vs random" in out and "McNemar" in out and "compare.html" in out
    page = (tmp_path / "c" / "compare.html").read_text()
    data = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert [c["a"] for c in data["comparisons"]] == ["tools", "no-tools"]
    assert "oracle vs random" in page and '<tr class="sig">' in page
    # the model name is data: escaped on the page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "<link" not in page
    # default page and JSON in the first run's folder, nothing in the working folder; --json prints
    monkeypatch.chdir(tmp_path)
    main(["compare", str(runs["random"]), str(runs["oracle"]), "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["comparisons"][0]["n_pairs"] == 6
    assert (runs["random"] / "compare.html").is_file() and (
        runs["random"] / "compare.json"
    ).is_file()
    assert not (tmp_path / "compare.html").exists()
    main(["compare", str(runs["random"]), str(runs["oracle"]), "--html", "sub/x.html"])
    assert (tmp_path / "sub" / "x.html").is_file()


def _fails(capsys, *args):
    from astroreason.cli import main

    with pytest.raises(SystemExit) as e:
        main(["compare", *map(str, args)])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1
    return err


def test_one_line_errors(runs, tmp_path, capsys):
    assert "not an evaluation run" in _fails(capsys, runs["random"], runs["random"] / "tools")
    assert "no such folder" in _fails(capsys, runs["random"], tmp_path / "nope")
    assert "share no episode" in _fails(capsys, runs["random"], runs["val"])
    assert "given twice" in _fails(capsys, runs["random"], runs["random"])
    assert "nothing to compare" in _fails(capsys, runs["random"])
    # same rows, different true labels: not the same data
    other = tmp_path / "relabelled"
    shutil.copytree(runs["oracle"], other)
    path = other / "tools" / "traces.jsonl"
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    recs[0]["label"] = (recs[0]["label"] + 1) % len(recs[0]["class_names"])
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(ConfigError, match="not on the same data"):
        compare_runs([runs["random"], other])
    with pytest.raises(DataError, match="not an evaluation run"):
        compare_runs([tmp_path])


def test_arms_inside_a_run_and_labels_matched_by_name(galaxy_file, tmp_path):
    def factory(cond):
        return lambda: gymnasium.make(
            GALAXY_ID, data=str(galaxy_file), split="test", view_size=32, condition=cond
        )

    policies = iter([OraclePolicy(), RandomPolicy()])
    cfg = EvalConfig(
        conditions=("tools@grpo", "tools@sft", "no-tools"),
        concurrency=2,
        n_boot=200,
        audit=False,
        progress=False,
    )
    run = tmp_path / "arms"
    evaluate(factory, lambda: next(policies, RandomPolicy()), run, cfg)
    sft = tmp_path / "sft"
    _eval(sft, galaxy_file, "random", conditions="tools@sft")
    res = compare_runs([sft, run])
    arms = [c for c in res["comparisons"] if c["kind"] == "arms"]
    assert [(c["a_run"], c["a"], c["b"]) for c in arms] == [("arms", "tools@grpo", "tools@sft")]
    rows = _by_row(run, "tools@sft")
    assert arms[0]["n_pairs"] == len(rows) and arms[0]["accuracy_a"] == 1.0
    assert arms[0]["a_only"] == sum(not v for v in rows.values()) and arms[0]["b_only"] == 0
    across = [c for c in res["comparisons"] if c["kind"] == "runs"]
    assert [(c["a"], c["b"], c["match"]) for c in across] == [("tools@sft", "tools@sft", "label")]
    # a run holding only tools@grpo pairs with the other's only tools label, by name
    assert condition_pairs(["tools@grpo", "blind"], ["tools@sft", "blind"]) == [
        ("blind", "blind", "label"),
        ("tools@grpo", "tools@sft", "name"),
    ]
    assert condition_pairs(["tools@a", "tools@b"], ["tools@c"]) == []  # ambiguous: not paired
    assert arm_pairs(["tools@grpo", "tools@sft", "no-tools", "tools@x"]) == [
        ("tools@grpo", "tools@sft"),
        ("tools@grpo", "tools@x"),
    ]


def test_run_names_keep_runs_apart(tmp_path):
    a, b = tmp_path / "seed0" / "eval", tmp_path / "seed1" / "eval"
    assert run_names([a, b]) == ["seed0/eval", "seed1/eval"]
    assert run_names([a, tmp_path / "other"]) == ["eval", "other"]
    assert run_names([a, a.parent]) == ["eval", "seed0"]
    assert run_names([a, tmp_path / "x" / "seed0" / "eval"]) == [
        "/".join(a.resolve().parts[-3:]),
        "x/seed0/eval",
    ]


def test_demo_pairs_the_tokens_task_with_the_galaxies_task(galaxy_file, tmp_path):
    """``astroreason demo --task tokens`` pairs its arms with the galaxies task's, item by item."""
    from rich.console import Console

    from astroreason.cli.demo import DEMO_TASKS, DemoConfig, pair_with

    tokens, galaxies = DEMO_TASKS["tokens"], DEMO_TASKS["galaxies"]
    assert tokens.paired_with == "galaxies" and tokens.data == galaxies.data
    cfg = DemoConfig(out=tmp_path)
    console = Console(record=True, width=200)
    _eval(tmp_path / tokens.eval_dir, galaxy_file, "random", "--obs", "tokens", "--view-size", "64")
    assert pair_with(cfg, tokens, galaxies, console) is None  # nothing to pair with yet
    assert "no galaxies evaluation" in console.export_text()
    _eval(tmp_path / galaxies.eval_dir, galaxy_file, "oracle", "--episodes", "6")
    page = pair_with(cfg, tokens, galaxies, console)
    assert page == tmp_path / tokens.eval_dir / "compare.html" and page.is_file()
    result = json.loads((tmp_path / tokens.eval_dir / "compare.json").read_text())
    runs = [c for c in result["comparisons"] if c["kind"] == "runs"]
    assert [(c["a"], c["b"]) for c in runs] == [("tools", "tools"), ("no-tools", "no-tools")]
    assert all(c["n_pairs"] == 6 for c in runs)  # the episodes both runs share
