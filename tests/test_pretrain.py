"""The tiny base's staged recipe, run short: each stage learns, a killed run resumes where it
stopped, the card tells the truth, and the result loads in transformers and is served by vLLM."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from astroreason.training.pretrain import (
    GALAXY_FRAMINGS,
    LMStage,
    PretrainConfig,
    framing_view,
    grounding_answer,
    parse_grounding,
)
from astroreason.training.tower import TowerStage, linear_probe, stalled


def test_framings_are_the_envs_views():
    from astroreason.tools import Footprint, zoom

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    bbox = (100, 90, 160, 150)
    for framing in GALAXY_FRAMINGS:
        view = framing_view(image, bbox, framing, 64, np.random.default_rng(1))
        side = 96 if framing == "matched" else 64
        assert view.shape[:2] == (side, side), framing
    exact = framing_view(image, bbox, "zoom3-exact", 64)
    centre = [(100 + 160) / 2 / 256 * 1000, (90 + 150) / 2 / 256 * 1000]
    same = zoom(image, Footprint.full(256, 256), centre, 3.0, 64)[0]
    np.testing.assert_array_equal(exact, same)
    with pytest.raises(ValueError, match="framing"):
        framing_view(image, bbox, "pan", 64)


def test_grounding_round_trip():
    text = grounding_answer((64, 64, 128, 192), 256)
    assert text == "centre [380, 500], box [250, 250, 500, 750]"
    assert parse_grounding(text) == ([380.0, 500.0], [250.0, 250.0, 500.0, 750.0])
    assert parse_grounding("no numbers") is None


def test_rebuild_command_names_what_differs():
    assert PretrainConfig().command == "astroreason model pretrain"
    cmd = PretrainConfig(
        out="x", probe_items=7, align=LMStage(max_steps=5, learning_rate=1)
    ).command
    assert cmd == "astroreason model pretrain --out x --probe-items 7 --align-steps 5"


def test_config_round_trips_through_its_summary():
    import dataclasses

    cfg = PretrainConfig(tower=TowerStage(max_steps=9), full=LMStage(3, 1e-4, 1e-5))
    plain = json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert PretrainConfig.from_dict(plain) == cfg


def test_held_out_rows_split_stopping_from_reporting():
    cfg = PretrainConfig(n_galaxies=100, held_out=0.2, probe_items=7)
    stop, report = cfg.held_out_rows()
    assert stop == list(range(80, 90)) and report == list(range(90, 97))


def test_tower_stops_when_the_probe_stalls():
    h = lambda *means: [{"step": i, "mean": m} for i, m in enumerate(means)]  # noqa: E731
    assert not stalled(h(0.2, 0.3, 0.4), patience=2, min_rise=0.005)
    assert not stalled(h(0.2, 0.3), patience=2, min_rise=0.005)
    assert stalled(h(0.2, 0.4, 0.402, 0.39), patience=2, min_rise=0.005)
    assert not stalled(h(0.2, 0.4, 0.39, 0.41), patience=2, min_rise=0.005)


def test_linear_probe_reads_what_the_features_carry():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 400)
    noise = rng.normal(size=(400, 16))
    carried = noise.copy()
    carried[:, 0] += 8 * y  # classes 8 sigma apart on one feature
    assert linear_probe(carried[:300], y[:300], carried[300:], y[300:]) > 0.9
    assert linear_probe(noise[:300], y[:300], noise[300:], y[300:]) < 0.45


SHORT = """
from astroreason.training.pretrain import LMStage, PretrainConfig
from astroreason.training.tower import TowerStage
cfg = PretrainConfig(
    out={out!r}, work={work!r}, n_galaxies=320, n_spectra=48, held_out=0.3, probe_items=30,
    tower=TowerStage(max_steps=120, batch_size=32, learning_rate=2e-3, probe_every=60,
                     probe_train_rows=220),
    align=LMStage(max_steps=16, learning_rate=3e-3, batch_size=8),
    full=LMStage(max_steps=6, learning_rate=1e-3, tower_learning_rate=1e-4, batch_size=8),
)
"""


@pytest.mark.slow
def test_staged_recipe_resumes_learns_and_serves(tmp_path):
    """The real recipe, short: killed (SIGKILL) during stage 2 and run again, it keeps stage 1,
    resumes stage 2 from its checkpoint, and finishes; every stage learns; the card and summary
    agree; the files fit the budget; transformers and vLLM load the result."""
    import torch
    from openai import OpenAI
    from transformers import AutoModelForImageTextToText

    from astroreason.models.serving import ServeConfig, VLLMServer
    from astroreason.training.pretrain import run_pretrain

    out, work = tmp_path / "base", tmp_path / "work"
    setup = SHORT.format(out=str(out), work=str(work))
    run = (
        setup + "from astroreason.training.pretrain import run_pretrain\nrun_pretrain(cfg, False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", run], stdout=subprocess.DEVNULL)
    ckpt = work / "stage-2-align" / "trainer" / "checkpoint-8"
    deadline = time.time() + 600
    while not (ckpt / "trainer_state.json").exists():
        assert proc.poll() is None, "the run ended before stage 2 saved a checkpoint"
        assert time.time() < deadline
        time.sleep(0.2)
    time.sleep(0.5)  # let the checkpoint's files land
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    tower_done = work / "stage-1-tower" / "summary.json"
    before = tower_done.stat().st_mtime_ns

    scope: dict = {}
    exec(setup, scope)
    cfg = scope["cfg"]
    summary = run_pretrain(cfg, progress=False)

    assert tower_done.stat().st_mtime_ns == before  # stage 1 was not run again
    stages = summary["stages"]
    assert stages["align"]["resumed_from"] == 8 and stages["align"]["steps"] == 16
    assert stages["full"]["resumed_from"] == 0 and stages["full"]["steps"] == 6
    tower = stages["tower"]
    assert tower["last_loss"] < 0.9 * tower["first_loss"], tower
    curve = [h["mean"] for h in tower["probe_history"]]
    assert tower["probe_history"][0]["step"] == 0  # the random tower is probed first
    assert max(curve[1:]) > curve[0] + 0.05 and max(curve[1:]) > 0.2, curve  # chance 0.1
    assert stages["align"]["last_loss"] < 0.6 * stages["align"]["first_loss"]

    card = (out / "README.md").read_text()
    assert cfg.command in card and f"{summary['parameters']:,}" in card
    assert "--tower-steps 120 --align-steps 16 --full-steps 6" in cfg.command
    saved = json.loads((out / "pretrain_summary.json").read_text())
    assert saved["probe"] == summary["probe"] and saved["targets"] == summary["targets"]
    p = summary["probe"]
    for f in ("overview", "matched", "zoom3-grid", "crop"):
        row = f"| {f} | {p['tower_stage1']['naming'][f]:.3f} | {p['tower']['naming'][f]:.3f} |"
        assert row in card
    assert set(p["naming_ids"]) == {"overview", "zoom3-grid", "crop"}
    assert summary["ids_cost"]["tokens_now"] == summary["ids_cost"]["ids"] == 64
    assert len(summary["targets"]) == len(p["naming"]) + 5
    size = sum(f.stat().st_size for f in out.iterdir())
    assert size < 25e6

    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"

    serve = ServeConfig(
        model=str(out),
        served_model_name="base",
        max_model_len=4096,
        enforce_eager=True,
        log_path=str(tmp_path / "log"),
    )
    with VLLMServer(serve) as server:
        reply = OpenAI(base_url=server.base_url, api_key="EMPTY").chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": "What kind of galaxy is this?"}],
            max_tokens=8,
            temperature=0.0,
        )
    assert reply.choices[0].message.content is not None
