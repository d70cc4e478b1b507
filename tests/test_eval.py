import json
import re

import numpy as np
import pytest

from astroreason.eval.metrics import (
    bootstrap_mean_ci,
    classification_metrics,
    compute_metrics,
    condition_metrics,
    exact_mcnemar,
    majority_baseline,
    paired_comparison,
)
from astroreason.eval.skeptic import (
    check_audit,
    check_blank_tools,
    check_blind,
    check_human_ceiling,
)
from astroreason.targets import episode_on_target, on_target
from astroreason.traces import read_traces

NAMES = ["a", "b", "c"]
FIELD = [0.0, 0.0, 100.0, 100.0]
BBOX = [40.0, 40.0, 60.0, 60.0]


def rec(
    row,
    label,
    pred,
    *,
    condition="tools",
    sample=0,
    calls=(),
    turns=1,
    invalid=0,
    over=False,
    bbox=BBOX,
):
    return {
        "id": f"{condition}-test-{row}-{sample}",
        "condition": condition,
        "split": "test",
        "row_id": row,
        "sample": sample,
        "label": label,
        "class_name": NAMES[label],
        "prediction": pred,
        "predicted_class": None if pred is None else NAMES[pred],
        "correct": pred == label,
        "class_names": NAMES,
        "metrics": {
            "return": float(pred == label),
            "turns": turns,
            "tool_calls": len(calls),
            "ok_tool_calls": sum(c["ok"] for c in calls),
            "invalid_actions": invalid,
            "over_turn": over,
            "prompt_tokens": 100,
            "completion_tokens": 10,
            "wall_s": 0.5,
        },
        "logs": {
            "messages": [],
            "replies": [],
            "tool_calls": list(calls),
            "views": [{"index": 0, "kind": "overview", "footprint": FIELD}],
        },
        "ground_truth": {"label": label, "bbox": bbox},
    }


def crop_call(fp, ok=True, name="crop"):
    return {"name": name, "arguments": {}, "ok": ok, "error": None, "footprint": fp}


# --------------------------------------------------------------------------- metrics


def test_accuracy_confusion_precision_recall_macro_f1():
    recs = [rec(0, 0, 0), rec(1, 0, 1), rec(2, 1, 1), rec(3, 2, None)]
    m = condition_metrics(recs, majority_share=0.5)
    assert m["n"] == 4 and m["accuracy"] == 0.5
    assert m["confusion"] == [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]
    assert m["precision"][:2] == [1.0, 0.5] and m["recall"] == [0.5, 1.0, 0.0]
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert m["majority_baseline"] == 0.5 and m["random_baseline"] == pytest.approx(1 / 3)
    assert m["no_answer_rate"] == 0.25
    lo, hi = m["accuracy_ci"]
    assert lo <= m["accuracy"] <= hi and lo < hi
    assert m["examples"]["a"] == {"right": "tools-test-0-0", "wrong": "tools-test-1-0"}


def test_macro_f1_agrees_with_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    ours = classification_metrics(y, p, 4)["macro_f1"]
    assert ours == pytest.approx(f1_score(y, p, average="macro"))


def test_tool_use_turn_and_invalid_numbers():
    recs = [
        rec(0, 0, 0, calls=[crop_call([30, 30, 70, 70])], turns=2),
        rec(1, 0, None, turns=4, invalid=2, over=True),
        rec(2, 1, 1, calls=[crop_call(FIELD), crop_call([0, 0, 10, 10])], turns=3),
        rec(3, 1, 1, bbox=None),
    ]
    m = condition_metrics(recs)
    assert m["tool_calls_hist"] == {"0": 2, "1": 1, "2": 1} and m["tool_calls_mean"] == 0.75
    assert m["invalid_action_rate"] == pytest.approx(2 / 10)
    assert m["over_turn_rate"] == 0.25 and m["turns_mean"] == 2.5
    # episodes with a bbox: 0 (on target), 1 (no call), 2 (whole field and off target) -> 1/3
    assert m["crop_on_target_n"] == 3 and m["crop_on_target_rate"] == pytest.approx(1 / 3)
    # no train labels: the baseline is the largest class share among the episodes (2 of 4)
    assert m["majority_baseline"] == 0.5 and m["train_majority_share"] is None


def test_bootstrap_interval_is_seeded_and_contains_the_mean():
    x = np.r_[np.ones(30), np.zeros(70)]
    a = bootstrap_mean_ci(x, seed=3)
    assert a == bootstrap_mean_ci(x, seed=3) and a != bootstrap_mean_ci(x, seed=4)
    assert a[0] < 0.3 < a[1] and 0.15 < a[0] and a[1] < 0.45
    assert all(np.isnan(bootstrap_mean_ci([])))


def test_exact_mcnemar_known_tables():
    assert exact_mcnemar(1, 9) == pytest.approx(2 * 11 / 1024)
    assert exact_mcnemar(0, 5) == pytest.approx(2 / 32)
    assert exact_mcnemar(4, 4) == 1.0 and exact_mcnemar(0, 0) == 1.0
    assert exact_mcnemar(3, 7) == exact_mcnemar(7, 3)


def test_paired_comparison_matches_episodes_by_row_and_sample():
    a = [rec(i, 0, 0) for i in range(10)] + [rec(99, 0, 0)]  # row 99 has no partner
    b = [rec(i, 0, 0 if i == 0 else 1, condition="no-tools") for i in range(10)]
    b = b[::-1]  # order must not matter
    b.append(rec(3, 0, 0, condition="no-tools", sample=1))  # another sample: no partner either
    c = paired_comparison(a, b)
    assert c["n_pairs"] == 10 and c["a_only"] == 9 and c["b_only"] == 0
    assert c["accuracy_a"] == 1.0 and c["accuracy_b"] == pytest.approx(0.1)
    assert c["difference"] == pytest.approx(0.9)
    assert c["p_value"] == pytest.approx(exact_mcnemar(9, 0))
    lo, hi = c["difference_ci"]
    assert lo <= 0.9 <= hi


def test_compute_metrics_uses_train_majority():
    assert majority_baseline([0, 0, 0, 1, 2]) == (0, 0.6)
    by = {
        "tools": [rec(i, i, 0) for i in range(3)],
        "no-tools": [rec(i, i, 1, condition="no-tools") for i in range(3)],
    }
    m = compute_metrics(by, train_labels=[0, 0, 0, 1, 2])
    assert m["majority_class"] == 0
    assert m["conditions"]["tools"]["majority_baseline"] == 0.6  # train 60% > 1/3 per class here
    assert m["conditions"]["tools"]["train_majority_share"] == 0.6
    assert [(c["a"], c["b"]) for c in m["comparisons"]] == [("tools", "no-tools")]


# --------------------------------------------------------------------------- crop on target


@pytest.mark.parametrize(
    "fp, expected",
    [
        ([30, 30, 70, 70], True),  # contains the box, smaller than the field
        ([45, 45, 55, 55], False),  # contains the centre but covers 25% of the box
        ([40, 40, 60, 51], True),  # centre inside, 55% of the box
        ([0, 0, 49, 100], False),  # misses the centre
        (FIELD, False),  # the whole field does not count
        ([-10, -10, 110, 110], False),  # neither does more than the field
        ([60, 60, 90, 90], False),
    ],
)
def test_on_target(fp, expected):
    assert on_target(fp, BBOX, FIELD) is expected


@pytest.mark.parametrize(
    "window, expected",
    [
        ([4000, 5000], True),  # holds the key window [4800, 4900], narrower than the range
        ([4840, 4870], False),  # holds the centre but only 30% of the window
        ([4700, 4849], False),  # misses the centre
        ([3800, 9200], False),  # the whole range does not count
    ],
)
def test_on_target_for_wavelength_windows(window, expected):
    assert on_target(window, [4800.0, 4900.0], [3800.0, 9200.0]) is expected


def test_episode_on_target_for_spectra_uses_the_key_window():
    r = rec(0, 0, 0, bbox=None, calls=[crop_call([4000, 5000], name="spectrum_window")])
    r["logs"]["views"][0]["footprint"] = [3800.0, 9200.0]
    assert episode_on_target(r) is None  # no key window: not scored
    r["ground_truth"]["key_window"] = [4800.0, 4900.0]
    assert episode_on_target(r) is True
    r["logs"]["tool_calls"] = [crop_call([6000, 7000], name="spectrum_window")]
    assert episode_on_target(r) is False


def test_episode_on_target_needs_a_successful_zoom_or_crop_in_a_tool_condition():
    good = [30, 30, 70, 70]
    assert episode_on_target(rec(0, 0, 0, calls=[crop_call(good)])) is True
    assert episode_on_target(rec(0, 0, 0, calls=[crop_call(good, name="zoom")])) is True
    assert episode_on_target(rec(0, 0, 0, calls=[crop_call(good, ok=False)])) is False
    assert episode_on_target(rec(0, 0, 0, calls=[crop_call(good, name="stretch")])) is False
    assert episode_on_target(rec(0, 0, 0, bbox=None)) is None
    assert episode_on_target(rec(0, 0, 0, condition="no-tools")) is None


# --------------------------------------------------------------------------- skeptic


def test_blind_check_fails_on_a_planted_leak_and_passes_at_baseline():
    leak = [rec(i, i % 3, i % 3, condition="blind") for i in range(30)]  # 100% with no image
    c = check_blind(leak, majority_share=0.34)
    assert c.status == "fail" and "something other than pixels" in c.sentence
    assert "100.0%" in c.sentence and c.details["p_value"] < 1e-6
    honest = [rec(i, i % 3, 0, condition="blind") for i in range(30)]  # always class a: 1/3
    c = check_blind(honest, majority_share=0.34)
    assert c.status == "ok" and c.details["accuracy"] == pytest.approx(1 / 3)
    assert check_blind(None, 0.3).status == "warn"


def test_blind_null_uses_the_best_constant_answer_on_the_episodes():
    # class a is 60% of these episodes although train majority is 34%: answering "a" is no leak
    recs = [rec(i, 0 if i < 18 else 1, 0, condition="blind") for i in range(30)]
    c = check_blind(recs, majority_share=0.34)
    assert c.status == "ok" and c.details["null_accuracy"] == pytest.approx(0.6)


def test_blank_tools_check():
    tools = [rec(i, 0, 0) for i in range(20)]
    same = [rec(i, 0, 0, condition="blank-tools") for i in range(20)]
    c = check_blank_tools(tools, same)
    assert c.status == "warn" and "not shown at this sample size (n = 20)" in c.sentence
    worse = [rec(i, 0, 1, condition="blank-tools") for i in range(20)]
    c = check_blank_tools(tools, worse)
    assert c.status == "ok" and c.details["a_only"] == 20
    assert check_blank_tools(tools, None).status == "warn"


def test_human_ceiling_and_audit_checks():
    m = {
        "conditions": {"tools": {"n": 50, "accuracy": 0.97}, "no-tools": {"n": 50, "accuracy": 0.5}}
    }
    c = check_human_ceiling(m, 0.9)
    assert c.status == "warn" and "97.0%" in c.sentence and list(c.details["above"]) == ["tools"]
    m["conditions"]["tools"]["accuracy"] = 0.6
    assert check_human_ceiling(m, 0.9).status == "ok"
    high = {"severity": "high", "code": "row_order", "sentence": "Row order predicts the label."}
    low = {"severity": "info", "code": "class_counts", "sentence": "Counts."}
    c = check_audit([high, low], "x.h5")
    assert c.status == "fail" and "Row order predicts" in c.sentence
    assert check_audit([low], "x.h5").status == "ok"
    assert check_audit(None).status == "warn"


def _pairs(n, a_only, b_only, both=0, cond="no-tools-matched"):
    """n paired episodes: ``a_only`` right only in tools, ``b_only`` only in ``cond``, ``both`` in both."""
    a = [rec(i, 0, 0 if i < a_only or i >= n - both else 1) for i in range(n)]
    b_right = set(range(a_only, a_only + b_only)) | set(range(n - both, n))
    b = [rec(i, 0, 0 if i in b_right else 1, condition=cond) for i in range(n)]
    return a, b


def test_a_non_significant_gain_is_not_shown_at_this_sample_size():
    from astroreason.eval.skeptic import CONTROLS, check_must_beat

    name, other, claim, fail = CONTROLS[0]
    a, b = _pairs(40, a_only=5, b_only=3, both=20)  # +5 points on 40 episodes
    c = check_must_beat(name, "tools", other, a, b, claim, fail)
    lo, hi = c.details["difference_ci"]
    assert c.status == "warn" and c.details["p_value"] > 0.05 and lo < 0 < hi
    assert c.details["difference"] == pytest.approx(0.05)
    interval = f"[{100 * lo:+.1f}, {100 * hi:+.1f}]"
    assert f"tools vs no-tools-matched: +5.0 pp {interval}" in c.sentence
    assert f"p = {c.details['p_value']:.2g}: not shown at this sample size (n = 40)" in c.sentence
    assert "TOOLS DO NOT" not in c.sentence and "resolution" not in c.sentence


def test_a_significant_loss_fails_loudly_and_a_significant_gain_is_ok():
    from astroreason.eval.skeptic import CONTROLS, check_must_beat

    name, other, claim, fail = CONTROLS[0]
    a, b = _pairs(40, a_only=1, b_only=15)
    c = check_must_beat(name, "tools", other, a, b, claim, fail)
    assert c.status == "fail" and c.details["p_value"] < 0.05 and c.details["difference"] < 0
    assert c.sentence.startswith("TOOLS DO NOT BEAT THE PIXEL-MATCHED OVERVIEW")
    assert "no-tools-matched is significantly better" in c.sentence
    a, b = _pairs(40, a_only=15, b_only=1)
    c = check_must_beat(name, "tools", other, a, b, claim, fail)
    assert c.status == "ok" and c.sentence.startswith("Tools beat the pixel-matched overview")


def test_blind_check_cites_the_majority_baseline_of_the_headline_table():
    from astroreason.eval.format import headline_rows
    from astroreason.eval.skeptic import run_checks

    # train is balanced (1/3), but 60% of these test episodes are class a: the baseline is 60%
    labels = [0] * 18 + [1] * 6 + [2] * 6
    by = {
        "tools": [rec(i, y, y) for i, y in enumerate(labels)],
        "blind": [rec(i, y, 0, condition="blind") for i, y in enumerate(labels)],
    }
    metrics = compute_metrics(by, train_labels=[0, 1, 2] * 10)
    blind = {c.name: c for c in run_checks(metrics, by)}["blind_baseline"]
    table = dict(zip(["tools", "blind"], headline_rows(metrics), strict=True))
    cited = blind.details["null_accuracy"]
    assert cited == metrics["conditions"]["blind"]["majority_baseline"] == pytest.approx(0.6)
    assert table["blind"][-2] == table["tools"][-2] == "60.0%"
    assert "majority baseline of 60.0%" in blind.sentence and blind.status == "ok"


def _oracle(recs):
    return [{**r, "policy": "oracle", "model": "oracle"} for r in recs]


def test_an_oracle_run_says_it_reads_the_label_instead_of_failing():
    from astroreason.eval.report import render_report
    from astroreason.eval.skeptic import run_checks

    by = {
        "tools": _oracle([rec(i, i % 3, i % 3) for i in range(30)]),
        "blind": _oracle([rec(i, i % 3, i % 3, condition="blind") for i in range(30)]),
    }
    metrics = compute_metrics(by, train_labels=[0, 1, 2])
    assert metrics["conditions"]["blind"]["policy"] == "oracle"
    checks = {c.name: c for c in run_checks(metrics, by)}
    for name in ("blind_baseline", "human_ceiling"):
        assert checks[name].status in ("ok", "warn"), checks[name].sentence
        assert "reads the label on purpose" in checks[name].sentence
        assert "reference upper bound, not a leak" in checks[name].sentence
    metrics["skeptic"] = [c.to_dict() for c in checks.values()]
    page = render_report(metrics)
    assert '<p class="banner note">Oracle run (tools, blind)' in page
    assert "FAILED" not in page
    # the same numbers from a model are an alarm
    by["blind"] = [rec(i, i % 3, i % 3, condition="blind") for i in range(30)]
    by["tools"] = [rec(i, i % 3, i % 3) for i in range(30)]
    metrics = compute_metrics(by, train_labels=[0, 1, 2])
    checks = {c.name: c for c in run_checks(metrics, by)}
    assert checks["blind_baseline"].status == "fail" and checks["human_ceiling"].status == "warn"
    assert "oracle" not in checks["human_ceiling"].sentence


def test_confusion_matrix_labels_are_whole_class_names():
    from astroreason.eval.report import confusion_figure, confusion_plot

    names = ["Disturbed", "In-between Round Smooth", "Cigar Shaped Smooth", "Edge-on without Bulge"]
    m = {"confusion": np.eye(4, 5, dtype=int).tolist(), "class_names": names}
    fig = confusion_plot("tools", m)
    ax = fig.axes[0]
    ys = [t.get_text() for t in ax.get_yticklabels()]
    xs = [t.get_text() for t in ax.get_xticklabels()]
    assert [y.replace("\n", " ") for y in ys] == names
    assert [x.replace("\n", " ") for x in xs] == [*names, "none"]
    assert max(y.count("\n") for y in ys) == 1  # long names on two lines
    assert confusion_figure("tools", m)
    assert confusion_plot("tools", {"confusion": [], "class_names": []}) is None


# --------------------------------------------------------------------------- end to end


def _eval(main, galaxy_file, out, policy, conditions="tools,no-tools,blank-tools,blind"):
    main(
        [
            "eval",
            "--data",
            str(galaxy_file),
            "--split",
            "test",
            "--policy",
            policy,
            "--conditions",
            conditions,
            "--view-size",
            "32",
            "--concurrency",
            "2",
            "--out",
            str(out),
        ]
    )
    return json.loads((out / "metrics.json").read_text())


def test_cli_eval_oracle_and_random(galaxy_file, tmp_path, capsys):
    from astroreason.cli import main

    oracle = _eval(main, galaxy_file, tmp_path / "oracle", "oracle")
    printed = capsys.readouterr().out
    assert "report.html" in printed and "traces.html" in printed
    conds = oracle["conditions"]
    assert list(conds) == ["tools", "no-tools", "blank-tools", "blind"]
    n = conds["tools"]["n"]
    assert n > 0 and all(m["n"] == n and m["accuracy"] == 1.0 for m in conds.values())
    assert conds["tools"]["crop_on_target_rate"] == 1.0 and conds["tools"]["tool_calls_mean"] == 1
    assert conds["no-tools"]["crop_on_target_rate"] is None
    checks = {c["name"]: c for c in oracle["skeptic"]}
    # the oracle reads the label even blind, on purpose: said plainly, not a failed probe
    assert checks["blind_baseline"]["status"] == "warn"
    assert "reads the label on purpose" in checks["blind_baseline"]["sentence"]
    assert checks["human_ceiling"]["status"] == "ok"
    assert "reads the label on purpose" in checks["human_ceiling"]["sentence"]
    assert not any(c["status"] == "fail" for c in checks.values()) and "FAILED" not in printed
    assert checks["blank_tools"]["status"] == "warn"
    assert checks["data_audit"]["status"] == "ok"
    assert oracle["setup"]["policy"] == "oracle" and oracle["config"]["seed"] == 0
    page = (tmp_path / "oracle" / "report.html").read_text()
    assert '<p class="banner note">Oracle run' in page and '<p class="banner">' not in page

    rnd = _eval(main, galaxy_file, tmp_path / "random", "random")
    checks = {c["name"]: c for c in rnd["skeptic"]}
    assert checks["blind_baseline"]["status"] == "ok"
    assert checks["human_ceiling"]["status"] == "ok"
    assert rnd["conditions"]["tools"]["accuracy"] < 0.9

    for run in (tmp_path / "oracle", tmp_path / "random"):
        report = (run / "report.html").read_text()
        assert "http://" not in report and "https://" not in report
        assert len(re.findall(r'src="data:image/png;base64,', report)) >= 3
        assert not re.search(r'<(?:img|script|link)[^>]+(?:src|href)="(?!data:)', report)
        assert "traces.html#ep=" in report
        viewer = (run / "traces.html").read_text()
        assert viewer.count('<article class="ep') == 4 * n
        for cond in ("tools", "blind"):
            assert len(list(read_traces(run / cond))) == n

    # a rerun resumes: nothing duplicated, same numbers
    again = _eval(main, galaxy_file, tmp_path / "oracle", "oracle")
    assert again["conditions"]["tools"]["n"] == n
    assert len(list(read_traces(tmp_path / "oracle" / "tools"))) == n


def test_cli_eval_in_steps_reports_every_condition_with_its_own_policy(galaxy_file, tmp_path):
    """Two calls into one folder (one model per call): the report covers both, model per row."""
    from astroreason.cli import main

    out = tmp_path / "steps"
    _eval(main, galaxy_file, out, "oracle", conditions="tools,blind")
    both = _eval(main, galaxy_file, out, "random", conditions="no-tools")
    conds = both["conditions"]
    assert list(conds) == ["tools", "no-tools", "blind"]
    assert conds["tools"]["model"] == "oracle" and conds["no-tools"]["model"] == "random"
    assert conds["tools"]["accuracy"] == 1.0 and conds["no-tools"]["accuracy"] < 0.9
    assert both["setup"]["model"] == "per condition (see the table)"
    pairs = {(c["a"], c["b"]) for c in both["comparisons"]}
    assert ("tools", "no-tools") in pairs or ("no-tools", "tools") in pairs
    report = (out / "report.html").read_text()
    assert "random" in report and "oracle" in report


def test_cli_eval_rejects_bad_conditions(galaxy_file, tmp_path, capsys):
    from astroreason.cli import main

    with pytest.raises(SystemExit) as e:
        _eval(main, galaxy_file, tmp_path / "x", "oracle", conditions="tools,peek")
    err = capsys.readouterr().err
    assert e.value.code == 2 and "unknown 'peek'" in err


def test_cli_eval_with_an_openai_server(galaxy_file, tmp_path):
    from stub_server import StubChatServer

    from astroreason.cli import main

    with StubChatServer(lambda body: "<think>hm</think><answer>Merging</answer>") as srv:
        main(
            [
                "eval",
                "--data",
                str(galaxy_file),
                "--policy",
                "openai",
                "--base-url",
                srv.base_url,
                "--model",
                "stub",
                "--conditions",
                "tools,blind",
                "--episodes",
                "3",
                "--view-size",
                "32",
                "--no-audit",
                "--out",
                str(tmp_path),
            ]
        )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert [c["n"] for c in m["conditions"].values()] == [3, 3]
    assert srv.requests == 6 and m["setup"]["model"] == "stub"
    checks = {c["name"]: c["status"] for c in m["skeptic"]}
    assert checks["data_audit"] == "warn"


def test_controls_and_rl_gain_are_checked_loudly():
    from astroreason.eval.skeptic import run_checks

    right = lambda c, n=40: [rec(i, 0, 0, condition=c) for i in range(n)]  # noqa: E731
    wrong = lambda c, n=40: [rec(i, 0, 1, condition=c) for i in range(n)]  # noqa: E731
    by = {
        "tools@grpo": right("tools@grpo"),
        "tools@sft": right("tools@sft"),  # RL gained nothing over its start
        "blank-tools": wrong("blank-tools"),
        "no-tools-matched": wrong("no-tools-matched"),
        "reinput": right("reinput"),  # the placebo does as well: tokens, not looking
    }
    metrics = compute_metrics(by, train_labels=[0, 1, 2])
    checks = {c.name: c for c in run_checks(metrics, by)}
    assert checks["blank_tools"].status == "ok"
    assert checks["matched_baseline"].status == "ok"
    assert checks["matched_baseline"].details["a"] == "tools@grpo"
    assert checks["placebo_reinput"].status == "warn"  # a tie: nothing shown either way
    assert "not shown at this sample size (n = 40)" in checks["placebo_reinput"].sentence
    assert "TOOLS DO NOT" not in checks["placebo_reinput"].sentence
    assert checks["placebo_random_view"].status == "warn"  # not run: cannot vouch
    assert "No random-view run" in checks["placebo_random_view"].sentence
    assert checks["rl_gain"].status == "warn"
    assert "whether GRPO beats its own SFT start is open" in checks["rl_gain"].sentence
    by["tools@sft"] = wrong("tools@sft")
    checks = {c.name: c for c in run_checks(compute_metrics(by), by)}
    assert checks["rl_gain"].status == "ok"
    pairs = {(c["a"], c["b"]) for c in compute_metrics(by)["comparisons"]}
    assert ("tools@grpo", "tools@sft") in pairs and ("tools@grpo", "reinput") in pairs


def test_a_tools_off_run_without_answers_is_no_evidence():
    from astroreason.eval.skeptic import run_checks

    right = [rec(i, 0, 0, condition="tools@grpo") for i in range(40)]
    off_wrong = [rec(i, 0, 1, condition="tools-off") for i in range(40)]
    off_silent = [rec(i, 0, None, condition="tools-off", invalid=4) for i in range(40)]
    for off, status in ((off_wrong, "ok"), (off_silent, "warn")):
        by = {"tools@grpo": right, "tools-off": off}
        check = {c.name: c for c in run_checks(compute_metrics(by), by)}["tools_off"]
        assert check.status == status, check.sentence
    assert "gave no answer" in check.sentence and check.details["no_answer_rate"] == 1.0


def test_solved_only_with_tools_counts_items_no_control_gets():
    from astroreason.eval.metrics import solved_only_with_tools

    by = {
        "tools": [rec(i, 0, 0 if i < 6 else 1) for i in range(10)],
        "no-tools": [rec(i, 0, 0 if i < 2 else 1, condition="no-tools") for i in range(10)],
        "reinput": [rec(i, 0, 0 if i in (1, 3, 9) else 1, condition="reinput") for i in range(10)],
        "blank-tools": [rec(i, 0, 1, condition="blank-tools") for i in range(10)],  # not a control
    }
    s = solved_only_with_tools(by)
    assert s["controls"] == ["no-tools", "reinput"] and s["items"] == 10
    assert s["rows"] == [2, 4, 5] and s["solved_only_with_tools"] == 3
    assert s["missed_only_with_tools"] == 0  # row 9: reinput right but no-tools wrong
    assert solved_only_with_tools({"tools": by["tools"]}) is None


def test_cli_eval_training_run_puts_its_curves_in_the_report(galaxy_file, tmp_path, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from fakesources import cli_eval
    from matplotlib import pyplot as plt

    run = tmp_path / "train-tools"
    (run / "grpo").mkdir(parents=True)
    fig = plt.figure(figsize=(2, 1))
    fig.savefig(run / "grpo" / "curves.png")
    plt.close(fig)
    out = cli_eval(
        tmp_path / "ev", galaxy_file, "oracle", "--episodes", "2", "--training-run", f"tools={run}"
    )
    page = (out / "report.html").read_text()
    assert 'alt="tools grpo curves"' in page
    assert json.loads((out / "metrics.json").read_text())["training_runs"] == {"tools": str(run)}
    with pytest.raises(SystemExit) as e:
        cli_eval(tmp_path / "ev2", galaxy_file, "oracle", "--training-run", "tools")
    assert e.value.code == 2 and "expected ARM=DIR" in capsys.readouterr().err
