"""Learning curves of a stage: the monitor's val_curve.jsonl / log_history.json and curves.png."""

import json

import pytest
from PIL import Image

from astroreason.targets import calls_on_target, episode_on_target
from astroreason.training.config import TrainConfig
from astroreason.training.curves import curve_rows, curves_figure, panel_titles, plot_curves
from astroreason.training.monitor import TrainingMonitor
from astroreason.training.validation import trace_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIELD = [0.0, 0.0, 100.0, 100.0]
BBOX = [40.0, 40.0, 60.0, 60.0]


def _png_ok(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def _write_stage(stage, logs=(), val=()):
    stage.mkdir(parents=True, exist_ok=True)
    if logs:
        (stage / "log_history.json").write_text(json.dumps(list(logs)))
    if val:
        (stage / "val_curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))


def test_plot_curves_draws_every_panel_with_data(tmp_path):
    stage = tmp_path / "grpo"
    logs = [
        {
            "step": s,
            "loss": 0.1 / s,
            "reward": 0.2 * s,
            "episode/accuracy": 0.1 * s,
            "episode/tool_calls": 1.0,
            "episode/on_target_rate": 0.5,
            "episode/invalid_rate": 0.1,
            "episode/over_turn_rate": 0.05,
        }
        for s in range(1, 11)
    ]
    logs.append({"step": 10, "train_runtime": 3.0, "train_loss": 0.05})  # the trainer's summary
    val = [
        {"step": s, "accuracy": 0.1 + 0.05 * s, "tool_calls": 1.0, "on_target_rate": 0.6}
        for s in (0, 5, 10)
    ]
    _write_stage(stage, logs, val)
    assert panel_titles(stage) == [
        "loss",
        "reward",
        "accuracy",
        "tool calls per episode",
        "on-target rate",
        "invalid and over-turn rates",
    ]
    path = plot_curves(stage)
    assert path == stage / "curves.png"
    w, h = _png_ok(path)
    assert w > h  # 2 rows x 3 columns of small panels


def test_plot_curves_omits_panels_without_data(tmp_path):
    stage = tmp_path / "sft"
    # SFT logs a loss and no rollout metrics; validation ran without tools (no on-target score)
    logs = [{"step": s, "loss": 2.0 / s, "learning_rate": 1e-4} for s in range(1, 6)]
    val = [{"step": 0, "accuracy": 0.1, "on_target_rate": None}, {"step": 5, "accuracy": 0.3}]
    _write_stage(stage, logs, val)
    assert panel_titles(stage) == ["loss", "accuracy"]
    path = plot_curves(stage)
    _png_ok(path, min_bytes=2_000)

    only_val = tmp_path / "grpo"
    _write_stage(only_val, val=[{"step": 0, "accuracy": 0.2, "tool_calls": 0.5}])
    assert panel_titles(only_val) == ["accuracy", "tool calls per episode"]
    assert plot_curves(only_val).is_file()


def test_plot_curves_returns_none_when_nothing_to_draw(tmp_path):
    assert plot_curves(tmp_path) is None
    assert not (tmp_path / "curves.png").exists() and curve_rows(tmp_path) == []
    _write_stage(tmp_path, logs=[{"step": 3, "train_runtime": 1.0}])
    assert plot_curves(tmp_path) is None and not (tmp_path / "curves.png").exists()


def test_a_one_point_series_is_drawn_as_a_visible_marker(tmp_path):
    stage = tmp_path / "grpo"
    _write_stage(stage, logs=[{"step": 1, "loss": 0.7}], val=[{"step": 0, "accuracy": 0.2}])
    fig = curves_figure(stage)
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert len(lines) == 2
    for ln in lines:
        assert len(ln.get_xdata()) == 1 and ln.get_marker() not in (None, "", "None", " ")
        assert ln.get_markersize() >= 4
    assert plot_curves(stage).is_file()


def test_curve_rows_sorts_and_skips_a_torn_line(tmp_path):
    (tmp_path / "val_curve.jsonl").write_text(
        '{"step": 4, "accuracy": 0.5}\n{"step": 0, "accuracy": 0.1}\n{"step": 8, "acc'
    )
    assert [r["step"] for r in curve_rows(tmp_path)] == [0, 4]


def _crop(footprint, ok=True, name="crop"):
    return {"name": name, "ok": ok, "footprint": footprint}


def _record(i, correct, calls=(), turns=2, invalid=0, over=False, condition="tools", bbox=BBOX):
    return {
        "id": f"{condition}-val-{i}-0",
        "condition": condition,
        "prediction": None if over else int(correct),
        "correct": correct,
        "metrics": {
            "return": float(correct),
            "turns": turns,
            "tool_calls": len(calls),
            "invalid_actions": invalid,
            "over_turn": over,
        },
        "logs": {"tool_calls": list(calls), "views": [{"footprint": FIELD}]},
        "ground_truth": {"label": 1, "bbox": bbox},
    }


@pytest.mark.parametrize(
    "calls, condition, bbox, expected",
    [
        ([_crop([30, 30, 70, 70])], "tools", BBOX, True),
        ([_crop([30, 30, 70, 70], name="zoom")], "tools", BBOX, True),
        ([_crop([30, 30, 70, 70], ok=False)], "tools", BBOX, False),
        ([_crop(FIELD)], "tools", BBOX, False),  # the whole field is not a look closer
        ([_crop([0, 0, 45, 45])], "tools", BBOX, False),  # misses the centre
        ([_crop([49, 49, 100, 100])], "tools", BBOX, False),  # centre but under half the box
        ([], "tools", BBOX, False),
        ([_crop([30, 30, 70, 70])], "tools", None, None),
        ([_crop([30, 30, 70, 70])], "no-tools", BBOX, None),
        ([_crop([30, 30, 70, 70])], "blank-tools", BBOX, True),
        ([_crop(FIELD)], "reinput", BBOX, False),  # reinput logs the overview's footprint
        ([_crop([30, 30, 70, 70])], "tools@sft", BBOX, True),
    ],
)
def test_one_on_target_rule_for_training_and_evaluation(calls, condition, bbox, expected):
    """Training (env info) and evaluation (trace records) score views with the same core rule."""
    r = _record(0, True, calls, condition=condition, bbox=bbox)
    assert calls_on_target(condition, r["ground_truth"], r["logs"]["views"], calls) is expected
    assert episode_on_target(r) is expected


def test_monitor_writes_val_curve_from_step_0_log_history_and_curves(tmp_path):
    from transformers import TrainerControl, TrainerState

    cfg = TrainConfig(output_dir=str(tmp_path), val_every=2, val_episodes=2, report_to="none")
    calls = []

    def fake_validate(model, processor, run_dir):
        """Writes traces like the rollout runner: one on-target crop, one over-turn episode."""
        calls.append(run_dir.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        recs = [
            _record(0, True, [_crop([30, 30, 70, 70])], turns=2),
            _record(1, False, [_crop(FIELD), _crop(FIELD)], turns=4, invalid=1, over=True),
        ]
        (run_dir / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        return 0.5

    stale = tmp_path / "grpo" / "val" / "step-0"  # an earlier run's traces: not resumed
    stale.mkdir(parents=True)
    (stale / "traces.jsonl").write_text(json.dumps(_record(9, True)) + "\n")
    (tmp_path / "grpo" / "val_curve.jsonl").write_text('{"step": 7, "accuracy": 0.9}\n')

    mon = TrainingMonitor(cfg, "grpo", command="x", validate_fn=fake_validate)
    state, control = TrainerState(), TrainerControl()
    kw = {"model": object(), "processing_class": object()}
    mon.on_train_begin(None, state, control, **kw)  # before the first optimizer step
    for s in range(1, 5):
        state.global_step = s
        logs = {"loss": 1.0 / s, "reward": 0.1 * s, "episode/tool_calls": 1.0}
        mon.on_log(None, state, control, logs=logs)
        state.log_history.append({**logs, "step": s})
        mon.on_step_end(None, state, control, **kw)
    mon.on_train_end(None, state, control, **kw)
    assert calls == ["step-0", "step-2", "step-4"]  # the end is step 4: validated once

    stage = tmp_path / "grpo"
    rows = curve_rows(stage)
    assert [r["step"] for r in rows] == [0, 2, 4]  # the earlier run's row is gone
    assert rows[0] == pytest.approx(
        {
            "step": 0,
            "accuracy": 0.5,
            "n": 2,
            "tool_calls": 1.5,
            "on_target_rate": 0.5,
            "invalid_rate": 1 / 6,
            "over_turn_rate": 0.5,
            "answer_rate": 0.5,
            "return": 0.5,
        }
    )
    assert rows == mon.val_rows and mon.val_history[0] == (0, 0.5)
    history = json.loads((stage / "log_history.json").read_text())
    assert [h["step"] for h in history] == [1, 2, 3, 4] and history[-1]["reward"] == 0.4
    assert mon.curves == stage / "curves.png"
    _png_ok(mon.curves)
    assert "reward" in panel_titles(stage) and "on-target rate" in panel_titles(stage)

    section = mon.finish(state, {"steps": 4}).read_text()
    assert "![grpo learning curves](grpo/curves.png)" in section


def test_monitor_without_val_every_validates_only_at_the_end(tmp_path):
    from transformers import TrainerControl, TrainerState

    cfg = TrainConfig(output_dir=str(tmp_path), val_every=0, val_episodes=2, report_to="none")
    steps = []
    mon = TrainingMonitor(
        cfg, "sft", command="x", validate_fn=lambda m, p, d: steps.append(d.name) or 0.25
    )
    state, control = TrainerState(), TrainerControl()
    kw = {"model": object(), "processing_class": object()}
    mon.on_train_begin(None, state, control, **kw)
    state.global_step = 3
    mon.on_log(None, state, control, logs={"loss": 0.5})
    mon.on_step_end(None, state, control, **kw)
    mon.on_train_end(None, state, control, **kw)
    assert steps == ["step-3"]
    assert curve_rows(tmp_path / "sft") == [{"step": 3, "accuracy": 0.25}]  # no traces written
    # the fake state has no log history: the monitor's own logs are written instead
    assert json.loads((tmp_path / "sft" / "log_history.json").read_text()) == [
        {"step": 3, "loss": 0.5}
    ]
    assert panel_titles(tmp_path / "sft") == ["loss", "accuracy"]


def test_trace_metrics_of_a_folder_without_traces(tmp_path):
    assert trace_metrics(tmp_path) == {}
    (tmp_path / "traces.jsonl").write_text(
        json.dumps(_record(0, True, [_crop([30, 30, 70, 70])], condition="no-tools")) + "\n"
    )
    assert trace_metrics(tmp_path)["on_target_rate"] is None


class _Args:
    def __init__(self, output_dir):
        self.output_dir = str(output_dir)
        self.world_size = 1


def _logged_steps(mon, state, control, steps, kw):
    for s in steps:
        state.global_step = s
        logs = {"loss": 1.0 / s, "reward": 0.1 * s, "episode/invalid_rate": 0.1,
                "episode/over_turn_rate": 0.0, "episode/tool_calls": 1.0}  # fmt: skip
        mon.on_log(None, state, control, logs=logs)
        state.log_history.append({**logs, "step": s})
        mon.on_step_end(None, state, control, **kw)


def test_every_checkpoint_redraws_the_curves_and_links_them(tmp_path):
    """A run killed outright after a checkpoint (SIGKILL: no callback runs) keeps its curves."""
    from transformers import TrainerControl, TrainerState

    cfg = TrainConfig(output_dir=str(tmp_path), val_every=0, val_episodes=0, report_to="none")
    mon = TrainingMonitor(cfg, "grpo", command="x")
    state, control = TrainerState(), TrainerControl()
    mon.begin()
    mon.on_train_begin(None, state, control)
    _logged_steps(mon, state, control, range(1, 5), {})
    mon.on_save(_Args(tmp_path / "grpo"), state, control)  # then the process is killed

    stage = tmp_path / "grpo"
    _png_ok(stage / "curves.png")
    assert [h["step"] for h in json.loads((stage / "log_history.json").read_text())] == [1, 2, 3, 4]
    assert {"loss", "reward", "invalid and over-turn rates"} <= set(panel_titles(stage))
    md = (tmp_path / "experiment_log.md").read_text()
    assert "grpo-1, running" in md and "![grpo learning curves](grpo/curves.png)" in md


@pytest.mark.parametrize(
    "error, status",
    [(RuntimeError("CUDA out of memory"), "crashed"), (KeyboardInterrupt(), "stopped")],
)
def test_a_crashed_or_interrupted_run_leaves_its_curves_in_the_log(tmp_path, error, status):
    from transformers import TrainerControl, TrainerState

    from astroreason.training.monitor import train_logged

    cfg = TrainConfig(output_dir=str(tmp_path), val_every=0, val_episodes=0, report_to="none")
    mon = TrainingMonitor(cfg, "sft", command="x")

    class Trainer:  # logs three steps, then fails mid-run (no on_train_end, no checkpoint)
        state = TrainerState()

        def train(self, resume_from_checkpoint=None):
            mon.on_train_begin(None, self.state, TrainerControl())
            _logged_steps(mon, self.state, TrainerControl(), range(1, 4), {})
            raise error

    with pytest.raises(type(error)):
        train_logged(Trainer(), mon, cfg, tmp_path / "sft")
    _png_ok(tmp_path / "sft" / "curves.png", min_bytes=2_000)
    md = (tmp_path / "experiment_log.md").read_text()
    assert f"sft-1, {status}" in md
    assert "- learning curves: ![sft learning curves](sft/curves.png)" in md
