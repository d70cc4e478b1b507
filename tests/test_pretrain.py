"""The tiny base's pretraining recipe, run short: the loss falls, the card tells the truth, and the
result loads in transformers and is served by vLLM."""

import json

import numpy as np
import pytest

from astroreason.training.pretrain import (
    GALAXY_FRAMINGS,
    PretrainConfig,
    framing_view,
    grounding_answer,
    parse_grounding,
)


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
    cmd = PretrainConfig(out="x", max_steps=5, probe_items=7).command
    assert cmd == "astroreason model pretrain --out x --max-steps 5 --probe-items 7"


@pytest.mark.slow
def test_short_recipe_learns_and_serves(tmp_path):
    """A short run of the real recipe (real corpus, real Trainer): the assistant-token loss falls,
    the card and summary agree, the files fit the budget, and transformers and vLLM load it."""
    import torch
    from openai import OpenAI
    from transformers import AutoModelForImageTextToText

    from astroreason.models.serving import ServeConfig, VLLMServer
    from astroreason.training.pretrain import run_pretrain

    cfg = PretrainConfig(
        out=str(tmp_path / "base"),
        work=str(tmp_path / "work"),
        n_galaxies=120,
        n_spectra=40,
        max_steps=24,
        batch_size=8,
        learning_rate=3e-3,
        probe_items=10,
        logging_steps=4,
    )
    summary = run_pretrain(cfg, progress=False)
    out = tmp_path / "base"
    losses = json.loads((out / "loss_history.json").read_text())
    assert summary["steps"] == 24 and len(losses) >= 4
    first, last = np.mean([v for _, v in losses[:2]]), np.mean([v for _, v in losses[-2:]])
    assert last < 0.7 * first, losses  # from ~7 (random) the format alone takes it well down
    card = (out / "README.md").read_text()
    assert cfg.command in card and "24 steps" in card and f"{summary['parameters']:,}" in card
    assert json.loads((out / "pretrain_summary.json").read_text())["probe"] == summary["probe"]
    assert set(summary["probe"]["naming"]) >= {"overview", "matched", "zoom3-grid", "crop"}
    size = sum(f.stat().st_size for f in out.iterdir())
    assert size < 25e6

    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"

    serve = ServeConfig(
        model=str(out), served_model_name="base", max_model_len=4096, log_path=str(tmp_path / "log")
    )
    with VLLMServer(serve) as server:
        reply = OpenAI(base_url=server.base_url, api_key="EMPTY").chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": "What kind of galaxy is this?"}],
            max_tokens=8,
            temperature=0.0,
        )
    assert reply.choices[0].message.content is not None
