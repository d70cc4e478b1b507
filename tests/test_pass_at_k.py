"""k samples per item: the unbiased pass@k estimator, avg@k, first-sample pairing, resumable runs."""

import itertools
import json

import numpy as np
import pytest
from fakesources import cli_eval

from astroreason.errors import ConfigError
from astroreason.eval.evaluate import EvalConfig
from astroreason.eval.metrics import (
    bootstrap_mean_ci,
    condition_metrics,
    exact_mcnemar,
    item_groups,
    k_values,
    paired_comparison,
    pass_at_k,
    sample_metrics,
)
from astroreason.traces import read_traces


def brute_pass_at_k(n, c, k):
    """Share of the k-subsets of n samples (c of them right) that hold a right one."""
    right = set(range(c))
    subsets = list(itertools.combinations(range(n), k))
    return sum(bool(right & set(s)) for s in subsets) / len(subsets)


def test_pass_at_k_known_values():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 5) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    assert pass_at_k(5, 0, 3) == 0.0 and pass_at_k(5, 5, 1) == 1.0
    assert pass_at_k(4, 1, 4) == 1.0 and pass_at_k(1, 1, 1) == 1.0


@pytest.mark.parametrize("n", range(1, 8))
def test_pass_at_k_matches_brute_force_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_1_is_the_share_right_and_large_n_is_stable():
    for n, c in [(10, 3), (7, 7), (200, 13)]:
        assert pass_at_k(n, c, 1) == pytest.approx(c / n)
    assert 0 < pass_at_k(200, 13, 100) < 1


@pytest.mark.parametrize("n, c, k", [(3, 1, 4), (3, 1, 0), (3, 4, 1)])
def test_pass_at_k_refuses_impossible_arguments(n, c, k):
    with pytest.raises(ValueError, match="pass@k needs"):
        pass_at_k(n, c, k)


def test_k_values_are_one_powers_of_two_and_k():
    assert k_values(1) == [1]
    assert k_values(4) == [1, 2, 4]
    assert k_values(5) == [1, 2, 4, 5]
    assert k_values(16) == [1, 2, 4, 8, 16]


def rec(row, sample, correct, label=0):
    return {
        "id": f"tools-test-{row}-{sample}",
        "split": "test",
        "row_id": row,
        "sample": sample,
        "label": label,
        "class_name": "a",
        "class_names": ["a", "b"],
        "prediction": label if correct else 1 - label,
        "correct": correct,
        "metrics": {"turns": 1, "tool_calls": 0, "invalid_actions": 0, "over_turn": False},
        "logs": {"tool_calls": [], "views": []},
        "ground_truth": {"label": label},
    }


def test_sample_metrics_average_the_estimator_over_items():
    # item 0: 2 of 4 right, item 1: 0 of 4, item 2: 4 of 4
    outcomes = {0: [1, 0, 1, 0], 1: [0, 0, 0, 0], 2: [1, 1, 1, 1]}
    recs = [rec(r, s, bool(v)) for r, vs in outcomes.items() for s, v in enumerate(vs)]
    m = sample_metrics(item_groups(recs))
    assert m["samples"] == 4 and m["items"] == 3
    assert m["avg_at_k"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert list(m["pass_at_k"]) == ["1", "2", "4"]
    assert m["pass_at_k"]["1"] == pytest.approx(m["avg_at_k"])
    assert m["pass_at_k"]["2"] == pytest.approx((brute_pass_at_k(4, 2, 2) + 0 + 1) / 3)
    assert m["pass_at_k"]["4"] == pytest.approx(2 / 3)


def test_one_sample_keeps_todays_numbers():
    recs = [rec(r, 0, r % 3 == 0) for r in range(20)]
    m = condition_metrics(recs, n_boot=500, seed=2)
    correct = [float(r["correct"]) for r in sorted(recs, key=lambda r: r["id"])]
    assert m["accuracy_ci"] == list(bootstrap_mean_ci(correct, n_boot=500, seed=2))
    assert m["samples"] == 1 and m["items"] == 20 and m["n"] == 20
    assert m["avg_at_k"] == m["accuracy"] and m["pass_at_k"] == {"1": m["accuracy"]}


def test_paired_tests_pair_each_items_first_sample():
    a = [rec(r, s, s == 0) for r in range(8) for s in range(3)]  # right on sample 0 only
    b = [rec(r, s, s > 0) for r in range(8) for s in range(3)]  # wrong on sample 0 only
    c = paired_comparison(a, b)
    assert c["n_pairs"] == 8 and c["a_only"] == 8 and c["b_only"] == 0
    assert c["p_value"] == pytest.approx(exact_mcnemar(8, 0))
    # a one-sample run pairs with a k-sample run on sample 0
    assert paired_comparison([rec(r, 0, True) for r in range(8)], b)["a_only"] == 8


def test_samples_must_be_positive():
    with pytest.raises(ConfigError, match="samples"):
        EvalConfig(samples=0)


# --------------------------------------------------------------------------- end to end


def _eval(out, galaxy_file, *extra, policy="random"):
    cli_eval(out, galaxy_file, policy, *extra)
    return json.loads((out / "metrics.json").read_text())


def test_eval_with_k_samples_writes_avg_and_pass_at_k_and_resumes(galaxy_file, tmp_path):
    one = _eval(tmp_path / "k1", galaxy_file)
    m = _eval(tmp_path / "k3", galaxy_file, "--samples", "3")
    items = one["conditions"]["tools"]["n"]
    for cond in ("tools", "no-tools"):
        c = m["conditions"][cond]
        assert c["samples"] == 3 and c["items"] == items and c["n"] == 3 * items
        assert list(c["pass_at_k"]) == ["1", "2", "3"]
        recs = list(read_traces(tmp_path / "k3" / cond))
        groups = {}
        for r in recs:
            groups.setdefault(r["row_id"], []).append(r["correct"])
        expect = {k: np.mean([pass_at_k(3, sum(g), k) for g in groups.values()]) for k in (1, 2, 3)}
        assert c["pass_at_k"] == {str(k): pytest.approx(v) for k, v in expect.items()}
        assert c["avg_at_k"] == pytest.approx(expect[1]) and c["avg_at_k"] == c["accuracy"]
        assert c["pass_at_k"]["3"] >= c["pass_at_k"]["2"] >= c["pass_at_k"]["1"]
        # the samples of an item draw anew (the random policy sees the sample number) ...
        preds = {}
        for r in recs:
            preds.setdefault(r["row_id"], set()).add(r["prediction"])
        assert any(len(p) > 1 for p in preds.values())
        # ... and sample 0 is exactly the one-sample run's episode
        k1 = {r["id"]: r for r in read_traces(tmp_path / "k1" / cond)}
        first = [r for r in recs if r["sample"] == 0]
        assert len(first) == items
        assert all(r["prediction"] == k1[r["id"]]["prediction"] for r in first)
        assert all(r["seed"] == k1[r["id"]]["seed"] for r in first)
    # the paired tests and the one-sample run agree (first samples)
    pair = {(c["a"], c["b"]): c for c in m["comparisons"]}[("tools", "no-tools")]
    pair1 = {(c["a"], c["b"]): c for c in one["comparisons"]}[("tools", "no-tools")]
    assert {k: pair[k] for k in ("n_pairs", "a_only", "b_only", "p_value")} == {
        k: pair1[k] for k in ("n_pairs", "a_only", "b_only", "p_value")
    }
    assert m["samples"] == 3 and m["pairing"] == "first sample"
    assert one["samples"] == 1 and one["conditions"]["tools"]["pass_at_k"] == {
        "1": one["conditions"]["tools"]["accuracy"]
    }
    assert "Samples per item" in (tmp_path / "k3" / "report.html").read_text()
    assert "Samples per item" not in (tmp_path / "k1" / "report.html").read_text()

    # a killed run: the last episodes lost and the last line torn; the rerun completes it
    path = tmp_path / "k3" / "tools" / "traces.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-7]) + lines[-7][:40])
    again = _eval(tmp_path / "k3", galaxy_file, "--samples", "3")
    ids = [r["id"] for r in read_traces(tmp_path / "k3" / "tools")]
    assert len(ids) == len(set(ids)) == 3 * items
    assert {int(i.rsplit("-", 1)[1]) for i in ids} == {0, 1, 2}
    assert again["conditions"]["tools"]["pass_at_k"] == m["conditions"]["tools"]["pass_at_k"]
    # and a one-sample run grows to k samples in place, keeping its episodes
    grown = _eval(tmp_path / "k1", galaxy_file, "--samples", "3")
    assert grown["conditions"]["tools"] == {
        **m["conditions"]["tools"],
        "wall_s_mean": grown["conditions"]["tools"]["wall_s_mean"],
        "wall_s_total": grown["conditions"]["tools"]["wall_s_total"],
    }


def test_greedy_samples_warn(galaxy_file, tmp_path, capsys):
    from astroreason.cli import main

    args = ["eval", "--data", str(tmp_path / "missing.h5"), "--policy", "openai", "--model", "m"]
    args += ["--base-url", "http://127.0.0.1:9/v1", "--out", str(tmp_path / "x")]
    with pytest.raises(SystemExit):
        main([*args, "--samples", "4", "--temperature", "0"])
    assert "greedy replies repeat" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--samples", "4", "--temperature", "0.7"])
    assert "greedy replies" not in capsys.readouterr().err
