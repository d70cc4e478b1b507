"""A trained checkpoint carries its settings; the CLI takes them as defaults and names overrides."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from astroreason.checkpoint_settings import (
    SETTINGS_FILE,
    CheckpointSettings,
    read_settings,
    resolve,
    write_settings,
)
from astroreason.errors import ConfigError

SETTINGS = CheckpointSettings(
    env="galaxy",
    condition="tools",
    env_options={"max_turns": 2, "max_tool_calls": 1, "view_size": 48},
    temperature=0.0,
    max_tokens=12,
    min_pixels=1024,
    max_pixels=4194304,
    trained={"stage": "grpo", "steps": 3},
)


def test_round_trip_and_bad_files(tmp_path):
    write_settings(tmp_path, SETTINGS)
    assert read_settings(tmp_path) == SETTINGS
    assert read_settings(tmp_path / "none") is None  # a base model has none
    (tmp_path / SETTINGS_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match=SETTINGS_FILE):
        read_settings(tmp_path)
    (tmp_path / SETTINGS_FILE).write_text(json.dumps({"env": "galaxy", "condition": "tools"}))
    with pytest.raises(ConfigError, match="sampling"):
        read_settings(tmp_path)


def test_resolve_user_then_checkpoint_then_default():
    fallback = {"view_size": None, "max_tool_calls": None, "temperature": 0.7, "max_tokens": 256}
    values, notes = resolve({}, fallback, SETTINGS, "ckpt")
    assert values == {"view_size": 48, "max_tool_calls": 1, "temperature": 0.0, "max_tokens": 12}
    assert notes == []
    values, notes = resolve({"max_tokens": 256, "view_size": 48}, fallback, SETTINGS, "ckpt")
    assert values["max_tokens"] == 256 and values["view_size"] == 48
    assert notes == [
        "note: --max-tokens 256 differs from the 12 that ckpt was trained and validated with"
    ]
    values, notes = resolve({}, fallback, None, None)  # no checkpoint: the defaults
    assert values == fallback and notes == []


def test_training_config_gives_the_settings_of_its_env_and_validation():
    from astroreason.training.config import checkpoint_settings, load_config

    cfg = load_config("tiny-cpu")
    s = checkpoint_settings(cfg, "sft", steps=4)
    assert s.env_options == {"max_turns": 4, "max_tool_calls": 1, "view_size": 64}
    assert (s.temperature, s.max_tokens) == (0.0, cfg.val_max_new_tokens)
    assert s.trained == {"stage": "sft", "steps": 4}
    spec = checkpoint_settings(load_config("tiny-cpu-spectra"), "grpo")
    assert spec.env == "spectrum" and "view_width" in spec.env_options
    assert "view_size" not in spec.env_options


def _checkpoint(tiny_model_dir, tmp_path) -> Path:
    """The tiny model's files (linked) plus settings: a trained checkpoint as far as eval can tell."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for f in Path(tiny_model_dir).iterdir():
        (folder / f.name).symlink_to(f.resolve())
    write_settings(folder, SETTINGS)
    return folder


def _rollout(main, galaxy_file, ckpt, out, *flags):
    main(
        ["rollout", "--data", str(galaxy_file), "--split", "all", "--policy", "transformers"]
        + ["--model", str(ckpt), "--episodes", "2", "--out", str(out), *flags]
    )
    return json.loads((out / "run.json").read_text())


def test_rollout_takes_the_checkpoint_settings_and_says_which(
    tiny_model_dir, galaxy_file, tmp_path, capsys
):
    from astroreason.cli import main

    ckpt = _checkpoint(tiny_model_dir, tmp_path)
    run = _rollout(main, galaxy_file, ckpt, tmp_path / "a")
    err = capsys.readouterr().err
    assert f"settings of {ckpt}" in err and "view_size=48" in err and "max_tokens=12" in err
    assert "note:" not in err
    assert "view_size=48" in run["env_config"] and "max_tool_calls=1" in run["env_config"]
    assert "temperature=0.0" in run["sampling"] and "max_tokens=12" in run["sampling"]
    recs = [json.loads(x) for x in (tmp_path / "a" / "traces.jsonl").read_text().splitlines()]
    assert all(r["metrics"]["turns"] <= 2 for r in recs)  # the checkpoint's max_turns

    run = _rollout(main, galaxy_file, ckpt, tmp_path / "b", "--view-size", "64")
    err = capsys.readouterr().err
    assert "note: --view-size 64 differs from the 48 that" in err and err.count("note:") == 1
    assert "view_size=64" in run["env_config"]


def _sorted_by_class(src: Path, dst: Path) -> Path:
    """``src`` rewritten with its rows sorted by label: the audit's high-severity row-order leak."""
    with h5py.File(src) as f_in, h5py.File(dst, "w") as f_out:
        order = np.argsort(f_in["ans"][:], kind="stable")
        for key in f_in:
            f_out[key] = f_in[key][:][order]
    return dst


def test_eval_strict_exits_1_when_a_check_fails(galaxy_file, tmp_path, capsys):
    from astroreason.cli import main

    leaky = _sorted_by_class(galaxy_file, tmp_path / "sorted.h5")
    args = ["eval", "--data", str(leaky), "--policy", "random", "--conditions", "tools"]
    args += ["--episodes", "4", "--view-size", "32"]
    main(args + ["--out", str(tmp_path / "plain")])  # without --strict: the report, exit 0
    metrics = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    assert {c["name"]: c["status"] for c in metrics["skeptic"]}["data_audit"] == "fail"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args + ["--out", str(tmp_path / "strict"), "--strict"])
    assert exc.value.code == 1
    assert "--strict: 1 check(s) failed: data_audit" in capsys.readouterr().err


def test_set_max_steps_means_the_running_stage():
    from astroreason.training.config import load_config, stage_overrides

    sft = load_config("tiny-cpu", stage_overrides("sft", ["max_steps=20", "learning_rate=1e-3"]))
    assert sft.sft_max_steps == 20 and sft.sft_learning_rate == 1e-3
    assert sft.max_steps == load_config("tiny-cpu").max_steps  # GRPO's own untouched
    grpo = load_config("tiny-cpu", stage_overrides("grpo", ["max_steps=20"]))
    assert grpo.max_steps == 20 and grpo.sft_max_steps == load_config("tiny-cpu").sft_max_steps


def test_config_list_and_show(capsys):
    from astroreason.cli import main

    main(["config", "list"])
    listed = capsys.readouterr().out
    assert "tiny-cpu " in listed and "qwen3-vl-8b-8gpu" in listed
    main(["config", "show", "tiny-cpu", "--set", "max_steps=7"])
    shown = capsys.readouterr().out
    assert "max_steps = 7  (default 2)\n    GRPO optimizer steps." in shown
    assert "sft_max_steps = -1\n    SFT optimizer steps; > 0 overrides ``sft_epochs``." in shown
    from astroreason.training.config import TrainConfig

    assert shown.count("\n    ") == len(TrainConfig.__dataclass_fields__)  # every field, a doc
